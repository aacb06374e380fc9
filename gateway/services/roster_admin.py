"""Administrators' roster changes through the API: org units, zones, doors, devices,
people and their cards.

Each change runs in one transaction with its audit entry (before and after). Rows are
written with the import's upserts, so the running gateways reload through the same
roster NOTIFY as after `campusgate import`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain.roster import (
    CapacityMode,
    Card,
    Device,
    DeviceKind,
    Door,
    DoorDirection,
    OrgUnit,
    Person,
    PersonKind,
    Transport,
    Zone,
    ZoneKind,
)
from gateway.services.errors import ConflictError, InvalidReferenceError, NotFoundError
from gateway.store import roster_write
from gateway.store.audit import record_audit
from gateway.store.org_units import org_unit_ancestors

__all__ = [
    "AlreadyExistsError",
    "CardHeldError",
    "add_card",
    "create",
    "deactivate_person",
    "revoke_card",
    "update",
]


class AlreadyExistsError(ConflictError, ValueError):
    """Creating something whose id is taken."""


class CardHeldError(ConflictError, ValueError):
    """A card that another person already holds."""


@dataclass(frozen=True, slots=True)
class _Entity:
    table: str
    audit_name: str
    build: Callable[[dict[str, Any]], Any]
    upsert: Callable[[asyncpg.Connection, Sequence[Any]], Awaitable[Any]]
    references: tuple[tuple[str, str], ...]  # (field, table it names)


ENTITIES: dict[str, _Entity] = {
    "org_unit": _Entity(
        "org_units",
        "org_unit",
        lambda r: OrgUnit(r["id"], r["name"], r["parent_id"]),
        roster_write.upsert_org_units,
        (("parent_id", "org_units"),),
    ),
    "zone": _Entity(
        "zones",
        "zone",
        lambda r: Zone(
            r["id"],
            r["name"],
            ZoneKind(r["kind"]),
            r["capacity"],
            CapacityMode(r["capacity_mode"]),
            r["gathering_threshold"],
            r["gathering_minutes"],
        ),
        roster_write.upsert_zones,
        (),
    ),
    "door": _Entity(
        "doors",
        "door",
        lambda r: Door(
            r["id"],
            r["zone_id"],
            DoorDirection(r["direction"]),
            bool(r["requires_temperature"]),
            r["name"],
        ),
        roster_write.upsert_doors,
        (("zone_id", "zones"),),
    ),
    "device": _Entity(
        "devices",
        "device",
        lambda r: Device(
            r["id"],
            r["door_id"],
            DeviceKind(r["kind"]),
            Transport(r["transport"]),
            r["port"],
            r["protocol"],
            r["baud"],
        ),
        roster_write.upsert_devices,
        (("door_id", "doors"),),
    ),
    "person": _Entity(
        "people",
        "person",
        lambda r: Person(
            r["id"],
            PersonKind(r["kind"]),
            r["name"],
            r["org_unit_id"],
            bool(r["active"]),
            r["valid_until"],
        ),
        roster_write.upsert_people,
        (("org_unit_id", "org_units"),),
    ),
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "org_units": {"parent_id": None},
    "zones": {
        "capacity": None,
        "capacity_mode": "enforce",
        "gathering_threshold": None,
        "gathering_minutes": 10,
    },
    "doors": {"direction": "both", "requires_temperature": False, "name": None},
    "devices": {"transport": "mqtt", "port": None, "protocol": None, "baud": None},
    "people": {"org_unit_id": None, "active": True, "valid_until": None},
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def _check_references(
    conn: asyncpg.Connection, entity: _Entity, values: dict[str, Any]
) -> None:
    for field, table in entity.references:
        value = values.get(field)
        if value is not None and not await roster_write.row_exists(conn, table, value):
            raise InvalidReferenceError(
                field, f"unknown {table.removesuffix('s').replace('_', ' ')} {value!r}"
            )
    parent = values.get("parent_id") if entity.table == "org_units" else None
    if parent is not None and values["id"] in await org_unit_ancestors(conn, parent):
        raise InvalidReferenceError("parent_id", "org units would form a cycle")


async def _write(
    conn: asyncpg.Connection, entity: _Entity, values: dict[str, Any]
) -> dict[str, Any]:
    await _check_references(conn, entity, values)
    await entity.upsert(conn, [entity.build(values)])
    after = await roster_write.locked_row(conn, entity.table, values["id"])
    assert after is not None
    return after


async def create(
    conn: asyncpg.Connection,
    kind: str,
    values: dict[str, Any],
    *,
    by: str,
    cards: Sequence[str] = (),
) -> dict[str, Any]:
    """Create an org unit, zone, door, device or person (with cards); 409-style errors."""
    entity = ENTITIES[kind]
    async with conn.transaction():
        if await roster_write.locked_row(conn, entity.table, values["id"]) is not None:
            raise AlreadyExistsError(f"{kind} {values['id']!r} already exists")
        after = await _write(conn, entity, {**_DEFAULTS[entity.table], **values})
        if cards:
            for uid in cards:
                await _take_card(conn, values["id"], uid, None)
            after["cards"] = await roster_write.cards_of(conn, values["id"])
        await record_audit(
            conn, by, "create", entity.audit_name, values["id"], after=_jsonable(after)
        )
    return after


async def update(
    conn: asyncpg.Connection, kind: str, row_id: str, changes: dict[str, Any], *, by: str
) -> dict[str, Any]:
    """Change some fields of an existing row; unchanged rows write (and notify) nothing."""
    entity = ENTITIES[kind]
    async with conn.transaction():
        before = await roster_write.locked_row(conn, entity.table, row_id)
        if before is None:
            raise NotFoundError(f"no {kind} {row_id!r}")
        after = await _write(conn, entity, {**before, **changes, "id": row_id})
        if after != before:
            await record_audit(
                conn,
                by,
                "update",
                entity.audit_name,
                row_id,
                before=_jsonable(before),
                after=_jsonable(after),
            )
    return after


async def deactivate_person(conn: asyncpg.Connection, person_id: str, *, by: str) -> dict[str, Any]:
    """Mark a person inactive: every card of theirs is denied with card_revoked."""
    return await update(conn, "person", person_id, {"active": False}, by=by)


async def _take_card(
    conn: asyncpg.Connection, person_id: str, uid: str, valid_until: datetime | None
) -> dict[str, Any] | None:
    """Give a card to a person; the card as it was before (None when new)."""
    before = await roster_write.locked_card(conn, uid)
    if before is not None and before["person_id"] != person_id:
        raise CardHeldError(f"card {uid} is held by another person")
    await roster_write.upsert_cards(conn, [Card(uid, person_id, False, valid_until)])
    return before


async def add_card(
    conn: asyncpg.Connection,
    person_id: str,
    uid: str,
    *,
    by: str,
    valid_until: datetime | None = None,
) -> dict[str, Any]:
    """Give `uid` (canonical form) to a person, or renew it; CardHeldError when not theirs."""
    async with conn.transaction():
        if await roster_write.locked_row(conn, "people", person_id) is None:
            raise NotFoundError(f"no person {person_id!r}")
        before = await _take_card(conn, person_id, uid, valid_until)
        after = await roster_write.locked_card(conn, uid)
        assert after is not None
        if after != before:
            await record_audit(
                conn, by, "add_card", "card", uid, before=_jsonable(before), after=_jsonable(after)
            )
    return after


async def revoke_card(
    conn: asyncpg.Connection, uid: str, *, by: str, person_id: str | None = None
) -> dict[str, Any]:
    """Revoke a card (of `person_id`, when given): it is denied with card_revoked."""
    async with conn.transaction():
        before = await roster_write.locked_card(conn, uid)
        if before is None or person_id not in (None, before["person_id"]):
            raise NotFoundError(
                f"no card {uid}" + (f" of person {person_id!r}" if person_id else "")
            )
        await roster_write.revoke_card(conn, uid)
        after = await roster_write.locked_card(conn, uid)
        assert after is not None
        if after != before:
            await record_audit(
                conn, by, "revoke", "card", uid, before=_jsonable(before), after=_jsonable(after)
            )
    return after
