"""Batched, idempotent upserts of roster rows (used by the import use case).

Rows go through a temporary table with COPY, then one
`INSERT ... ON CONFLICT DO UPDATE ... WHERE <row differs>`: an unchanged row
is not touched, so it keeps its `updated_at` and a wholly unchanged batch
fires no roster NOTIFY. Call these inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from gateway.domain.privacy import PersonContact
from gateway.domain.roster import (
    ZONE_FIELDS,
    Card,
    Device,
    Door,
    Grant,
    OrgUnit,
    Person,
    Zone,
)


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class RosterKeys:
    """The ids already stored, to check a manifest's references before writing."""

    org_unit_parents: dict[str, str | None]
    zones: frozenset[str]
    doors: frozenset[str]
    devices: frozenset[str]
    people: dict[str, str]  # person id -> kind
    card_holders: dict[str, str]  # card uid -> person id


async def load_roster_keys(conn: asyncpg.Connection) -> RosterKeys:
    async def ids(table: str) -> frozenset[str]:
        return frozenset(r[0] for r in await conn.fetch(f"SELECT id FROM {table}"))

    parents = {r[0]: r[1] for r in await conn.fetch("SELECT id, parent_id FROM org_units")}
    holders = {r[0]: r[1] for r in await conn.fetch("SELECT uid, person_id FROM cards")}
    return RosterKeys(
        parents,
        await ids("zones"),
        await ids("doors"),
        await ids("devices"),
        {r[0]: r[1] for r in await conn.fetch("SELECT id, kind FROM people")},
        holders,
    )


async def _upsert(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    rows: Iterable[tuple[object, ...]],
    *,
    conflict: Sequence[str] | None = None,
) -> UpsertCounts:
    records = list(rows)
    if not records:
        return UpsertCounts()
    async with conn.transaction():  # a savepoint inside the caller's transaction
        return await _upsert_in_transaction(conn, table, columns, key, records, conflict)


async def _upsert_in_transaction(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    records: list[tuple[object, ...]],
    conflict: Sequence[str] | None,
) -> UpsertCounts:
    temp = f"_import_{table}"
    cols = ", ".join(columns)
    await conn.execute(f"DROP TABLE IF EXISTS {temp}")
    await conn.execute(
        f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA"
    )
    await conn.copy_records_to_table(temp, records=records, columns=list(columns))
    values = [c for c in columns if c not in key]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    old = ", ".join(f"t.{c}" for c in values)
    new = ", ".join(f"EXCLUDED.{c}" for c in values)
    row = await conn.fetchrow(
        f"""
        WITH up AS (
            INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {temp}
            ON CONFLICT ({", ".join(conflict or key)}) DO UPDATE SET {sets}, updated_at = now()
            WHERE (ROW({old})) IS DISTINCT FROM (ROW({new}))
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
        """
    )
    inserted, updated = int(row[0]), int(row[1])
    await conn.execute(f"DROP TABLE {temp}")
    return UpsertCounts(inserted, updated, len(records) - inserted - updated)


async def upsert_org_units(conn: asyncpg.Connection, units: Sequence[OrgUnit]) -> UpsertCounts:
    return await _upsert(
        conn,
        "org_units",
        ("id", "name", "parent_id"),
        ("id",),
        ((u.id, u.name, u.parent_id) for u in units),
    )


async def upsert_zones(conn: asyncpg.Connection, zones: Sequence[Zone]) -> UpsertCounts:
    return await _upsert(
        conn,
        "zones",
        ZONE_FIELDS,
        ("id",),
        (
            (
                z.id,
                z.name,
                z.kind.value,
                z.capacity,
                z.capacity_mode.value,
                z.gathering_threshold,
                z.gathering_minutes,
            )
            for z in zones
        ),
    )


async def upsert_doors(conn: asyncpg.Connection, doors: Sequence[Door]) -> UpsertCounts:
    return await _upsert(
        conn,
        "doors",
        ("id", "zone_id", "direction", "requires_temperature", "name"),
        ("id",),
        ((d.id, d.zone_id, d.direction.value, d.requires_temperature, d.name) for d in doors),
    )


