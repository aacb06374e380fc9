"""decide(): every reason, the order of checks, schedules, grants and temperatures."""

from __future__ import annotations

import struct
from datetime import UTC
from typing import NamedTuple

import pytest
from policy_campus import CAMPUS_TZ, MONDAY_NOON, local

from gateway.domain.alerts import AlertKind
from gateway.domain.decisions import MESSAGES, Decision, Reason, Verdict
from gateway.domain.events import Direction
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.roster import Door, DoorDirection
from gateway.policy import (
    decide,
    is_fever_reading,
    is_valid_reading,
    resolve_direction,
    to_decision,
)

A, D, P = Verdict.ADMIT, Verdict.DENY, Verdict.PENDING
IN, OUT = Direction.IN, Direction.OUT
OUTSIDER = AlertKind.OUTSIDER
FEVER_ALERT = AlertKind.FEVER

LI_HUA = "04A1B2C3D4"  # S1, class cs-2020-1
WANG = "0A0B0C0D"  # S2, math: a sibling of cs
REVOKED_ISOLATED = "55667788"  # S3, revoked card and in home isolation
ISOLATED = "99AABBCC"  # S4, home isolation until 2026-03-10 00:00
CARD_EXPIRED = "DEADBEEF"  # S5, card valid until 2026-03-05 00:00
PERSON_EXPIRED = "CAFEBABE"  # S6, person valid until 2026-03-05 00:00
RECOVERED = "12121212"  # S7
CLEAR = "13131313"  # S8
STAFF = "11223344"  # T1, staff in cs
STAFF_AT_UNI = "21222324"  # U1, staff in uni (above cs)
INACTIVE = "0A0B0C0E"  # V1
OFFICE_VISITOR = "31323334"  # W1, office from 03-03 to 03-05
LOOP = "41424344"  # L1, org unit in a parent cycle
ORPHAN = "51525354"  # O1, org unit not in the roster
GHOST = "0102030405"  # a card whose holder is not in the roster
UNKNOWN = "FFFFFFFF"


class Case(NamedTuple):
    door: str
    card: str
    verdict: Verdict
    reason: Reason
    alerts: tuple[AlertKind, ...] = ()
    celsius: float | None = None
    direction: Direction | None = None
    occupancy: int = 0
    window_open: bool = False
    at: str | None = None  # campus local time; default Monday noon


