"""The gateway on its own account over mqtts:// keeps deciding while a device attacks."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
from broker_identity import PREFIX, BrokerFiles
from gateway_fixtures import running_gateway
from mqtt_probe import ConnectRefused, connect
from secure_broker import SecureBroker

from devices.transports.mqtt import BrokerAddress
from firmware_sim.fleet import Fleet, load_device_secrets
from gateway.services.certificates import issue_device

CARD_B, CARD_C = "0A0B0C02", "0A0B0C03"
NOT_AUTHORIZED = 0x87


async def _campus(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        INSERT INTO org_units (id, name) VALUES ('cs', 'CS');
        INSERT INTO people (id, kind, name, org_unit_id) VALUES
            ('S1', 'student', 'Li Hua', 'cs'), ('S2', 'student', 'Wang Fang', 'cs'),
            ('S3', 'student', 'Chen Jie', 'cs');
        INSERT INTO zones (id, name, kind) VALUES ('lab', 'Lab', 'lab');
        INSERT INTO doors (id, zone_id, direction) VALUES ('lab-a', 'lab', 'both'),
            ('lab-b', 'lab', 'both'), ('lab-c', 'lab', 'both');
        INSERT INTO devices (id, door_id, kind) VALUES ('term-a', 'lab-a', 'terminal'),
            ('term-b', 'lab-b', 'terminal'), ('term-c', 'lab-c', 'terminal');
        INSERT INTO cards (uid, person_id) VALUES ('0A0B0C01', 'S1'), ('0A0B0C02', 'S2'),
            ('0A0B0C03', 'S3');
        INSERT INTO grants (subject_org_unit, zone_id) VALUES ('cs', 'lab');
        """
    )


def _attack(broker: SecureBroker, files: BrokerFiles, topic: str, payload: bytes) -> int:
    """term-a, with its own valid password, publishes on someone else's topic."""
    try:
        probe = connect(
            broker.device_port,
            client_id="term-a-rogue",
            username="term-a",
            password=files.passwords["term-a"],
            ca=files.ca,
        )
    except ConnectRefused as exc:  # pragma: no cover - would make the test fail below
        raise AssertionError(f"term-a could not even connect: {exc}") from None
    try:
        return probe.publish(topic, payload)
    finally:
        probe.close()


async def test_the_gateway_decides_for_everyone_while_a_device_forges_anothers_events(
    conn: asyncpg.Connection,
    fresh_db: str,
    secure_broker: SecureBroker,
    broker_files: BrokerFiles,
    tmp_path: Path,
) -> None:
    await _campus(conn)
    ca = str(broker_files.ca)
    gateway_url = (
        f"mqtts://campusgate-gateway:{broker_files.passwords['campusgate-gateway']}"
        f"@127.0.0.1:{secure_broker.service_port}"
    )
    gateway_address = BrokerAddress.parse(gateway_url, ca_file=ca)
    # term-a is the attacker (its own valid password); the doors: term-c with its password,
    # term-b with a client certificate on the certificate listener.
    issue_device("term-b", broker_files.dir, tmp_path)
    async with (
        running_gateway(fresh_db, gateway_url, prefix=PREFIX, broker=gateway_address) as (gw, _),
        Fleet(
            f"mqtts://127.0.0.1:{secure_broker.device_port}?ca={ca}",
            ["term-c"],
            prefix=PREFIX,
            passwords=load_device_secrets(broker_files.dir / "device-secrets.csv"),
        ) as by_password,
        Fleet(
            f"mqtts://127.0.0.1:{secure_broker.cert_port}?ca={ca}",
            ["term-b"],
            prefix=PREFIX,
            cert_dir=tmp_path,
        ) as by_certificate,
    ):
        term_c, term_b = by_password["term-c"], by_certificate["term-b"]
        first = await term_b.decision(term_b.swipe(CARD_B, direction="in", celsius=36.5))
        assert (first["decision"], first["reason"]) == ("admit", "ok")
        template = json.loads(term_b.sent[next(iter(term_b.sent))])
        forged_ids = []
        for round_ in range(4):
            forged = {**template, "event_id": f"forged-{round_}", "card_uid": "0A0B0C01"}
            forged_ids.append(forged["event_id"])
            attacks = {
                f"{PREFIX}/devices/term-b/events": json.dumps(forged).encode(),
                f"{PREFIX}/devices/term-b/state": b'{"online": false}',
                f"{PREFIX}/devices/term-b/commands": json.dumps(
                    {"type": "decision", "event_id": "x", "decision": "admit"}
                ).encode(),
            }
            for topic, payload in attacks.items():
                assert _attack(secure_broker, broker_files, topic, payload) == NOT_AUTHORIZED
            # The legit doors are answered throughout, over TLS, on both listeners.
            for terminal, card in ((term_c, CARD_C), (term_b, CARD_B)):
                decision = await terminal.decision(
                    terminal.swipe(card, direction="in", celsius=36.6)
                )
                assert (decision["decision"], decision["reason"]) == ("admit", "ok")
        assert by_password.problems() == [] and by_certificate.problems() == []
        assert term_b.is_connected and term_c.is_connected
    logged = await conn.fetch(
        "SELECT device_id, event_id FROM access_events WHERE event_id = ANY($1::text[])",
        forged_ids,
    )
    assert logged == []  # no forged swipe ever reached the gateway
    decided = await conn.fetchval(
        "SELECT count(*) FROM access_events WHERE device_id IN ('term-b', 'term-c')"
    )
    assert decided == 9
    assert await conn.fetchval("SELECT count(*) FROM access_events WHERE device_id = 'term-a'") == 0
    assert gw.mqtt is not None and gw.mqtt.reconnects == 0
