"""Offline uploads cannot stall the doors or unlock one (issue 13, security review).

Through the real broker and PostgreSQL: uploads that fail (the database cut while the
spool keeps the doors deciding) are still acknowledged to the broker, so they never hold
the delivery slots the card events share; and an uploaded admit for an event id the real
terminal sends later never answers that swipe with an unlock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from db_proxy import FaultyProxy

from devices.transports.mqtt import BrokerAddress, MqttClient
from firmware_sim.offline import OfflineTerminal
from gateway.pipeline.door_worker import Gateway
from gateway.pipeline.signing import PublicKeyInfo
from gateway.store.db import connect


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def offline_event(
    event_id: str, card: str, ts: datetime, decision: str = "admit", version: int | None = 1
) -> dict:
    return {
        "event_id": event_id,
        "ts": ts.isoformat(timespec="milliseconds"),
        "type": "card",
        "card_uid": card,
        "direction": "in",
        "offline": True,
        "decision": decision,
        "reason": "ok" if decision == "admit" else "not_authorized",
        "allowlist_version": version,
    }


async def test_failing_uploads_never_hold_the_card_events_delivery_slots(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    facts = campus.facts
    device = facts.office_device
    key = Ed25519PrivateKey.generate()
    async with FaultyProxy(campus_dsn) as proxy:
        config = dataclasses.replace(
            config_factory(proxy.dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"),
            signing_key=key,
            spool_path=tmp_path / "spool.sqlite3",
            receive_maximum=4,
        )
        gateway = Gateway(config)
        await gateway.start()
        terminal = OfflineTerminal(
            mqtt_url,
            device,
            prefix=prefix,
            command_key=PublicKeyInfo.of(key).public_key,
            state_dir=tmp_path / "t",
        )
        probe = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"probe-{prefix}")
        try:
            await terminal.start()
            await probe.connect()
            proxy.cut()
            # More failing uploads than the connection has delivery slots, from several
            # devices (one at a time per device is taken; the rest are left to the resend).
            now = datetime.now(UTC)
            devices = [facts.gate_device, facts.office_device, facts.lab_device]
            for k in range(12):
                dev = devices[k % len(devices)]
                batch = {
                    "type": "offline_batch",
                    "events": [offline_event(f"fail-{k}", facts.staff_card, now, "deny")],
                }
                probe.publish(f"{prefix}/devices/{dev}/uploads", json.dumps(batch).encode(), qos=1)
            # Published after the uploads (the broker delivers in order): the spool keeps
            # the door deciding, and the failed uploads hold no slot it needs.
            for _ in range(6):
                answer = await terminal.decision(terminal.swipe(facts.staff_card), timeout=10)
                assert answer["decision"] == "admit" and "offline" not in answer
            rejected = gateway.counters.rejected_by_cause
            await until(
                lambda: rejected["offline_upload_failed"] + rejected["offline_upload_busy"] >= 12
            )
            assert rejected["offline_upload_failed"] >= 1
        finally:
            proxy.accept()
            await probe.close()
            await terminal.stop()
            await gateway.stop()


async def test_an_uploaded_admit_never_unlocks_the_swipe_that_later_uses_its_id(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    """Someone with a device's credentials uploads admits for event ids the real terminal
    will send: one dated ahead is refused, and a repeat of one taken is answered late
    (no unlock), not with the uploaded admit."""
    facts = campus.facts
    device = facts.lab_device  # its own: the other tests count alerts per device
    key = Ed25519PrivateKey.generate()
    config = dataclasses.replace(
        config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"), signing_key=key
    )
    gateway = Gateway(config)
    await gateway.start()
    terminal = OfflineTerminal(
        mqtt_url,
        device,
        prefix=prefix,
        command_key=PublicKeyInfo.of(key).public_key,
        state_dir=tmp_path / "t",
    )
    probe = MqttClient(BrokerAddress.parse(mqtt_url), client_id=f"probe-{prefix}")
    try:
        await terminal.start()
        await probe.connect()
        now = datetime.now(UTC)
        batch = {
            "type": "offline_batch",
            "events": [
                offline_event("planted-now", facts.outsider_card, now),
                offline_event("planted-ahead", facts.outsider_card, now + timedelta(hours=1)),
            ],
        }
        probe.publish(f"{prefix}/devices/{device}/uploads", json.dumps(batch).encode(), qos=1)
        await until(lambda: any(c.type == "upload_ack" for c in terminal.commands))
        assert gateway.counters.rejected_by_cause["offline_ahead"] == 1
        assert gateway.offline.uploads.logged == 1

        # The real terminal's swipe with the planted ids: neither opens the door.
        repeated = await terminal.decision(
            terminal.swipe(facts.outsider_card, event_id="planted-now"), timeout=10
        )
        assert repeated["unlock_ms"] == 0 and repeated["late"] is True
        ahead = await terminal.decision(
            terminal.swipe(facts.outsider_card, event_id="planted-ahead"), timeout=10
        )
        assert ahead["decision"] == "deny" and ahead["unlock_ms"] == 0

        # Dated a little ahead (within the clock bound), then the gateway restarts: the
        # duplicate memory re-seeded from the log still answers the planted id late.
        soon = {
            "type": "offline_batch",
            "events": [
                offline_event("planted-soon", facts.outsider_card, now + timedelta(seconds=4))
            ],
        }
        acks = len([c for c in terminal.commands if c.type == "upload_ack"])
        probe.publish(f"{prefix}/devices/{device}/uploads", json.dumps(soon).encode(), qos=1)
        await until(lambda: len([c for c in terminal.commands if c.type == "upload_ack"]) > acks)
        await gateway.stop()
        await until(lambda: terminal.gateway_online is False)
        gateway = Gateway(config)
        await gateway.start()
        await until(lambda: terminal.gateway_online is True)  # answered by the gateway
        restarted = await terminal.decision(
            terminal.swipe(facts.outsider_card, event_id="planted-soon"), timeout=10
        )
        assert "offline" not in restarted
        assert restarted["unlock_ms"] == 0 and restarted["late"] is True
    finally:
        await probe.close()
        await terminal.stop()
        await gateway.stop()


async def test_a_door_that_acted_before_the_late_answer_is_logged_as_it_acted(
    campus_dsn, mqtt_url, prefix, campus, config_factory, tmp_path
):
    """The terminal times out and denies offline (no list yet); the gateway's admit comes
    after. The journal entry stays until `upload_ack`, and the log says what the door did
    (deny, the gateway's admit in its detail) with an `offline_mismatch`."""
    facts = campus.facts
    device = facts.office_device
    key = Ed25519PrivateKey.generate()
    config = dataclasses.replace(
        config_factory(campus_dsn, mqtt_url, prefix, client_id=f"gw-{prefix}"), signing_key=key
    )
    gateway = Gateway(config)
    await gateway.start()
    terminal = OfflineTerminal(
        mqtt_url,
        device,
        prefix=prefix,
        command_key=PublicKeyInfo.of(key).public_key,
        state_dir=tmp_path / "t",
        decision_timeout_s=0.0,  # every answer is too late: the door decides first
    )
    try:
        await terminal.start()
        eid = terminal.swipe(facts.staff_card)
        acted = await terminal.decision(eid, timeout=10)
        assert acted["decision"] == "deny" and acted["offline"] is True
        await until(lambda: len(terminal.finals(eid)) >= 2)  # the gateway's late answer
        assert terminal.finals(eid)[1]["decision"] == "admit"
        await until(lambda: terminal.stats.acked == 1, timeout=30)
        assert len(terminal.journal) == 0 and eid not in terminal.unlocked
        conn = await connect(campus_dsn)
        try:
            row = await conn.fetchrow(
                "SELECT decision, detail FROM access_events WHERE device_id = $1 AND event_id = $2",
                device,
                eid,
            )
            alerts = await conn.fetch(
                "SELECT detail FROM alerts WHERE kind = 'offline_mismatch' AND device = $1"
                " AND detail->>'event_id' = $2",
                device,
                eid,
            )
        finally:
            await conn.close()
        assert row["decision"] == "deny"
        detail = json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"]
        assert detail["gateway_decision"] == "admit" and detail["amended"] is True
        details = [
            json.loads(a["detail"]) if isinstance(a["detail"], str) else a["detail"] for a in alerts
        ]
        assert [(d["event_id"], d["local_decision"]) for d in details] == [(eid, "deny")]
        assert gateway.offline.uploads.mismatches == 1
    finally:
        await terminal.stop()
        await gateway.stop()
