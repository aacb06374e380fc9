"""Visitor passes and their QR tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import Timestamp


class VisitorPass(BaseModel):
    id: int
    host_id: str
    host_unit_id: str | None
    visitor_name: str
    phone: str = Field(description="masked unless unmasked (UNMASK, audited)")
    id_number: str = Field(description="masked unless unmasked (UNMASK, audited)")
    contact_masked: bool
    reason: str
    zones: list[str]
    starts_at: Timestamp
    ends_at: Timestamp
    places: list[str] = Field(description="where the visitor was in the last 14 days")
    area_matches: list[str] = Field(
        description="epidemic areas those places fell in when requested; approval then "
        "needs accept_area_match and a note"
    )
    status: Literal["pending", "approved", "refused", "revoked"]
    requested_by: str
    requested_at: Timestamp
    decided_by: str | None
    decided_at: Timestamp | None
    note: str | None
    visitor_person_id: str | None = Field(description="the roster person, once approved")
    card_uid: str | None = Field(description="the visitor card, once approved")
    overstay_alerted_at: Timestamp | None
    qr_available: bool


class VisitorQr(BaseModel):
    pass_id: int
    token: str = Field(description="CGQ1 token text to render as a QR code (docs/protocol.md)")
    ends_at: Timestamp
