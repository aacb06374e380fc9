"""`campusgate serve` runs the API in a process of its own beside the door loop: both stop
together on SIGTERM, and an API process that dies takes `serve` down with a message."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.cli.cpu_priority import apply_cpu_affinity, parse_cpus
from gateway.settings import Settings

READY = re.compile(r"console and API on (http://\S+) .*process (\d+)")
TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


@pytest.fixture
def serve(database_factory, mqtt_url, tmp_path, request):
    # A test may ask for settings of its own: @pytest.mark.parametrize("serve", [{...}], indirect=True)
    extra = getattr(request, "param", {})
    env = dict(
        os.environ,
        CAMPUSGATE_DATABASE_URL=database_factory("serve"),
        CAMPUSGATE_MQTT_URL=mqtt_url,
        CAMPUSGATE_API_PORT=str(_free_port()),
        CAMPUSGATE_DATA_DIR=str(tmp_path),
        CAMPUSGATE_TOPIC_PREFIX=f"serve{os.getpid()}",
        **extra,
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--client-id", f"serve-{os.getpid()}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (found := READY.search(log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield process, found[1], int(found[2]), log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_api_runs_in_its_own_process_and_stops_with_serve(serve):
    process, url, api_pid, _ = serve
    assert api_pid != process.pid and _parent_of(api_pid) == process.pid
    with urllib.request.urlopen(url, timeout=10) as page:
        assert page.status == 200
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(TIMEOUT_S) == 0
    deadline = time.monotonic() + 15
    while _alive(api_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(api_pid)


def test_a_dead_api_process_takes_serve_down_with_a_message(serve):
    process, _, api_pid, log = serve
    os.kill(api_pid, signal.SIGKILL)
    assert process.wait(TIMEOUT_S) == 1
    assert "the API process ended unexpectedly (exit code -9)" in log.read_text()


def test_api_process_does_not_outlive_a_killed_serve(serve):
    process, _, api_pid, _ = serve
    process.kill()  # SIGKILL: no clean-up in serve at all
    process.wait()
    deadline = time.monotonic() + 20
    while _alive(api_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(api_pid)


def _niceness(pid: int) -> int:
    # After the command name: field 19 of /proc/PID/stat is the nice value.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _policies(pid: int) -> set[int]:
    """The scheduling policy of every thread of `pid` (argon2 pool, scheduler included)."""
    return {os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}


def test_api_process_runs_at_idle_cpu_priority_by_default(serve):
    process, url, api_pid, log = serve
    # A failed login starts the argon2 pool's thread: it must inherit the policy too.
    request = urllib.request.Request(
        f"{url}/api/auth/login",
        data=b'{"name": "nobody", "password": "wrong"}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=30)
    assert len(os.listdir(f"/proc/{api_pid}/task")) > 1
    assert _policies(api_pid) == {os.SCHED_IDLE}
    assert os.sched_getscheduler(process.pid) == os.SCHED_OTHER  # the door loop keeps its own
    assert "API process CPU priority: SCHED_IDLE" in log.read_text()


@pytest.mark.parametrize("serve", [{"CAMPUSGATE_API_CPU_PRIORITY": "7"}], indirect=True)
def test_api_process_runs_at_the_configured_niceness(serve):
    process, _, api_pid, log = serve
    assert _policies(api_pid) == {os.SCHED_OTHER}
    assert _niceness(api_pid) == _niceness(process.pid) + 7
    assert "API process CPU priority: nice" in log.read_text()


@pytest.mark.parametrize("value", ["IDLE", " 0", "19"])
def test_api_cpu_priority_setting_accepts_idle_and_niceness(value):
    assert Settings(api_cpu_priority=value).api_cpu_priority == value.strip().lower()


@pytest.mark.parametrize("value", ["-1", "20", "low", ""])
def test_api_cpu_priority_setting_refuses_anything_else(value):
    with pytest.raises(ValidationError, match="neither `idle` nor a niceness"):
        Settings(api_cpu_priority=value)


def test_idle_priority_falls_back_to_niceness_19_where_sched_idle_is_refused():
    # A seccomp filter refusing sched_setscheduler cannot be set up here: the refusal is
    # simulated, in a child process so that this one keeps its priority.
    script = (
        "import os\n"
        "def refuse(*_):\n"
        "    raise PermissionError(1, 'Operation not permitted')\n"
        "os.sched_setscheduler = refuse\n"
        "from gateway.cli.cpu_priority import apply_cpu_priority\n"
        "print(apply_cpu_priority('idle'), os.getpriority(os.PRIO_PROCESS, 0))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert run.stdout.split() == ["nice", "19", "19"]


def _affinities(pid: int) -> set[frozenset[int]]:
    return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task")}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one")
@pytest.mark.parametrize("serve", [{"CAMPUSGATE_API_CPUS": "1"}], indirect=True)
def test_api_process_runs_on_the_configured_cpus(serve):
    process, url, api_pid, log = serve
    request = urllib.request.Request(  # starts the argon2 pool's thread: it inherits too
        f"{url}/api/auth/login",
        data=b'{"name": "nobody", "password": "wrong"}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=30)
    assert _affinities(api_pid) == {frozenset({1})}
    assert 0 in os.sched_getaffinity(process.pid)  # the door loop is not confined
    assert "runs on CPUs 1" in log.read_text()


@pytest.mark.parametrize(
    ("text", "cpus"), [("", set()), ("1", {1}), ("0,2", {0, 2}), ("2-4, 7", {2, 3, 4, 7})]
)
def test_cpu_lists_are_read_in_cpuset_notation(text, cpus):
    assert parse_cpus(text) == cpus
    assert Settings(api_cpus=text).api_cpus == text.strip()


@pytest.mark.parametrize("text", ["one", "3-1", "1;2", "-1"])
def test_api_cpus_setting_refuses_what_is_not_a_cpu_list(text):
    with pytest.raises(ValidationError, match="not a CPU list"):
        Settings(api_cpus=text)


def test_api_cpus_naming_a_cpu_the_host_lacks_is_an_error():
    missing = max(os.sched_getaffinity(0)) + 1
    with pytest.raises(ValueError, match=f"CPU {missing} is not available"):
        apply_cpu_affinity(str(missing))
