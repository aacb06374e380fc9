"""The numbers and lists of a daily report, from one campus day's facts.

A day is a campus-local day (CAMPUSGATE_TIMEZONE). The facts of a day are read once
(`load_day`: a handful of aggregating queries) and every (org unit, audience) report is
a roll-up of them over the unit's subtree, so all reports of a day cost one scan of the
access log.

Definitions (also in the report's footnotes):
- people: active people of the audience's kind in the unit and below (roster as now);
- present: people with at least one admitted passage that day;
- absent: active people with none;
- screenings: card decisions that carried a temperature reading;
- fevers: people with a `fever` decision that day;
- health: active people per status at the cut-off (end of day, or now for today);
- new isolations: changes that day into home_isolation, close_contact, suspected or
  confirmed from any other status;
- denied: denied card attempts by reason of people in the unit;
- outsiders blocked: `unknown_card` denials, campus-wide in every report (a card no
  person holds belongs to no unit);
- admitted passages: admitted card decisions as logged (each swipe in and each swipe out
  is one), by the kind of the zone logged with them and direction;
- never screened: people present (an admitted passage, any door) with no card decision
  that day carrying a temperature reading (a reading paired at a temperature door, or
  measured by the terminal itself); listed with their first passage of the day;
- visitors refused: denied card decisions of registered visitors (kind `visitor`) at
  doors of dormitories and labs. A unit's report counts the visitors it hosts (the
  visitor's org unit and below), the campus report all of them; both audiences' reports
  show them, beside the outsiders blocked.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from gateway.domain.health import HealthStatus
from gateway.domain.reports import (
    GUARDED_ZONE_KINDS,
    ZONE_KINDS,
    Audience,
    FeverReading,
    PersonDay,
    StatusChange,
    TrendPoint,
    VisitorRefusal,
)
from gateway.domain.roster import OrgUnit
from gateway.services.errors import NotFoundError, OutOfRangeError
from gateway.store import reports as store
from gateway.store.checkins import checkins_of_day

TREND_DAYS = 7
# The contract's default; the report service passes the campus's own threshold.
DEFAULT_FEVER_THRESHOLD_C = 37.3
EARLIEST_DAY = date(1970, 1, 1)


class UnknownOrgUnitError(NotFoundError, ValueError):
    """An org unit id that is not in the roster."""


def day_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a campus-local day, as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


class UnitTree:
    """The org-unit tree: names, subtrees, and which units get a scheduled report."""

    def __init__(self, units: Iterable[OrgUnit]) -> None:
        self.units = {u.id: u for u in units}
        self._children: dict[str | None, list[str]] = defaultdict(list)
        for unit in self.units.values():
            parent = unit.parent_id if unit.parent_id in self.units else None
            self._children[parent].append(unit.id)
        for ids in self._children.values():
            ids.sort()

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self.units

    def name(self, unit_id: str) -> str:
        return self.units[unit_id].name

    def subtree(self, unit_id: str) -> set[str]:
        found, todo = set(), [unit_id]
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(self._children.get(current, ()))
        return found

    def top_level(self) -> list[str]:
        """The colleges: the roots, or the children of the root when there is only one
        (a university above its colleges and offices)."""
        roots = self._children.get(None, [])
        if len(roots) == 1 and self._children.get(roots[0]):
            return list(self._children[roots[0]])
        return list(roots)


@dataclass(frozen=True, slots=True)
class DayFacts:
    day: date
    timezone: str
    start: datetime
    end: datetime
    cutoff: datetime
    people: list[PersonDay]
    fevers: list[FeverReading]
    changes: list[StatusChange]
    outsiders: dict[str, int]
    visitors_refused: list[VisitorRefusal]
    trend: list[TrendPoint]
    tree: UnitTree
    # The day's check-ins (issue #15): person -> (flagged: fever or symptom, case contact).
    checkins: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.cutoff >= self.end


async def load_day(
    conn: asyncpg.Connection,
    day: date,
    tz: ZoneInfo,
    now: datetime,
    threshold_c: float = DEFAULT_FEVER_THRESHOLD_C,
) -> DayFacts:
    """Read the facts of `day` (up to `now` when the day is not over)."""
    if day < EARLIEST_DAY:  # the week's trend and UTC bounds would leave datetime's range
        raise OutOfRangeError(f"{day} lies before {EARLIEST_DAY}: no campus log goes back so far")
    if day > now.astimezone(tz).date():
        raise OutOfRangeError(f"{day} has not begun yet in {tz.key}")
    start, end = day_window(day, tz)
    cutoff = min(end, now)
    trend_start, _ = day_window(day - timedelta(days=TREND_DAYS - 1), tz)
    return DayFacts(
        day=day,
        timezone=tz.key,
        start=start,
        end=end,
        cutoff=cutoff,
        people=await store.people_day(conn, start, end, cutoff),
        fevers=await store.fever_readings(conn, start, end),
        changes=await store.status_changes(conn, start, end),
        outsiders=await store.outsiders_by_door(conn, start, end),
        visitors_refused=await store.visitors_refused(conn, start, end),
        trend=await store.trend(conn, trend_start, end, tz.key),
        tree=UnitTree(await store.org_units(conn)),
        checkins=await checkins_of_day(conn, day, threshold_c),
    )


def _iso(when: datetime | None, tz: ZoneInfo) -> str | None:
    return None if when is None else when.astimezone(tz).isoformat(timespec="seconds")


def build_report(
    facts: DayFacts, org_unit_id: str | None, audience: Audience
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(summary, lists) of one report: the unit and everything below it (None: campus)."""
    tz = ZoneInfo(facts.timezone)
    if org_unit_id is not None and org_unit_id not in facts.tree:
        raise UnknownOrgUnitError(f"unknown org unit {org_unit_id!r}")
    scope = None if org_unit_id is None else facts.tree.subtree(org_unit_id)

    def mine(unit: str | None) -> bool:
        return scope is None or unit in scope

    everyone = [p for p in facts.people if p.kind == audience.value and mine(p.org_unit_id)]
    by_id = {p.person_id: p for p in everyone}
    active = [p for p in everyone if p.active]
    denied: Counter[str] = Counter()
    for p in everyone:
        denied.update(p.denied)
    health = Counter(p.status for p in active)
    fevers = [f for f in facts.fevers if f.person_id in by_id]
    changes = [c for c in facts.changes if c.person_id in by_id]
    absent = [p for p in active if not p.present]
    # Everyone present counts, as in `present` (an inactive card admitted is still a visit).
    unscreened = [p for p in everyone if p.present and p.screenings == 0]
    refused = [v for v in facts.visitors_refused if mine(v.org_unit_id)]

    def person(p: PersonDay) -> dict[str, Any]:
        return {"person_id": p.person_id, "name": p.name, "org_unit_id": p.org_unit_id}

    lists: dict[str, list[dict[str, Any]]] = {
        "fevers": [
            {
                **person(by_id[f.person_id]),
                "at": _iso(f.at, tz),
                "celsius": f.celsius,
                "door_id": f.door_id,
            }
            for f in fevers
        ],
        "health": [
            {
                **person(p),
                "status": p.status,
                "since": _iso(p.since, tz),
                "until": _iso(p.until, tz),
                "reason": p.reason,
                "caretaker_id": p.caretaker_id,
                "caretaker_name": p.caretaker_name,
            }
            for p in sorted(active, key=lambda p: (_STATUS_ORDER[p.status], p.person_id))
            if p.status != HealthStatus.CLEAR
        ],
        "new_isolations": [
            {
                **person(by_id[c.person_id]),
                "status": c.status,
                "previous": c.previous,
                "since": _iso(c.since, tz),
                "until": _iso(c.until, tz),
                "reason": c.reason,
                "caretaker_id": c.caretaker_id,
                "caretaker_name": c.caretaker_name,
                "changed_at": _iso(c.changed_at, tz),
                "changed_by": c.changed_by,
            }
            for c in changes
        ],
        "absent": [
            person(p) for p in sorted(absent, key=lambda p: (p.org_unit_id or "", p.person_id))
        ],
        "never_screened": [
            {
                **person(p),
                "first_passage_at": _iso(p.first_passage_at, tz),
                "first_passage_door": p.first_passage_door,
            }
            for p in sorted(unscreened, key=lambda p: (p.org_unit_id or "", p.person_id))
        ],
        "visitors_refused": [
            {
                "person_id": v.person_id,
                "name": v.name,
                "org_unit_id": v.org_unit_id,
                "at": _iso(v.at, tz),
                "door_id": v.door_id,
                "zone_id": v.zone_id,
                "zone_kind": v.zone_kind,
                "reason": v.reason,
            }
            for v in refused
        ],
    }
    summary: dict[str, Any] = {
        "day": facts.day.isoformat(),
        "timezone": facts.timezone,
        "org_unit": None
        if org_unit_id is None
        else {"id": org_unit_id, "name": facts.tree.name(org_unit_id)},
        "audience": audience.value,
        "cutoff": _iso(facts.cutoff, tz),
        "complete": facts.complete,
        "people": len(active),
        "present": sum(1 for p in everyone if p.present),
        "absent": len(absent),
        "screenings": sum(p.screenings for p in everyone),
        "fevers": len({f.person_id for f in fevers}),
        "fever_readings": len(fevers),
        "health": {s.value: health.get(s.value, 0) for s in HealthStatus},
        "new_isolations": len(changes),
        "denied": dict(sorted(denied.items())),
        "denied_total": sum(denied.values()),
        "outsiders_blocked": {
            "scope": "campus",
            "total": sum(facts.outsiders.values()),
            "by_door": dict(facts.outsiders),
        },
        "passages": _passages(everyone),
        "never_screened": len(unscreened),
        "visitors_refused": _refusals(refused, "campus" if org_unit_id is None else "org_unit"),
        "outsiders_and_visitors": sum(facts.outsiders.values()) + len(refused),
        "trend": _trend(facts, mine, audience),
        "checkins": _checkins(active, facts.checkins),
    }
    lists["checkin_missing"] = [
        person(p)
        for p in sorted(active, key=lambda p: (p.org_unit_id or "", p.person_id))
        if p.person_id not in facts.checkins
    ]
    return summary, lists


