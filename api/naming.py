"""Names beside person ids in API answers: the console shows names and keeps ids on hover.

Each `<role>_id` field (person, caretaker, previous caretaker) gets a `<role>_name` beside
it (None when the id is None or unknown); the id fields stay as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from gateway.store.people import names_of

_ID_FIELDS = ("person_id", "caretaker_id", "previous_caretaker_id")


async def add_names(conn: asyncpg.Connection, records: Iterable[dict[str, Any]]) -> None:
    """Add `<role>_name` beside every person id field of `records`, in place."""
    records = list(records)
    names = await names_of(conn, (r.get(f) for r in records for f in _ID_FIELDS))
    for record in records:
        for field in _ID_FIELDS:
            if field in record:
                record[f"{field.removesuffix('_id')}_name"] = names.get(record[field] or "")


async def name_change(conn: asyncpg.Connection, change: dict[str, Any]) -> dict[str, Any]:
    """A status change's answer with names beside its own ids and its reassignments'."""
    await add_names(conn, [change, *change.get("reassigned", ())])
    return change
