"""Health status changes that operators make (shared by the API and the CLI)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.store.health import set_health_many
from gateway.store.roster import load_health


async def clear_fever_watch(
    conn: asyncpg.Connection, person_ids: Iterable[str], *, by: str, reason: str
) -> list[str]:
    """Clear `fever_watch` (after a manual re-measurement) for those of `person_ids` on it.

    Returns the people cleared; other statuses are left alone.
    """
    wanted = set(person_ids)
    on_watch = [
        r.person_id
        for r in await load_health(conn)
        if r.person_id in wanted and r.status is HealthStatus.FEVER_WATCH
    ]
    now = datetime.now(UTC)
    records = [
        HealthRecord(pid, HealthStatus.CLEAR, since=now, reason=reason, set_by=by)
        for pid in on_watch
    ]
    await set_health_many(conn, records, changed_by=by)
    return on_watch
