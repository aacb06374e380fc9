"""Grants: who may enter which zone, when."""

from __future__ import annotations

from pydantic import BaseModel

from api.schemas.common import Timestamp
from gateway.domain.roster import PersonKind


class Grant(BaseModel):
    id: int
    subject_person: str | None
    subject_org_unit: str | None
    subject_kind: PersonKind | None
    zone_id: str
    schedule: str | None
    valid_from: Timestamp | None
    valid_until: Timestamp | None
