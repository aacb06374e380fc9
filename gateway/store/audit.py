"""The audit log: who changed what and when (append-only)."""

from __future__ import annotations

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
