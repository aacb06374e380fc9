"""A three-node NATS cluster with JetStream and MQTT listeners, for broker failover tests.

Imported by tests/conftest.py (the `nats_cluster` fixture) and usable on its own:

    with NatsCluster(tmp_path) as cluster:
        gateway_url = cluster.url          # "mqtt://127.0.0.1:p1,mqtt://127.0.0.1:p2,..."
        cluster.kill(0); cluster.start(0)

Every node has its own ports on 127.0.0.1 (client, route, MQTT, monitoring) and its own
JetStream store under the work directory, so a node killed and started again finds its
data. NATS speaks MQTT 3.1.1 only (QoS 0 and 1); MQTT sessions, retained messages and QoS 1
queues live in JetStream streams replicated to `replicas` nodes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
START_TIMEOUT_S = 30.0
# How long NATS waits for the PUBACK of a QoS 1 message before sending it again: also how
# long a message delivered just before its subscriber's node died waits to come again (NATS
# does not resend on session resume). NATS's default is 30 s; deploy/nats uses this value.
ACK_WAIT = "5s"


def nats_server_installed() -> bool:
    return os.path.exists(NATS_SERVER)


def require_nats_server() -> None:
    """Skip the calling test where nats-server is not installed; under CI (`CI` set: .ci/run
    installs it) fail instead, so that the clustered-broker tests never go missing there."""
    import pytest  # here: the module is also used outside pytest (see its docstring)

    if nats_server_installed():
        return
    if os.environ.get("CI"):
        pytest.fail("nats-server is not installed (.ci/run installs it)")
    pytest.skip("nats-server is not installed (Debian: apt-get install nats-server)")


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def mqtt_connects(port: int, *, timeout: float = 2.0, login: tuple[str, str] | None = None) -> bool:
    """A clean MQTT 3.1.1 session is accepted (CONNACK 0) on 127.0.0.1:`port`.

    Raw bytes rather than the client under test, so the fixture does not depend on it.
    NATS answers a CONNECT only once the MQTT streams of the account exist in JetStream,
    which needs a JetStream leader, so this is the readiness that matters to a client.
    `login`: (username, password), for a cluster with accounts.
    """
    client_id = f"probe-{os.getpid()}-{time.monotonic_ns()}".encode()
    flags = b"\x02" if login is None else b"\xc2"  # clean session (+ username, password)
    variable = b"\x00\x04MQTT\x04" + flags + b"\x00\x3c"
    payload = len(client_id).to_bytes(2, "big") + client_id
    for field in login or ():
        payload += len(field.encode()).to_bytes(2, "big") + field.encode()
    body = variable + payload
    assert len(body) < 128, "one-byte remaining length"
    packet = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(packet)
            answer = b""
            while len(answer) < 4:
                chunk = sock.recv(4 - len(answer))
                if not chunk:
                    return False
                answer += chunk
            sock.sendall(b"\xe0\x00")  # DISCONNECT
            return answer == b"\x20\x02\x00\x00"
    except OSError:
        return False


@dataclass(frozen=True)
class NodePorts:
    client: int
    route: int
    mqtt: int
    monitor: int


class NatsCluster:
    """`size` nats-server processes in one cluster; `urls` are their MQTT listeners."""

    def __init__(
        self,
        workdir: Path,
        *,
        size: int = 3,
        replicas: int | None = None,
        max_ack_pending: int | None = None,
        ack_wait: str | None = ACK_WAIT,
        name: str = "campusgate-test",
        accounts: Path | None = None,
        probe_login: tuple[str, str] | None = None,
    ) -> None:
        """`accounts`: an `authorization { users: [...] }` file every node includes (read
        again on `reload`); `probe_login` is then the account the readiness probe uses."""
        if not nats_server_installed():
            raise RuntimeError(
                "the cluster tests need nats-server (Debian: apt-get install nats-server)"
            )
        self.workdir = workdir
        self.size = size
        self.replicas = replicas or min(size, 3)
        self.max_ack_pending = max_ack_pending
        self.ack_wait = ack_wait
        self.name = name
        self.accounts = accounts
        self.probe_login = probe_login
        ports = _free_ports(4 * size)
        self.ports = [NodePorts(*ports[4 * i : 4 * i + 4]) for i in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self.started_in_s = 0.0  # how long `start_all` took, for the reports

    # ---- addresses ------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [f"mqtt://127.0.0.1:{p.mqtt}" for p in self.ports]

    @property
    def url(self) -> str:
        """All nodes, comma-separated, as CAMPUSGATE_MQTT_URL takes them."""
        return ",".join(self.urls)

    def node_of_port(self, port: int) -> int:
        return next(i for i, p in enumerate(self.ports) if p.mqtt == port)

    # ---- life cycle -------------------------------------------------------------

    def config(self, i: int) -> str:
        p = self.ports[i]
        routes = ", ".join(f"nats-route://127.0.0.1:{q.route}" for q in self.ports)
        store = self.workdir / f"n{i}"
        mqtt = [f"listen: 127.0.0.1:{p.mqtt}", f"stream_replicas: {self.replicas}"]
        mqtt.append(f"consumer_replicas: {self.replicas}")
        if self.max_ack_pending is not None:
            mqtt.append(f"max_ack_pending: {self.max_ack_pending}")
        if self.ack_wait is not None:
            mqtt.append(f'ack_wait: "{self.ack_wait}"')
        # NATS resolves an include relative to the including file's folder.
        include = (
            [f"include {os.path.relpath(self.accounts, self.workdir)}"] if self.accounts else []
        )
        return "\n".join(
            [
                f"server_name: n{i}",
                f"listen: 127.0.0.1:{p.client}",
                f"http: 127.0.0.1:{p.monitor}",
                f'jetstream {{ store_dir: "{store}", max_memory_store: 64MB, '
                "max_file_store: 1GB }",
                f"cluster {{ name: {self.name}, listen: 127.0.0.1:{p.route}, routes: [{routes}] }}",
                "mqtt { " + ", ".join(mqtt) + " }",
                *include,
                "",
            ]
        )

    def _spawn(self, i: int) -> None:
        conf = self.workdir / f"n{i}.conf"
        conf.write_text(self.config(i))
        # The log goes to a file: an unread pipe would fill up and stall the server.
        with (self.workdir / f"n{i}.log").open("ab") as sink:
            self.procs[i] = subprocess.Popen(
                [NATS_SERVER, "-c", str(conf)], stdout=sink, stderr=subprocess.STDOUT
            )

    def start_all(self, timeout: float = START_TIMEOUT_S) -> None:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            self._spawn(i)
        try:
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop_all()
            raise
        self.started_in_s = time.monotonic() - began

    def start(self, i: int, timeout: float = START_TIMEOUT_S) -> None:
        """Start node `i` again (same ports and store) and wait until it serves MQTT."""
        if self.alive(i):
            raise RuntimeError(f"node {i} is running")
        self._spawn(i)
        self.wait_ready([i], timeout=timeout)

    def kill(self, i: int) -> None:
        """SIGKILL node `i`: no goodbye to its clients or its peers."""
        proc = self.procs[i]
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"node {i} is not running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def reload(self, i: int) -> None:
        """`nats-server --signal reload=PID`: node `i` reads its configuration again."""
        proc = self.procs[i]
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"node {i} is not running")
        subprocess.run(
            [NATS_SERVER, "--signal", f"reload={proc.pid}"], check=True, capture_output=True
        )

    def alive(self, i: int) -> bool:
        proc = self.procs[i]
        return proc is not None and proc.poll() is None

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            self.procs[i] = None

    def __enter__(self) -> NatsCluster:
        self.start_all()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    # ---- readiness -------------------------------------------------------------

    def monitor(self, i: int, path: str) -> dict:
        url = f"http://127.0.0.1:{self.ports[i].monitor}{path}"
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.loads(answer.read())

    def meta_leader(self, i: int) -> str | None:
        """The JetStream meta leader as node `i` sees it (None: none, or unreachable)."""
        try:
            return self.monitor(i, "/jsz").get("meta_cluster", {}).get("leader") or None
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def wait_ready(self, nodes: list[int] | None = None, timeout: float = START_TIMEOUT_S) -> None:
        """Until each of `nodes` (all that run) sees a JetStream leader and accepts MQTT."""
        nodes = [i for i in (nodes if nodes is not None else range(self.size))]
        deadline = time.monotonic() + timeout
        pending = set(nodes)
        while pending:
            for i in sorted(pending):
                proc = self.procs[i]
                if proc is None or proc.poll() is not None:
                    raise RuntimeError(f"nats node {i} exited: {self.log_tail(i)}")
                if self.meta_leader(i) and mqtt_connects(
                    self.ports[i].mqtt, login=self.probe_login
                ):
                    pending.discard(i)
            if pending and time.monotonic() > deadline:
                tails = "\n".join(self.log_tail(i) for i in sorted(pending))
                raise RuntimeError(
                    f"nats nodes {sorted(pending)} not ready in {timeout} s:\n{tails}"
                )
            if pending:
                time.sleep(0.1)

    def log_tail(self, i: int, chars: int = 1500) -> str:
        log = self.workdir / f"n{i}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return f"--- node {i}:\n{text[-chars:]}"
