"""Travel declarations (liaisons for their org unit, health officers, admins) and the
epidemic area list (MANAGE_AREAS). Every change is audited and re-evaluates open
declarations at once (rules: gateway/services/travel.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, UploadFile, status
from pydantic import BaseModel, Field, model_validator

from api.deps import Allowed, Conn, OrgScope, ensure_in_scope
from api.permissions import Permission
from api.schemas.travel import EpidemicArea, TravelDeclaration
from api.schemas.trip_plans import PlanDecision, PlanDecisionIn
from gateway.services import travel as service
from gateway.services.travel_import import TravelImportError, import_declarations
from gateway.services.travel_preview import preview_area
from gateway.services.trip_plans import decide_plan
from gateway.store import travel as store

router = APIRouter(prefix="/api/travel", tags=["travel"])
Declarer = Allowed(Permission.DECLARE_TRAVEL)
AreaManager = Allowed(Permission.MANAGE_AREAS)
Waiver = Allowed(Permission.WRITE_HEALTH)
MAX_BYTES = 8 * 1024 * 1024
# Farther out than this a date is a typing mistake, not a trip.
_MAX_YEARS = 2
# An area's listing may start in the past (people already back are caught), but not
# farther back than this: a trip that old has no isolation left to apply.
MAX_BACKDATE_DAYS = 366


def _check_dates(first: date, last: date | None, names: tuple[str, str]) -> None:
    if last is not None and last < first:
        raise ValueError(f"{names[1]} lies before {names[0]}")
    today = date.today()
    for value in (first, last):
        if value is not None and abs((value - today).days) > 366 * _MAX_YEARS:
            raise ValueError(f"dates more than {_MAX_YEARS} years away are refused")


# Some text that is not all whitespace, and no control characters: Python's str.strip()
# also strips the C0 separators (\x1c-\x1f) that the regex's \s does not know, so a name
# made of them passed the pattern and was stored empty (a 500 from the database).
_PLACE_TEXT = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


class DeclarationIn(BaseModel):
    person_id: str = Field(min_length=1, max_length=200)
    destination: str = Field(min_length=1, max_length=500, pattern=_PLACE_TEXT)
    departure_date: date
    return_date: date
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _dates(self) -> DeclarationIn:
        _check_dates(self.departure_date, self.return_date, ("departure_date", "return_date"))
        return self


class AreaIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=_PLACE_TEXT)
    match: str | None = Field(default=None, min_length=1, max_length=200, pattern=_PLACE_TEXT)
    # Since when the area is an epidemic area; may lie in the past. Default: today minus
    # the isolation days (14), so whoever came back from it within them is caught.
    effective_from: date | None = None
    effective_until: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> AreaIn:
        if self.effective_from is not None:
            _check_dates(
                self.effective_from, self.effective_until, ("effective_from", "effective_until")
            )
        elif self.effective_until is not None:
            _check_dates(self.effective_until, None, ("effective_until", "effective_until"))
        return self


class AreaPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=_PLACE_TEXT)
    match: str | None = Field(default=None, min_length=1, max_length=200, pattern=_PLACE_TEXT)
    effective_from: date | None = None
    effective_until: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> AreaPatch:
        # The order against the stored dates is checked by the service.
        for value in (self.effective_from, self.effective_until):
            if value is not None:
                _check_dates(value, None, ("effective_from", "effective_until"))
        return self


def _rules(request: Request) -> service.TravelRules:
    settings = request.app.state.settings
    return service.TravelRules(settings.isolation_days, settings.tz)


@router.get("/declarations", response_model=list[TravelDeclaration])
async def list_declarations(
    operator: Declarer,
    scope: OrgScope,
    conn: Conn,
    request: Request,
    person_id: Annotated[str | None, Query(max_length=200)] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Newest returns first; `open=true`: only those whose isolation period is not over."""
    since = None
    if open_only:
        rules = _rules(request)
        today = datetime.now(rules.tz).date()
        since = today - timedelta(days=rules.isolation_days - 1)
    return await store.list_declarations(
        conn,
        person_id=person_id,
        org_scope=scope,
        returned_since=since,
        limit=limit,
        offset=offset,
    )


@router.post("/declarations", status_code=status.HTTP_201_CREATED)
async def declare(
    body: DeclarationIn, operator: Declarer, scope: OrgScope, request: Request, conn: Conn
) -> dict[str, Any]:
    """File a trip for a person (a liaison: only for people of their org unit). The
    answer holds the declaration and what the evaluation changed."""
    await ensure_in_scope(conn, scope, body.person_id)
    trip = service.Trip(
        body.person_id, body.destination, body.departure_date, body.return_date, body.note
    )
    ids, evaluation = await service.declare(conn, [trip], _rules(request), by=operator.name)
    declaration = await store.get_declaration(conn, ids[0])
    return {"declaration": declaration, "evaluation": evaluation.as_dict()}