REASONS = {
    "admit-person-grant": Case("dorm-10-main", LI_HUA, A, Reason.OK, celsius=36.5),
    "admit-lowercase-uid": Case("dorm-10-main", LI_HUA.lower(), A, Reason.OK, celsius=36.5),
    "unknown-card": Case("lab-ai-door", UNKNOWN, D, Reason.UNKNOWN_CARD, (OUTSIDER,)),
    "card-of-unknown-holder": Case("lab-ai-door", GHOST, D, Reason.UNKNOWN_CARD, (OUTSIDER,)),
    "unknown-card-at-fever-is-unknown": Case(
        "dorm-10-main", UNKNOWN, D, Reason.UNKNOWN_CARD, (OUTSIDER, FEVER_ALERT), celsius=38.5
    ),
    "unknown-card-leaving": Case(
        "dorm-10-exit", UNKNOWN, D, Reason.UNKNOWN_CARD, (OUTSIDER,), celsius=38.5
    ),
    "revoked-card": Case(
        "dorm-10-main", REVOKED_ISOLATED, D, Reason.CARD_REVOKED, (AlertKind.CARD_REVOKED,)
    ),
    "inactive-person": Case(
        "dorm-10-main", INACTIVE, D, Reason.CARD_REVOKED, (AlertKind.CARD_REVOKED,)
    ),
    "card-expired": Case(
        "dorm-10-main",
        CARD_EXPIRED,
        D,
        Reason.CARD_REVOKED,
        (AlertKind.CARD_REVOKED,),
        at="2026-03-06 12:00",
    ),
    "person-expired": Case(
        "dorm-10-main",
        PERSON_EXPIRED,
        D,
        Reason.CARD_REVOKED,
        (AlertKind.CARD_REVOKED,),
        at="2026-03-06 12:00",
    ),
    "health-hold": Case(
        "dorm-10-main", ISOLATED, D, Reason.HEALTH_HOLD, (AlertKind.ISOLATION_BREACH,), 36.5
    ),
    "health-hold-without-grant-is-hold": Case(
        "office-door", ISOLATED, D, Reason.HEALTH_HOLD, (AlertKind.ISOLATION_BREACH,)
    ),
    # free egress: a held person may leave (go home), and the guards hear of it
    "health-hold-may-leave-dorm": Case(
        "dorm-10-exit", ISOLATED, A, Reason.OK, (AlertKind.ISOLATION_BREACH,)
    ),
    "health-hold-may-leave-without-grant": Case(
        "office-door", ISOLATED, A, Reason.OK, (AlertKind.ISOLATION_BREACH,), direction=OUT
    ),
    "health-hold-leaving-with-fever-reading": Case(
        "dorm-10-exit", ISOLATED, A, Reason.OK, (AlertKind.ISOLATION_BREACH,), celsius=39.0
    ),
    "health-hold-over-leaves-quietly": Case(
        "dorm-10-exit", ISOLATED, A, Reason.OK, at="2026-03-10 00:00"
    ),
    "health-hold-with-fever-alerts-both": Case(
        "dorm-10-main",
        ISOLATED,
        D,
        Reason.HEALTH_HOLD,
        (AlertKind.ISOLATION_BREACH, FEVER_ALERT),
        celsius=38.0,
    ),
    "recovered-admitted": Case("dorm-10-main", RECOVERED, A, Reason.OK, celsius=36.5),
    "clear-admitted": Case("dorm-10-main", CLEAR, A, Reason.OK, celsius=36.5),
    "not-authorized": Case(
        "lab-ai-door", WANG, D, Reason.NOT_AUTHORIZED, (AlertKind.UNAUTHORIZED,)
    ),
    "not-authorized-before-temperature": Case(
        "dorm-10-main", OFFICE_VISITOR, D, Reason.NOT_AUTHORIZED, (AlertKind.UNAUTHORIZED,)
    ),
    "temperature-required-pending": Case(
        "dorm-10-main", LI_HUA, P, Reason.TEMPERATURE_REQUIRED, window_open=True
    ),
    "temperature-required-final": Case("dorm-10-main", LI_HUA, D, Reason.TEMPERATURE_REQUIRED),
    "temperature-invalid-low": Case(
        "dorm-10-main",
        LI_HUA,
        D,
        Reason.TEMPERATURE_INVALID,
        (AlertKind.TEMPERATURE_INVALID,),
        33.99,
    ),
    "temperature-low-bound-ok": Case("dorm-10-main", LI_HUA, A, Reason.OK, celsius=34.0),
    "temperature-high-bound-valid-is-fever": Case(
        "dorm-10-main", LI_HUA, D, Reason.FEVER, (FEVER_ALERT,), celsius=43.0
    ),
    "temperature-invalid-high": Case(
        "dorm-10-main",
        LI_HUA,
        D,
        Reason.TEMPERATURE_INVALID,
        (AlertKind.TEMPERATURE_INVALID,),
        43.01,
    ),
    "temperature-invalid-nan": Case(
        "dorm-10-main",
        LI_HUA,
        D,
        Reason.TEMPERATURE_INVALID,
        (AlertKind.TEMPERATURE_INVALID,),
        float("nan"),
    ),
    "just-below-threshold": Case("dorm-10-main", LI_HUA, A, Reason.OK, celsius=37.29),
    "threshold-exactly-is-fever": Case(
        "dorm-10-main", LI_HUA, D, Reason.FEVER, (FEVER_ALERT,), celsius=37.3
    ),
    "float32-threshold-is-fever": Case(
        "dorm-10-main",
        LI_HUA,
        D,
        Reason.FEVER,
        (FEVER_ALERT,),
        celsius=struct.unpack("<f", struct.pack("<f", 37.3))[0],
    ),
    "reading-at-door-without-requirement-fever": Case(
        "lab-ai-door", LI_HUA, D, Reason.FEVER, (FEVER_ALERT,), celsius=38.2
    ),
    "reading-at-door-without-requirement-invalid": Case(
        "lab-ai-door", LI_HUA, D, Reason.TEMPERATURE_INVALID, (AlertKind.TEMPERATURE_INVALID,), 30.0
    ),
    "no-reading-at-door-without-requirement": Case("lab-ai-door", LI_HUA, A, Reason.OK),
    "below-capacity": Case("lab-ai-door", LI_HUA, A, Reason.OK, occupancy=19),
    "at-capacity-full": Case(
        "lab-ai-door", LI_HUA, D, Reason.ZONE_FULL, (AlertKind.ZONE_FULL,), occupancy=20
    ),
    "fever-before-zone-full": Case(
        "lab-ai-door", LI_HUA, D, Reason.FEVER, (FEVER_ALERT,), celsius=38.0, occupancy=20
    ),
    "invalid-before-fever-and-full": Case(
        "lab-ai-door",
        LI_HUA,
        D,
        Reason.TEMPERATURE_INVALID,
        (AlertKind.TEMPERATURE_INVALID,),
        celsius=45.0,
        occupancy=20,
    ),
    "out-skips-capacity": Case("lab-ai-door", LI_HUA, A, Reason.OK, direction=OUT, occupancy=20),
    "out-skips-fever": Case("dorm-10-exit", LI_HUA, A, Reason.OK, celsius=39.0),
    "out-skips-invalid": Case("lab-ai-door", LI_HUA, A, Reason.OK, celsius=20.0, direction=OUT),
    "out-at-temperature-door-needs-none": Case(
        "dorm-10-main", LI_HUA, A, Reason.OK, direction=OUT, window_open=True
    ),
    "out-needs-no-grant": Case("lab-ai-door", WANG, A, Reason.OK, direction=OUT),
    "out-with-expired-card": Case(
        "dorm-10-exit", CARD_EXPIRED, A, Reason.OK, at="2026-03-06 12:00"
    ),
    "out-person-expired": Case("dorm-10-exit", PERSON_EXPIRED, A, Reason.OK, at="2026-03-06 12:00"),
    "out-inactive-person": Case("dorm-10-exit", INACTIVE, A, Reason.OK),
    "out-revoked-card-held": Case(
        "dorm-10-exit", REVOKED_ISOLATED, A, Reason.OK, (AlertKind.ISOLATION_BREACH,)
    ),
    "out-full-zone-in-enforce-mode": Case(
        "lab-ai-door", WANG, A, Reason.OK, direction=OUT, occupancy=500
    ),
    "revoked-with-fever-alerts-fever-too": Case(
        "dorm-10-main",
        REVOKED_ISOLATED,
        D,
        Reason.CARD_REVOKED,
        (AlertKind.CARD_REVOKED, FEVER_ALERT),
        celsius=38.0,
    ),
}


