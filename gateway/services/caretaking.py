"""Choosing caretakers for isolated people (shared by health changes, travel and tracing)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from gateway.store.caretaking import (
    CaretakerCandidate,
    caretaker_candidates,
    org_parents,
    org_units_of,
)


async def choose_caretakers(
    conn: asyncpg.Connection, person_ids: Sequence[str]
) -> dict[str, str | None]:
    """A caretaker for each person: active staff of the person's org unit, else of the
    nearest ancestor unit that has any; the least loaded one (current isolation cases,
    counting the choices made in this call), ties by id; never the person themself.

    None for people with no such staff (or unknown people, or people without a unit).
    Nothing is written: the caller assigns.
    """
    now = datetime.now(UTC)
    parents = await org_parents(conn)
    units = await org_units_of(conn, person_ids)
    by_unit: dict[str | None, list[CaretakerCandidate]] = {}
    load: dict[str, int] = {}
    for candidate in await caretaker_candidates(conn, now):
        by_unit.setdefault(candidate.org_unit_id, []).append(candidate)
        load[candidate.person_id] = candidate.load
    chosen: dict[str, str | None] = {}
    for person_id in person_ids:
        pick = _pick(person_id, units.get(person_id), parents, by_unit, load)
        chosen[person_id] = pick
        if pick is not None:
            load[pick] += 1
    return chosen


def _pick(
    person_id: str,
    unit: str | None,
    parents: dict[str, str | None],
    by_unit: dict[str | None, list[CaretakerCandidate]],
    load: dict[str, int],
) -> str | None:
    seen: set[str] = set()
    while unit is not None and unit not in seen:
        seen.add(unit)  # a guard against a cycle in a hand-edited tree
        staff = [c.person_id for c in by_unit.get(unit, ()) if c.person_id != person_id]
        if staff:
            return min(staff, key=lambda sid: (load[sid], sid))
        unit = parents.get(unit)
    return None
