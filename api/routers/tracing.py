"""Contact tracing: a person's contacts as JSON or CSV, and marking chosen contacts.

Health officers and administrators (TRACE_CONTACTS); every trace and mark is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import Allowed, Conn
from api.naming import add_names
from api.permissions import Permission
from gateway.domain.tracing import (
    MIN_OVERLAP_S,
    SECOND_MAX_SEEDS,
    SECOND_MAX_SEEDS_LIMIT,
    SECOND_MIN_EXPOSURE_S,
    Contact,
    TraceResult,
)
from gateway.services.tracing import (
    MAX_WINDOW_DAYS,
    TraceRequest,
    contacts_csv,
    mark_close_contacts,
    trace,
)
from gateway.settings import Settings
from gateway.store.zones import zone_names_of

router = APIRouter(prefix="/api/tracing", tags=["tracing"])
Tracer = Allowed(Permission.TRACE_CONTACTS)
PersonId = Annotated[str, Field(min_length=1, max_length=200)]


class MarkRequest(BaseModel):
    contacts: list[PersonId] = Field(min_length=1, max_length=5000)
    reason: str = Field(min_length=1, max_length=2000)


def _contact(c: Contact) -> dict[str, Any]:
    return {
        "person_id": c.person_id,
        "name": c.name,
        "generation": c.generation,
        "method": c.method.value,
        "zones": list(c.zones),
        "first_encounter": c.first_encounter,
        "last_encounter": c.last_encounter,
        "exposure_s": c.exposure_s,
        "overlap_s": c.overlap_s,
        "encounters": c.encounters,
        "proximity_encounters": c.proximity_encounters,
        "via": list(c.via),
    }


def _body(result: TraceResult) -> dict[str, Any]:
    w = result.window
    return {
        "person_id": result.person_id,
        "name": result.name,
        "from": w.start,
        "to": w.end,
        "generations": result.generations,
        "min_overlap_s": w.min_overlap_s,
        "entry_gap_s": w.entry_gap_s,
        "max_stay_s": w.max_stay_s,
        "truncated": result.truncated,
        "second_min_exposure_s": result.second_min_exposure_s,
        "second_max_seeds": result.second_max_seeds,
        "second_seeds": list(result.second_seeds),
        "second_seeds_eligible": result.second_seeds_eligible,
        "second_seeds_truncated": result.second_seeds_truncated,
        "count": len(result.contacts),
        "contacts": [_contact(c) for c in result.contacts],
    }


@router.get("/{person_id}", response_model=None)
async def trace_person(
    person_id: str,
    request: Request,
    operator: Tracer,
    conn: Conn,
    days: Annotated[int | None, Query(ge=1, le=MAX_WINDOW_DAYS)] = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    generations: Annotated[int, Query(ge=1, le=2)] = 1,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    min_overlap_s: Annotated[float, Query(ge=0, le=86_400)] = MIN_OVERLAP_S,
    second_min_exposure_s: Annotated[float, Query(ge=0, le=86_400 * 60)] = SECOND_MIN_EXPOSURE_S,
    second_max_seeds: Annotated[int, Query(ge=1, le=SECOND_MAX_SEEDS_LIMIT)] = SECOND_MAX_SEEDS,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """Everyone who shared a zone with the person, ranked by exposure (`format=csv`: a file).

    `generations=2` also traces the contacts of the close first-generation contacts:
    exposure at least `second_min_exposure_s`, the top `second_max_seeds` of them
    (`second_seeds`; `second_seeds_truncated` when the cap left some out).
    """
    settings: Settings = request.app.state.settings
    query = TraceRequest(
        person_id,
        start,
        end,
        days,
        generations,
        limit,
        min_overlap_s,
        second_min_exposure_s=second_min_exposure_s,
        second_max_seeds=second_max_seeds,
    )
    result = await trace(conn, query, settings, by=operator.name)
    if format == "csv":
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in person_id)[:60]
        return Response(
            contacts_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="contacts-{safe}.csv"',
                "X-Second-Seeds": str(len(result.second_seeds)),
                "X-Second-Seeds-Truncated": str(result.second_seeds_truncated).lower(),
            },
        )
    body = _body(result)
    # Zone names for the page (ids stay in `zones`; the page shows names, ids on hover).
    body["zone_names"] = await zone_names_of(conn, (z for c in result.contacts for z in c.zones))
    return body


@router.post("/{person_id}/mark")
async def mark_contacts(
    person_id: str, body: MarkRequest, request: Request, operator: Tracer, conn: Conn
) -> dict[str, Any]:
    """Mark chosen contacts `close_contact` until now + isolation days, with caretakers.

    Stronger statuses (suspected, confirmed) and longer isolations are left alone and
    listed under `skipped` with the reason.
    """
    settings: Settings = request.app.state.settings
    outcome = await mark_close_contacts(
        conn,
        person_id,
        body.contacts,
        reason=body.reason,
        by=operator.name,
        isolation_days=settings.isolation_days,
    )
    marked = [{"person_id": p, "caretaker_id": c} for p, c in outcome.marked]
    reassigned = [r.as_dict() for r in outcome.reassigned]
    await add_names(conn, [*marked, *reassigned])
    return {
        "person_id": person_id,
        "until": outcome.until,
        "marked": marked,
        "skipped": [{"person_id": p, "why": why} for p, why in outcome.skipped],
        "reassigned": reassigned,
    }
