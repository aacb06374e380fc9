"""Health status changes that operators make (shared by the API and the CLI).

Every change goes through health_status + health_history (append-only); the roster
trigger on health_status tells the gateways, so doors follow within a second.
Changes of one person are serialised by a lock on that person's row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.domain.health import ISOLATION_STATUSES, HealthRecord, HealthStatus
from gateway.services.caretaking import choose_caretakers, reassign_cases
from gateway.services.errors import ConflictError, InvalidReferenceError, NotFoundError
from gateway.services.operations import _jsonable
from gateway.store.audit import record_audit
from gateway.store.caretaking import caretaker_problem
from gateway.store.health import current_health, expire_due, health_of, lock_people, set_health
from gateway.store.readings import insert_reading, latest_watch_reading
from gateway.store.roster import load_health

__all__ = [
    "StatusConflict",
    "change_status",
    "clear_fever_watch",
    "expire_statuses",
    "lock_people",
    "record_reading",
    "resolve_fever_watch",
]

EXPIRY_ACTOR = "expiry"
# A reading may carry a device clock a little ahead of ours; more than this is a mistake.
_FUTURE_SLACK = timedelta(minutes=5)


class StatusConflict(ConflictError, RuntimeError):
    """The person's current status does not allow this step (e.g. not on fever_watch)."""


@dataclass(frozen=True, slots=True)
class CurrentStatus:
    status: HealthStatus
    until: datetime | None
    set_by: str | None
    caretaker_id: str | None
    since: datetime | None = None

    def effective(self, now: datetime) -> HealthStatus:
        """Expired statuses count as clear (the gateway treats them so already)."""
        if self.until is not None and now >= self.until:
            return HealthStatus.CLEAR
        return self.status


async def current_status(conn: asyncpg.Connection, person_id: str) -> CurrentStatus | None:
    found = await current_health(conn, person_id)
    return None if found is None else CurrentStatus(*found)


async def change_status(
    conn: asyncpg.Connection,
    person_id: str,
    status: HealthStatus,
    *,
    by: str,
    reason: str,
    until: datetime | None = None,
    caretaker_id: str | None = None,
    expect: HealthStatus | None = None,
) -> dict[str, Any]:
    """Set a person's status with its history row and audit entry.

    A caretaker must be active staff under no hold, and not the person. Isolation
    statuses without a caretaker get one chosen (choose_caretakers; None when no
    eligible staff is found). `until` must lie ahead. `expect`: refuse (StatusConflict)
    unless the person's effective status is that one now (e.g. a fever review that
    someone else settled). Lifting a fever_watch (to clear or recovered) needs a normal
    re-measurement since the fever, whichever route asks (StatusConflict otherwise).

    When the new status holds a person who cares for others, those people get another
    caretaker in the same transaction; the answer lists them under `reassigned`.
    """
    now = datetime.now(UTC)
    async with conn.transaction():
        if not await lock_people(conn, [person_id]):
            raise NotFoundError(f"no person {person_id!r}")
        await _check_change(conn, person_id, status, until, caretaker_id, now)
        before = await health_of(conn, person_id)
        current = await current_status(conn, person_id)
        actual = current.effective(now) if current else HealthStatus.CLEAR
        if expect is not None and actual is not expect:
            raise StatusConflict(f"{person_id} is {actual.value}, not {expect.value}")
        if actual is HealthStatus.FEVER_WATCH and not status.blocks_entry:
            await _check_normal_reading(conn, person_id)
        if caretaker_id is None and status in ISOLATION_STATUSES:
            caretaker_id = (await choose_caretakers(conn, [person_id]))[person_id]
        record = HealthRecord(person_id, status, now, until, reason, caretaker_id, by)
        await set_health(conn, record, changed_by=by)
        after = await health_of(conn, person_id)
        await record_audit(
            conn,
            by,
            "set_health",
            "health_status",
            person_id,
            before=_jsonable(before),
            after=_jsonable(after),
        )
        reassigned = (
            await reassign_cases(conn, by=by, caretakers=[person_id], now=now)
            if status.blocks_entry
            else []
        )
    assert after is not None
    return {**asdict(after), "reassigned": [r.as_dict() for r in reassigned]}


async def _check_normal_reading(conn: asyncpg.Connection, person_id: str) -> None:
    """StatusConflict unless the newest re-measurement since the fever is not a fever
    (contract section 4: fever_watch is cleared "after a manual re-measurement")."""
    latest = await latest_watch_reading(conn, person_id)
    if latest is None:
        raise StatusConflict(
            f"{person_id} is on fever_watch with no re-measurement since the fever: "
            "record a reading first (POST /api/health/{person}/readings)"
        )
    if latest["fever"]:
        raise StatusConflict(
            f"{person_id}'s latest re-measurement ({latest['celsius']} C) is a fever: "
            "escalate, or measure again"
        )


