"""Uploaded offline decisions (issue 13): recorded once, with the access log rows they make."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.domain.campus import AccessRecord
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.store.access_log import write_access_records


@dataclass(frozen=True, slots=True)
class UploadRow:
    device_id: str
    event_id: str
    device_ts: datetime
    local_decision: str
    local_reason: str
    gateway_decision: str | None
    gateway_reason: str | None
    allowlist_version: int | None


async def already_logged(
    conn: asyncpg.Connection, device_id: str, event_ids: Sequence[str]
) -> set[str]:
    """Those of `event_ids` the gateway has in its log already (online, or uploaded before)."""
    rows = await conn.fetch(
        """
        SELECT event_id FROM offline_uploads WHERE device_id = $1 AND event_id = ANY($2::text[])
        UNION
        SELECT event_id FROM access_events WHERE device_id = $1 AND event_id = ANY($2::text[])
        """,
        device_id,
        list(event_ids),
    )
    return {r[0] for r in rows}


async def _claim(conn: asyncpg.Connection, row: UploadRow) -> bool:
    """Record one uploaded event; False when it was recorded before (once per event)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO offline_uploads (device_id, event_id, device_ts, local_decision,
            local_reason, gateway_decision, gateway_reason, allowlist_version)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (device_id, event_id) DO NOTHING
        RETURNING event_id
        """,
        row.device_id,
        row.event_id,
        row.device_ts,
        row.local_decision,
        row.local_reason,
        row.gateway_decision,
        row.gateway_reason,
        row.allowlist_version,
    )
    return inserted is not None


async def record_uploads(
    conn: asyncpg.Connection, uploads: Sequence[tuple[UploadRow, AccessRecord]]
) -> list[str]:
    """Record each upload and its log row once; returns the event ids newly recorded."""
    if not uploads:
        return []
    async with conn.transaction():
        fresh: list[str] = []
        records: list[AccessRecord] = []
        for row, record in uploads:
            if await _claim(conn, row):
                fresh.append(row.event_id)
                records.append(record)
        await write_access_records(conn, records)
    return fresh


async def health_at(
    conn: asyncpg.Connection, person_ids: Sequence[str], at: datetime
) -> dict[str, HealthRecord]:
    """Each person's health status as it stood at `at`, from the append-only history."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (person_id) person_id, status, since, until
        FROM health_history
        WHERE person_id = ANY($1::text[]) AND changed_at <= $2
        ORDER BY person_id, changed_at DESC, id DESC
        """,
        list(person_ids),
        at,
    )
    return {
        r["person_id"]: HealthRecord(
            r["person_id"], HealthStatus(r["status"]), r["since"], r["until"]
        )
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class LoggedOnline:
    """An event the gateway decided online, as its log holds it."""

    event_id: str
    decision: str
    reason: str
    zone_id: str | None
    person_id: str | None
    direction: str | None
    received_at: datetime


async def logged_online(
    conn: asyncpg.Connection, device_id: str, event_ids: Sequence[str]
) -> dict[str, LoggedOnline]:
    """Those of `event_ids` logged from an online decision (not from an upload)."""
    rows = await conn.fetch(
        """
        SELECT event_id, decision, reason, zone_id, person_id, direction, received_at
        FROM access_events
        WHERE device_id = $1 AND event_id = ANY($2::text[]) AND type = 'card'
          AND decision IN ('admit', 'deny') AND (detail->>'offline') IS NULL
        """,
        device_id,
        list(event_ids),
    )
    return {r["event_id"]: LoggedOnline(*r.values()) for r in rows}


async def amend_to_local(conn: asyncpg.Connection, row: UploadRow, reason: str) -> bool:
    """The door acted on its own decision, not the gateway's logged one: the log row says
    what the door did, the gateway's verdict moves to its detail. Once per event."""
    async with conn.transaction():
        if not await _claim(conn, row):
            return False
        await conn.execute(
            """
            UPDATE access_events
            SET decision = $3, reason = $4,
                detail = coalesce(detail, '{}'::jsonb) || jsonb_build_object(
                    'offline', true, 'amended', true, 'local_reason', $5::text,
                    'gateway_decision', $6::text, 'gateway_reason', $7::text,
                    'allowlist_version', $8::bigint)
            WHERE device_id = $1 AND event_id = $2
            """,
            row.device_id,
            row.event_id,
            row.local_decision,
            reason,
            row.local_reason,
            row.gateway_decision,
            row.gateway_reason,
            row.allowlist_version,
        )
    return True