@router.post("/declarations/import")
async def import_file(
    file: UploadFile, operator: Declarer, scope: OrgScope, request: Request, conn: Conn
) -> dict[str, Any]:
    """A CSV of declarations (person_id,destination,departure_date,return_date[,note]),
    checked whole first: one error naming the row, and nothing written."""
    name = file.filename or "declarations.csv"
    body = await file.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise HTTPException(413, "file too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _file_error(f"{name}: not UTF-8 text") from None
    try:
        rows, ids, evaluation = await import_declarations(
            conn, text, name, _rules(request), by=operator.name, org_scope=scope
        )
    except TravelImportError as exc:
        raise _file_error(f"{exc}; nothing was imported") from None
    return {"source": name, "rows": rows, "declarations": ids, "evaluation": evaluation.as_dict()}


def _file_error(message: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", "file"], "msg": message, "type": "travel_csv"}])


@router.post("/declarations/{declaration_id}/waive")
async def waive(
    declaration_id: int, operator: Waiver, request: Request, conn: Conn
) -> dict[str, Any]:
    """Exempt a trip (health officers); an isolation it alone caused is lifted."""
    declaration, evaluation = await service.waive_declaration(
        conn, declaration_id, _rules(request), by=operator.name
    )
    return {"declaration": declaration, "evaluation": evaluation.as_dict()}


@router.get("/areas", response_model=list[EpidemicArea])
async def list_areas(operator: Declarer, conn: Conn) -> list[dict[str, Any]]:
    return await store.list_areas(conn)


def _refuse_backdating(start: date, rules: service.TravelRules) -> None:
    if (datetime.now(rules.tz).date() - start).days > MAX_BACKDATE_DAYS:
        raise _field_error(
            "effective_from",
            f"effective_from more than {MAX_BACKDATE_DAYS} days back is refused: a trip "
            f"that old has no isolation left (the default is {rules.isolation_days} days back)",
        )


def _area_values(body: AreaIn, rules: service.TravelRules) -> dict[str, Any]:
    """The area to list: match defaults to the name, effective_from to isolation days back."""
    today = datetime.now(rules.tz).date()
    start = body.effective_from or today - timedelta(days=rules.isolation_days)
    _refuse_backdating(start, rules)
    if body.effective_until is not None and body.effective_until < start:
        raise _field_error("effective_until", "effective_until lies before effective_from")
    return {
        "name": body.name.strip(),
        "match": (body.match or body.name).strip(),
        "effective_from": start,
        "effective_until": body.effective_until,
    }


@router.post("/areas/preview")
async def preview_new_area(
    body: AreaIn, operator: AreaManager, request: Request, conn: Conn
) -> dict[str, Any]:
    """What listing this area would do, written nowhere: the division its match names and
    every trip it covers (person, destination, matched division, proposed until, outcome).
    Confirm by POSTing the same body to /api/travel/areas."""
    rules = _rules(request)
    values = _area_values(body, rules)
    return await preview_area(conn, values, rules, by=operator.name)


@router.post("/areas", status_code=status.HTTP_201_CREATED)
async def add_area(
    body: AreaIn, operator: AreaManager, request: Request, conn: Conn
) -> dict[str, Any]:
    """List an area; `match` (default: the name) is resolved to an administrative division
    (or, for a place outside China's gazetteer, looked for as text in destinations)."""
    rules = _rules(request)
    values = _area_values(body, rules)
    area, evaluation = await service.add_area(conn, values, rules, by=operator.name)
    return {"area": area, "evaluation": evaluation.as_dict()}


@router.patch("/areas/{area_id}")
async def change_area(
    area_id: int, body: AreaPatch, operator: AreaManager, request: Request, conn: Conn
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    for key in ("name", "match", "effective_from"):
        if key in changes and changes[key] is None:
            raise _field_error(key, f"{key} cannot be null")
    rules = _rules(request)
    if "effective_from" in changes:
        _refuse_backdating(changes["effective_from"], rules)
    area, evaluation = await service.change_area(conn, area_id, changes, rules, by=operator.name)
    return {"area": area, "evaluation": evaluation.as_dict()}


@router.delete("/areas/{area_id}")
async def remove_area(
    area_id: int, operator: AreaManager, request: Request, conn: Conn
) -> dict[str, Any]:
    """Delist an area; isolations it alone caused are lifted (officers' statuses stay)."""
    evaluation = await service.remove_area(conn, area_id, _rules(request), by=operator.name)
    return {"removed": area_id, "evaluation": evaluation.as_dict()}


def _field_error(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


@router.get("/plans/pending", response_model=list[TravelDeclaration])
async def pending_plans(operator: Declarer, scope: OrgScope, conn: Conn) -> list[dict[str, Any]]:
    """Trips people planned that wait for approval (a liaison: their unit's), soonest first."""
    return await store.pending_plans(conn, scope)


@router.post("/plans/{declaration_id}/approve", response_model=PlanDecision)
async def approve_plan(
    declaration_id: int,
    body: PlanDecisionIn,
    operator: Declarer,
    scope: OrgScope,
    request: Request,
    conn: Conn,
) -> dict[str, Any]:
    """Let a planned trip go ahead (audited)."""
    return await _decide(declaration_id, body, operator.name, scope, request, conn, approve=True)


@router.post("/plans/{declaration_id}/refuse", response_model=PlanDecision)
async def refuse_plan(
    declaration_id: int,
    body: PlanDecisionIn,
    operator: Declarer,
    scope: OrgScope,
    request: Request,
    conn: Conn,
) -> dict[str, Any]:
    """Refuse a planned trip (audited); the note tells the person why."""
    return await _decide(declaration_id, body, operator.name, scope, request, conn, approve=False)


async def _decide(
    declaration_id: int,
    body: PlanDecisionIn,
    by: str,
    scope: str | None,
    request: Request,
    conn: Conn,
    *,
    approve: bool,
) -> dict[str, Any]:
    outcome = await decide_plan(
        conn, declaration_id, approve=approve, note=body.note, by=by,
        rules=_rules(request), org_scope=scope,
    )  # fmt: skip
    return {
        "declaration": outcome.declaration,
        "matched_areas": outcome.matched_areas,
        "evaluation": outcome.evaluation.as_dict(),
    }
