"""Door logic through the real Ingest and DoorDesk, with no broker and no database.

Each test runs in milliseconds (tests/gateway/pipeline/door_rig.py); the same behaviours are also
covered end to end with Mosquitto and PostgreSQL in tests/e2e/pipeline.
"""

from __future__ import annotations

import time

from door_rig import (
    CAMERA,
    EXIT,
    GATE,
    LAB,
    READER,
    RESIDENT,
    REVOKED,
    STRANGER,
    WINDOW_S,
    DoorRig,
)

from gateway.domain.events import CardEvent
from gateway.domain.health import HealthStatus
from gateway.pipeline.serial_reader_pool import SerialReaders


def test_admit_is_sent_only_once_its_row_is_durable() -> None:
    rig = DoorRig()
    eid = rig.card(EXIT, RESIDENT)
    assert rig.answers(EXIT, eid) == []  # nothing goes out before the commit
    assert rig.acked(eid) == 0
    rig.journal.commit()
    assert rig.answers(EXIT, eid) == ["admit/ok"]
    assert rig.acked(eid) == 1
    record = rig.record(eid)
    assert (record.verdict.value, record.person_id, record.door_id) == ("admit", "P1", "dorm-exit")


def test_deny_reasons() -> None:
    rig = DoorRig()
    unknown = rig.card(LAB, "C0DEC0DE", direction="in")
    revoked = rig.card(LAB, REVOKED, direction="in")
    stranger = rig.card(GATE, STRANGER, celsius=36.5)
    rig.journal.commit()
    assert rig.answers(LAB, unknown) == ["deny/unknown_card"]
    assert rig.answers(LAB, revoked) == ["deny/card_revoked"]
    assert rig.answers(GATE, stranger) == ["deny/not_authorized"]
    assert [r.reason.value for r in rig.journal.records] == [
        "unknown_card",
        "card_revoked",
        "not_authorized",
    ]


def test_an_exit_lets_anyone_out() -> None:
    rig = DoorRig()
    eid = rig.card(EXIT, REVOKED)
    rig.journal.commit()
    assert rig.answers(EXIT, eid) == ["admit/ok"]


def test_zone_full_denies_the_second_person() -> None:
    rig = DoorRig()
    first = rig.card(LAB, RESIDENT, direction="in")
    second = rig.card(LAB, STRANGER, direction="in")
    rig.journal.commit()
    assert rig.answers(LAB, first) == ["admit/ok"]
    assert rig.answers(LAB, second) == ["deny/zone_full"]


def test_a_card_waits_for_its_reading_then_is_admitted_with_it() -> None:
    rig = DoorRig()
    eid = rig.card(GATE, RESIDENT)
    assert [d["decision"] for d in rig.broker.decisions(GATE)] == ["pending"]
    assert rig.desk.waiting == 1
    reading = rig.temperature(GATE, 36.6)
    assert rig.desk.waiting == 0
    rig.journal.commit()
    assert rig.answers(GATE, eid)[-1] == "admit/ok"
    assert rig.record(eid).celsius == 36.6
    assert rig.record(reading).detail == {"paired_event_id": eid}
    assert rig.acked(eid) == rig.acked(reading) == 1


def test_a_fever_reading_denies_sets_the_hold_and_alerts() -> None:
    rig = DoorRig()
    eid = rig.card(GATE, RESIDENT, celsius=38.4)
    rig.journal.commit()
    assert rig.answers(GATE, eid) == ["deny/fever"]
    (fever,) = rig.broker.alerts("fever")
    assert fever["door"] == "dorm-main"
    (health, set_by), *_ = rig.journal.health
    assert (health.person_id, set_by) == ("P1", "gateway")
    assert health.status is not HealthStatus.CLEAR
    assert rig.roster.index.health("P1") is not None  # applied before the store echoes it


def test_no_reading_within_the_window_denies() -> None:
    rig = DoorRig()
    eid = rig.card(GATE, RESIDENT)
    rig.desk.expire(time.monotonic() + WINDOW_S + 1)
    rig.journal.commit()
    assert rig.answers(GATE, eid) == ["pending/temperature_required", "deny/temperature_required"]


def test_an_unpaired_fever_reading_alerts_when_its_window_passes() -> None:
    rig = DoorRig()
    rig.temperature(GATE, 38.9)
    assert rig.broker.alerts("fever") == []
    rig.desk.expire(time.monotonic() + WINDOW_S + 1)
    rig.journal.commit()
    (fever,) = rig.broker.alerts("fever")
    assert fever["device"] is None


def test_a_repeat_in_flight_is_answered_with_its_original() -> None:
    rig = DoorRig()
    eid = rig.card(EXIT, RESIDENT)
    rig.card(EXIT, RESIDENT, event_id=eid)  # the device asks again before the commit
    rig.journal.commit()
    assert rig.answers(EXIT, eid) == ["admit/ok", "admit/ok"]
    assert rig.acked(eid) == 2
    assert len(rig.journal.records) == 1  # logged once
    assert rig.counters.duplicate == 1


