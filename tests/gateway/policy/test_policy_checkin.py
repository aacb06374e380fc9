"""The check-in rule (issue #15): checkin_required, right after health_hold, judged on the
campus day; levels combine their check-in zones; offline lists leave the rule out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.campus import CampusRoster
from gateway.domain.checkin import CheckInInvalid, Symptom, campus_day, check_in
from gateway.domain.decisions import MESSAGES, Reason, Verdict
from gateway.domain.events import Direction
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.levels import ActiveLevels, LevelRules, ResponseLevel
from gateway.domain.roster import (
    Card,
    Door,
    Grant,
    GrantSubject,
    Person,
    PersonKind,
    Zone,
    ZoneKind,
)
from gateway.policy import decide
from gateway.policy.allowlist_compile import compile_zones
from gateway.policy.roster_index import RosterIndex

TZ = ZoneInfo("Asia/Shanghai")
# 2026-03-02 00:30 campus time is still 2026-03-01 in UTC: the campus day must win.
JUST_AFTER_MIDNIGHT = datetime(2026, 3, 2, 0, 30, tzinfo=TZ).astimezone(UTC)
TODAY = date(2026, 3, 2)
DORM, LAB = Door("dorm-main", "dorm"), Door("lab-door", "lab")
LEVELS = (
    ResponseLevel("checkin", LevelRules(checkin_zones=frozenset({"dorm"}))),
    ResponseLevel("labs", LevelRules(checkin_zones=frozenset({"lab"}))),
)


def _index(**active: object) -> RosterIndex:
    roster = CampusRoster(
        zones=(Zone("dorm", "Dorm", ZoneKind.DORMITORY), Zone("lab", "Lab", ZoneKind.LAB)),
        doors=(DORM, LAB),
        people=(
            Person("S1", PersonKind.STUDENT, "Li Hua"),
            Person("S2", PersonKind.STUDENT, "Held"),
            Person("S3", PersonKind.STUDENT, "No grant"),
        ),
        cards=(Card("A1", "S1"), Card("A2", "S2"), Card("A3", "S3")),
        grants=(
            Grant(GrantSubject(person_id="S1"), "dorm"),
            Grant(GrantSubject(person_id="S2"), "dorm"),
            Grant(GrantSubject(person_id="S1"), "lab"),
        ),
        health=(HealthRecord("S2", HealthStatus.FEVER_WATCH, JUST_AFTER_MIDNIGHT),),
        levels=LEVELS,
        active_levels=ActiveLevels(**active),  # type: ignore[arg-type]
    )
    return RosterIndex.build(roster)


def _decide(index: RosterIndex, card: str, door: Door = DORM, **kw: object) -> tuple:
    outcome = decide(
        index,
        door=door,
        card_uid=card,
        direction=kw.pop("direction", Direction.IN),  # type: ignore[arg-type]
        now=kw.pop("now", JUST_AFTER_MIDNIGHT),  # type: ignore[arg-type]
        tz=TZ,
        celsius=36.5,
        fever_threshold_c=37.3,
        occupancy=0,
        temperature_window_open=False,
    )
    return outcome.verdict, outcome.reason


def test_no_level_no_rule() -> None:
    assert _decide(_index(), "A1") == (Verdict.ADMIT, Reason.OK)


def test_a_level_requiring_checkin_denies_until_today_is_known() -> None:
    index = _index(campus="checkin")
    assert _decide(index, "A1") == (Verdict.DENY, Reason.CHECKIN_REQUIRED)
    yesterday = index.with_checkins([("S1", TODAY - timedelta(days=1))])
    assert _decide(yesterday, "A1") == (Verdict.DENY, Reason.CHECKIN_REQUIRED)
    today = yesterday.with_checkins([("S1", TODAY)])
    assert _decide(today, "A1") == (Verdict.ADMIT, Reason.OK)
    assert _decide(index, "A1") == (Verdict.DENY, Reason.CHECKIN_REQUIRED)  # unchanged
    # A late, older notification does not undo today's.
    assert _decide(today.with_checkins([("S1", TODAY - timedelta(days=2))]), "A1")[0] is (
        Verdict.ADMIT
    )
    # The next campus day asks again.
    tomorrow = JUST_AFTER_MIDNIGHT + timedelta(days=1)
    assert _decide(today, "A1", now=tomorrow) == (Verdict.DENY, Reason.CHECKIN_REQUIRED)


def test_only_the_chosen_zones_ask() -> None:
    index = _index(campus="checkin")
    assert _decide(index, "A1", LAB) == (Verdict.ADMIT, Reason.OK)
    both = _index(campus="checkin", zones={"lab": "labs"})
    assert _decide(both, "A1", LAB) == (Verdict.DENY, Reason.CHECKIN_REQUIRED)


def test_order_health_hold_then_checkin_required_then_not_authorized() -> None:
    index = _index(campus="checkin")
    assert _decide(index, "A2") == (Verdict.DENY, Reason.HEALTH_HOLD)
    assert _decide(index, "A3") == (Verdict.DENY, Reason.CHECKIN_REQUIRED)
    assert _decide(index.with_checkins([("S3", TODAY)]), "A3") == (
        Verdict.DENY,
        Reason.NOT_AUTHORIZED,
    )
    assert _decide(index, "FF") == (Verdict.DENY, Reason.UNKNOWN_CARD)
    order = list(Reason)
    assert order.index(Reason.CHECKIN_REQUIRED) == order.index(Reason.HEALTH_HOLD) + 1


def test_leaving_never_asks_for_a_checkin() -> None:
    index = _index(campus="checkin")
    assert _decide(index, "A1", direction=Direction.OUT) == (Verdict.ADMIT, Reason.OK)


def test_the_terminal_is_told_to_check_in_on_the_phone() -> None:
    assert "check-in on your phone" in MESSAGES[Reason.CHECKIN_REQUIRED]


def test_offline_lists_do_not_carry_the_rule() -> None:
    """Documented decision: a terminal cut off cannot learn of a check-in made on the
    phone, so its list admits by grants as before (health holds still leave people out)."""
    index = _index(campus="checkin")
    start = JUST_AFTER_MIDNIGHT
    lists = compile_zones(index, ["dorm"], start=start, end=start + timedelta(hours=1), tz=TZ)
    assert set(lists["dorm"]) == {"A1"}  # S2 held: unlisted; S1 listed without a check-in


def test_campus_day_is_the_local_date() -> None:
    assert campus_day(JUST_AFTER_MIDNIGHT, TZ) == TODAY
    with pytest.raises(ValueError):
        campus_day(datetime(2026, 3, 2), TZ)


def test_check_in_validation() -> None:
    good = check_in(
        location="on_campus", dormitory=" D10 ", temperature_c=36.55, symptoms=["cough", "cough"]
    )
    assert good.dormitory == "D10" and good.symptoms == (Symptom.COUGH,)
    assert good.needs_fever_watch(37.3) and not good.has_fever(37.3)
    assert check_in(location="off_campus", city="Wuhan", temperature_c=37.3).has_fever(37.3)
    for kwargs, field in [
        ({"temperature_c": float("nan")}, "temperature_c"),
        ({"temperature_c": True}, "temperature_c"),
        ({"symptoms": ["sneeze"]}, "symptoms"),
        ({"dormitory": "   "}, "dormitory"),
        ({"travel_plans": "a\x00b"}, "travel_plans"),
    ]:
        args = {"location": "on_campus", "dormitory": "D10", "temperature_c": 36.5} | kwargs
        with pytest.raises(CheckInInvalid) as caught:
            check_in(**args)  # type: ignore[arg-type]
        assert caught.value.field == field


def test_visitors_are_governed_by_their_pass_not_the_checkin() -> None:
    """A pass visitor has no account to check in with: a check-in zone asks students and
    staff only; the visitor is still bound by the pass's grant window."""
    end = JUST_AFTER_MIDNIGHT + timedelta(hours=2)
    roster = CampusRoster(
        zones=(Zone("dorm", "Dorm", ZoneKind.DORMITORY),),
        doors=(DORM,),
        people=(
            Person("V1", PersonKind.VISITOR, "Zhao", valid_until=end),
            Person("T1", PersonKind.STAFF, "Chen"),
        ),
        cards=(Card("B1", "V1"), Card("B2", "T1")),
        grants=(
            Grant(GrantSubject(person_id="V1"), "dorm", None, JUST_AFTER_MIDNIGHT, end),
            Grant(GrantSubject(person_id="T1"), "dorm"),
        ),
        levels=LEVELS,
        active_levels=ActiveLevels(campus="checkin"),
    )
    index = RosterIndex.build(roster)
    assert _decide(index, "B1") == (Verdict.ADMIT, Reason.OK)
    assert _decide(index, "B2") == (Verdict.DENY, Reason.CHECKIN_REQUIRED)
    assert _decide(index, "B1", now=end) == (Verdict.DENY, Reason.CARD_REVOKED)
    assert _decide(index, "B1", now=end, direction=Direction.OUT) == (Verdict.ADMIT, Reason.OK)
