"""A person's export and visitor passes: the host sees the visitor's contact masked, the
visitor their own in full (security review)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.services import visitor_passes as service
from gateway.store.person_export import person_record


async def test_host_export_masks_the_visitors_contact_the_visitors_own_does_not(conn):
    await conn.execute(
        "INSERT INTO org_units (id, name) VALUES ('ai', 'AI');"
        "INSERT INTO zones (id, name, kind) VALUES ('office', 'Office', 'office');"
        "INSERT INTO people (id, kind, name, org_unit_id) VALUES ('T1', 'staff', 'Chen', 'ai')"
    )
    now = datetime.now(UTC)
    request = service.PassRequest(
        "T1", "Zhao Lei", "13812345678", "110101199003071234", "meeting", ("office",),
        now, now + timedelta(hours=2),
    )  # fmt: skip
    made = await service.request_pass(
        conn, request, service.PassRules(7), by="T1", now=now, tz=ZoneInfo("Asia/Shanghai")
    )
    done = await service.approve(conn, made["id"], None, by="admin", note=None)
    host = await person_record(conn, "T1")
    assert host is not None
    [hosted] = host["visitor_passes"]
    assert (hosted["phone"], hosted["id_number"]) == ("138****5678", "1101**********1234")
    assert hosted["visitor_name"] == "Zhao Lei" and hosted["id"] == made["id"]
    visitor = await person_record(conn, done["visitor_person_id"])
    assert visitor is not None
    [own] = visitor["visitor_passes"]
    assert (own["phone"], own["id_number"]) == ("13812345678", "110101199003071234")
