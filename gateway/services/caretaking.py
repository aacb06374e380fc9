"""Choosing caretakers for isolated people (shared by health changes, travel and tracing),
and finding another one when a caretaker is put under a hold themself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from gateway.domain.health import Reassignment
from gateway.services.operations import _jsonable
from gateway.store.audit import record_audit
from gateway.store.caretaking import (
    CaretakerCandidate,
    caretaker_candidates,
    cases_of_held_caretakers,
    org_parents,
    org_units_of,
    reassign_caretaker,
)
from gateway.store.health import health_of, lock_people

REASSIGN_ACTOR = "caretaking"  # changed_by of the reassignments the scheduled sweep makes


async def choose_caretakers(
    conn: asyncpg.Connection, person_ids: Sequence[str]
) -> dict[str, str | None]:
    """A caretaker for each person: active staff under no hold of the person's org unit,
    else of the nearest ancestor unit that has any; the least loaded one (current
    isolation cases, counting the choices made in this call), ties by id.

    Never one of `person_ids` themselves: they are the people about to be isolated, so a
    staff member marked in the same batch is held too and cannot care for the others.
    None for people with no such staff (or unknown people, or people without a unit).
    Nothing is written: the caller assigns.
    """
    now = datetime.now(UTC)
    batch = set(person_ids)
    parents = await org_parents(conn)
    units = await org_units_of(conn, person_ids)
    by_unit: dict[str | None, list[CaretakerCandidate]] = {}
    load: dict[str, int] = {}
    for candidate in await caretaker_candidates(conn, now):
        if candidate.person_id in batch:
            continue
        by_unit.setdefault(candidate.org_unit_id, []).append(candidate)
        load[candidate.person_id] = candidate.load
    chosen: dict[str, str | None] = {}
    for person_id in person_ids:
        pick = _pick(units.get(person_id), parents, by_unit, load)
        chosen[person_id] = pick
        if pick is not None:
            load[pick] += 1
    return chosen


def _pick(
    unit: str | None,
    parents: dict[str, str | None],
    by_unit: dict[str | None, list[CaretakerCandidate]],
    load: dict[str, int],
) -> str | None:
    seen: set[str] = set()
    while unit is not None and unit not in seen:
        seen.add(unit)  # a guard against a cycle in a hand-edited tree
        staff = [c.person_id for c in by_unit.get(unit, ())]
        if staff:
            return min(staff, key=lambda sid: (load[sid], sid))
        unit = parents.get(unit)
    return None


async def reassign_cases(
    conn: asyncpg.Connection,
    *,
    by: str,
    caretakers: Sequence[str] | None = None,
    now: datetime | None = None,
) -> list[Reassignment]:
    """Give every isolation case whose caretaker is under a hold (of `caretakers` only,
    when given) another caretaker, chosen as choose_caretakers does; each with a history
    row saying why and an audit entry. A case for whom no eligible staff exists is left
    without caretaker, and its history says so.

    Call it in the transaction that set the hold, after writing it (the held caretaker
    is then no candidate); the cases are locked as every status change locks them. A
    case another transaction holds at that moment is skipped rather than waited for
    (waiting while holding the caretaker's lock could deadlock): the scheduled sweep
    reassigns it within a minute.
    """
    now = now or datetime.now(UTC)
    if caretakers is not None and not caretakers:
        return []
    async with conn.transaction():
        found = await cases_of_held_caretakers(conn, now, caretakers)
        if not found:
            return []
        locked = await lock_people(conn, [c.person_id for c in found], skip_locked=True)
        # Read again under the locks: a case cleared or reassigned meanwhile is left alone.
        cases = [
            c
            for c in await cases_of_held_caretakers(conn, now, caretakers)
            if c.person_id in locked
        ]
        chosen = await choose_caretakers(conn, [c.person_id for c in cases])
        done: list[Reassignment] = []
        for case in cases:
            new = chosen[case.person_id]
            why = f"caretaker {case.caretaker_id} is {case.caretaker_status}"
            reason = (
                f"{why}: reassigned to {new}"
                if new is not None
                else f"{why}: no eligible caretaker (active staff under no hold in the "
                "person's org unit or above); none assigned, name one"
            )
            before = await health_of(conn, case.person_id)
            await reassign_caretaker(conn, case.person_id, new, reason=reason, changed_by=by)
            after = await health_of(conn, case.person_id)
            await record_audit(
                conn,
                by,
                "reassign_caretaker",
                "health_status",
                case.person_id,
                before=_jsonable(before),
                after={**_jsonable(after), "why": reason},
            )
            done.append(Reassignment(case.person_id, case.caretaker_id, new, reason))
    return done
