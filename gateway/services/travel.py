"""Travel declarations and epidemic areas: who must stay home after a trip, and when not.

What a health officer can rely on (each evaluation follows these rules):

- A trip isolates when its destination matches a listed area that was effective on
  any day of the trip (departure to return, inclusive). Destinations and areas are
  resolved to administrative divisions when filed (gateway/services/places.py): an area
  covers the trips in its division (a province its cities); a destination that names no
  division (abroad, ambiguous) is matched by text. An area may be listed from a past
  date, so that people already back from it are caught (preview: travel_preview.py). The person is put in
  `home_isolation` from the start of the return date (campus time) until the start of
  return date + isolation_days, with a caretaker from their org unit. A trip declared
  ahead isolates when its return date comes (the scheduled job, every declaration and
  every area change re-evaluate every open declaration).
- Travel only ever touches a person who is clear (or recovered, or whose status has
  expired), or a `home_isolation` it set itself, which it may lengthen, shorten or lift.
  An officer's own `home_isolation` that ends too early is lengthened to the trip's end
  (it stays the officer's: travel never lifts it).
  Any other status (fever_watch, close_contact, suspected, confirmed) is left alone: the
  trip waits and applies, if still open, once that status is over.
- A declaration isolates once. If an officer clears the person afterwards, that decision
  stands (the trip is not re-applied); to exempt a trip before or after, waive it.
- When an area leaves the list (or its dates change) and no open trip still requires
  isolation, an isolation set by travel is lifted back to clear, the history saying which
  declaration and area. Statuses set by officers are never lifted by travel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.travel import (
    EpidemicArea,
    TravelDeclaration,
    isolation_window,
    matching_areas,
)
from gateway.services import places
from gateway.services.caretaking import choose_caretakers, reassign_cases
from gateway.services.errors import ConflictError, InvalidValueError, NotFoundError
from gateway.services.health import CurrentStatus, current_status, lock_people
from gateway.services.operations import _jsonable
from gateway.store import travel as store
from gateway.store.audit import record_audit
from gateway.store.health import health_of, set_health
from gateway.store.locks import LockKey, lock_for_transaction

TRAVEL_ACTOR = "travel"  # set_by of the isolations travel sets (and may lift)


@dataclass(frozen=True, slots=True)
class TravelRules:
    isolation_days: int
    tz: ZoneInfo


@dataclass
class Evaluation:
    """People whose status an evaluation changed, and those it left waiting."""

    isolated: list[str] = field(default_factory=list)
    extended: list[str] = field(default_factory=list)
    lifted: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    # People in the care of someone isolated here, given another caretaker.
    reassigned: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "isolated": self.isolated,
            "extended": self.extended,
            "lifted": self.lifted,
            "waiting": self.waiting,
            "reassigned": self.reassigned,
        }


async def evaluate(
    conn: asyncpg.Connection,
    rules: TravelRules,
    *,
    by: str,
    person_ids: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Evaluation:
    """Re-evaluate every open declaration (or those of `person_ids`) against the area
    list and apply the module's rules; `by` is recorded as who changed the statuses."""
    now = now or datetime.now(UTC)
    today = now.astimezone(rules.tz).date()
    result = Evaluation()
    still_open_on = today - timedelta(days=rules.isolation_days - 1)
    async with conn.transaction():
        declarations = await store.open_declarations(
            conn, still_open_on=still_open_on, today=today, person_ids=person_ids
        )
        people = sorted({d.person_id for d in declarations})
        await lock_people(conn, people)
        # Read them again under the locks (declare and waive commit under the same ones):
        # from a list read before, a trip waived or declared meanwhile would be missed.
        declarations = await store.open_declarations(
            conn, still_open_on=still_open_on, today=today, person_ids=people
        )
        declarations = await _resolve_missing(conn, declarations)
        await _resolve_missing_areas(conn)
        by_person: dict[str, list[TravelDeclaration]] = defaultdict(list)
        for declaration in declarations:
            by_person[declaration.person_id].append(declaration)
        areas = await store.load_areas(conn)
        for person_id, trips in by_person.items():
            await _evaluate_person(conn, person_id, trips, areas, rules, now, by, result)
    return result


