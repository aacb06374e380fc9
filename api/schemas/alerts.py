"""Alerts, with their lifecycle on the one-alert answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp
from gateway.domain.alerts import AlertKind, AlertStatus, Severity


class Alert(BaseModel):
    id: str
    kind: AlertKind
    severity: Severity
    ts: Timestamp
    door: str | None
    zone: str | None
    device: str | None
    person: str | None
    detail: dict[str, Any] = Field(
        description="what the alert is about; for a health alert, roles without READ_HEALTH"
        " get only `card_uid` and `reason` (never a temperature)"
    )
    status: AlertStatus
    door_name: str | None
    zone_name: str | None
    person_name: str | None


class AlertStep(BaseModel):
    id: int
    status: AlertStatus
    operator: str | None
    note: str | None
    ts: Timestamp


class AlertWithHistory(Alert):
    history: list[AlertStep]