def test_a_repeat_after_the_answer_gets_the_recorded_decision() -> None:
    rig = DoorRig()
    eid = rig.card(EXIT, RESIDENT)
    rig.journal.commit()
    rig.card(EXIT, RESIDENT, event_id=eid)
    assert rig.answers(EXIT, eid) == ["admit/ok", "admit/ok"]  # at once, no commit needed
    assert rig.acked(eid) == 2
    rig.journal.commit()
    assert len(rig.journal.records) == 1


def test_a_broker_redelivery_of_a_sent_answer_is_not_answered_again() -> None:
    rig = DoorRig()
    eid = rig.card(EXIT, RESIDENT)
    rig.journal.commit()
    rig.card(EXIT, RESIDENT, event_id=eid, dup=True)  # paho resends the first answer itself
    assert rig.answers(EXIT, eid) == ["admit/ok"]
    assert rig.acked(eid) == 2
    assert rig.counters.redelivered == 1


def test_a_redelivery_while_in_flight_is_acked_but_not_answered_twice() -> None:
    rig = DoorRig()
    eid = rig.card(EXIT, RESIDENT)
    rig.card(EXIT, RESIDENT, event_id=eid, dup=True)
    rig.journal.commit()
    assert rig.answers(EXIT, eid) == ["admit/ok"]
    assert rig.acked(eid) == 2


def test_a_late_decision_is_sent_late_and_unlocks_nothing() -> None:
    rig = DoorRig(late_after_s=0.0)
    eid = rig.card(EXIT, RESIDENT)
    time.sleep(0.001)
    rig.journal.commit()
    (sent,) = rig.broker.decisions(EXIT)
    assert sent["event_id"] == eid
    assert (sent["decision"], sent["late"], sent["unlock_ms"]) == ("admit", True, 0)
    assert rig.counters.late == 1


def test_a_refused_row_sends_no_decision_but_acks() -> None:
    rig = DoorRig()
    eid = rig.card(EXIT, RESIDENT)
    rig.journal.commit(refuse=rig.journal.open.records)
    assert rig.answers(EXIT, eid) == []
    assert rig.acked(eid) == 1
    rig.card(EXIT, RESIDENT, event_id=eid)  # remembered with no decision: acked, not answered
    assert rig.answers(EXIT, eid) == []


def test_a_door_event_alerts_and_is_logged() -> None:
    rig = DoorRig()
    eid = rig.event_id()
    rig.send(EXIT, {"event_id": eid, "type": "door", "state": "forced"})
    rig.journal.commit()
    assert [a["kind"] for a in rig.broker.alerts()] == ["door_forced"]
    assert rig.record(eid).detail == {"state": "forced"}
    assert rig.acked(eid) == 1


def test_a_rejected_payload_is_counted_and_acked() -> None:
    rig = DoorRig()
    message = rig.send(EXIT, {"event_id": "x", "type": "card"})  # no card_uid
    assert rig.acked(message) == 1
    assert rig.counters.received == 1
    assert rig.journal.open.records == []


def test_another_transport_gets_ack_and_reply_from_its_arrival() -> None:
    rig = DoorRig()
    arrival = rig.deliver(EXIT, RESIDENT, "s1-1")
    assert (arrival.acks, arrival.replies) == (0, [])
    rig.journal.commit()
    assert [d.verdict.value for d in arrival.replies] == ["admit"]
    assert arrival.acks == 1
    assert rig.broker.decisions(EXIT) == []  # nothing went to the broker
    again = rig.deliver(EXIT, RESIDENT, "s1-1")  # a repeat is answered by ingest
    assert [d.verdict.value for d in again.replies] == ["admit"] and again.acks == 1


def test_another_transport_waits_for_a_reading_like_any_terminal() -> None:
    rig = DoorRig()
    arrival = rig.deliver(GATE, RESIDENT, "s1-2")
    assert [d.verdict.value for d in arrival.replies] == ["pending"]
    rig.temperature(GATE, 36.5)
    rig.journal.commit()
    assert [d.verdict.value for d in arrival.replies] == ["pending", "admit"]


def test_the_camera_is_a_known_device() -> None:
    rig = DoorRig()
    rig.send(CAMERA, {"event_id": rig.event_id(), "type": "heartbeat"})
    assert rig.counters.unknown_device == 0


def test_a_serial_read_takes_the_same_path_and_never_reaches_the_broker() -> None:
    rig = DoorRig()
    pool = SerialReaders(
        roster=rig.roster, ingest=rig.ingest, devices=rig.devices, counters=rig.counters
    )
    reads: list[CardEvent] = []
    pool.on_card = reads.append
    pool.card(READER, RESIDENT)  # as its codec reports it; no reader runs, so no feedback line
    rig.journal.commit()
    (event,) = reads
    record = rig.record(event.event_id)
    assert (record.device_id, record.verdict.value, record.person_id) == (READER, "admit", "P1")
    assert rig.broker.published == [] and rig.broker.acked == []
