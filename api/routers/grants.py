"""Grants: who may enter which zone, when."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field, field_validator, model_validator

from api.deps import Allowed, Conn
from api.permissions import Permission
from api.roster import Moment
from api.schemas.grants import Grant
from gateway.domain.roster import PersonKind
from gateway.domain.schedule import parse_schedule
from gateway.services.operations import create_grant, remove_grant
from gateway.store import grants
from gateway.store.grants import GrantRow

router = APIRouter(prefix="/api/grants", tags=["grants"])
Reader = Allowed(Permission.READ_GRANTS)
Writer = Allowed(Permission.WRITE_GRANTS)
GrantId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class NewGrant(BaseModel):
    subject_person: str | None = Field(default=None, min_length=1, max_length=200)
    subject_org_unit: str | None = Field(default=None, min_length=1, max_length=200)
    subject_kind: PersonKind | None = None
    zone_id: str = Field(min_length=1, max_length=200)
    schedule: str | None = Field(default=None, max_length=200)
    valid_from: Moment | None = None
    valid_until: Moment | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value:
            parse_schedule(value)  # raises ValueError naming the problem
        return value or None

    @model_validator(mode="after")
    def _one_subject(self) -> NewGrant:
        given = [self.subject_person, self.subject_org_unit, self.subject_kind]
        if sum(v is not None for v in given) != 1:
            raise ValueError("give exactly one of subject_person, subject_org_unit, subject_kind")
        # A grant that ends before it begins could never apply. astimezone: a naive and an
        # aware time do not compare (a TypeError, a 500).
        start, end = self.valid_from, self.valid_until
        if start and end and end.astimezone(UTC) <= start.astimezone(UTC):
            raise ValueError("valid_until must lie after valid_from")
        return self


@router.get("", response_model=list[Grant])
async def list_grants(
    _: Reader, conn: Conn, zone: str | None = None, person: str | None = None
) -> list[GrantRow]:
    return await grants.list_grants(conn, zone_id=zone, person_id=person)


@router.get("/{grant_id}", response_model=Grant)
async def get_grant(grant_id: GrantId, _: Reader, conn: Conn) -> GrantRow:
    grant = await grants.get_grant(conn, grant_id)
    if grant is None:
        raise HTTPException(404, f"no grant {grant_id}")
    return grant


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Grant)
async def add_grant(body: NewGrant, operator: Writer, conn: Conn) -> GrantRow:
    grant = body.model_dump()
    if body.subject_kind is not None:
        grant["subject_kind"] = body.subject_kind.value
    return await create_grant(conn, grant, by=operator.name)


@router.delete("/{grant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_grant(grant_id: GrantId, operator: Writer, conn: Conn) -> None:
    await remove_grant(conn, grant_id, by=operator.name)
