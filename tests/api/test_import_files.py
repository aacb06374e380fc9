"""`POST /api/import` with the files universities keep: .xlsx, GBK CSV, and a sync (issue 16)."""

from __future__ import annotations

import io

from openpyxl import Workbook

HEADER = ["id", "kind", "name", "org_unit", "card_uid"]


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def _upload(admin, name: str, body: bytes, **params):
    return await admin.post("/api/import", params=params, files={"file": (name, io.BytesIO(body))})


async def test_xlsx_and_gbk_uploads_and_a_sync_of_visitors(admin):
    book = _xlsx(
        [
            HEADER,
            ["V-SYNC-1", "visitor", "访客甲", "cs", None],
            ["V-SYNC-2", "visitor", "访客乙", "cs", None],
        ]
    )
    done = await _upload(admin, "访客.xlsx", book)
    assert done.status_code == 200, done.text
    assert done.json()["sections"]["people"]["inserted"] == 2
    found = (await admin.get("/api/people", params={"q": "V-SYNC-1"})).json()["items"]
    assert [p["name"] for p in found] == ["访客甲"]

    gbk = ",".join(HEADER) + "\nV-SYNC-1,visitor,访客甲,cs,\n"
    dry = await _upload(admin, "visitors.csv", gbk.encode("gbk"), sync="true", dry_run="true")
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body["dry_run"] is True and body["sync"]["kinds"] == ["visitor"]
    assert (
        "V-SYNC-2" in body["sync"]["deactivated"] and "V-SYNC-1" not in body["sync"]["deactivated"]
    )
    assert body["sync"]["would_be_refused"] is True  # one of two is more than 10 %

    refused = await _upload(admin, "visitors.csv", gbk.encode("gbk"), sync="true")
    assert refused.status_code == 422
    assert "more than the 10% allowed" in refused.text
    person = (await admin.get("/api/people", params={"q": "V-SYNC-2"})).json()["items"][0]
    assert person["active"] is True

    synced = await _upload(
        admin, "visitors.csv", gbk.encode("gbk"), sync="true", max_deactivate_share="1"
    )
    assert synced.status_code == 200, synced.text
    assert "V-SYNC-2" in synced.json()["sync"]["deactivated"]
    person = (await admin.get("/api/people", params={"q": "V-SYNC-2"})).json()["items"][0]
    assert person["active"] is False


async def test_unreadable_uploads_say_what_to_do(admin):
    latin = ",".join(HEADER).encode() + b"\n1,visitor,Jos\xe9,,\n"
    bad = await _upload(admin, "people.csv", latin)
    assert bad.status_code == 422 and "save it as UTF-8 CSV" in bad.text
    old_excel = await _upload(admin, "people.xlsx", b"\xd0\xcf\x11\xe0" + b"\0" * 64)
    assert old_excel.status_code == 422 and "save it as .xlsx" in old_excel.text
    lonely = await _upload(admin, "people.csv", latin, dry_run="true")
    assert lonely.status_code == 422 and "dry_run goes with sync" in lonely.text