@pytest.mark.parametrize("case", REASONS.values(), ids=REASONS.keys())
def test_reasons_and_order(decide_at, case: Case) -> None:
    now = MONDAY_NOON if case.at is None else local(case.at)
    outcome = decide_at(
        case.door,
        case.card,
        now,
        direction=case.direction,
        celsius=case.celsius,
        occupancy=case.occupancy,
        window_open=case.window_open,
    )
    assert (outcome.verdict, outcome.reason, outcome.alerts) == (
        case.verdict,
        case.reason,
        case.alerts,
    )
    expected_change = HealthStatus.FEVER_WATCH if case.reason is Reason.FEVER else None
    assert outcome.health_change is expected_change
    assert outcome.unlock_ms == (3000 if case.verdict is A else 0)


def test_outcome_carries_person_zone_and_reading(decide_at) -> None:
    outcome = decide_at("dorm-10-main", LI_HUA, celsius=36.4)
    assert outcome.person is not None and outcome.person.id == "S1"
    assert outcome.card is not None and outcome.card.uid == LI_HUA
    assert outcome.zone.id == "dorm-10"
    assert (outcome.direction, outcome.celsius) == (IN, 36.4)
    unknown = decide_at("dorm-10-main", UNKNOWN, celsius=36.4)
    assert (unknown.person, unknown.card, unknown.zone.id) == (None, None, "dorm-10")


