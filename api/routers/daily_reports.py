"""Daily reports: list, read (JSON, CSV, XLSX, HTML), generate on demand, send and resend.

Lists with health detail (fevers, statuses, new isolations) appear only for roles with
READ_HEALTH, and for others a refused visitor's health reason reads `withheld`; a liaison sees and makes reports of their org unit and below only (not
the campus-wide roll-up).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import Allowed, Conn, OrgScope
from api.permissions import Permission, sees_health_details
from api.redaction import present_denied_counts
from api.schemas.daily_reports import Report, ReportsPage, ReportUnits
from gateway.domain.reports import Audience, DailyReport, Delivery, plain_lists
from gateway.services.reports.compute import UnitTree
from gateway.services.reports.delivery import XLSX_TYPE, filename
from gateway.services.reports.render_csv import render_csv
from gateway.services.reports.render_html import CONTENT_SECURITY_POLICY, render_html
from gateway.services.reports.render_xlsx import render_xlsx
from gateway.services.reports.service import generate_reports, send_report
from gateway.store import reports as store

router = APIRouter(prefix="/api/daily-reports", tags=["daily reports"])
Reader = Allowed(Permission.READ_REPORTS)
Sender = Allowed(Permission.SEND_REPORTS)
CAMPUS = "*"  # the org_unit value meaning the campus-wide roll-up


async def _visible_units(conn: Conn, scope: str | None) -> tuple[UnitTree, set[str] | None]:
    """The unit tree and the units this scope may see (None: all, and the campus)."""
    tree = UnitTree(await store.org_units(conn))
    if scope is None:
        return tree, None
    return tree, (tree.subtree(scope) if scope in tree else set())


def _deliveries(items: list[Delivery]) -> list[dict[str, Any]]:
    return [
        {
            "channel": d.channel.value,
            "recipient": d.recipient,
            "sent_at": d.sent_at,
            "status": d.status,
            "error": d.error,
            "sent_by": d.sent_by,
        }
        for d in items
    ]


def _meta(report: DailyReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "day": report.day,
        "org_unit_id": report.org_unit_id,
        "org_unit_name": (report.summary.get("org_unit") or {}).get("name"),
        "audience": report.audience.value,
        "generated_at": report.generated_at,
        "generated_by": report.generated_by,
        "scheduled": report.scheduled,
        "cutoff": report.cutoff,
        "complete": report.summary.get("complete"),
    }


async def _report_for(conn: Conn, scope: str | None, report_id: int) -> DailyReport:
    """The report, or 404 when unknown or outside a liaison's org unit."""
    report = await store.get_report(conn, report_id)
    if report is not None:
        _, visible = await _visible_units(conn, scope)
        if visible is None or report.org_unit_id in visible:
            return report
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {report_id}")


