"""Today's counts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp


class TodayCounts(BaseModel):
    since: Timestamp
    admitted: int
    denied: int
    denied_by_reason: dict[str, int] = Field(
        description="for roles that see no health alerts, health reasons count as `withheld`"
    )
    fevers: int | None = Field(description="null (withheld) for roles that see no health alerts")
    alerts_by_kind: dict[str, int] = Field(description="empty for a liaison (org-scoped)")
