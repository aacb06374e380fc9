"""Epidemic areas and travel declarations (rows in, domain objects and dicts out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from gateway.domain.travel import EpidemicArea, TravelDeclaration
from gateway.store.org_tree import subtree_cte

_AREA_COLUMNS = (
    "id, name, match, effective_from, effective_until, created_by, created_at, "
    "updated_by, updated_at, division_code, place_match, match_terms"
)
_DECLARATION_COLUMNS = (
    "d.id, d.person_id, p.name AS person_name, p.org_unit_id, d.destination, "
    "d.departure_date, d.return_date, d.note, d.declared_by, d.declared_at, d.source, "
    "d.matched_areas, d.evaluated_at, d.isolated_at, d.lifted_at, d.waived_by, d.waived_at, "
    "d.divisions, d.place_match, d.planned, d.approval, d.approval_by, d.approval_at, "
    "d.approval_note, d.returned_at, d.cancelled_at"
)
# A plan counts as a trip taken once its return is declared, or once its planned return
# day ($3, campus time) is over while it may go ahead and was not called off (the person
# went and forgot to say they are back). A plan waiting, refused or cancelled, or whose
# traveller is not back yet, isolates nobody.
_TAKEN = (
    "NOT (planned AND returned_at IS NULL AND (cancelled_at IS NOT NULL"
    " OR approval IN ('pending', 'refused') OR return_date >= $3))"
)


def _area(r: asyncpg.Record) -> EpidemicArea:
    return EpidemicArea(
        r["id"],
        r["name"],
        r["match"],
        r["effective_from"],
        r["effective_until"],
        r["division_code"],
        tuple(r["match_terms"] or ()),
    )


async def load_areas(conn: asyncpg.Connection) -> list[EpidemicArea]:
    rows = await conn.fetch(f"SELECT {_AREA_COLUMNS} FROM epidemic_areas ORDER BY id")
    return [_area(r) for r in rows]


async def unresolved_areas(conn: asyncpg.Connection) -> list[tuple[int, str]]:
    """(id, match) of areas listed before places were resolved."""
    rows = await conn.fetch("SELECT id, match FROM epidemic_areas WHERE place_match IS NULL")
    return [(r[0], r[1]) for r in rows]


async def record_area_place(
    conn: asyncpg.Connection,
    area_id: int,
    *,
    division_code: str | None,
    place_match: str,
    match_terms: Sequence[str],
) -> None:
    await conn.execute(
        "UPDATE epidemic_areas SET division_code = $2, place_match = $3, match_terms = $4 "
        "WHERE id = $1",
        area_id,
        division_code,
        place_match,
        list(match_terms),
    )


async def record_declaration_place(
    conn: asyncpg.Connection, declaration_id: int, *, divisions: Sequence[str], place_match: str
) -> None:
    await conn.execute(
        "UPDATE travel_declarations SET divisions = $2, place_match = $3 WHERE id = $1",
        declaration_id,
        list(divisions),
        place_match,
    )


async def list_areas(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_AREA_COLUMNS} FROM epidemic_areas ORDER BY effective_from DESC, id"
    )
    return [dict(r) for r in rows]


async def get_area(conn: asyncpg.Connection, area_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_AREA_COLUMNS} FROM epidemic_areas WHERE id = $1", area_id)
    return dict(row) if row else None


async def insert_area(
    conn: asyncpg.Connection,
    *,
    name: str,
    match: str,
    effective_from: date,
    effective_until: date | None,
    division_code: str | None,
    place_match: str,
    match_terms: Sequence[str],
    by: str,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""
        INSERT INTO epidemic_areas (name, match, effective_from, effective_until,
                                    created_by, updated_by, division_code, place_match,
                                    match_terms)
        VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) RETURNING {_AREA_COLUMNS}
        """,
        name,
        match,
        effective_from,
        effective_until,
        by,
        division_code,
        place_match,
        list(match_terms),
    )
    return dict(row)


async def update_area(
    conn: asyncpg.Connection, area_id: int, changes: dict[str, Any], *, by: str
) -> dict[str, Any] | None:
    """Apply `changes` (name, match, effective_from, effective_until, and the place `match`
    resolved to: division_code, place_match, match_terms); None if no such area."""
    allowed = (
        "name",
        "match",
        "effective_from",
        "effective_until",
        "division_code",
        "place_match",
        "match_terms",
    )
    fields = [k for k in allowed if k in changes]
    sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(fields))
    row = await conn.fetchrow(
        f"UPDATE epidemic_areas SET {sets + ', ' if sets else ''}"
        f"updated_by = ${len(fields) + 2}, updated_at = now() "
        f"WHERE id = $1 RETURNING {_AREA_COLUMNS}",
        area_id,
        *(changes[k] for k in fields),
        by,
    )
    return dict(row) if row else None


