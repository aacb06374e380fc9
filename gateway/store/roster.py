"""Loading the whole roster as domain objects, for the in-memory snapshot."""

from __future__ import annotations

from datetime import date

import asyncpg

from gateway.domain.campus import CampusRoster
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.roster import (
    CapacityMode,
    Card,
    Device,
    DeviceKind,
    Door,
    DoorDirection,
    Grant,
    GrantSubject,
    OrgUnit,
    Person,
    PersonKind,
    Transport,
    Zone,
    ZoneKind,
)
from gateway.domain.schedule import Schedule, parse_schedule
from gateway.store.levels import load_active_levels, load_level_definitions

# Enum lookups through dicts: much cheaper than Enum(value) over 100k rows.
_PERSON_KIND = {k.value: k for k in PersonKind}
_HEALTH = {s.value: s for s in HealthStatus}


async def load_roster(conn: asyncpg.Connection) -> CampusRoster:
    """Everything a decision needs, read in one repeatable-read snapshot.

    Inside a transaction of the caller's, that transaction's snapshot is used.
    """
    if conn.is_in_transaction():
        return await _load_roster(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _load_roster(conn)


async def _load_roster(conn: asyncpg.Connection) -> CampusRoster:
    org_units = tuple(
        OrgUnit(r[0], r[1], r[2])
        for r in await conn.fetch("SELECT id, name, parent_id FROM org_units ORDER BY id")
    )
    zones = tuple(
        Zone(r[0], r[1], ZoneKind(r[2]), r[3], CapacityMode(r[4]), r[5], r[6])
        for r in await conn.fetch(
            "SELECT id, name, kind, capacity, capacity_mode, gathering_threshold,"
            " gathering_minutes FROM zones ORDER BY id"
        )
    )
    doors = tuple(
        Door(r[0], r[1], DoorDirection(r[2]), r[3], r[4])
        for r in await conn.fetch(
            "SELECT id, zone_id, direction, requires_temperature, name FROM doors ORDER BY id"
        )
    )
    devices = tuple(
        Device(r[0], r[1], DeviceKind(r[2]), Transport(r[3]), r[4], r[5], r[6])
        for r in await conn.fetch(
            "SELECT id, door_id, kind, transport, port, protocol, baud FROM devices ORDER BY id"
        )
    )
    kinds = _PERSON_KIND
    people = tuple(
        Person(r[0], kinds[r[1]], r[2], r[3], r[4], r[5])
        for r in await conn.fetch(
            "SELECT id, kind, name, org_unit_id, active, valid_until FROM people"
        )
    )
    cards = tuple(
        Card(r[0], r[1], r[2], r[3])
        for r in await conn.fetch("SELECT uid, person_id, revoked, valid_until FROM cards")
    )
    schedules: dict[str, Schedule] = {}
    grants = tuple(_grant(r, schedules) for r in await conn.fetch(_GRANTS_SQL))
    health = await _load_health(conn)
    return CampusRoster(
        org_units,
        zones,
        doors,
        devices,
        people,
        cards,
        grants,
        health,
        await load_level_definitions(conn),
        await load_active_levels(conn),
        await _recent_checkins(conn),
    )


async def _recent_checkins(conn: asyncpg.Connection) -> tuple[tuple[str, date], ...]:
    """Check-ins of the last two days by the database's date: whatever campus day the
    gateway's time zone calls today is among them."""
    rows = await conn.fetch(
        "SELECT person_id, day FROM daily_checkins WHERE day >= current_date - 1"
    )
    return tuple((r[0], r[1]) for r in rows)


_GRANTS_SQL = """
SELECT subject_person, subject_org_unit, subject_kind, zone_id, schedule, valid_from, valid_until
FROM grants ORDER BY id
"""


def _grant(r: asyncpg.Record, schedules: dict[str, Schedule]) -> Grant:
    kind = _PERSON_KIND[r[2]] if r[2] is not None else None
    schedule: Schedule | None = None
    if r[4]:
        schedule = schedules.get(r[4])
        if schedule is None:
            schedule = schedules[r[4]] = parse_schedule(r[4])
    return Grant(GrantSubject(r[0], r[1], kind), r[3], schedule, r[5], r[6])


async def load_health(conn: asyncpg.Connection) -> tuple[HealthRecord, ...]:
    """The current health status of everyone who has one."""
    return await _load_health(conn)


async def _load_health(conn: asyncpg.Connection) -> tuple[HealthRecord, ...]:
    statuses = _HEALTH
    return tuple(
        HealthRecord(r[0], statuses[r[1]], r[2], r[3], r[4], r[5], r[6])
        for r in await conn.fetch(
            "SELECT person_id, status, since, until, reason, caretaker_id, set_by FROM health_status"
        )
    )