# Schedules, with `now` in UTC and the campus in Asia/Shanghai (UTC+8): Sat 05:59 in
# Shanghai is still Friday 21:59 in UTC, so a missed conversion fails these rows.
SCHEDULES = {
    # S1: gym, "Fri 22:00-06:00"
    "fri-night-fri-21:59": ("gym-door", "2026-03-06 21:59", Reason.NOT_AUTHORIZED),
    "fri-night-fri-21:59:59": ("gym-door", "2026-03-06 21:59:59", Reason.NOT_AUTHORIZED),
    "fri-night-fri-22:00": ("gym-door", "2026-03-06 22:00", Reason.OK),
    "fri-night-sat-00:00": ("gym-door", "2026-03-07 00:00", Reason.OK),
    "fri-night-sat-05:59": ("gym-door", "2026-03-07 05:59", Reason.OK),
    "fri-night-sat-05:59:59": ("gym-door", "2026-03-07 05:59:59", Reason.OK),
    "fri-night-sat-06:00": ("gym-door", "2026-03-07 06:00", Reason.NOT_AUTHORIZED),
    "fri-night-sat-22:00": ("gym-door", "2026-03-07 22:00", Reason.NOT_AUTHORIZED),
    "fri-night-fri-05:00": ("gym-door", "2026-03-06 05:00", Reason.NOT_AUTHORIZED),
    # cs -> lab-ai, "Mon-Fri 07:00-23:00"
    "weekdays-sun-23:30": ("lab-ai-door", "2026-03-08 23:30", Reason.NOT_AUTHORIZED),
    "weekdays-mon-06:59": ("lab-ai-door", "2026-03-09 06:59", Reason.NOT_AUTHORIZED),
    "weekdays-mon-07:00": ("lab-ai-door", "2026-03-09 07:00", Reason.OK),
    "weekdays-fri-22:59": ("lab-ai-door", "2026-03-06 22:59", Reason.OK),
    "weekdays-fri-23:00": ("lab-ai-door", "2026-03-06 23:00", Reason.NOT_AUTHORIZED),
    "weekdays-sat-12:00": ("lab-ai-door", "2026-03-07 12:00", Reason.NOT_AUTHORIZED),
}


@pytest.mark.parametrize(("door", "at", "reason"), SCHEDULES.values(), ids=SCHEDULES.keys())
def test_schedule_edges_in_campus_time(decide_at, door: str, at: str, reason: Reason) -> None:
    now = local(at)
    assert now.tzinfo is UTC
    outcome = decide_at(door, LI_HUA, now)
    assert outcome.reason is reason
    assert outcome.verdict is (A if reason is Reason.OK else D)


def test_same_instant_judged_in_the_given_zone(decide_at) -> None:
    now = local("2026-03-06 22:00")  # Friday 14:00 UTC
    assert decide_at("gym-door", LI_HUA, now, tz=CAMPUS_TZ).reason is Reason.OK
    assert decide_at("gym-door", LI_HUA, now, tz=UTC).reason is Reason.NOT_AUTHORIZED


