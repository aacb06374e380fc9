"""The audit log."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.schemas.common import Timestamp


class AuditEntry(BaseModel):
    id: int
    operator: str
    action: str
    entity: str
    entity_id: str | None
    before: Any
    after: Any
    ts: Timestamp
