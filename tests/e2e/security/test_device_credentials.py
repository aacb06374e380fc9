"""`campusgate devices credentials`: files from the roster, kept passwords, live reloads."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import stat
import sys
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner
from mqtt_probe import ConnectRefused, connect
from secure_broker import start_secure_broker

from gateway.cli import main
from gateway.services.broker_credentials_watch import watch_roster
from gateway.services.certificates import init_ca
from gateway.services.roster_admin import create

PREFIX = "campus"


async def _seed(conn: asyncpg.Connection, *mqtt_devices: str) -> None:
    await conn.execute(
        """
        INSERT INTO zones (id, name, kind) VALUES ('dorm', 'Dorm', 'dormitory');
        INSERT INTO doors (id, zone_id, direction) VALUES ('dorm-main', 'dorm', 'both');
        INSERT INTO devices (id, door_id, kind, transport, port, protocol)
        VALUES ('rdr-serial', 'dorm-main', 'card_reader', 'serial', '/dev/ttyS0', 'rdm6300');
        """
    )
    for device_id in mqtt_devices:
        await _add(conn, device_id)


async def _add(conn: asyncpg.Connection, device_id: str) -> None:
    await conn.execute(
        "INSERT INTO devices (id, door_id, kind) VALUES ($1, 'dorm-main', 'terminal')", device_id
    )


def _run_cli(dsn: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", dsn, "devices", "credentials", *args])


async def _cli(dsn: str, *args: str):  # type: ignore[no-untyped-def]
    """The command in a thread: it runs its own event loop, as from a shell."""
    return await asyncio.to_thread(_run_cli, dsn, *args)


def _secrets(out: Path) -> dict[str, str]:
    with (out / "device-secrets.csv").open() as src:
        return {row["device_id"]: row["password"] for row in csv.DictReader(src)}


def _service(out: Path, name: str) -> str:
    with (out / "service-secrets.csv").open() as src:
        return next(row["password"] for row in csv.DictReader(src) if row["username"] == name)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_files_from_the_roster_keep_passwords_rotate_and_drop(
    conn: asyncpg.Connection, fresh_db: str, tmp_path: Path
) -> None:
    await _seed(conn, "term-1", "term-2", "bad/id", "campusgate-gateway")
    out = tmp_path / "broker"
    result = await _cli(fresh_db, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "skipped device 'bad/id'" in result.stderr
    assert "skipped device 'campusgate-gateway'" in result.stderr
    first = _secrets(out)
    # MQTT devices only: a serial reader is read by the gateway, not by the broker.
    assert sorted(first) == ["term-1", "term-2"]
    assert _mode(out / "device-secrets.csv") == 0o600
    assert _mode(out / "service-secrets.csv") == 0o600
    assert _mode(out / "passwd") == 0o640
    users = [line.split(":", 1) for line in (out / "passwd").read_text().splitlines()]
    assert sorted(u for u, _ in users) == [
        "campusgate-gateway",
        "campusgate-integration",
        "term-1",
        "term-2",
    ]
    assert all(h.startswith("$7$") for _, h in users)  # mosquitto_passwd's PBKDF2-SHA512
    services = [
        line.split(":", 1)[0] for line in (out / "passwd-services").read_text().splitlines()
    ]
    assert services == ["campusgate-gateway", "campusgate-integration"]
    assert _mode(out / "passwd-services") == 0o640
    assert _mode(out / "nats-accounts.conf") == 0o640  # NATS's users: the same accounts
    assert "nats-accounts.conf" in result.stderr
    assert not any(p in (out / "passwd").read_text() for p in first.values())
    acl = (out / "acl").read_text()
    assert f"pattern write {PREFIX}/devices/%u/events" in acl
    assert f"pattern read {PREFIX}/devices/%u/commands" in acl
    assert "%c" not in acl.replace("`%c`", "")  # identities come from authentication only

    again = await _cli(fresh_db, "--out", str(out))
    assert again.exit_code == 0 and _secrets(out) == first
    gateway_pw = _service(out, "campusgate-gateway")

    rotated = await _cli(fresh_db, "--out", str(out), "--rotate", "term-1")
    assert rotated.exit_code == 0, rotated.output
    now = _secrets(out)
    assert now["term-1"] != first["term-1"] and now["term-2"] == first["term-2"]
    assert _service(out, "campusgate-gateway") == gateway_pw
    assert "rotated term-1" in rotated.stderr

    await conn.execute("DELETE FROM devices WHERE id = 'term-2'")
    dropped = await _cli(fresh_db, "--out", str(out))
    assert "removed term-2" in dropped.stderr
    assert sorted(_secrets(out)) == ["term-1"]
    assert "term-2:" not in (out / "passwd").read_text()
    assert '"term-2"' not in (out / "nats-accounts.conf").read_text()
    assert '"term-1"' in (out / "nats-accounts.conf").read_text()

    unknown = await _cli(fresh_db, "--out", str(out), "--rotate", "term-9")
    assert unknown.exit_code != 0 and "cannot rotate term-9" in unknown.stderr


def _can_connect(port: int, ca: Path, user: str, password: str) -> bool:
    try:
        probe = connect(port, client_id=user, username=user, password=password, ca=ca)
    except ConnectRefused:
        return False
    probe.close()
    return True


async def test_a_roster_change_reaches_the_running_broker_without_a_restart(
    conn: asyncpg.Connection, fresh_db: str, tmp_path: Path
) -> None:
    """SIGHUP (--broker-pid-file): Mosquitto 2.0 re-reads passwd and acl in place. A device
    still in the roster stays connected; a removed one is disconnected and refused."""
    await _seed(conn, "term-1", "term-2")
    out = tmp_path / "broker"
    init_ca(out, ["127.0.0.1"])
    assert (await _cli(fresh_db, "--out", str(out))).exit_code == 0
    broker = start_secure_broker(tmp_path, out)
    ca = out / "ca.crt"
    before = _secrets(out)
    staying = connect(broker.device_port, client_id="term-2", username="term-2",
                      password=before["term-2"], ca=ca)  # fmt: skip
    leaving = connect(broker.device_port, client_id="term-1", username="term-1",
                      password=before["term-1"], ca=ca)  # fmt: skip
    try:
        pid = broker.proc.pid
        assert not _can_connect(broker.device_port, ca, "term-3", "guess")

        await _add(conn, "term-3")
        await conn.execute("DELETE FROM devices WHERE id = 'term-1'")
        result = await _cli(fresh_db, "--out", str(out), "--broker-pid-file", str(broker.pid_file))
        assert result.exit_code == 0, result.output
        assert "broker reloaded" in result.stderr
        password = _secrets(out)["term-3"]
        for _ in range(100):  # the broker handles the signal in its next loop turn
            if _can_connect(broker.device_port, ca, "term-3", password):
                break
            await asyncio.sleep(0.05)
        assert _can_connect(broker.device_port, ca, "term-3", password)
        assert not _can_connect(broker.device_port, ca, "term-1", before["term-1"])
        assert "Client term-1 disconnected" in broker.log_text()
        assert "Client term-2 disconnected" not in broker.log_text()
        assert staying.publish(f"{PREFIX}/devices/term-2/events") in (0x00, 0x10)

        # A rotated password: the session on the old one ends at the reload.
        rotated = await _cli(
            fresh_db, "--out", str(out), "--rotate", "term-2", "--broker-pid-file",
            str(broker.pid_file),
        )  # fmt: skip
        assert rotated.exit_code == 0, rotated.output
        for _ in range(100):
            if "Client term-2 disconnected" in broker.log_text():
                break
            await asyncio.sleep(0.05)
        assert "Client term-2 disconnected" in broker.log_text()
        assert not _can_connect(broker.device_port, ca, "term-2", before["term-2"])
        assert _can_connect(broker.device_port, ca, "term-2", _secrets(out)["term-2"])
        assert broker.proc.poll() is None and broker.proc.pid == pid  # never restarted
    finally:
        staying.client.loop_stop()
        leaving.client.loop_stop()
        broker.stop()


async def test_watch_follows_devices_added_through_the_roster_service(
    conn: asyncpg.Connection, fresh_db: str, tmp_path: Path
) -> None:
    """The watcher hears the roster NOTIFY of a device added as the API adds it (the
    roster service), rewrites the files and reloads the broker: the device connects."""
    await _seed(conn, "term-1")
    out = tmp_path / "broker"
    init_ca(out, ["127.0.0.1"])
    assert (await _cli(fresh_db, "--out", str(out))).exit_code == 0
    broker = start_secure_broker(tmp_path, out)
    stop = asyncio.Event()
    updates = []
    watcher = asyncio.create_task(
        watch_roster(
            fresh_db,
            out,
            prefix=PREFIX,
            pid_file=broker.pid_file,
            stop=stop,
            on_update=updates.append,
        )
    )
    try:
        for _ in range(100):
            if updates:
                break
            await asyncio.sleep(0.05)
        assert updates and updates[0].devices == 1  # the first pass, nothing new
        await create(
            conn, "device", {"id": "term-new", "door_id": "dorm-main", "kind": "terminal"}, by="t"
        )
        ca, connected = out / "ca.crt", False
        for _ in range(200):
            password = _secrets(out).get("term-new")
            if password and await asyncio.to_thread(
                _can_connect, broker.device_port, ca, "term-new", password
            ):
                connected = True
                break
            await asyncio.sleep(0.05)
        assert connected, broker.log_text()[-2000:]
        assert [u.added for u in updates[1:]] == [["term-new"]]
        assert broker.proc.poll() is None
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 10)
        broker.stop()


def test_the_command_needs_mosquitto_passwd(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashes are never made here: without the tool the command says what to install."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    result = _run_cli(fresh_db, "--out", str(tmp_path / "out"))
    assert result.exit_code != 0 and "mosquitto_passwd not found" in result.stderr


async def test_the_watch_command_runs_until_stopped(
    conn: asyncpg.Connection, fresh_db: str, tmp_path: Path
) -> None:
    """`campusgate devices credentials --watch` as an operator runs it: a device added to
    the roster appears in the files; SIGTERM ends it cleanly."""
    await _seed(conn, "term-1")
    out = tmp_path / "broker"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--database-url", fresh_db,
        "devices", "credentials", "--out", str(out), "--watch",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        for _ in range(200):
            if (out / "device-secrets.csv").exists() and "term-1" in _secrets(out):
                break
            await asyncio.sleep(0.05)
        assert sorted(_secrets(out)) == ["term-1"]
        await _add(conn, "term-2")
        for _ in range(200):
            if "term-2" in _secrets(out):
                break
            await asyncio.sleep(0.05)
        assert sorted(_secrets(out)) == ["term-1", "term-2"]
        assert "term-2:" in (out / "passwd").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert b"watching the roster" in err
