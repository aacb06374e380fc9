"""Today's counts: admitted, denied by reason, fevers, alerts by kind (campus day)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from api.deps import Allowed, Conn
from api.permissions import Permission
from api.routers.people import scope_of
from gateway.store import console

router = APIRouter(prefix="/api/reports", tags=["reports"])
Reader = Allowed(Permission.READ_COUNTS)


@router.get("/today")
async def today(operator: Reader, request: Request, conn: Conn) -> dict[str, Any]:
    tz = request.app.state.settings.tz
    midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return await console.counts_since(conn, midnight, scope_of(operator))
