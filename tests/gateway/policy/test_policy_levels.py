"""Zone rules in decide(): capacity mode, and each response-level rule in contract order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from policy_campus import MONDAY_NOON, campus_roster, local

from gateway.domain.alerts import AlertKind
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction
from gateway.domain.levels import (
    ActiveLevels,
    LevelRules,
    ResponseLevel,
    ZoneRules,
    scaled_capacity,
    zone_rules,
)
from gateway.domain.presence import presence_horizon
from gateway.domain.roster import CapacityMode, Grant, GrantSubject, Zone, ZoneKind
from gateway.policy import Occupancy, RosterIndex

A, D, P = Verdict.ADMIT, Verdict.DENY, Verdict.PENDING
IN, OUT = Direction.IN, Direction.OUT

LI_HUA = "04A1B2C3D4"  # S1, cs: lab-ai by org unit; here also named in a lab grant
SUN_CLEAR = "13131313"  # S8, cs: lab-ai by org unit only
STAFF = "11223344"  # T1: dorm-10 by kind
VISITOR = "31323334"  # W1, visitor: office by a person grant, 2026-03-03..05
TUESDAY_NOON = local("2026-03-03 12:00")

# The shipped definitions (migration 0011).
LEVELS = (
    ResponseLevel("normal"),
    ResponseLevel("elevated", LevelRules(require_temperature=True, capacity_factor=0.75), 1),
    ResponseLevel(
        "lockdown",
        LevelRules(
            bar_visitors=True,
            require_temperature=True,
            capacity_factor=0.5,
            labs_named_only=True,
        ),
        2,
    ),
    ResponseLevel("visitors-only", LevelRules(bar_visitors=True), 3),
)
BY_NAME = {level.name: level for level in LEVELS}


@pytest.fixture(scope="module")
def roster() -> RosterIndex:
    base = campus_roster()
    grants = (*base.grants, Grant(GrantSubject(person_id="S1"), "lab-ai"))
    zones = (
        *base.zones,
        Zone("hall", "Hall", ZoneKind.TEACHING, capacity=3, capacity_mode=CapacityMode.ALERT),
    )
    doors = (*base.doors, replace(base.doors[-1], id="hall-door", zone_id="hall"))
    grants = (*grants, Grant(GrantSubject(kind=base.people[0].kind), "hall"))
    return RosterIndex.build(replace(base, grants=grants, zones=zones, doors=doors, levels=LEVELS))


CASES = {
    # name: (campus level, zone levels, door, card, now, direction, celsius, occupancy, window,
    #        verdict, reason)
    "normal-visitor-admitted": (
        None,
        {},
        "office-door",
        VISITOR,
        TUESDAY_NOON,
        IN,
        None,
        0,
        False,
        A,
        Reason.OK,
    ),
    "normal-level-visitor-admitted": (
        "normal",
        {},
        "office-door",
        VISITOR,
        TUESDAY_NOON,
        IN,
        None,
        0,
        False,
        A,
        Reason.OK,
    ),
    "lockdown-visitor-barred": (
        "lockdown",
        {},
        "office-door",
        VISITOR,
        TUESDAY_NOON,
        IN,
        None,
        0,
        False,
        D,
        Reason.NOT_AUTHORIZED,
    ),
    "zone-level-bars-visitor": (
        None,
        {"office": "visitors-only"},
        "office-door",
        VISITOR,
        TUESDAY_NOON,
        IN,
        None,
        0,
        False,
        D,
        Reason.NOT_AUTHORIZED,
    ),
    "other-zone-level-leaves-office": (
        None,
        {"gym": "lockdown"},
        "office-door",
        VISITOR,
        TUESDAY_NOON,
        IN,
        None,
        0,
        False,
        A,
        Reason.OK,
    ),
    # a lockdown gets visitors out; it does not lock them in
    "barred-visitor-may-leave": (
        "lockdown",
        {},
        "office-door",
        VISITOR,
        TUESDAY_NOON,
        OUT,
        None,
        0,
        False,
        A,
        Reason.OK,
    ),
    # temperature at every door: lab-ai-door does not require one itself
    "normal-lab-no-reading": (
        "normal",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        None,
        0,
        True,
        A,
        Reason.OK,
    ),
    "elevated-lab-pending": (
        "elevated",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        None,
        0,
        True,
        P,
        Reason.TEMPERATURE_REQUIRED,
    ),
    "elevated-lab-window-passed": (
        "elevated",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        None,
        0,
        False,
        D,
        Reason.TEMPERATURE_REQUIRED,
    ),
    "elevated-lab-reading-ok": (
        "elevated",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        36.6,
        0,
        False,
        A,
        Reason.OK,
    ),
    "elevated-lab-fever": (
        "elevated",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        38.0,
        0,
        False,
        D,
        Reason.FEVER,
    ),
    "elevated-lab-leaving-needs-none": (
        "elevated",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        OUT,
        None,
        0,
        False,
        A,
        Reason.OK,
    ),
    # capacities scaled: lab-ai 20 -> 15 (elevated) -> 10 (lockdown)
    "normal-lab-19-ok": (
        "normal",
        {},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        36.6,
        19,
        False,
        A,
        Reason.OK,
    ),
    "normal-lab-20-full": (
        "normal",
        {},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        36.6,
        20,
        False,
        D,
        Reason.ZONE_FULL,
    ),
    "elevated-lab-14-ok": (
        "elevated",
        {},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        36.6,
        14,
        False,
        A,
        Reason.OK,
    ),
    "elevated-lab-15-full": (
        "elevated",
        {},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        36.6,
        15,
        False,
        D,
        Reason.ZONE_FULL,
    ),
    "lockdown-lab-10-full": (
        "lockdown",
        {},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        36.6,
        10,
        False,
        D,
        Reason.ZONE_FULL,
    ),
    "full-but-fever-is-fever": (
        "lockdown",
        {},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        38.5,
        10,
        False,
        D,
        Reason.FEVER,
    ),
    "leaving-a-full-lab": (
        "lockdown",
        {},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        OUT,
        None,
        99,
        False,
        A,
        Reason.OK,
    ),
    # labs only for people named in a grant
    "lockdown-lab-org-grant-refused": (
        "lockdown",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        36.6,
        0,
        False,
        D,
        Reason.NOT_AUTHORIZED,
    ),
    "lockdown-lab-org-grant-may-leave": (
        "lockdown",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        OUT,
        None,
        0,
        False,
        A,
        Reason.OK,
    ),
    "lockdown-lab-named-admitted": (
        "lockdown",
        {},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        36.6,
        0,
        False,
        A,
        Reason.OK,
    ),
    "named-grant-without-schedule-on-saturday": (
        "lockdown",
        {},
        "lab-ai-door",
        LI_HUA,
        local("2026-03-07 12:00"),
        IN,
        36.6,
        0,
        False,
        A,
        Reason.OK,
    ),
    "not-a-lab-kind-grant-counts": (
        "lockdown",
        {},
        "dorm-10-main",
        STAFF,
        MONDAY_NOON,
        IN,
        36.6,
        0,
        False,
        A,
        Reason.OK,
    ),
    "refused-before-temperature": (
        "lockdown",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        None,
        0,
        True,
        D,
        Reason.NOT_AUTHORIZED,
    ),
    # a zone level tightens the campus level and never loosens it
    "zone-lockdown-under-elevated": (
        "elevated",
        {"lab-ai": "lockdown"},
        "lab-ai-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        36.6,
        10,
        False,
        D,
        Reason.ZONE_FULL,
    ),
    "zone-normal-under-lockdown": (
        "lockdown",
        {"lab-ai": "normal"},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        36.6,
        0,
        False,
        D,
        Reason.NOT_AUTHORIZED,
    ),
    "unknown-level-ignored": (
        "nonexistent",
        {},
        "lab-ai-door",
        SUN_CLEAR,
        MONDAY_NOON,
        IN,
        None,
        0,
        True,
        A,
        Reason.OK,
    ),
    # capacity mode alert: admit at and above capacity
    "alert-mode-below": (
        None,
        {},
        "hall-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        None,
        2,
        False,
        A,
        Reason.OK,
    ),
    "alert-mode-at-capacity-admits": (
        None,
        {},
        "hall-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        None,
        3,
        False,
        A,
        Reason.OK,
    ),
    "alert-mode-scaled": (
        "lockdown",
        {},
        "hall-door",
        LI_HUA,
        MONDAY_NOON,
        IN,
        36.6,
        9,
        False,
        A,
        Reason.OK,
    ),
}


@pytest.mark.parametrize(
    (
        "campus",
        "zones",
        "door",
        "card",
        "now",
        "direction",
        "celsius",
        "occupancy",
        "window",
        "verdict",
        "reason",
    ),
    CASES.values(),
    ids=CASES.keys(),
)
def test_level_rules(
    decide_at,
    roster,
    campus,
    zones,
    door,
    card,
    now,
    direction,
    celsius,
    occupancy,
    window,
    verdict,
    reason,
):
    index = roster.with_levels(LEVELS, ActiveLevels(campus, zones))
    outcome = decide_at(
        door,
        card,
        now,
        direction=direction,
        celsius=celsius,
        occupancy=occupancy,
        window_open=window,
        roster=index,
    )
    assert (outcome.verdict, outcome.reason) == (verdict, reason)


ZONE_FULL_ALERTS = {
    # door, occupancy, expected alerts
    "alert-mode-below-capacity": ("hall-door", 2, ()),
    "alert-mode-at-capacity": ("hall-door", 3, (AlertKind.ZONE_FULL,)),
    "alert-mode-above-capacity": ("hall-door", 7, (AlertKind.ZONE_FULL,)),
    "enforce-mode-denial": ("lab-ai-door", 20, (AlertKind.ZONE_FULL,)),
}


@pytest.mark.parametrize(
    ("door", "occupancy", "alerts"), ZONE_FULL_ALERTS.values(), ids=ZONE_FULL_ALERTS.keys()
)
def test_zone_full_alerts(decide_at, roster, door, occupancy, alerts) -> None:
    outcome = decide_at(door, LI_HUA, occupancy=occupancy, roster=roster)
    assert outcome.alerts == alerts


def test_alert_mode_leaving_raises_nothing(decide_at, roster) -> None:
    outcome = decide_at("hall-door", LI_HUA, direction=OUT, occupancy=9, roster=roster)
    assert (outcome.verdict, outcome.alerts) == (A, ())


def test_explicit_rules_override_the_index(decide_at, roster) -> None:
    from gateway.policy import decide

    door = roster.door("office-door")
    outcome = decide(
        roster,
        door=door,
        card_uid=VISITOR,
        direction=IN,
        now=TUESDAY_NOON,
        tz=UTC,
        celsius=None,
        fever_threshold_c=37.3,
        occupancy=0,
        temperature_window_open=False,
        rules=ZoneRules(bar_visitors=True),
    )
    assert outcome.reason is Reason.NOT_AUTHORIZED


def test_levels_reload_keeps_health_and_health_reload_keeps_levels(roster) -> None:
    locked = roster.with_levels(LEVELS, ActiveLevels("lockdown"))
    assert locked.zone_rules("lab-ai").labs_named_only
    assert locked.health("S4") is roster.health("S4")
    again = locked.replace_health([])
    assert again.health("S4") is None and again.zone_rules("lab-ai").labs_named_only
    assert roster.zone_rules("lab-ai") == ZoneRules(capacity=20)


@pytest.mark.parametrize(
    ("capacity", "factor", "expected"),
    [
        (None, 0.5, None),
        (20, 0.7, 14),
        (7, 0.5, 3),
        (800, 0.75, 600),
        (1, 0.5, 0),
        (5, 1.0, 5),
        (3, 0.333, 0),
    ],
)
def test_scaled_capacity_floors_exactly(capacity, factor, expected) -> None:
    assert scaled_capacity(capacity, factor) == expected


def test_zone_rules_only_labs_get_labs_named_only() -> None:
    lab = Zone("l", "L", ZoneKind.LAB, 10)
    office = Zone("o", "O", ZoneKind.OFFICE, 10, CapacityMode.ALERT)
    active = ActiveLevels("lockdown")
    assert zone_rules(lab, BY_NAME, active) == ZoneRules(
        5, CapacityMode.ENFORCE, True, True, True, ("lockdown",)
    )
    assert zone_rules(office, BY_NAME, active) == ZoneRules(
        5, CapacityMode.ALERT, True, True, False, ("lockdown",)
    )
    both = ActiveLevels("elevated", {"o": "visitors-only"})
    assert zone_rules(office, BY_NAME, both).levels == ("elevated", "visitors-only")
    assert zone_rules(office, BY_NAME, both).bar_visitors


def test_presence_horizon_by_zone_kind() -> None:
    assert presence_horizon(ZoneKind.DORMITORY, 12) == timedelta(hours=72)
    assert presence_horizon(ZoneKind.LAB, 12) == timedelta(hours=12)
    assert presence_horizon(ZoneKind.DORMITORY, 100) == timedelta(hours=100)


T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def test_occupancy_counts_people_not_passages() -> None:
    occupancy = Occupancy()
    assert occupancy.passed("lab", IN, "S1", T0) == 1
    assert occupancy.passed("lab", IN, "S1", T0 + timedelta(minutes=1)) == 1  # missed exit
    assert occupancy.passed("lab", OUT, "S2", T0) == 1  # never seen entering
    assert occupancy.passed("lab", IN, "S2", T0 + timedelta(minutes=2)) == 2
    assert occupancy.passed("lab", OUT, "S1", T0 + timedelta(minutes=3)) == 1
    assert occupancy.snapshot() == {"lab": 1}


def test_occupancy_expires_entries_past_the_horizon() -> None:
    occupancy = Occupancy()
    occupancy.enter_all(
        [("lab", "S1", T0), ("lab", "S2", T0 + timedelta(hours=5)), ("dorm", "S3", T0)]
    )
    occupancy.passed("lab", IN, "S1", T0 + timedelta(hours=6))  # re-entry renews S1
    horizons = {"lab": timedelta(hours=12), "dorm": timedelta(hours=72)}
    assert occupancy.expire(T0 + timedelta(hours=13), horizons.__getitem__) == 0
    assert occupancy.expire(T0 + timedelta(hours=17, minutes=1), horizons.__getitem__) == 1
    assert (occupancy.count("lab"), occupancy.count("dorm")) == (1, 1)
    assert occupancy.expire(T0 + timedelta(hours=73), horizons.__getitem__) == 2
    assert occupancy.snapshot() == {"lab": 0, "dorm": 0}


def test_an_org_units_grant_does_not_open_its_zone_to_a_visitor_filed_in_it() -> None:
    """A host's guest is filed in the host's unit; the unit's grants are for its members."""
    from gateway.domain.roster import Person, PersonKind

    base = campus_roster()
    guest = Person("visitor-pass-1", PersonKind.VISITOR, "Guest", "cs")
    unit_grant = Grant(GrantSubject(org_unit_id="cs"), "annex")
    visitors = Grant(GrantSubject(kind=PersonKind.VISITOR), "annex")
    member = next(p for p in base.people if p.id == "S1")  # in a unit under cs

    def index(*grants: Grant) -> RosterIndex:
        return RosterIndex.build(replace(base, people=(*base.people, guest), grants=grants))

    assert list(index(unit_grant).candidate_grants(member, "annex")) == [unit_grant]
    assert list(index(unit_grant).candidate_grants(guest, "annex")) == []
    assert list(index(unit_grant, visitors).candidate_grants(guest, "annex")) == [visitors]
