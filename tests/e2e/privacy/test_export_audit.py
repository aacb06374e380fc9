"""The person export's audit section names the audited changes of the person's own rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from gateway.domain.health import HealthStatus
from gateway.services.health import change_status, record_reading
from gateway.services.importer import import_file
from gateway.services.person_export import export_person

CAMPUS = """
org_units:
  - {id: cs, name: Computer Science}
people:
  - {id: S1, kind: student, name: Li Hua, org_unit: cs}
  - {id: S2, kind: student, name: Wang Fang, org_unit: cs}
"""


async def test_export_holds_the_audit_of_the_persons_readings_only(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "campus.yaml"
    path.write_text(CAMPUS)
    await import_file(conn, path, tz=ZoneInfo("Asia/Shanghai"))
    for person, celsius in (("S1", 37.9), ("S2", 36.6)):
        await change_status(conn, person, HealthStatus.FEVER_WATCH, by="guard", reason="fever")
        await record_reading(conn, person, celsius, by="guard", threshold_c=37.3)
    doc = await export_person(conn, "S1", by="officer", now=datetime.now(UTC))
    [reading] = doc["health_readings"]
    readings_audit = [e for e in doc["audit"] if e["entity"] == "health_reading"]
    assert [(e["action"], e["entity_id"]) for e in readings_audit] == [
        ("record_reading", str(reading["id"]))
    ]
