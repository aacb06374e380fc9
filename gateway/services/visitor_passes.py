"""Visitor passes (issue 15, point 5): a host requests, the host's liaison or an admin
decides, an approved pass becomes roster data the doors already understand.

Approval writes, through the roster's own write paths (services.roster_admin,
store.roster_write), a person of kind `visitor` in the host's org unit, valid until the
pass's end, a random 10-byte card, and one grant per zone valid exactly from the pass's
start to its end; the roster NOTIFY makes every gateway reload. So before the start, or
outside the zones, the door says `not_authorized`; after the end (the holder expired) and
for a revoked pass's card, `card_revoked` when entering, while leaving stays free. Grants
given to the `visitor` kind as a whole apply to a pass's visitor from approval to the
pass's end (the holder has an end, not a start). Response
levels and temperature rules apply as to any visitor. Every step is audited.

A pass naming a `lab` zone needs an approver who may write grants (an admin): a liaison
must not open a lab to an outsider. Nobody approves a pass they host.

Places of the last 14 days are matched against the epidemic areas at request time (the
travel rules' matching); a pass with a match is shown with it and is not approved
unless the approver accepts the match explicitly, with a note.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from gateway.domain.privacy import normalize_id_number, normalize_phone
from gateway.domain.roster import Grant, GrantSubject, PersonKind
from gateway.domain.travel import TravelDeclaration, matching_areas
from gateway.services import places, roster_admin
from gateway.services.errors import (
    ConflictError,
    InvalidReferenceError,
    InvalidValueError,
    NotAllowedError,
    NotFoundError,
)
from gateway.store import roster_write
from gateway.store import travel as travel_store
from gateway.store import visitor_passes as store
from gateway.store.audit import record_audit

PLACES_DAYS = 14  # the places asked for: the visitor's last 14 days
# How far back a pass may start: a visit already under way may be registered late.
MAX_BACKDATE = timedelta(days=1)
MAX_AHEAD = timedelta(days=90)  # a start farther out is a typing mistake
CARD_BYTES = 10


@dataclass(frozen=True, slots=True)
class PassRules:
    max_days: int  # CAMPUSGATE_VISITOR_PASS_MAX_DAYS


@dataclass(frozen=True, slots=True)
class PassRequest:
    host_id: str
    visitor_name: str
    phone: str
    id_number: str
    reason: str
    zones: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    places: tuple[str, ...] = ()


class PassStateError(ConflictError, ValueError):
    """A decision that does not fit the pass's status (or an unaccepted area match)."""


def visitor_person_id(pass_id: int) -> str:
    return f"visitor-pass-{pass_id}"


def _check_window(request: PassRequest, rules: PassRules, now: datetime) -> None:
    if request.starts_at.tzinfo is None or request.ends_at.tzinfo is None:
        raise InvalidValueError("starts_at and ends_at need a UTC offset", "starts_at")
    if request.ends_at <= request.starts_at:
        raise InvalidValueError("ends_at must lie after starts_at", "ends_at")
    if request.ends_at - request.starts_at > timedelta(days=rules.max_days):
        raise InvalidValueError(
            f"a pass spans at most {rules.max_days} days (CAMPUSGATE_VISITOR_PASS_MAX_DAYS)",
            "ends_at",
        )
    if request.ends_at <= now:
        raise InvalidValueError("ends_at lies in the past", "ends_at")
    if request.starts_at < now - MAX_BACKDATE:
        raise InvalidValueError("starts_at lies more than a day in the past", "starts_at")
    if request.starts_at > now + MAX_AHEAD:
        raise InvalidValueError("starts_at lies more than 90 days ahead", "starts_at")


async def _check_host(conn: asyncpg.Connection, host_id: str) -> str | None:
    """The host's org unit; the host must be an active staff member."""
    host = await store.host_of(conn, host_id)
    if host is None:
        raise InvalidReferenceError("host_id", f"unknown host {host_id!r}")
    kind, unit, active = host
    if kind != PersonKind.STAFF.value or not active:
        raise InvalidReferenceError("host_id", f"host {host_id!r} is not active staff")
    return unit


