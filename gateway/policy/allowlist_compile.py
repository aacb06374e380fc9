"""Compile a zone's allowlist entries from the roster index (issue 13): pure, no clock.

A valid card gets the windows when its holder may enter the zone between `start` and
`end` (the grants' schedules expanded in campus time, cut by the grants', the card's and
the person's validity, under the response levels' rules), and its flag (emergency group).
Only cards with a window at the zone, or in the emergency group, are listed; a holder
under a health hold is left out. The same checks as `decide`, answered ahead of time.
`known_cards` is what a door people leave by needs besides: every card an exit admits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.domain.allowlist import FLAG_EMERGENCY, DoorRules, Entry, Windows
from gateway.domain.levels import ZoneRules
from gateway.domain.roster import Card, Door, Grant, Person, PersonKind
from gateway.domain.schedule import Schedule
from gateway.policy.roster_index import RosterIndex

_DAY = timedelta(days=1)


def door_rules(
    index: RosterIndex, door: Door, *, fever_threshold_c: float, occupancy: int
) -> DoorRules:
    rules = index.zone_rules(door.zone_id)
    return DoorRules(
        requires_temperature=door.requires_temperature or rules.require_temperature,
        fever_threshold_c=fever_threshold_c,
        capacity=rules.capacity,
        capacity_mode=str(rules.capacity_mode),
        occupancy=occupancy,
        levels=rules.levels,
    )


def compile_zone(
    index: RosterIndex,
    zone_id: str,
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    emergency_units: Collection[str] = (),
) -> dict[str, Entry]:
    """The listed cards' entries for `zone_id` over [start, end)."""
    return compile_zones(
        index, [zone_id], start=start, end=end, tz=tz, emergency_units=emergency_units
    )[zone_id]


def compile_zones(
    index: RosterIndex,
    zone_ids: Collection[str],
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    emergency_units: Collection[str] = (),
    at: datetime | None = None,
    interned: dict[tuple[Windows, int], Entry] | None = None,
    cards: Iterable[Card] | None = None,
) -> dict[str, dict[str, Entry]]:
    """The listed cards' entries for each zone over [start, end); holds judged at `at`.

    One pass over the cards for all zones. `interned` (kept by the caller from one
    compilation to the next) makes equal entries the same object, so comparing a new
    compilation with the last one is mostly an identity check. `cards`: only these.
    """
    at = at or start
    interned = {} if interned is None else interned
    # Per zone: its rules, who has grants of their own, windows and entries by sharing key.
    zones: list[
        tuple[
            str,
            ZoneRules,
            Collection[str],
            dict[tuple[object, ...], Windows],
            dict[tuple[object, ...], dict[int, Entry]],
        ]
    ] = [
        (zone_id, index.zone_rules(zone_id), index.zone_grants(zone_id).by_person, {}, {})
        for zone_id in zone_ids
    ]
    out: dict[str, dict[str, Entry]] = {zone_id: {} for zone_id in zone_ids}
    for card in index.cards() if cards is None else cards:
        person = index.person(card.person_id)
        if person is None or card.revoked or not person.active:
            continue
        limit = _earliest(card.valid_until, person.valid_until)
        if limit is not None and limit <= start:
            continue
        record = index.health(person.id)
        if record is not None and record.holds(at):
            # Left out, not flagged: a list must not tell a thief who is under a hold. The
            # terminal denies the card as unknown, which keeps the person out all the same.
            continue
        flags = 0
        unit = person.org_unit_id
        if emergency_units and unit is not None and _in_units(index, unit, emergency_units):
            flags |= FLAG_EMERGENCY
        uid = card.uid.upper()
        shared = (person.org_unit_id, person.kind, limit)
        for zone_id, rules, named, cache, entries_of in zones:
            # People without grants of their own share their unit's and kind's windows.
            key: tuple[object, ...] = (person.id, limit) if person.id in named else shared
            by_flags = entries_of.get(key)
            if by_flags is None:
                windows = cache[key] = _windows(
                    _grants(index, person, zone_id, rules),
                    start,
                    end if limit is None else min(end, limit),
                    tz,
                )
                by_flags = entries_of[key] = {}
            entry = by_flags.get(flags)
            if entry is None:
                windows = cache[key]
                if not windows and not flags & FLAG_EMERGENCY:
                    # Nothing this door would ever admit: not listed, so a stolen terminal
                    # holds only the cards that may use its zone.
                    continue
                entry = interned.get((windows, flags))
                if entry is None:
                    entry = interned[(windows, flags)] = Entry(windows, flags)
                by_flags[flags] = entry
            out[zone_id][uid] = entry
    return out


def known_cards(index: RosterIndex) -> frozenset[str]:
    """The uids (upper-case hex) an exit admits: every card whose holder is on the roster,
    as `decide` judges an `out` passage (whatever its validity, health or grants)."""
    return frozenset(
        card.uid.upper() for card in index.cards() if index.person(card.person_id) is not None
    )


def person_cards(index: RosterIndex) -> dict[str, list[str]]:
    """Card uids by holder, for updating only a changed person's entries."""
    held: dict[str, list[str]] = {}
    for card in index.cards():
        held.setdefault(card.person_id, []).append(card.uid.upper())
    return held


def _in_units(index: RosterIndex, unit: str, units: Collection[str]) -> bool:
    return any(u in units for u in index.ancestors(unit))


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _grants(
    index: RosterIndex, person: Person, zone_id: str, rules: ZoneRules
) -> tuple[Grant, ...]:
    """The grants that may let `person` in, as `decide` would look for them."""
    if rules.bar_visitors and person.kind is PersonKind.VISITOR:
        return ()
    if rules.labs_named_only:
        return index.zone_grants(zone_id).by_person.get(person.id, ())
    return tuple(index.candidate_grants(person, zone_id))


def _windows(grants: tuple[Grant, ...], start: datetime, end: datetime, tz: ZoneInfo) -> Windows:
    spans: list[tuple[int, int]] = []
    for grant in grants:
        lo = start if grant.valid_from is None else max(start, grant.valid_from)
        hi = end if grant.valid_until is None else min(end, grant.valid_until)
        if lo >= hi:
            continue
        if grant.schedule is None:
            spans.append((int(lo.timestamp()), int(hi.timestamp())))
        else:
            spans.extend(_expand(grant.schedule, lo, hi, tz))
    return _merge(spans)


def _expand(schedule: Schedule, lo: datetime, hi: datetime, tz: ZoneInfo) -> list[tuple[int, int]]:
    """The schedule's intervals within [lo, hi), from campus-time days."""
    out: list[tuple[int, int]] = []
    lo_s, hi_s = lo.timestamp(), hi.timestamp()
    day = lo.astimezone(tz).date() - _DAY  # a clause crossing midnight starts the day before
    last = hi.astimezone(tz).date()
    while day <= last:
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        for clause in schedule.clauses:
            if day.weekday() not in clause.days:
                continue
            begin = midnight + timedelta(minutes=clause.start_min)
            finish_day = midnight if clause.end_min > clause.start_min else midnight + _DAY
            finish = finish_day + timedelta(minutes=clause.end_min)
            s, e = max(begin.timestamp(), lo_s), min(finish.timestamp(), hi_s)
            if s < e:
                out.append((int(s), int(e)))
        day += _DAY
    return out


def _merge(spans: list[tuple[int, int]]) -> Windows:
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return tuple(merged)
