"""Response levels (issue #5): what is in force, setting a level, editing definitions.

Every change of an active level appends to response_level_changes (never rewritten) and
to the audit log in the same transaction; the tables' NOTIFY triggers make every running
gateway reload its zones' rules (gateway/pipeline/roster_state.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain.levels import ResponseLevel, ZoneRules, zone_rules
from gateway.domain.roster import CapacityMode, Zone, ZoneKind
from gateway.services.errors import InvalidReferenceError
from gateway.store import levels as store
from gateway.store import roster_write
from gateway.store.audit import record_audit

__all__ = [
    "current",
    "define_level",
    "effective_rules",
    "history",
    "set_level",
]


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


async def current(conn: asyncpg.Connection) -> dict[str, Any]:
    """The campus-wide level, the zones with their own, and every definition."""
    rows = await store.active(conn)
    campus = next((r for r in rows if r["zone_id"] is None), None)
    return {
        "campus": campus,
        "zones": [r for r in rows if r["zone_id"] is not None],
        "definitions": await store.definitions(conn),
    }


history = store.history


async def set_level(
    conn: asyncpg.Connection,
    level: str | None,
    zones: Sequence[str] | None,
    *,
    by: str,
    note: str = "",
) -> list[dict[str, Any]]:
    """Set `level` campus-wide (`zones` None) or in each zone named; None clears zones' own.

    Returns the changes made (a scope already at the level is left alone).
    """
    if level is None and zones is None:
        raise InvalidReferenceError("level", "the campus-wide level cannot be cleared; set normal")
    scopes: list[str | None] = [None] if zones is None else list(dict.fromkeys(zones))
    if not scopes:
        raise InvalidReferenceError("zones", "name at least one zone, or leave zones out")
    changes: list[dict[str, Any]] = []
    async with conn.transaction():
        if level is not None and await store.definition(conn, level) is None:
            raise InvalidReferenceError("level", f"unknown response level {level!r}")
        for zone_id in scopes:
            if zone_id is not None and not await roster_write.row_exists(conn, "zones", zone_id):
                raise InvalidReferenceError("zones", f"unknown zone {zone_id!r}")
            before = await store.active_level_of(conn, zone_id)
            if before == level:
                continue
            change = await store.write_level(conn, zone_id, before, level, by=by, note=note)
            await record_audit(
                conn,
                by,
                "set_level",
                "response_level",
                zone_id or "campus",
                before={"level": before},
                after={"level": level, "note": note},
            )
            changes.append(change)
    return changes


async def define_level(
    conn: asyncpg.Connection, level: ResponseLevel, *, by: str
) -> dict[str, Any]:
    """Create or replace a level definition (audited); gateways using it reload."""
    async with conn.transaction():
        for zone_id in sorted(level.rules.checkin_zones):
            if not await roster_write.row_exists(conn, "zones", zone_id):
                raise InvalidReferenceError("checkin_zones", f"unknown zone {zone_id!r}")
        before = await store.definition(conn, level.name, lock=True)
        await store.save_definition(conn, level, by=by)
        after = await store.definition(conn, level.name)
        assert after is not None
        await record_audit(
            conn,
            by,
            "define" if before is None else "update",
            "response_level_definition",
            level.name,
            before=_jsonable(before),
            after=_jsonable(after),
        )
    return after


async def effective_rules(
    conn: asyncpg.Connection, zone_rows: Sequence[dict[str, Any]]
) -> dict[str, ZoneRules]:
    """The rules the doors apply in each zone of `zone_rows` (rows with the zone columns)."""
    definitions = {d.name: d for d in await store.load_level_definitions(conn)}
    active = await store.load_active_levels(conn)
    return {
        row["zone_id"]: zone_rules(
            Zone(
                row["zone_id"],
                row["name"],
                ZoneKind(row["kind"]),
                row["capacity"],
                CapacityMode(row["capacity_mode"]),
                row["gathering_threshold"],
                row["gathering_minutes"],
            ),
            definitions,
            active,
        )
        for row in zone_rows
    }