async def _resolve_missing(
    conn: asyncpg.Connection, declarations: list[TravelDeclaration]
) -> list[TravelDeclaration]:
    """Resolve (and store) the places of trips filed before places were resolved."""
    done = []
    for declaration in declarations:
        if declaration.divisions is None:
            found = places.resolve(declaration.destination)
            await store.record_declaration_place(
                conn, declaration.id, divisions=found.codes, place_match=found.describe()
            )
            declaration = replace(declaration, divisions=found.codes)
        done.append(declaration)
    return done


async def _resolve_missing_areas(conn: asyncpg.Connection) -> None:
    """Resolve areas listed before places were resolved (an ambiguous one: by text)."""
    for area_id, match in await store.unresolved_areas(conn):
        try:
            place = area_place(match)
        except AmbiguousPlaceError:
            found = places.resolve(match)
            place = {
                "division_code": None,
                "place_match": found.describe(),
                "match_terms": [places.normalise(match)],
            }
        await store.record_area_place(conn, area_id, **place)


async def _evaluate_person(
    conn: asyncpg.Connection,
    person_id: str,
    trips: list[TravelDeclaration],
    areas: list[EpidemicArea],
    rules: TravelRules,
    now: datetime,
    by: str,
    result: Evaluation,
) -> None:
    matched = {t.id: [a.name for a in matching_areas(t, areas)] for t in trips}
    window = {t.id: isolation_window(t, rules.isolation_days, rules.tz) for t in trips}
    active = [
        t
        for t in trips
        if matched[t.id] and t.waived_at is None and window[t.id][0] <= now < window[t.id][1]
    ]
    current = await current_status(conn, person_id)
    status = current.effective(now) if current else HealthStatus.CLEAR
    owned = current is not None and status is HealthStatus.HOME_ISOLATION
    owned = owned and current.set_by == TRAVEL_ACTOR  # type: ignore[union-attr]
    fresh = [t for t in active if t.isolated_at is None]
    holding: list[TravelDeclaration] = []  # trips that isolate the person after this
    if owned and active:
        holding = active
        target = max(active, key=lambda t: window[t.id][1])
        assert current is not None
        if current.until != window[target.id][1]:
            await _isolate(conn, target, matched, window, current, by, now, "travel_extend")
            result.extended.append(person_id)
    elif fresh and not status.blocks_entry:
        holding = fresh
        target = max(fresh, key=lambda t: window[t.id][1])
        await _isolate(conn, target, matched, window, None, by, now, "travel_isolate")
        result.isolated.append(person_id)
        moved = await reassign_cases(conn, by=by, caretakers=[person_id], now=now)
        result.reassigned.extend(r.person_id for r in moved)
    elif fresh and status is HealthStatus.HOME_ISOLATION:
        holding = fresh
        target = max(fresh, key=lambda t: window[t.id][1])
        assert current is not None
        if current.until is not None and current.until < window[target.id][1]:
            await _isolate(conn, target, matched, window, current, by, now, "travel_extend")
            result.extended.append(person_id)
    elif fresh:
        result.waiting.append(person_id)
    released = [t for t in trips if t.isolated_at is not None and t not in active]
    if owned and not active:
        await _lift(conn, person_id, released, by, now)
        result.lifted.append(person_id)
    for trip in trips:
        isolated = True if trip in holding else (False if trip in released else None)
        if isolated is not None or tuple(matched[trip.id]) != trip.matched_areas:
            await store.record_evaluation(
                conn, trip.id, matched=matched[trip.id], now=now, isolated=isolated
            )


async def _isolate(
    conn: asyncpg.Connection,
    trip: TravelDeclaration,
    matched: dict[int, list[str]],
    window: dict[int, tuple[datetime, datetime]],
    current: CurrentStatus | None,
    by: str,
    now: datetime,
    action: str,
) -> None:
    caretaker = current.caretaker_id if current else None
    if caretaker is None:
        caretaker = (await choose_caretakers(conn, [trip.person_id]))[trip.person_id]
    reason = (
        f"returned on {trip.return_date.isoformat()} from {trip.destination} "
        f"(epidemic area: {', '.join(matched[trip.id])}); travel declaration #{trip.id}"
    )
    # A status travel lengthens keeps its owner: an officer's isolation stays the officer's,
    # so that travel never lifts it later (only its own isolations are travel's to lift).
    owner = TRAVEL_ACTOR if current is None else current.set_by
    # The isolation runs from the return (the start of its window), not from when this
    # row is written: a trip declared days after the return is already days in, and the
    # caretaker's "day N" counts from here. A status lengthened keeps the earlier start.
    since = window[trip.id][0]
    if current is not None and current.since is not None:
        since = min(since, current.since)
    record = HealthRecord(
        trip.person_id,
        HealthStatus.HOME_ISOLATION,
        since,
        window[trip.id][1],
        reason,
        caretaker,
        owner,
    )
    await _write(conn, record, by, action)


