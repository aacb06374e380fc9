"""Travel declarations and the epidemic areas they are checked against."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp


class EpidemicArea(BaseModel):
    id: int
    name: str
    match: str
    effective_from: date = Field(description="campus-local, inclusive")
    effective_until: date | None = Field(description="campus-local, inclusive; null: open")
    created_by: str
    created_at: Timestamp
    updated_by: str
    updated_at: Timestamp
    division_code: str | None
    place_match: str | None = Field(description="what `match` resolved to, for people")
    match_terms: list[str] | None


class TravelDeclaration(BaseModel):
    id: int
    person_id: str
    person_name: str
    org_unit_id: str | None
    destination: str
    departure_date: date
    return_date: date
    note: str
    declared_by: str
    declared_at: Timestamp
    source: Literal["api", "csv", "person"] = Field(
        description="`person`: planned by the person from their own page"
    )
    matched_areas: list[str] = Field(description="names of listed areas that matched last")
    evaluated_at: Timestamp | None
    isolated_at: Timestamp | None
    lifted_at: Timestamp | None
    waived_by: str | None
    waived_at: Timestamp | None
    divisions: list[str] | None
    place_match: str | None
    planned: bool = Field(description="declared ahead by the person")
    approval: Literal["not_needed", "pending", "approved", "refused"]
    approval_by: str | None
    approval_at: Timestamp | None
    approval_note: str
    returned_at: Timestamp | None = Field(description="when the person declared their return")
    cancelled_at: Timestamp | None = Field(description="the person called the plan off")
