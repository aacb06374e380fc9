"""Privacy: the export of everything held about one person, and the retention run on demand."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from api.deps import Allowed, Conn
from api.permissions import Permission
from gateway.services.person_export import export_person
from gateway.services.retention import AccessMode, run_retention

router = APIRouter(tags=["privacy"])
Exporter = Allowed(Permission.EXPORT_PERSON)
Purger = Allowed(Permission.RUN_RETENTION)
_UNSAFE_FILENAME = re.compile(r"[^0-9A-Za-z._-]+")


class RetentionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False
    mode: AccessMode = AccessMode.DELETE


@router.get(
    "/api/people/{person_id}/export",
    responses={200: {"description": "the person's record as a JSON download"}},
)
async def export(person_id: str, operator: Exporter, conn: Conn) -> Response:
    """Everything held about the person (full contact details); the export is audited."""
    document = await export_person(conn, person_id, by=operator.name, now=datetime.now(UTC))
    filename = f"person-{_UNSAFE_FILENAME.sub('_', person_id)[:80]}.json"
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/api/admin/retention")
async def retention(
    body: RetentionRequest, operator: Purger, request: Request, conn: Conn
) -> dict[str, Any]:
    """Run retention now (or only count with dry_run); a real run is audited."""
    report = await run_retention(
        conn,
        request.app.state.settings,
        datetime.now(UTC),
        mode=body.mode,
        dry_run=body.dry_run,
        requested_by=operator.name,
    )
    return report.as_dict()
