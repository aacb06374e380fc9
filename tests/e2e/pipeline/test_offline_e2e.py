"""Offline decisions end to end (issue 13), through the real broker and PostgreSQL.

The gateway publishes a signed allowlist; a health change reaches the terminal as a
delta. The gateway stops: the terminal decides alone (an isolated person and an outsider
stay out, a student gets in), keeps its journal across its own restart, and when the
gateway is back uploads it: every offline event is logged once (also when uploaded
again), and the admit of a person isolated after the list was delivered raises
`offline_mismatch`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from db_proxy import FaultyProxy

from devices.transports.mqtt import BrokerAddress, MqttClient
from firmware_sim.offline import OfflineTerminal
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.pipeline.allowlists import AllowlistConfig
from gateway.pipeline.door_worker import Gateway
from gateway.pipeline.signing import PublicKeyInfo, load_key
from gateway.store.db import connect
from gateway.store.health import set_health

TZ = ZoneInfo("Asia/Shanghai")


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def set_status(dsn: str, person_id: str, status: HealthStatus) -> None:
    conn = await connect(dsn)
    try:
        record = HealthRecord(person_id, status, datetime.now(UTC), reason="offline test")
        await set_health(conn, record, changed_by="test")
    finally:
        await conn.close()


async def person_of(dsn: str, card_uid: str) -> str:
    conn = await connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT person_id FROM cards WHERE upper(uid) = upper($1)", card_uid
        )
    finally:
        await conn.close()


async def test_terminal_decides_offline_and_reconciles_once(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    key = Ed25519PrivateKey.generate()
    config = dataclasses.replace(
        config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
        signing_key=key,
        allowlists=AllowlistConfig(tz=TZ, fever_threshold_c=37.3, days=2),
    )
    facts = campus.facts
    student, delta_card, stale_card = facts.resident_cards[-3:]
    delta_person = await person_of(campus_dsn, delta_card)
    stale_person = await person_of(campus_dsn, stale_card)
    public = PublicKeyInfo.of(key).public_key
    state = tmp_path / "gate"

    def terminal() -> OfflineTerminal:
        return OfflineTerminal(
            mqtt_url, facts.gate_device, prefix=prefix, command_key=public, state_dir=state
        )

    gateway = Gateway(config)
    await gateway.start()
    gate = terminal()
    try:
        await gate.start()
        await until(lambda: gate.holder.current is not None)
        assert gate.holder.current is not None
        assert gate.holder.current.entry(student) is not None
        assert gate.holder.current.entry(facts.outsider_card) is None
        online = await gate.decision(gate.swipe(student), timeout=10)
        assert online["decision"] == "admit" and "offline" not in online

        # A health change reaches the door's list as a delta, not a new list.
        fulls = gateway.offline.allowlists.fulls
        await set_status(campus_dsn, delta_person, HealthStatus.CLOSE_CONTACT)
        # A held person leaves the list (a removal): it must not reveal who is held.
        await until(lambda: gate.holder.current.entry(delta_card) is None)
        assert gate.holder.current.delta_version is not None
        assert gateway.offline.allowlists.fulls == fulls

        await gateway.stop()
        await until(lambda: gate.gateway_online is False)
        # Isolated after the terminal's list was last delivered: the list is stale.
        await set_status(campus_dsn, stale_person, HealthStatus.HOME_ISOLATION)

        cards = {
            "isolated": facts.isolated_card,
            "outsider": facts.outsider_card,
            "student": student,
            "delta": delta_card,
            "stale": stale_card,
        }
        events = {name: gate.swipe(card) for name, card in cards.items()}
        decided = {name: await gate.decision(eid, timeout=5) for name, eid in events.items()}
        verdicts = {name: (d["decision"], d["reason"]) for name, d in decided.items()}
        assert verdicts == {
            "isolated": ("deny", "unknown_card"),
            "outsider": ("deny", "unknown_card"),
            "student": ("admit", "ok"),
            "delta": ("deny", "unknown_card"),
            "stale": ("admit", "ok"),
        }
        assert all(d["offline"] for d in decided.values())
        assert events["student"] in gate.unlocked and events["outsider"] not in gate.unlocked
        assert gate.display == "offline"

        # Isolated only after the swipe: the re-decision takes the status as it stood then.
        student_person = await person_of(campus_dsn, student)
        await set_status(campus_dsn, student_person, HealthStatus.HOME_ISOLATION)
        journaled = dict(gate.journal.entries[events["student"]])
        # The terminal restarts: its list and its journal are still there.
        await gate.stop()
        gate = terminal()
        assert set(gate.journal.entries) == set(events.values())
        assert gate.holder.current is not None and gate.holder.current.delta_version is not None
        await gate.start()

        gateway = Gateway(config)
        await gateway.start()
        await until(lambda: len(gate.journal) == 0)
        assert gate.display == "online"
        assert gateway.offline.uploads.mismatches == 1

        # The same batch again (an ack lost on the way): nothing is logged twice.
        again = json.dumps({"type": "offline_batch", "events": [journaled]}).encode()
        probe = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"probe-{prefix}")
        await probe.connect()
        probe.publish(f"{prefix}/devices/{facts.gate_device}/uploads", again, qos=1)
        await asyncio.sleep(1.5)
        await probe.close()
        assert gateway.offline.uploads.logged == len(events)
        await until(lambda: gateway.journal is not None and gateway.journal.backlog == 0)

        conn = await connect(campus_dsn)
        try:
            rows = await conn.fetch(
                """SELECT event_id, decision, reason, person_id, received_at, device_ts, detail
                   FROM access_events WHERE device_id = $1 AND event_id = ANY($2::text[])""",
                facts.gate_device,
                list(events.values()),
            )
            by_event = {r["event_id"]: r for r in rows}
            assert len(rows) == len(events) == len(by_event)  # each offline event once
            student_row = by_event[events["student"]]
            assert student_row["decision"] == "admit"
            assert student_row["received_at"] == student_row["device_ts"]  # the passage's time
            assert student_row["detail"]["offline"] is True
            stale_row = by_event[events["stale"]]["detail"]
            assert stale_row["gateway_decision"] == "deny"
            assert stale_row["gateway_reason"] == "health_hold"
            alerts = await conn.fetch(
                "SELECT person, detail FROM alerts WHERE kind = 'offline_mismatch' AND device = $1",
                facts.gate_device,
            )
            assert [(a["person"], a["detail"]["event_id"]) for a in alerts] == [
                (stale_person, events["stale"])
            ]
            # Liaisons see this alert: the health hold behind it is not in it.
            assert alerts[0]["detail"]["reason"] is None
            assert alerts[0]["detail"]["local_reason"] == "ok"
            # What the guards would have seen online comes late, flagged offline.
            late = await conn.fetch(
                """SELECT kind, detail->>'event_id' AS event_id FROM alerts
                   WHERE device = $1 AND detail->>'offline' = 'true'""",
                facts.gate_device,
            )
            assert sorted((a["kind"], a["event_id"]) for a in late) == sorted(
                [
                    ("isolation_breach", events["isolated"]),
                    ("outsider", events["outsider"]),
                    ("isolation_breach", events["delta"]),
                    ("isolation_breach", events["stale"]),
                ]
            )
        finally:
            await conn.close()
    finally:
        await gate.stop()
        await gateway.stop()
        await set_status(campus_dsn, delta_person, HealthStatus.CLEAR)
        await set_status(campus_dsn, stale_person, HealthStatus.CLEAR)
        await set_status(campus_dsn, await person_of(campus_dsn, student), HealthStatus.CLEAR)


async def test_a_terminal_cut_from_the_broker_decides_offline_and_logs_each_event_once(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    """The network between one terminal and the broker freezes (a TCP proxy): its cards get
    no decision within 1.5 s, so it decides them from its list; once the link is back,
    every one of them is in the log exactly once, whichever way it got there."""
    key = Ed25519PrivateKey.generate()
    config = dataclasses.replace(
        config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
        signing_key=key,
        allowlists=AllowlistConfig(tz=TZ, fever_threshold_c=37.3, days=2),
    )
    facts = campus.facts
    gateway = Gateway(config)
    await gateway.start()
    async with FaultyProxy(mqtt_url) as proxy:
        gate = OfflineTerminal(
            proxy.dsn,
            facts.gate_device,
            prefix=prefix,
            command_key=PublicKeyInfo.of(key).public_key,
            state_dir=tmp_path / "gate",
        )
        try:
            await gate.start()
            await until(lambda: gate.holder.current is not None)
            assert proxy.black_hole() >= 1
            events = {
                "isolated": gate.swipe(facts.isolated_card),
                "outsider": gate.swipe(facts.outsider_card),
                "student": gate.swipe(facts.resident_cards[0]),
            }
            decided = {n: await gate.decision(e, timeout=5) for n, e in events.items()}
            assert {n: (d["decision"], d["reason"], d["offline"]) for n, d in decided.items()} == {
                "isolated": ("deny", "unknown_card", True),
                "outsider": ("deny", "unknown_card", True),
                "student": ("admit", "ok", True),
            }
            assert gate.stats.timeouts == 3 and gate.offline
            await asyncio.sleep(2.0)
            proxy.heal()
            await until(lambda: gate.is_connected and not gate.offline and len(gate.journal) == 0)
            conn = await connect(campus_dsn)
            try:

                async def logged() -> dict[str, int]:
                    rows = await conn.fetch(
                        """SELECT event_id, count(*) AS n FROM access_events
                           WHERE device_id = $1 AND event_id = ANY($2::text[]) GROUP BY 1""",
                        facts.gate_device,
                        list(events.values()),
                    )
                    return {r["event_id"]: r["n"] for r in rows}

                for _ in range(100):  # up to 20 s
                    if len(await logged()) == len(events):
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)  # anything logged twice would show by now
                assert await logged() == dict.fromkeys(events.values(), 1)
            finally:
                await conn.close()
        finally:
            await gate.stop()
            await gateway.stop()


async def test_hostile_uploads_are_counted_and_refused_without_losing_good_events(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    """Garbage on the uploads topic is counted and dropped; in a batch, a bad event is
    refused (and acknowledged, so it is not sent forever) while the good one is logged."""
    key = Ed25519PrivateKey.generate()
    config = dataclasses.replace(
        config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"), signing_key=key
    )
    facts = campus.facts
    device = facts.office_device
    gateway = Gateway(config)
    await gateway.start()
    terminal = OfflineTerminal(
        mqtt_url,
        device,
        prefix=prefix,
        command_key=PublicKeyInfo.of(key).public_key,
        state_dir=Path(tempfile.mkdtemp()),
    )
    probe = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"probe-{prefix}")
    try:
        await terminal.start()
        await probe.connect()
        topic = f"{prefix}/devices/{device}/uploads"
        for garbage in (b"\xff\xfe", b"[]", b'{"type":"offline_batch","events":7}', b"{" * 5000):
            probe.publish(topic, garbage, qos=1)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        good = {
            "event_id": "up-good",
            "ts": now,
            "type": "card",
            "card_uid": facts.staff_card,
            "direction": "in",
            "offline": True,
            "decision": "admit",
            "reason": "ok",
            "allowlist_version": 1,
        }
        bad = {**good, "event_id": "up-bad", "card_uid": "XYZ"}
        batch = {"type": "offline_batch", "events": [bad, good]}
        probe.publish(topic, json.dumps(batch).encode(), qos=1)
        await until(lambda: any(c.type == "upload_ack" for c in terminal.commands))
        ack = next(c.body for c in terminal.commands if c.type == "upload_ack")
        assert ack is not None and sorted(ack["event_ids"]) == ["up-bad", "up-good"]
        rejected = gateway.counters.snapshot()["rejected_by_cause"]
        assert rejected.get("offline_not_a_batch", 0) == 3
        assert rejected.get("offline_bad_batch", 0) == 1
        assert rejected.get("offline_bad_event", 0) == 1
        assert gateway.offline.uploads.logged == 1
        # The gateway still decides online.
        decided = await terminal.decision(terminal.swipe(facts.staff_card), timeout=10)
        assert decided["decision"] == "admit" and "offline" not in decided
    finally:
        await probe.close()
        await terminal.stop()
        await gateway.stop()


async def test_a_killed_gateway_sends_the_doors_offline_by_its_last_will(
    campus_dsn, mqtt_url, prefix, campus, tmp_path
):
    """`campusgate serve` killed (SIGKILL: no goodbye): the broker's last will tells the
    gate the gateway is gone, the gate decides alone, and after the restart its journal
    is logged once."""
    facts = campus.facts
    env = {
        **os.environ,
        "CAMPUSGATE_DATABASE_URL": campus_dsn,
        "CAMPUSGATE_MQTT_URL": mqtt_url,
        "CAMPUSGATE_TOPIC_PREFIX": prefix,
        "CAMPUSGATE_DATA_DIR": str(tmp_path / "data"),
        "CAMPUSGATE_LOG_LEVEL": "WARNING",
        "CAMPUSGATE_API_PORT": "0",
        "CAMPUSGATE_METRICS_PORT": "0",
    }

    def spawn() -> subprocess.Popen:
        with (tmp_path / "gateway.log").open("ab") as sink:
            return subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--client-id", f"gw-{prefix}"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    proc = spawn()
    key_file = tmp_path / "data" / "keys" / "command-signing.pem"
    gate: OfflineTerminal | None = None
    try:
        await until(key_file.exists, timeout=60)
        await asyncio.sleep(0.2)  # written whole before it is linked into place
        public = PublicKeyInfo.of(load_key(key_file)).public_key
        gate = OfflineTerminal(
            mqtt_url, facts.gate_device, prefix=prefix, command_key=public, state_dir=tmp_path / "g"
        )
        await gate.start()
        await until(lambda: gate.holder.current is not None and gate.gateway_online, 60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await until(lambda: gate.gateway_online is False, 30)
        events = {
            "isolated": gate.swipe(facts.isolated_card),
            "outsider": gate.swipe(facts.outsider_card),
            "student": gate.swipe(facts.resident_cards[1]),
        }
        decided = {n: await gate.decision(e, timeout=5) for n, e in events.items()}
        assert {n: (d["decision"], d["reason"]) for n, d in decided.items()} == {
            "isolated": ("deny", "unknown_card"),
            "outsider": ("deny", "unknown_card"),
            "student": ("admit", "ok"),
        }
        proc = spawn()
        await until(lambda: gate.gateway_online and len(gate.journal) == 0, 60)
        conn = await connect(campus_dsn)
        try:
            rows = await conn.fetch(
                """SELECT event_id, count(*) AS n FROM access_events
                   WHERE device_id = $1 AND event_id = ANY($2::text[]) GROUP BY 1""",
                facts.gate_device,
                list(events.values()),
            )
        finally:
            await conn.close()
        assert {r["event_id"]: r["n"] for r in rows} == dict.fromkeys(events.values(), 1)
    finally:
        if gate is not None:
            await gate.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