async def upsert_devices(conn: asyncpg.Connection, devices: Sequence[Device]) -> UpsertCounts:
    return await _upsert(
        conn,
        "devices",
        ("id", "door_id", "kind", "transport", "port", "protocol", "baud"),
        ("id",),
        (
            (d.id, d.door_id, d.kind.value, d.transport.value, d.port, d.protocol, d.baud)
            for d in devices
        ),
    )


async def upsert_people(
    conn: asyncpg.Connection, people: Sequence[Person], *, identity_only: bool = False
) -> UpsertCounts:
    """Upsert people; `identity_only` leaves `active` and `valid_until` of stored people alone."""
    if identity_only:
        return await _upsert(
            conn,
            "people",
            ("id", "kind", "name", "org_unit_id"),
            ("id",),
            ((p.id, p.kind.value, p.name, p.org_unit_id) for p in people),
        )
    return await _upsert(
        conn,
        "people",
        ("id", "kind", "name", "org_unit_id", "active", "valid_until"),
        ("id",),
        ((p.id, p.kind.value, p.name, p.org_unit_id, p.active, p.valid_until) for p in people),
    )


async def upsert_cards(
    conn: asyncpg.Connection, cards: Sequence[Card], *, identity_only: bool = False
) -> UpsertCounts:
    """Upsert cards; `identity_only` leaves `revoked` and `valid_until` of stored cards alone."""
    if identity_only:
        return await _upsert(
            conn, "cards", ("uid", "person_id"), ("uid",), ((c.uid, c.person_id) for c in cards)
        )
    return await _upsert(
        conn,
        "cards",
        ("uid", "person_id", "revoked", "valid_until"),
        ("uid",),
        ((c.uid, c.person_id, c.revoked, c.valid_until) for c in cards),
    )


async def upsert_grants(conn: asyncpg.Connection, grants: Sequence[Grant]) -> UpsertCounts:
    return await _upsert(
        conn,
        "grants",
        (
            "subject_person",
            "subject_org_unit",
            "subject_kind",
            "zone_id",
            "schedule",
            "valid_from",
            "valid_until",
        ),
        ("subject_person", "subject_org_unit", "subject_kind", "zone_id"),
        (
            (
                g.subject.person_id,
                g.subject.org_unit_id,
                g.subject.kind.value if g.subject.kind else None,
                g.zone_id,
                g.schedule.text if g.schedule else None,
                g.valid_from,
                g.valid_until,
            )
            for g in grants
        ),
        conflict=("subject_key", "zone_id"),
    )


async def upsert_contacts(
    conn: asyncpg.Connection, contacts: Sequence[PersonContact]
) -> UpsertCounts:
    """Set the given phones and ID numbers of existing people; a None leaves the stored value.

    Counted as updated or unchanged (a contact never inserts a person).
    """
    if not contacts:
        return UpsertCounts()
    async with conn.transaction():
        await conn.execute("DROP TABLE IF EXISTS _import_contacts")
        await conn.execute(
            "CREATE TEMP TABLE _import_contacts (id text, phone text, id_number text)"
            " ON COMMIT DROP"
        )
        await conn.copy_records_to_table(
            "_import_contacts",
            records=[(c.person_id, c.phone, c.id_number) for c in contacts],
            columns=["id", "phone", "id_number"],
        )
        updated = await conn.fetchval(
            """
            WITH up AS (
                UPDATE people p SET phone = coalesce(i.phone, p.phone),
                                    id_number = coalesce(i.id_number, p.id_number),
                                    updated_at = now()
                FROM _import_contacts i
                WHERE p.id = i.id
                  AND (coalesce(i.phone, p.phone), coalesce(i.id_number, p.id_number))
                      IS DISTINCT FROM (p.phone, p.id_number)
                RETURNING 1
            )
            SELECT count(*) FROM up
            """
        )
        await conn.execute("DROP TABLE _import_contacts")
    return UpsertCounts(0, int(updated), len(contacts) - int(updated))


async def copy_new_people(conn: asyncpg.Connection, people: Sequence[tuple[str, str, str]]) -> None:
    """Bulk-load (id, kind, name) people that are not in the roster yet (COPY: no upsert)."""
    await conn.copy_records_to_table("people", records=list(people), columns=("id", "kind", "name"))