GRANTS = {
    "org-unit-two-levels-below": ("lab-ai-door", LI_HUA, MONDAY_NOON, Reason.OK),
    "org-unit-itself": ("lab-ai-door", STAFF, MONDAY_NOON, Reason.OK),
    "org-unit-sibling": ("lab-ai-door", WANG, MONDAY_NOON, Reason.NOT_AUTHORIZED),
    "org-unit-parent-not-covered": (
        "lab-ai-door",
        STAFF_AT_UNI,
        MONDAY_NOON,
        Reason.NOT_AUTHORIZED,
    ),
    "org-unit-cycle-terminates": ("annex-door", LOOP, MONDAY_NOON, Reason.OK),
    "org-unit-missing": ("lab-ai-door", ORPHAN, MONDAY_NOON, Reason.NOT_AUTHORIZED),
    "kind-staff": ("lab-ai-door", STAFF, MONDAY_NOON, Reason.OK),
    "kind-staff-dorm": ("dorm-10-exit", STAFF, MONDAY_NOON, Reason.OK),
    "kind-not-student": ("office-door", LI_HUA, MONDAY_NOON, Reason.NOT_AUTHORIZED),
    "kind-grant-before-valid-until": (
        "dorm-10-exit",
        STAFF,
        local("2027-01-30 23:59:59"),
        Reason.OK,
    ),
    "kind-grant-at-valid-until": (
        "dorm-10-exit",
        STAFF,
        local("2027-01-31 00:00"),
        Reason.NOT_AUTHORIZED,
    ),
    "person-grant-before-valid-from": (
        "office-door",
        OFFICE_VISITOR,
        local("2026-03-02 23:59:59"),
        Reason.NOT_AUTHORIZED,
    ),
    "person-grant-at-valid-from": (
        "office-door",
        OFFICE_VISITOR,
        local("2026-03-03 00:00"),
        Reason.OK,
    ),
    "person-grant-before-valid-until": (
        "office-door",
        OFFICE_VISITOR,
        local("2026-03-04 23:59:59"),
        Reason.OK,
    ),
    "person-grant-at-valid-until": (
        "office-door",
        OFFICE_VISITOR,
        local("2026-03-05 00:00"),
        Reason.NOT_AUTHORIZED,
    ),
    "person-grant-other-person": (
        "dorm-10-exit",
        OFFICE_VISITOR,
        MONDAY_NOON,
        Reason.NOT_AUTHORIZED,
    ),
}


@pytest.mark.parametrize(("door", "card", "now", "reason"), GRANTS.values(), ids=GRANTS.keys())
def test_grants(decide_at, door: str, card: str, now, reason: Reason) -> None:
    assert decide_at(door, card, now, direction=IN).reason is reason


VALIDITY = {
    "card-before-valid-until": (CARD_EXPIRED, "2026-03-04 23:59:59", Reason.OK),
    "card-at-valid-until": (CARD_EXPIRED, "2026-03-05 00:00", Reason.CARD_REVOKED),
    "person-before-valid-until": (PERSON_EXPIRED, "2026-03-04 23:59:59", Reason.OK),
    "person-at-valid-until": (PERSON_EXPIRED, "2026-03-05 00:00", Reason.CARD_REVOKED),
    "hold-before-until": (ISOLATED, "2026-03-09 23:59:59", Reason.HEALTH_HOLD),
    "hold-at-until-expired": (ISOLATED, "2026-03-10 00:00", Reason.OK),
    "hold-without-until-stays": (REVOKED_ISOLATED, "2030-01-01 00:00", Reason.CARD_REVOKED),
}


@pytest.mark.parametrize(("card", "at", "reason"), VALIDITY.values(), ids=VALIDITY.keys())
def test_validity_and_hold_expiry(decide_at, card: str, at: str, reason: Reason) -> None:
    assert decide_at("dorm-10-exit", card, local(at), direction=IN).reason is reason


HOLDING = [s for s in HealthStatus if s not in (HealthStatus.CLEAR, HealthStatus.RECOVERED)]


@pytest.mark.parametrize("status", list(HealthStatus), ids=[s.value for s in HealthStatus])
def test_every_health_status(decide_at, index, status: HealthStatus) -> None:
    roster = index.with_health(HealthRecord("S1", status, local("2026-03-01 00:00")))
    outcome = decide_at("dorm-10-main", LI_HUA, celsius=36.5, roster=roster)
    expected = Reason.HEALTH_HOLD if status in HOLDING else Reason.OK
    assert outcome.reason is expected


@pytest.mark.parametrize("status", list(HealthStatus), ids=[s.value for s in HealthStatus])
def test_every_health_status_may_leave(decide_at, index, status: HealthStatus) -> None:
    """Free egress: anyone leaves; a held person leaving is an isolation breach, admitted."""
    roster = index.with_health(HealthRecord("S1", status, local("2026-03-01 00:00")))
    outcome = decide_at("dorm-10-exit", LI_HUA, roster=roster)
    assert (outcome.verdict, outcome.reason, outcome.unlock_ms) == (A, Reason.OK, 3000)
    expected = (AlertKind.ISOLATION_BREACH,) if status in HOLDING else ()
    assert outcome.alerts == expected
    assert outcome.health_change is None