async def _lift(
    conn: asyncpg.Connection,
    person_id: str,
    released: list[TravelDeclaration],
    by: str,
    now: datetime,
) -> None:
    whys = [
        f"travel declaration #{t.id} ({t.destination}) "
        + ("waived" if t.waived_at else f"no longer in a listed area: {', '.join(t.matched_areas)}")
        for t in released
    ]
    reason = "isolation lifted: " + ("; ".join(whys) or "no open trip requires it")
    record = HealthRecord(person_id, HealthStatus.CLEAR, now, None, reason, None, TRAVEL_ACTOR)
    await _write(conn, record, by, "travel_lift")


async def _write(conn: asyncpg.Connection, record: HealthRecord, by: str, action: str) -> None:
    before = await health_of(conn, record.person_id)
    await set_health(conn, record, changed_by=by)
    after = await health_of(conn, record.person_id)
    await record_audit(
        conn,
        by,
        action,
        "health_status",
        record.person_id,
        before=_jsonable(before),
        after=_jsonable(after),
    )


# --- declarations -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trip:
    """A declaration as given: who, where, when."""

    person_id: str
    destination: str
    departure_date: date
    return_date: date
    note: str = ""


async def declare(
    conn: asyncpg.Connection,
    trips: Sequence[Trip],
    rules: TravelRules,
    *,
    by: str,
    source: str = "api",
) -> tuple[list[int], Evaluation]:
    """File declarations (a trip declared again is kept once) and evaluate their people.

    Raises NotFoundError when a person does not exist; nothing is written then.
    """
    async with conn.transaction():
        people = {t.person_id for t in trips}
        missing = people - await lock_people(conn, people)
        if missing:
            raise NotFoundError(f"no person {sorted(missing)[0]!r}")
        rows = []
        for t in trips:
            found = places.resolve(t.destination)
            rows.append(
                (
                    t.person_id,
                    t.destination.strip(),
                    t.departure_date,
                    t.return_date,
                    t.note,
                    found.codes,
                    found.describe(),
                )
            )
        ids = await store.insert_declarations(conn, rows, by=by, source=source)
        await record_audit(
            conn,
            by,
            "declare" if source == "api" else "import",
            "travel_declaration",
            ",".join(map(str, ids)) if len(ids) <= 20 else f"{len(ids)} declarations",
            after=[
                {
                    "person_id": t.person_id,
                    "destination": t.destination,
                    "departure_date": t.departure_date.isoformat(),
                    "return_date": t.return_date.isoformat(),
                }
                for t in trips
            ],
        )
        evaluation = await evaluate(conn, rules, by=by, person_ids=sorted(people))
    return ids, evaluation


async def waive_declaration(
    conn: asyncpg.Connection, declaration_id: int, rules: TravelRules, *, by: str
) -> tuple[dict[str, Any], Evaluation]:
    """Exempt a trip (a health officer's decision); an isolation it alone caused is lifted."""
    async with conn.transaction():
        before = await store.get_declaration(conn, declaration_id)
        if before is None:
            raise NotFoundError(f"no travel declaration {declaration_id}")
        await store.waive(conn, declaration_id, by=by)
        await record_audit(
            conn,
            by,
            "waive",
            "travel_declaration",
            str(declaration_id),
            before=_jsonable(before),
        )
        evaluation = await evaluate(conn, rules, by=by, person_ids=[before["person_id"]])
        after = await store.get_declaration(conn, declaration_id)
    assert after is not None
    return after, evaluation


# --- epidemic areas -----------------------------------------------------------------


class DuplicateAreaError(ConflictError, ValueError):
    """The same area is already listed for an overlapping period."""


class AmbiguousPlaceError(InvalidValueError):
    """An area's match text names several divisions, or one name that fits several."""

    field = "match"


