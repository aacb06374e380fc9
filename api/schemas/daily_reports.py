"""Daily reports: the list, the units one may report on, one report with its lists."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from api.schemas.campus import OrgUnit
from api.schemas.common import Timestamp
from gateway.domain.reports import Audience, Channel


class ReportMeta(BaseModel):
    id: int
    day: date
    org_unit_id: str | None = Field(description="null: the campus-wide roll-up")
    org_unit_name: str | None
    audience: Audience
    generated_at: Timestamp
    generated_by: str
    scheduled: bool
    cutoff: Timestamp
    complete: bool | None


class DeliveryCounts(BaseModel):
    ok: int
    failed: int


class ReportListItem(ReportMeta):
    summary: dict[str, Any]
    deliveries: DeliveryCounts


class ReportsPage(BaseModel):
    items: list[ReportListItem]
    limit: int
    offset: int


class ReportUnits(BaseModel):
    campus: bool = Field(description="whether this operator may see the campus-wide roll-up")
    scheduled: list[str] = Field(description="the org units reports are generated for")
    units: list[OrgUnit]


class DeliveryAttempt(BaseModel):
    channel: Channel
    recipient: str
    sent_at: Timestamp
    status: str = Field(description="ok or failed")
    error: str | None
    sent_by: str


class Report(ReportMeta):
    summary: dict[str, Any] = Field(
        description="the numbers; for roles that see no health alerts, health reasons among"
        " `denied` count as `withheld`"
    )
    lists: dict[str, list[dict[str, Any]]] = Field(
        description="the rows behind the numbers; lists with health detail only for READ_HEALTH"
    )
    health_lists_hidden: bool
    deliveries: list[DeliveryAttempt]