def test_fever_then_hold_on_next_card(decide_at, index) -> None:
    fever = decide_at("dorm-10-main", LI_HUA, celsius=38.1)
    assert (fever.reason, fever.health_change) == (Reason.FEVER, HealthStatus.FEVER_WATCH)
    assert fever.person is not None
    held = index.with_health(HealthRecord(fever.person.id, fever.health_change, MONDAY_NOON))
    again = decide_at("lab-ai-door", LI_HUA, roster=held)
    assert again.reason is Reason.HEALTH_HOLD
    assert decide_at("lab-ai-door", LI_HUA).reason is Reason.OK  # the old index is unchanged


DIRECTIONS = {
    "in-door-default": (DoorDirection.IN, None, IN),
    "out-door-default": (DoorDirection.OUT, None, OUT),
    "both-door-default-in": (DoorDirection.BOTH, None, IN),
    "event-out-at-in-door": (DoorDirection.IN, OUT, OUT),
    "event-in-at-out-door": (DoorDirection.OUT, IN, IN),
    "event-out-at-both-door": (DoorDirection.BOTH, OUT, OUT),
}


@pytest.mark.parametrize(
    ("door_dir", "event_dir", "expected"), DIRECTIONS.values(), ids=DIRECTIONS.keys()
)
def test_resolve_direction(door_dir, event_dir, expected) -> None:
    assert resolve_direction(event_dir, Door("d", "z", door_dir)) is expected


def test_to_decision_admit(decide_at) -> None:
    decision = to_decision("e-1", decide_at("dorm-10-main", LI_HUA, celsius=36.5))
    assert decision == Decision("e-1", A, Reason.OK, "Welcome, Li Hua", 3000)
    assert decision.to_wire() == {
        "type": "decision",
        "event_id": "e-1",
        "decision": "admit",
        "reason": "ok",
        "message": "Welcome, Li Hua",
        "unlock_ms": 3000,
        "late": False,
    }


@pytest.mark.parametrize(
    ("card", "celsius", "reason"),
    [
        (ISOLATED, None, Reason.HEALTH_HOLD),
        (LI_HUA, 38.0, Reason.FEVER),
        (LI_HUA, None, Reason.TEMPERATURE_REQUIRED),
    ],
    ids=["health-hold", "fever", "pending"],
)
def test_messages_carry_no_health_detail(decide_at, card, celsius, reason) -> None:
    outcome = decide_at("dorm-10-main", card, celsius=celsius, window_open=True)
    decision = to_decision("e-2", outcome)
    assert decision.reason is reason
    assert decision.message == MESSAGES[reason]
    assert decision.unlock_ms == 0
    for word in ("fever", "isolation", "health", "37", "38"):
        assert word not in decision.message.lower()


def test_naive_now_is_refused(index) -> None:
    door = index.door("lab-ai-door")
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(
            index,
            door=door,
            card_uid=LI_HUA,
            direction=IN,
            now=MONDAY_NOON.replace(tzinfo=None),
            tz=CAMPUS_TZ,
            celsius=None,
            fever_threshold_c=37.3,
            occupancy=0,
            temperature_window_open=False,
        )


READINGS = {
    "below-range": (33.99, False, False),
    "low-bound": (34.0, True, False),
    "below-threshold": (37.29, True, False),
    "threshold": (37.3, True, True),
    "float32-threshold": (struct.unpack("<f", struct.pack("<f", 37.3))[0], True, True),
    "high-bound": (43.0, True, True),
    "above-range": (43.01, False, True),
    "nan": (float("nan"), False, False),
    "inf": (float("inf"), False, True),
}


@pytest.mark.parametrize(("celsius", "valid", "fever"), READINGS.values(), ids=READINGS.keys())
def test_reading_helpers(celsius: float, valid: bool, fever: bool) -> None:
    assert (is_valid_reading(celsius), is_fever_reading(celsius, 37.3)) == (valid, fever)
