"""The audit log: who changed what and when (append-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


async def record_audit(
    conn: asyncpg.Connection,
    operator: str,
    action: str,
    entity: str,
    entity_id: str | None = None,
    *,
    before: object = None,
    after: object = None,
) -> None:
    """Append one entry; `before` and `after` are JSON-serialisable snapshots."""
    await conn.execute(
        "INSERT INTO audit_log (operator, action, entity, entity_id, before, after) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        operator,
        action,
        entity,
        entity_id,
        before,
        after,
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    operator: str
    action: str
    entity: str
    entity_id: str | None
    before: Any
    after: Any
    ts: datetime


async def list_audit(
    conn: asyncpg.Connection,
    *,
    entity: str | None,
    operator: str | None,
    limit: int,
    offset: int,
) -> list[AuditEntry]:
    """Entries by filter, newest first."""
    rows = await conn.fetch(
        "SELECT id, operator, action, entity, entity_id, before, after, ts FROM audit_log "
        "WHERE ($1::text IS NULL OR entity = $1) AND ($2::text IS NULL OR operator = $2) "
        "ORDER BY id DESC LIMIT $3 OFFSET $4",
        entity,
        operator,
        limit,
        offset,
    )
    return [AuditEntry(*r) for r in rows]