@router.get("", response_model=ReportsPage)
async def list_reports(
    operator: Reader,
    scope: OrgScope,
    conn: Conn,
    day: date | None = None,
    org_unit: Annotated[str | None, Query(max_length=200, description="'*': campus")] = None,
    audience: Audience | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    _, visible = await _visible_units(conn, scope)
    units: list[str | None] | None = None
    if org_unit is not None:
        units = [None if org_unit == CAMPUS else org_unit]
    if visible is not None:
        units = sorted(visible) if units is None else [u for u in units if u in visible]
    reports = await store.list_reports(
        conn, day=day, org_units=units, audience=audience, limit=limit, offset=offset
    )
    deliveries = await store.deliveries_of(conn, [r.id for r in reports])
    items = []
    for report in reports:
        mine = [d for d in deliveries if d.report_id == report.id]
        items.append(
            {
                **_meta(report),
                "summary": report.summary,
                "deliveries": {
                    "ok": sum(d.status == "ok" for d in mine),
                    "failed": sum(d.status == "failed" for d in mine),
                },
            }
        )
    return {"items": items, "limit": limit, "offset": offset}


@router.get("/units", response_model=ReportUnits)
async def report_units(operator: Reader, scope: OrgScope, conn: Conn) -> dict[str, Any]:
    """The org units this operator may report on, the scheduled ones first."""
    tree, visible = await _visible_units(conn, scope)
    top = tree.top_level()
    units = [u for u in tree.units.values() if visible is None or u.id in visible]
    units.sort(key=lambda u: (u.id not in top, u.id))
    return {
        "campus": visible is None,
        "scheduled": [u for u in top if visible is None or u in visible],
        "units": [{"id": u.id, "name": u.name, "parent_id": u.parent_id} for u in units],
    }


@router.get("/{report_id}", response_model=Report)
async def get_report(
    report_id: int, operator: Reader, scope: OrgScope, conn: Conn
) -> dict[str, Any]:
    report = await _report_for(conn, scope, report_id)
    with_health = sees_health_details(operator.account.role)
    lists = plain_lists(report.lists, with_health)
    deliveries = await store.deliveries_of(conn, [report.id])
    summary = dict(report.summary)
    if isinstance(summary.get("denied"), dict):
        summary["denied"] = present_denied_counts(summary["denied"], operator.account.role)
    return {
        **_meta(report),
        "summary": summary,
        "lists": lists,
        "health_lists_hidden": not with_health,
        "deliveries": _deliveries(deliveries),
    }


def _download(body: bytes, media_type: str, name: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{report_id}/csv")
async def report_csv(report_id: int, operator: Reader, scope: OrgScope, conn: Conn) -> Response:
    report = await _report_for(conn, scope, report_id)
    body = render_csv(report, with_health=sees_health_details(operator.account.role))
    return _download(body, "text/csv; charset=utf-8", filename(report, "csv"))


@router.get("/{report_id}/xlsx")
async def report_xlsx(report_id: int, operator: Reader, scope: OrgScope, conn: Conn) -> Response:
    report = await _report_for(conn, scope, report_id)
    with_health = sees_health_details(operator.account.role)
    body = await asyncio.to_thread(render_xlsx, report, with_health=with_health)
    return _download(body, XLSX_TYPE, filename(report, "xlsx"))


@router.get("/{report_id}/html")
async def report_html(report_id: int, operator: Reader, scope: OrgScope, conn: Conn) -> Response:
    report = await _report_for(conn, scope, report_id)
    with_health = sees_health_details(operator.account.role)
    page = await asyncio.to_thread(render_html, report, with_health=with_health)
    return Response(
        page,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


class GenerateIn(BaseModel):
    day: date
    org_unit: str | None = Field(
        default=None,
        max_length=200,
        description="an org unit id (with everything below it), '*' for the campus-wide "
        "roll-up; left out: the campus and every top-level unit (a liaison: their unit)",
    )
    audience: Audience | None = Field(default=None, description="left out: both")
    send: bool = False


@router.post("/generate", status_code=status.HTTP_201_CREATED)
async def generate(
    body: GenerateIn, operator: Sender, scope: OrgScope, request: Request, conn: Conn
) -> dict[str, Any]:
    tree, visible = await _visible_units(conn, scope)
    units: list[str | None] | None
    if body.org_unit == CAMPUS:
        units = [None]
    elif body.org_unit is not None:
        units = [body.org_unit]
    else:
        units = None if visible is None else [scope or ""]
    if visible is not None and (units is None or any(u not in visible for u in units)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a liaison reports on their org unit only")
    if units is not None and any(u is not None and u not in tree for u in units):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown org unit {body.org_unit!r}")
    settings = request.app.state.settings
    reports = await generate_reports(
        conn,
        day=body.day,
        settings=settings,
        by=operator.name,
        org_units=units,
        audiences=[body.audience] if body.audience else tuple(Audience),
        send=body.send,
    )
    deliveries = await store.deliveries_of(conn, [r.id for r in reports])
    return {
        "items": [
            {
                **_meta(r),
                "summary": r.summary,
                "deliveries": _deliveries([d for d in deliveries if d.report_id == r.id]),
            }
            for r in reports
        ]
    }


class SendIn(BaseModel):
    only_failed: bool = Field(default=False, description="only recipients whose last try failed")


@router.post("/{report_id}/send")
async def send(
    report_id: int,
    operator: Sender,
    scope: OrgScope,
    request: Request,
    conn: Conn,
    body: SendIn | None = None,
) -> dict[str, Any]:
    await _report_for(conn, scope, report_id)
    done = await send_report(
        conn,
        report_id,
        request.app.state.settings,
        by=operator.name,
        only_failed=bool(body and body.only_failed),
    )
    return {"deliveries": _deliveries(done)}