async def _check_change(
    conn: asyncpg.Connection,
    person_id: str,
    status: HealthStatus,
    until: datetime | None,
    caretaker_id: str | None,
    now: datetime,
) -> None:
    if until is not None:
        if until.tzinfo is None:
            raise InvalidReferenceError("until", "until needs a time zone offset")
        if until <= now:
            raise InvalidReferenceError("until", "until must lie in the future")
        if status in (HealthStatus.CLEAR, HealthStatus.RECOVERED):
            raise InvalidReferenceError("until", f"{status.value} takes no until")
    if caretaker_id is not None:
        if caretaker_id == person_id:
            raise InvalidReferenceError("caretaker_id", "a person cannot be their own caretaker")
        problem = await caretaker_problem(conn, caretaker_id, now)
        if problem:
            raise InvalidReferenceError("caretaker_id", problem)


async def resolve_fever_watch(
    conn: asyncpg.Connection,
    person_id: str,
    *,
    escalate: bool,
    by: str,
    reason: str,
    until: datetime | None = None,
    caretaker_id: str | None = None,
) -> dict[str, Any]:
    """After a re-measurement: back to clear, or escalate to `suspected` (with a caretaker).

    Only for a person on fever_watch now (StatusConflict otherwise), so two officers
    reviewing at once cannot undo each other's decision. Clearing needs a manual
    re-measurement since the watch began whose newest reading is not a fever (checked by
    change_status, as on every route); escalating needs none. The reading is checked
    under the person's lock (record_reading takes the same lock), in the same
    transaction as the change, so a guard's reading committed meanwhile is never
    cleared over.
    """
    if escalate:
        status = HealthStatus.SUSPECTED
    else:
        status, until, caretaker_id = HealthStatus.CLEAR, None, None
    return await change_status(
        conn,
        person_id,
        status,
        by=by,
        reason=reason,
        until=until,
        caretaker_id=caretaker_id,
        expect=HealthStatus.FEVER_WATCH,
    )


async def record_reading(
    conn: asyncpg.Connection,
    person_id: str,
    celsius: float,
    *,
    by: str,
    threshold_c: float,
    measured_at: datetime | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A manual re-measurement of a person on fever_watch; `fever` flags a reading at or
    above the threshold. The status is left to a health officer."""
    now = datetime.now(UTC)
    when = measured_at or now
    if when.tzinfo is None:
        raise InvalidReferenceError("measured_at", "measured_at needs a time zone offset")
    if when > now + _FUTURE_SLACK:
        raise InvalidReferenceError("measured_at", "measured_at lies in the future")
    async with conn.transaction():
        if not await lock_people(conn, [person_id]):
            raise NotFoundError(f"no person {person_id!r}")
        current = await current_status(conn, person_id)
        if current is None or current.effective(now) is not HealthStatus.FEVER_WATCH:
            raise StatusConflict(f"{person_id} is not on fever_watch")
        reading = await insert_reading(
            conn,
            person_id,
            celsius,
            fever=celsius >= threshold_c,
            measured_at=when,
            by=by,
            note=note,
        )
        await record_audit(
            conn,
            by,
            "record_reading",
            "health_reading",
            str(reading["id"]),
            after=_jsonable(reading),
        )
    return reading


async def expire_statuses(conn: asyncpg.Connection, now: datetime | None = None) -> list[str]:
    """Turn statuses whose `until` passed into clear (history: changed_by "expiry")."""
    async with conn.transaction():
        return await expire_due(conn, now or datetime.now(UTC))


async def clear_fever_watch(
    conn: asyncpg.Connection,
    person_ids: Iterable[str],
    *,
    by: str,
    reason: str,
    celsius: float,
    threshold_c: float,
) -> list[str]:
    """Record a normal re-measurement (`celsius`) for those of `person_ids` on fever_watch
    and clear them, as a guard and an officer would; audited like theirs.

    Returns the people cleared; other statuses are left alone.
    """
    wanted = set(person_ids)
    on_watch = [
        r.person_id
        for r in await load_health(conn)
        if r.person_id in wanted and r.status is HealthStatus.FEVER_WATCH
    ]
    for person_id in on_watch:
        await record_reading(conn, person_id, celsius, by=by, threshold_c=threshold_c, note=reason)
        await resolve_fever_watch(conn, person_id, escalate=False, by=by, reason=reason)
    return on_watch