def _checkins(active: list[PersonDay], checkins: dict[str, tuple[bool, bool]]) -> dict[str, Any]:
    """The day's check-in numbers among the report's active people."""
    made = [checkins[p.person_id] for p in active if p.person_id in checkins]
    return {
        "expected": len(active),
        "made": len(made),
        "missing": len(active) - len(made),
        "rate": round(len(made) / len(active), 4) if active else None,
        "flagged": sum(1 for flagged, _ in made if flagged),
        "case_contact": sum(1 for _, contact in made if contact),
    }


_STATUS_ORDER = {s.value: n for n, s in enumerate(HealthStatus)}


def _passages(people: list[PersonDay]) -> dict[str, Any]:
    """Admitted passages as logged: in and out counted apart, by zone kind."""
    counts: Counter[tuple[str, str]] = Counter()
    for p in people:
        counts.update(p.passages)
    by_kind = {
        kind: {"in": counts[(kind, "in")], "out": counts[(kind, "out")]}
        for kind in ZONE_KINDS
        if counts[(kind, "in")] or counts[(kind, "out")]
    }
    inward = sum(n for (_, d), n in counts.items() if d == "in")
    outward = sum(n for (_, d), n in counts.items() if d == "out")
    return {"total": inward + outward, "in": inward, "out": outward, "by_zone_kind": by_kind}


