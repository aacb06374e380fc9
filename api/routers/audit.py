"""The audit log (read only: the table refuses UPDATE and DELETE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Allowed, Conn
from api.permissions import Permission
from api.schemas.audit import AuditEntry
from gateway.store import audit

router = APIRouter(prefix="/api/audit", tags=["audit"])
Reader = Allowed(Permission.READ_AUDIT)


@router.get("", response_model=list[AuditEntry])
async def list_audit(
    _: Reader,
    conn: Conn,
    entity: str | None = None,
    operator: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[audit.AuditEntry]:
    return await audit.list_audit(
        conn, entity=entity, operator=operator, limit=limit, offset=offset
    )
