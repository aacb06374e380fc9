"""Before an area is listed: who it would isolate, and who returned too long ago to be.

The preview lists the area for real inside a transaction, runs the evaluation that
listing runs, reads what changed and rolls everything back: what it shows is exactly
what confirming (listing the area) does, with nothing written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from gateway.domain.travel import TravelDeclaration, isolation_window
from gateway.services import places, travel
from gateway.store import travel as store

MAX_LISTED = 2000  # trips shown by one preview; the answer says when there were more
_PAGE = 5000


class _Rollback(Exception):
    """Raised to undo a preview's listing."""


async def preview_area(
    conn: asyncpg.Connection,
    values: dict[str, Any],
    rules: travel.TravelRules,
    *,
    by: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What listing the area `values` would do (nothing is written).

    Answer: {area, affected: [trip...], evaluation, truncated}. Each trip: person_id,
    person_name, declaration_id, destination, departure_date, return_date, matched (what
    the destination resolved to), until (proposed end of isolation: the start of
    until_date, campus time) and outcome:
    isolate, extend, waiting (another status holds the person; applies once it ends),
    on_return (not back yet), unchanged (already isolated long enough, or an officer
    cleared the person after this trip), waived, or period_over (return + isolation days
    already past: not isolated). Raises as travel.add_area does.
    """
    now = now or datetime.now(UTC)
    answer: dict[str, Any] = {}
    try:
        async with conn.transaction():
            area, evaluation = await travel.add_area(conn, values, rules, by=by)
            answer = await _affected(conn, area, evaluation, rules, now)
            raise _Rollback
    except _Rollback:
        pass
    return answer


async def _affected(
    conn: asyncpg.Connection,
    area: dict[str, Any],
    evaluation: travel.Evaluation,
    rules: travel.TravelRules,
    now: datetime,
) -> dict[str, Any]:
    listed = next(a for a in await store.load_areas(conn) if a.id == area["id"])
    today = now.astimezone(rules.tz).date()
    still_open_on = today - timedelta(days=rules.isolation_days - 1)
    affected: list[dict[str, Any]] = []
    async for row in _returned_since(conn, listed.effective_from, today):
        if len(affected) > MAX_LISTED:
            break
        matched = row["place_match"]
        if row["divisions"] is None:  # closed before places were resolved: not stored
            found = places.resolve(row["destination"])
            divisions, matched = found.codes, found.describe()
        else:
            divisions = tuple(row["divisions"])
        trip = TravelDeclaration(
            row["id"],
            row["person_id"],
            row["destination"],
            row["departure_date"],
            row["return_date"],
            divisions=divisions,
        )
        if not (
            listed.covers(trip.destination, trip.divisions)
            and listed.effective_during(trip.departure_date, trip.return_date)
        ):
            continue
        start, until = isolation_window(trip, rules.isolation_days, rules.tz)
        affected.append(
            {
                "person_id": row["person_id"],
                "person_name": row["person_name"],
                "declaration_id": row["id"],
                "destination": row["destination"],
                "departure_date": row["departure_date"],
                "return_date": row["return_date"],
                "matched": matched,
                "until": until,
                "until_date": trip.return_date + timedelta(days=rules.isolation_days),
                "outcome": _outcome(row, trip, evaluation, start, now, still_open_on),
            }
        )
    truncated = len(affected) > MAX_LISTED
    del affected[MAX_LISTED:]
    public = {k: area[k] for k in ("name", "match", "effective_from", "effective_until")}
    public.update(division_code=area["division_code"], place_match=area["place_match"])
    return {
        "area": public,
        "affected": affected,
        "truncated": truncated,
        "evaluation": evaluation.as_dict(),
    }


async def _returned_since(
    conn: asyncpg.Connection, first: date, today: date
) -> AsyncIterator[dict[str, Any]]:
    """Every declaration returning from `first` on (to the farthest date accepted), by pages."""
    offset = 0
    while True:
        page = await store.returned_between(
            conn, first, today + timedelta(days=366 * 2), limit=_PAGE, offset=offset
        )
        for row in page:
            yield row
        if len(page) < _PAGE:
            return
        offset += _PAGE


def _outcome(
    row: dict[str, Any],
    trip: TravelDeclaration,
    evaluation: travel.Evaluation,
    start: datetime,
    now: datetime,
    still_open_on: date,
) -> str:
    if row["waived_at"] is not None:
        return "waived"
    if trip.return_date < still_open_on:
        return "period_over"
    if now < start:
        return "on_return"
    if trip.person_id in evaluation.isolated:
        return "isolate"
    if trip.person_id in evaluation.extended:
        return "extend"
    if trip.person_id in evaluation.waiting:
        return "waiting"
    return "unchanged"
