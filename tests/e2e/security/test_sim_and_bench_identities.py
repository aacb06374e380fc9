"""`campusgate sim` and `campusgate bench` over mqtts://, each simulated door on its own
account, against a real Mosquitto (the shipped secure configuration) with files made by
our own commands (issue 12)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from secure_broker import SecureBroker, start_secure_broker

from firmware_sim.campus import dump_manifest, generate_campus
from firmware_sim.load_driver import device_id
from gateway.services.broker_credentials import SERVICE_SECRETS, read_secrets, write_credentials
from gateway.services.certificates import init_ca
from gateway.store.migrate import apply_migrations

REPO = Path(__file__).resolve().parents[3]
SEED, PEOPLE = 2021, 200


def campusgate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _service_password(files: Path, account: str) -> str:
    return read_secrets(files / SERVICE_SECRETS)[account][1]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[SecureBroker, Path]]:
    """A broker of this test's own: its accounts are rewritten per test."""
    files = tmp_path / "files"
    init_ca(files, ["127.0.0.1", "localhost"])
    write_credentials(files, [], prefix="unused")
    (tmp_path / "broker").mkdir()
    broker = start_secure_broker(tmp_path / "broker", files)
    yield broker, files
    broker.stop()


def _reload(broker: SecureBroker, files: Path, devices: list[str], prefix: str) -> None:
    """Accounts for `devices` under `prefix`; Mosquitto re-reads them on SIGHUP."""
    write_credentials(files, devices, prefix=prefix, sim_account=True)
    os.kill(broker.proc.pid, 1)
    time.sleep(0.5)  # the signal is handled in the broker's main loop