async def _area_matches(
    conn: asyncpg.Connection, visited: tuple[str, ...], now: datetime, tz: Any
) -> list[str]:
    """Names of the epidemic areas the visitor's places of the last 14 days fall in."""
    if not visited:
        return []
    today = now.astimezone(tz).date()
    first = today - timedelta(days=PLACES_DAYS)
    areas = await travel_store.load_areas(conn)
    found: list[str] = []
    for place in visited:
        trip = TravelDeclaration(0, "", place, first, today, divisions=places.resolve(place).codes)
        found.extend(a.name for a in matching_areas(trip, areas) if a.name not in found)
    return found


async def request_pass(
    conn: asyncpg.Connection,
    request: PassRequest,
    rules: PassRules,
    *,
    by: str,
    now: datetime,
    tz: Any,
) -> dict[str, Any]:
    """Store a pending pass (checked whole first); the stored row, audited."""
    _check_window(request, rules, now)
    try:
        phone, id_number = normalize_phone(request.phone), normalize_id_number(request.id_number)
    except ValueError as exc:
        field = "phone" if str(exc).startswith("phone") else "id_number"
        raise InvalidValueError(str(exc), field) from None
    async with conn.transaction():
        unit = await _check_host(conn, request.host_id)
        if missing := await store.missing_zones(conn, request.zones):
            raise InvalidReferenceError("zones", f"unknown zone {missing[0]!r}")
        matches = await _area_matches(conn, request.places, now, tz)
        pass_id = await store.insert_pass(
            conn,
            {
                "host_id": request.host_id,
                "host_unit_id": unit,
                "visitor_name": request.visitor_name,
                "phone": phone,
                "id_number": id_number,
                "reason": request.reason,
                "zones": list(dict.fromkeys(request.zones)),
                "starts_at": request.starts_at,
                "ends_at": request.ends_at,
                "places": list(request.places),
                "area_matches": matches,
                "requested_by": by,
            },
        )
        row = await store.get_pass(conn, pass_id)
        assert row is not None
        await record_audit(conn, by, "request", "visitor_pass", str(pass_id), after=_audited(row))
    return row


def _audited(row: dict[str, Any]) -> dict[str, Any]:
    """A pass for the audit log: no contact values (who saw them is audited apart)."""
    hidden = {"phone", "id_number"}
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in row.items()
        if k not in hidden
    }


async def pass_in_scope(
    conn: asyncpg.Connection, pass_id: int, scope: str | None, *, lock: bool = False
) -> dict[str, Any]:
    """The pass, if the operator's org scope covers the host's unit; NotFoundError else."""
    row = await store.get_pass(conn, pass_id, lock=lock)
    if row is None or (
        scope is not None and not await store.unit_in_scope(conn, row["host_unit_id"], scope)
    ):
        raise NotFoundError(f"no visitor pass {pass_id}")
    return row


async def _new_card_uid(conn: asyncpg.Connection) -> str:
    while True:
        uid = secrets.token_bytes(CARD_BYTES).hex().upper()
        if not await store.card_taken(conn, uid):
            return uid


