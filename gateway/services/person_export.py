"""The export of everything held about one person (a subject access request), audited.

The document is JSON-ready: times as ISO 8601 text, decimals as numbers. It holds the
full phone and ID number: only roles allowed to export (and so to unmask) get it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from gateway.services.errors import NotFoundError
from gateway.store.audit import record_audit
from gateway.store.person_export import person_record

FORMAT = "campusgate.person-export/1"


class PersonNotFoundError(NotFoundError):
    """No person with that id."""


async def export_person(
    conn: asyncpg.Connection, person_id: str, *, by: str, now: datetime
) -> dict[str, Any]:
    """The person's record as a JSON-ready document; the export is written to the audit log."""
    async with conn.transaction(isolation="repeatable_read"):
        record = await person_record(conn, person_id)
        if record is None:
            raise PersonNotFoundError(f"no person {person_id!r}")
        sections = {k: len(v) for k, v in record.items() if isinstance(v, list)}
        await record_audit(conn, by, "export", "person", person_id, after={"sections": sections})
    document = {"format": FORMAT, "exported_at": now, "exported_by": by, **record}
    return json_ready(document)


def json_ready(value: Any) -> Any:
    """`value` with datetimes, dates and decimals turned into JSON values."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