async def delete_area(conn: asyncpg.Connection, area_id: int) -> bool:
    return await conn.fetchval("DELETE FROM epidemic_areas WHERE id = $1 RETURNING true", area_id)


async def insert_declarations(
    conn: asyncpg.Connection,
    rows: Sequence[tuple[str, str, date, date, str, Sequence[str], str]],
    *,
    by: str,
    source: str,
) -> list[int]:
    """Insert (person, destination, departure, return, note, divisions, place_match) rows;
    a repeated trip is kept once. Returns the ids of the rows now on file for the given
    trips, new or old."""
    ids = await conn.fetch(
        """
        WITH given AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::date[], $5::text[],
                                 $8::text[], $9::text[])
                AS g(person_id, destination, departure_date, return_date, note, divs, place)
        ), added AS (
            INSERT INTO travel_declarations
                (person_id, destination, departure_date, return_date, note, declared_by, source,
                 divisions, place_match)
            SELECT person_id, destination, departure_date, return_date, note, $6, $7,
                   string_to_array(divs, ','), place FROM given
            ON CONFLICT (person_id, destination, departure_date, return_date) DO NOTHING
            RETURNING id
        )
        SELECT id FROM added
        UNION
        SELECT d.id FROM travel_declarations d JOIN given g
          USING (person_id, destination, departure_date, return_date)
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        by,
        source,
        [",".join(r[5]) for r in rows],  # codes are digits: a comma cannot be in one
        [r[6] for r in rows],
    )
    return sorted(r[0] for r in ids)


def _declaration(r: asyncpg.Record) -> TravelDeclaration:
    return TravelDeclaration(
        r["id"],
        r["person_id"],
        r["destination"],
        r["departure_date"],
        r["return_date"],
        r["isolated_at"],
        r["waived_at"],
        tuple(r["matched_areas"]),
        None if r["divisions"] is None else tuple(r["divisions"]),
    )


async def open_declarations(
    conn: asyncpg.Connection,
    *,
    still_open_on: date,
    today: date,
    person_ids: Sequence[str] | None = None,
) -> list[TravelDeclaration]:
    """Declarations whose isolation would not have ended by `still_open_on` (the last
    return date that still matters) and that count as trips taken by `today` (see
    _TAKEN), optionally only for some people."""
    rows = await conn.fetch(
        """
        SELECT id, person_id, destination, departure_date, return_date, isolated_at, waived_at,
               matched_areas, divisions
        FROM travel_declarations
        WHERE return_date >= $1 AND ($2::text[] IS NULL OR person_id = ANY($2::text[]))
          AND """
        + _TAKEN
        + """
        ORDER BY person_id, id
        """,
        still_open_on,
        list(person_ids) if person_ids is not None else None,
        today,
    )
    return [_declaration(r) for r in rows]


async def returned_between(
    conn: asyncpg.Connection, first: date, last: date, *, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    """Declarations with a return date from `first` to `last` (inclusive), oldest first."""
    rows = await conn.fetch(
        f"""
        SELECT {_DECLARATION_COLUMNS}
        FROM travel_declarations d JOIN people p ON p.id = d.person_id
        WHERE d.return_date BETWEEN $1 AND $2
        ORDER BY d.return_date, d.id LIMIT $3 OFFSET $4
        """,
        first,
        last,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def record_evaluation(
    conn: asyncpg.Connection,
    declaration_id: int,
    *,
    matched: Sequence[str],
    now: datetime,
    isolated: bool | None,
) -> None:
    """Store what an evaluation found; `isolated` True marks it applied, False lifted."""
    await conn.execute(
        """
        UPDATE travel_declarations SET matched_areas = $2, evaluated_at = $3,
            isolated_at = CASE WHEN $4::boolean IS NULL THEN isolated_at
                               WHEN $4 THEN coalesce(isolated_at, $3) ELSE NULL END,
            lifted_at = CASE WHEN $4::boolean IS FALSE THEN $3
                             WHEN $4 THEN NULL ELSE lifted_at END
        WHERE id = $1
        """,
        declaration_id,
        list(matched),
        now,
        isolated,
    )


async def waive(conn: asyncpg.Connection, declaration_id: int, *, by: str) -> None:
    await conn.execute(
        "UPDATE travel_declarations SET waived_by = $2, waived_at = now() WHERE id = $1",
        declaration_id,
        by,
    )


async def get_declaration(conn: asyncpg.Connection, declaration_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_DECLARATION_COLUMNS} FROM travel_declarations d "
        "JOIN people p ON p.id = d.person_id WHERE d.id = $1",
        declaration_id,
    )
    return dict(row) if row else None


async def list_declarations(
    conn: asyncpg.Connection,
    *,
    person_id: str | None,
    org_scope: str | None,
    returned_since: date | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """Newest returns first; `org_scope` limits to people of that org unit's subtree."""
    rows = await conn.fetch(
        subtree_cte(2)
        + f"""
        SELECT {_DECLARATION_COLUMNS}
        FROM travel_declarations d JOIN people p ON p.id = d.person_id
        WHERE ($1::text IS NULL OR d.person_id = $1)
          AND ($2::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
          AND ($3::date IS NULL OR d.return_date >= $3)
        ORDER BY d.return_date DESC, d.id DESC LIMIT $4 OFFSET $5
        """,
        person_id,
        org_scope,
        returned_since,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


# --- plans people make themselves (issue #15, point 3) ---------------------------------


async def insert_plan(
    conn: asyncpg.Connection,
    person_id: str,
    destination: str,
    departure_date: date,
    return_date: date,
    note: str,
    divisions: Sequence[str],
    place_match: str,
    *,
    approval: str,
) -> int | None:
    """A trip the person plans; None when they have filed the same trip already."""
    return await conn.fetchval(
        """
        INSERT INTO travel_declarations
            (person_id, destination, departure_date, return_date, note, declared_by, source,
             divisions, place_match, planned, approval)
        VALUES ($1, $2, $3, $4, $5, 'person:' || $1, 'person', $6, $7, true, $8)
        ON CONFLICT (person_id, destination, departure_date, return_date) DO NOTHING
        RETURNING id
        """,
        person_id,
        destination,
        departure_date,
        return_date,
        note,
        list(divisions),
        place_match,
        approval,
    )


async def trips_of(conn: asyncpg.Connection, person_id: str) -> list[dict[str, Any]]:
    """One person's trips, planned or filed for them, newest departure first."""
    rows = await conn.fetch(
        f"SELECT {_DECLARATION_COLUMNS} FROM travel_declarations d"
        " JOIN people p ON p.id = d.person_id WHERE d.person_id = $1"
        " ORDER BY d.departure_date DESC, d.id DESC",
        person_id,
    )
    return [dict(r) for r in rows]


async def lock_declaration(conn: asyncpg.Connection, declaration_id: int) -> dict[str, Any] | None:
    """A declaration, locked for this transaction."""
    row = await conn.fetchrow(
        f"SELECT {_DECLARATION_COLUMNS} FROM travel_declarations d"
        " JOIN people p ON p.id = d.person_id WHERE d.id = $1 FOR UPDATE OF d",
        declaration_id,
    )
    return dict(row) if row else None


async def decide_plan(
    conn: asyncpg.Connection, declaration_id: int, approval: str, *, by: str, note: str
) -> None:
    await conn.execute(
        "UPDATE travel_declarations SET approval = $2, approval_by = $3, approval_at = now(),"
        " approval_note = $4 WHERE id = $1",
        declaration_id,
        approval,
        by,
        note,
    )


async def record_return(conn: asyncpg.Connection, declaration_id: int, return_date: date) -> bool:
    """The person is back on `return_date`; False when that trip is on file already."""
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE travel_declarations SET return_date = $2, returned_at = now()"
                " WHERE id = $1",
                declaration_id,
                return_date,
            )
    except asyncpg.UniqueViolationError:
        return False
    return True


async def cancel_plan(conn: asyncpg.Connection, declaration_id: int) -> None:
    await conn.execute(
        "UPDATE travel_declarations SET cancelled_at = now() WHERE id = $1", declaration_id
    )


async def pending_plans(conn: asyncpg.Connection, org_scope: str | None) -> list[dict[str, Any]]:
    """Plans waiting for approval, soonest departure first; `org_scope` as list_declarations."""
    rows = await conn.fetch(
        subtree_cte(1)
        + f"""
        SELECT {_DECLARATION_COLUMNS}
        FROM travel_declarations d JOIN people p ON p.id = d.person_id
        WHERE d.approval = 'pending' AND d.cancelled_at IS NULL
          AND ($1::text IS NULL OR p.org_unit_id IN (SELECT id FROM scope))
        ORDER BY d.departure_date, d.id
        """,
        org_scope,
    )
    return [dict(r) for r in rows]