def area_place(match: str) -> dict[str, Any]:
    """The division an area's `match` names (division_code, place_match, match_terms): a
    division, or None and a text match for a place outside the gazetteer (Milan).

    AmbiguousPlaceError when it names several places or a name several divisions share.
    """
    found = places.resolve(match)
    if len(found.divisions) > 1:
        raise AmbiguousPlaceError(
            f"{match!r} names several places ({found.describe()}): list one area at a time"
        )
    if found.ambiguous and not found.divisions:
        options = " or ".join(d.label for d in found.ambiguous[0])
        raise AmbiguousPlaceError(
            f"{match!r} could be {options}: add the province (e.g. 'Fuzhou, Fujian') "
            "or write the name in Chinese"
        )
    division = found.divisions[0].code if found.divisions else None
    return {
        "division_code": division,
        "place_match": found.describe(),
        "match_terms": places.text_terms(match, found),
    }


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when the effective periods of two areas share a day (until is inclusive)."""
    a_until, b_until = a["effective_until"] or date.max, b["effective_until"] or date.max
    return a["effective_from"] <= b_until and b["effective_from"] <= a_until


async def _refuse_duplicate(
    conn: asyncpg.Connection, values: dict[str, Any], area_id: int | None = None
) -> None:
    """DuplicateAreaError when another area of that name is listed for an overlapping period.

    Takes a lock for the rest of the transaction, so two officers listing (or moving) the
    same area cannot both pass the check.
    """
    await lock_for_transaction(conn, LockKey.EPIDEMIC_AREAS)
    for other in await store.list_areas(conn):
        if (
            other["id"] != area_id
            and other["name"].casefold() == values["name"].casefold()
            and _overlap(other, values)
        ):
            raise DuplicateAreaError(
                f"{other['name']!r} is already listed (area {other['id']}) for an "
                "overlapping period: change its dates instead"
            )


async def add_area(
    conn: asyncpg.Connection, values: dict[str, Any], rules: TravelRules, *, by: str
) -> tuple[dict[str, Any], Evaluation]:
    """List an area (name, match, effective_from, effective_until) and re-evaluate; the
    match is resolved to a division (see area_place; AmbiguousPlaceError).

    DuplicateAreaError when an area of the same name is listed for an overlapping period
    (change that one's dates instead: two rows would make a later delisting ambiguous).
    """
    values = {**values, **area_place(values["match"])}
    async with conn.transaction():
        await _refuse_duplicate(conn, values)
        area = await store.insert_area(conn, by=by, **values)
        await record_audit(
            conn, by, "create", "epidemic_area", str(area["id"]), after=_jsonable(area)
        )
        evaluation = await evaluate(conn, rules, by=by)
    return area, evaluation


async def change_area(
    conn: asyncpg.Connection,
    area_id: int,
    changes: dict[str, Any],
    rules: TravelRules,
    *,
    by: str,
) -> tuple[dict[str, Any], Evaluation]:
    """Change an area's name, match or dates and re-evaluate; InvalidValueError for dates out
    of order, DuplicateAreaError when it would overlap another listing of the same name,
    AmbiguousPlaceError for a match that names no single place."""
    if "match" in changes:
        changes = {**changes, **area_place(changes["match"])}
    async with conn.transaction():
        before = await store.get_area(conn, area_id)
        if before is None:
            raise NotFoundError(f"no epidemic area {area_id}")
        merged = {**before, **changes}
        until, start = merged["effective_until"], merged["effective_from"]
        if until is not None and until < start:
            raise InvalidValueError("effective_until lies before effective_from", "effective_until")
        await _refuse_duplicate(conn, merged, area_id)
        after = await store.update_area(conn, area_id, changes, by=by)
        assert after is not None
        await record_audit(
            conn,
            by,
            "update",
            "epidemic_area",
            str(area_id),
            before=_jsonable(before),
            after=_jsonable(after),
        )
        evaluation = await evaluate(conn, rules, by=by)
    return after, evaluation


async def remove_area(
    conn: asyncpg.Connection, area_id: int, rules: TravelRules, *, by: str
) -> Evaluation:
    async with conn.transaction():
        before = await store.get_area(conn, area_id)
        if before is None:
            raise NotFoundError(f"no epidemic area {area_id}")
        await store.delete_area(conn, area_id)
        await record_audit(
            conn, by, "delete", "epidemic_area", str(area_id), before=_jsonable(before)
        )
        return await evaluate(conn, rules, by=by)