async def approve(
    conn: asyncpg.Connection,
    pass_id: int,
    scope: str | None,
    *,
    by: str,
    note: str | None,
    accept_area_match: bool = False,
    may_open_labs: bool = False,
) -> dict[str, Any]:
    """Approve a pending pass: its visitor, card and grants go into the roster.

    `may_open_labs`: the approver may write grants (an admin); only then may a pass that
    names a `lab` zone be approved (NotAllowedError else), as may no pass its host approves.
    """
    async with conn.transaction():
        row = await pass_in_scope(conn, pass_id, scope, lock=True)
        if row["status"] != "pending":
            raise PassStateError(f"visitor pass {pass_id} is {row['status']}, not pending")
        if by == row["host_id"]:
            raise NotAllowedError(
                f"visitor pass {pass_id} is hosted by {by!r}: a host may not approve their own "
                "pass; another liaison or an admin must"
            )
        if not may_open_labs and (labs := await store.lab_zones(conn, row["zones"])):
            raise NotAllowedError(
                f"visitor pass {pass_id} includes lab zone(s) {', '.join(labs)}: "
                "an admin must approve it (no outsiders in labs without one)"
            )
        if row["area_matches"] and not (accept_area_match and note):
            raise PassStateError(
                f"the visitor was in epidemic areas ({', '.join(row['area_matches'])}): "
                "refuse the pass, or approve with accept_area_match and a note"
            )
        person_id = visitor_person_id(pass_id)
        uid = await _new_card_uid(conn)
        person = {
            "id": person_id,
            "kind": PersonKind.VISITOR.value,
            "name": row["visitor_name"],
            "org_unit_id": row["host_unit_id"],
            # The holder expires with the pass: its card and any grant of the `visitor`
            # kind as a whole stop opening doors at the end (card_revoked; leaving is free).
            "valid_until": row["ends_at"],
        }
        await roster_admin.create(conn, "person", person, by=by, cards=[uid])
        grants = [
            Grant(GrantSubject(person_id=person_id), zone, None, row["starts_at"], row["ends_at"])
            for zone in row["zones"]
        ]
        await roster_write.upsert_grants(conn, grants)
        await store.set_decision(
            conn, pass_id, "approved", by=by, note=note, visitor_person_id=person_id, card_uid=uid
        )
        after = await store.get_pass(conn, pass_id)
        assert after is not None
        await record_audit(
            conn, by, "approve", "visitor_pass", str(pass_id), before=_audited(row),
            after=_audited(after),
        )  # fmt: skip
    return after


async def refuse(
    conn: asyncpg.Connection, pass_id: int, scope: str | None, *, by: str, note: str
) -> dict[str, Any]:
    """Refuse a pending pass; nothing is issued."""
    return await _close(conn, pass_id, scope, "refused", ("pending",), by=by, note=note)


async def revoke(
    conn: asyncpg.Connection, pass_id: int, scope: str | None, *, by: str, note: str | None
) -> dict[str, Any]:
    """Revoke a pending or approved pass; an issued card is revoked (card_revoked)."""
    return await _close(conn, pass_id, scope, "revoked", ("pending", "approved"), by=by, note=note)


async def _close(
    conn: asyncpg.Connection,
    pass_id: int,
    scope: str | None,
    status: str,
    allowed_from: tuple[str, ...],
    *,
    by: str,
    note: str | None,
) -> dict[str, Any]:
    async with conn.transaction():
        row = await pass_in_scope(conn, pass_id, scope, lock=True)
        if row["status"] not in allowed_from:
            raise PassStateError(f"visitor pass {pass_id} is {row['status']}: cannot be {status}")
        if row["card_uid"] is not None:
            await roster_admin.revoke_card(conn, row["card_uid"], by=by)
        await store.set_decision(conn, pass_id, status, by=by, note=note)
        after = await store.get_pass(conn, pass_id)
        assert after is not None
        action = "refuse" if status == "refused" else "revoke"
        await record_audit(
            conn, by, action, "visitor_pass", str(pass_id), before=_audited(row),
            after=_audited(after),
        )  # fmt: skip
    return after


def issued(row: dict[str, Any]) -> tuple[int, str, datetime]:
    """(pass id, card uid, end) of an approved pass, for its QR token; PassStateError else."""
    if row["status"] != "approved" or row["card_uid"] is None:
        raise PassStateError(f"visitor pass {row['id']} is {row['status']}: no QR code")
    return row["id"], row["card_uid"], row["ends_at"]
