"""Every change to the roster tables: the import's upserts and sync, an administrator's edits.

Batched, idempotent upserts: rows go through a temporary table with COPY, then one
`INSERT ... ON CONFLICT DO UPDATE ... WHERE <row differs>`: an unchanged row
is not touched, so it keeps its `updated_at` and a wholly unchanged batch
fires no roster NOTIFY. Call these inside the caller's transaction.

An administrator's single-row creates and updates (services.roster_admin) go through
these same upserts, so a change the API makes looks to the gateways exactly like one an
import makes: the roster tables' NOTIFY triggers tell every running gateway to reload.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


# --- an administrator's single-row edits ------------------------------------------

# Columns an administrator sees and changes (never updated_at).
EDITABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "org_units": ("id", "name", "parent_id"),
    "zones": ZONE_FIELDS,
    "doors": ("id", "zone_id", "direction", "requires_temperature", "name"),
    "devices": ("id", "door_id", "kind", "transport", "port", "protocol", "baud"),
    "people": ("id", "kind", "name", "org_unit_id", "active", "valid_until"),
}


async def locked_row(conn: asyncpg.Connection, table: str, row_id: str) -> dict[str, Any] | None:
    """One roster row by id, locked for the caller's transaction."""
    cols = ", ".join(EDITABLE_COLUMNS[table])
    found = await conn.fetchrow(f"SELECT {cols} FROM {table} WHERE id = $1 FOR UPDATE", row_id)
    return dict(found) if found else None


async def row_exists(conn: asyncpg.Connection, table: str, row_id: str) -> bool:
    return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1)", row_id))


async def cards_of(conn: asyncpg.Connection, person_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT uid, person_id, revoked, valid_until FROM cards WHERE person_id = $1 ORDER BY uid",
        person_id,
    )
    return [dict(r) for r in rows]


async def locked_card(conn: asyncpg.Connection, uid: str) -> dict[str, Any] | None:
    found = await conn.fetchrow(
        "SELECT uid, person_id, revoked, valid_until FROM cards WHERE uid = $1 FOR UPDATE", uid
    )
    return dict(found) if found else None


async def revoke_card(conn: asyncpg.Connection, uid: str) -> None:
    await conn.execute(
        "UPDATE cards SET revoked = true, updated_at = now() WHERE uid = $1 AND NOT revoked", uid
    )


async def holder_of_card(conn: asyncpg.Connection, uid: str) -> str | None:
    """The person a card id belongs to, whatever its case."""
    found: str | None = await conn.fetchval(
        "SELECT person_id FROM cards WHERE upper(uid) = upper($1)", uid
    )
    return found


async def any_exists(conn: asyncpg.Connection, table: str, row_ids: list[str]) -> bool:
    """Whether any of `row_ids` is in the roster table."""
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = ANY($1::text[]))", row_ids
        )
    )


# --- a full export's sync: people it leaves out ----------------------------------


async def active_people_of_kinds(conn: asyncpg.Connection, kinds: Collection[str]) -> list[str]:
    """Ids of the active people of these kinds, sorted."""
    rows = await conn.fetch(
        "SELECT id FROM people WHERE active AND kind = ANY($1::text[]) ORDER BY id", list(kinds)
    )
    return [r[0] for r in rows]


async def deactivate_people(conn: asyncpg.Connection, ids: Collection[str]) -> int:
    """Mark these people inactive (their cards are then denied); returns how many changed."""
    status = await conn.execute(
        "UPDATE people SET active = false, updated_at = now() WHERE active AND id = ANY($1::text[])",
        list(ids),
    )
    return int(status.split()[-1])