def test_bench_over_tls_with_every_door_on_its_own_account(
    database_factory, own_broker: tuple[SecureBroker, Path], tmp_path: Path
) -> None:
    broker, files = own_broker
    prefix = f"benchid{secrets.token_hex(2)}"
    _reload(broker, files, [device_id(i) for i in range(3)], prefix)
    dsn = database_factory("bench_identities")
    asyncio.run(apply_migrations(dsn))
    gateway_url = (
        f"mqtts://campusgate-gateway:{_service_password(files, 'campusgate-gateway')}"
        f"@127.0.0.1:{broker.service_port}"
    )
    common = [
        "--mqtt-url", gateway_url, "--mqtt-ca-file", str(files / "ca.crt"),
        "--database-url", dsn, "--topic-prefix", prefix, "--data-dir", str(tmp_path / "data"),
        "bench", "--spawn", "--rate", "60", "--duration", "2",
        "--device-url", f"mqtts://127.0.0.1:{broker.device_port}",
        "--device-secrets", str(files / "device-secrets.csv"),
    ]  # fmt: skip
    # A fourth door has no account yet: a clear error before any load, saying what to run.
    short = campusgate(*common, "--doors", "4")
    assert short.returncode == 1
    assert "no password for 1 bench devices (e.g. bench-term-3)" in short.stderr, short.stderr
    assert "campusgate devices credentials" in short.stderr

    out = tmp_path / "bench.json"
    run = campusgate(*common, "--doors", "3", "--json", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    document = json.loads(out.read_text())
    for phase in ("gateway", "echo"):
        assert document[phase]["sent"] == document[phase]["decided"] == 120, document
    log = broker.log_text()
    for i in range(3):  # each door logged in as itself, on the device listener
        assert f"u'{device_id(i)}'" in log
    assert "u'campusgate-gateway'" in log
    assert "Denied PUBLISH" not in log  # neither phase needed a topic the ACL does not grant
    assert "no password" not in run.stderr


def test_bench_device_secrets_need_a_gateway_it_starts(tmp_path: Path) -> None:
    secrets_file = tmp_path / "device-secrets.csv"
    secrets_file.write_text("device_id,username,password\n")
    run = campusgate(
        "--mqtt-url", "mqtt://127.0.0.1:1", "bench", "--device-secrets", str(secrets_file)
    )  # fmt: skip
    assert run.returncode == 1
    assert "--device-secrets needs --spawn" in run.stderr


def test_sim_scenarios_over_tls_each_door_on_its_own_account(
    database_factory, own_broker: tuple[SecureBroker, Path], tmp_path: Path
) -> None:
    """The gateway on its account (service listener), every simulated door on its own
    (device listener), the alert watcher on the integration account: every scenario
    passes, and the unknown device is refused by the broker itself."""
    broker, files = own_broker
    prefix = f"simid{secrets.token_hex(2)}"
    campus = generate_campus(seed=SEED, people=PEOPLE)
    _reload(broker, files, campus.facts.mqtt_devices, prefix)
    dsn = database_factory("sim_identities")
    asyncio.run(apply_migrations(dsn))
    manifest = tmp_path / "campus.yaml"
    dump_manifest(campus.manifest, manifest)
    imported = campusgate("--database-url", dsn, "import", "--quiet", str(manifest))
    assert imported.returncode == 0, imported.stderr
    ca = str(files / "ca.crt")
    env = {
        "CAMPUSGATE_DATABASE_URL": dsn,
        "CAMPUSGATE_MQTT_URL": (
            f"mqtts://campusgate-gateway:{_service_password(files, 'campusgate-gateway')}"
            f"@127.0.0.1:{broker.service_port}"
        ),
        "CAMPUSGATE_MQTT_CA_FILE": ca,
        "CAMPUSGATE_TOPIC_PREFIX": prefix,
        "CAMPUSGATE_DATA_DIR": str(tmp_path / "data"),
        "CAMPUSGATE_API_PORT": "0",
        "CAMPUSGATE_METRICS_PORT": "0",
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSGATE_")}
    log = tmp_path / "gateway.log"
    with log.open("wb") as sink:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--client-id", f"gw-{prefix}"],
            cwd=REPO,
            env={**base, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "running; Ctrl-C stops it" not in log.read_text(errors="replace"):
            if gateway.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gateway did not start: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        watcher = _service_password(files, "campusgate-integration")
        run = campusgate(
            "--mqtt-url", f"mqtts://campusgate-integration:{watcher}@127.0.0.1:{broker.device_port}",
            "--mqtt-ca-file", ca, "--topic-prefix", prefix,
            "sim", "scenarios", "--people", str(PEOPLE), "--seed", str(SEED), "--fever-card", "2",
            "--device-secrets", str(files / "device-secrets.csv"),
        )  # fmt: skip
        doors = campusgate(
            "--mqtt-url", f"mqtts://127.0.0.1:{broker.device_port}", "--mqtt-ca-file", ca,
            "--topic-prefix", prefix,
            "sim", "doors", "--people", str(PEOPLE), "--seed", str(SEED), "--rate", "10",
            "--duration", "3", "--device-secrets", str(files / "device-secrets.csv"),
        )  # fmt: skip
    finally:
        gateway.terminate()
        gateway.wait(15)
    assert doors.returncode == 0, doors.stdout[-3000:] + doors.stderr[-2000:]
    final = re.search(r"final: sent (\d+)  decided (\d+)", doors.stdout)
    assert final and int(final[1]) > 0 and int(final[2]) > 0, doors.stdout
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "12 of 12 scenarios passed" in run.stdout
    assert (
        "ok  the broker, to a device without an account: expected refused, got refused"
        in run.stdout
    )
    broker_log = broker.log_text()
    for device in campus.facts.mqtt_devices:
        assert f"u'{device}'" in broker_log, device
    assert "u'campusgate-integration'" in broker_log


def test_sim_names_a_device_the_secrets_file_lacks(tmp_path: Path) -> None:
    secrets_file = tmp_path / "device-secrets.csv"
    secrets_file.write_text("device_id,username,password\nterm-x,term-x,pw\n")
    run = campusgate(
        "--mqtt-url", "mqtt://127.0.0.1:1", "sim", "scenarios", "--people", str(PEOPLE),
        "--seed", str(SEED), "--device-secrets", str(secrets_file),
    )  # fmt: skip
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--device-secrets has no password for" in lines[0], run.stderr
    assert "campusgate devices credentials" in lines[0]
