"""Phones and ID numbers from a manifest and from a people CSV (optional extra columns)."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from gateway.services.importer import ManifestError, import_file

TZ = ZoneInfo("Asia/Shanghai")

MANIFEST = """
org_units:
  - {id: cs, name: Computer Science}
people:
  - {id: "S1", kind: student, name: Li Hua, org_unit: cs, cards: ["04A1B2C3"],
     phone: "138 1234 5678", id_number: "11010119900307123x"}
  - {id: "S2", kind: student, name: Wang Fang, org_unit: cs}
"""


async def _contacts(conn: asyncpg.Connection) -> dict[str, tuple[str | None, str | None]]:
    rows = await conn.fetch("SELECT id, phone, id_number FROM people ORDER BY id")
    return {r["id"]: (r["phone"], r["id_number"]) for r in rows}


async def test_manifest_contacts_are_imported_normalized_and_idempotent(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "campus.yaml"
    path.write_text(MANIFEST)
    first = await import_file(conn, path, tz=TZ)
    assert first.sections["contacts"].updated == 1
    assert await _contacts(conn) == {
        "S1": ("13812345678", "11010119900307123X"),
        "S2": (None, None),
    }
    again = await import_file(conn, path, tz=TZ)
    assert not again.changed
    assert again.sections["contacts"].unchanged == 1


async def test_omitted_contact_fields_leave_stored_values(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "campus.yaml"
    path.write_text(MANIFEST)
    await import_file(conn, path, tz=TZ)
    path.write_text(MANIFEST.replace('phone: "138 1234 5678", ', ""))
    await import_file(conn, path, tz=TZ)
    assert (await _contacts(conn))["S1"] == ("13812345678", "11010119900307123X")


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ('phone: "call me"', "phone 'call me' must be"),
        ("phone: 13812345678", "phone must be quoted text, got int"),
        ('id_number: "11-01"', "id_number '11-01' must be"),
    ],
)
async def test_bad_contact_fields_are_one_line_errors(
    conn: asyncpg.Connection, tmp_path: Path, replacement: str, message: str
) -> None:
    path = tmp_path / "campus.yaml"
    field = replacement.split(":")[0]
    original = 'phone: "138 1234 5678"' if field == "phone" else 'id_number: "11010119900307123x"'
    path.write_text(MANIFEST.replace(original, replacement))
    with pytest.raises(ManifestError, match=re.escape(message)) as caught:
        await import_file(conn, path, tz=TZ)
    assert "people[0] (id S1)" in str(caught.value) and "\n" not in str(caught.value)
    assert await conn.fetchval("SELECT count(*) FROM people") == 0


async def test_contract_csv_header_still_works(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await _org(conn, tmp_path)
    path = tmp_path / "people.csv"
    path.write_text("id,kind,name,org_unit,card_uid\nS1,student,Li Hua,cs,04A1B2C3\n")
    report = await import_file(conn, path, tz=TZ)
    assert report.sections["people"].inserted == 1 and "contacts" not in report.sections
    assert await _contacts(conn) == {"S1": (None, None)}


async def test_csv_with_contact_columns(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await _org(conn, tmp_path)
    path = tmp_path / "people.csv"
    path.write_text(
        "id,kind,name,org_unit,card_uid,phone,id_number\n"
        "S1,student,Li Hua,cs,04A1B2C3,13812345678,110101199003071234\n"
        "S1,student,Li Hua,cs,04A1B2C4,,\n"  # a second card: blank contacts agree
        "S2,student,Wang Fang,cs,,,E12345678\n"
        "S3,staff,Zhang Wei,cs,,+86 10 6275 1234,\n"
    )
    await import_file(conn, path, tz=TZ)
    assert await _contacts(conn) == {
        "S1": ("13812345678", "110101199003071234"),
        "S2": (None, "E12345678"),
        "S3": ("+861062751234", None),
    }
    # A later contract-header CSV of the same people keeps their contacts.
    path.write_text("id,kind,name,org_unit,card_uid\nS1,student,Li Hua,cs,04A1B2C3\n")
    await import_file(conn, path, tz=TZ)
    assert (await _contacts(conn))["S1"] == ("13812345678", "110101199003071234")


async def test_csv_phone_column_alone(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await _org(conn, tmp_path)
    path = tmp_path / "people.csv"
    path.write_text("id,kind,name,org_unit,card_uid,phone\nS1,student,Li Hua,cs,,13812345678\n")
    await import_file(conn, path, tz=TZ)
    assert (await _contacts(conn))["S1"] == ("13812345678", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,kind,name,org_unit,card_uid,email\n", "line 1: the header must be"),
        ("id,kind,name,org_unit,card_uid,phone,phone\n", "line 1: the header must be"),
        (
            "id,kind,name,org_unit,card_uid,phone\nS1,student,Li Hua,cs,\n",
            "line 2 (id S1): expected 6 columns, got 5",
        ),
        (
            "id,kind,name,org_unit,card_uid,phone\nS1,student,Li Hua,cs,,1381234\n"
            "S1,student,Li Hua,cs,04A1B2C3,1391234\n",
            "line 3 (id S1): phone differs from line 2",
        ),
        (
            "id,kind,name,org_unit,card_uid,id_number\nS1,student,Li Hua,cs,,???\n",
            "line 2 (id S1): id_number '???' must be",
        ),
    ],
)
async def test_bad_csv_contacts(
    conn: asyncpg.Connection, tmp_path: Path, text: str, message: str
) -> None:
    await _org(conn, tmp_path)
    path = tmp_path / "people.csv"
    path.write_text(text)
    with pytest.raises(ManifestError, match=re.escape(message)):
        await import_file(conn, path, tz=TZ)
    assert await conn.fetchval("SELECT count(*) FROM people") == 0


async def test_roster_index_does_not_hold_contacts(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "campus.yaml"
    path.write_text(MANIFEST)
    await import_file(conn, path, tz=TZ)
    from gateway.store.roster import load_roster  # imported here: it pulls in the whole roster

    roster = await load_roster(conn)
    text = repr(roster)
    assert "13812345678" not in text and "11010119900307123X" not in text
    for person in roster.people:
        assert not hasattr(person, "phone") and not hasattr(person, "id_number")


async def _org(conn: asyncpg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text("org_units:\n  - {id: cs, name: Computer Science}\n")
    await import_file(conn, path, tz=TZ)