def _refusals(refused: list[VisitorRefusal], scope: str) -> dict[str, Any]:
    """Registered visitors refused at dormitories and labs: attempts, people, where.

    No count by reason: beside the list of names it would tell a role without health
    access which visitor had a fever (the list withholds health reasons from them)."""
    kinds = Counter(v.zone_kind for v in refused)
    return {
        "scope": scope,
        "total": len(refused),
        "people": len({v.person_id for v in refused}),
        "by_zone_kind": {k: kinds[k] for k in GUARDED_ZONE_KINDS},
    }


def _trend(facts: DayFacts, mine: Any, audience: Audience) -> list[dict[str, Any]]:
    present: Counter[date] = Counter()
    fevers: Counter[date] = Counter()
    for point in facts.trend:
        if point.kind == audience.value and mine(point.org_unit_id):
            present[point.day] += point.present
            fevers[point.day] += point.fevers
    days = [facts.day - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]
    return [{"day": d.isoformat(), "present": present[d], "fevers": fevers[d]} for d in days]


async def build_all(
    facts: DayFacts, targets: list[tuple[str | None, Audience]]
) -> list[tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]]:
    """Every target's report, off the event loop (a big campus is a few thousand rows)."""
    return await asyncio.to_thread(lambda: [build_report(facts, u, a) for u, a in targets])
