"""Today's counts: admitted, denied by reason, fevers, alerts by kind (campus day)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from api.deps import Allowed, Conn, OrgScope
from api.permissions import Permission
from api.redaction import present_denied_counts, sees_health_alerts
from api.schemas.reports import TodayCounts
from gateway.store.stats import counts_since

router = APIRouter(prefix="/api/reports", tags=["reports"])
Reader = Allowed(Permission.READ_COUNTS)


@router.get("/today", response_model=TodayCounts)
async def today(operator: Reader, scope: OrgScope, request: Request, conn: Conn) -> dict[str, Any]:
    tz = request.app.state.settings.tz
    midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = asdict(await counts_since(conn, midnight, scope))
    role = operator.account.role
    if not sees_health_alerts(role):
        counts["denied_by_reason"] = present_denied_counts(counts["denied_by_reason"], role)
        counts["fevers"] = None  # withheld, as each fever event's reason is
    return counts
