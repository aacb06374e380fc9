"""People files as the student information system exports them, and the sync of a full export."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from gateway.services.importer import ManifestError, SyncOptions, import_file, refused_share
from gateway.store.roster import load_roster

TZ = ZoneInfo("Asia/Shanghai")
HEADER = "id,kind,name,org_unit,card_uid\n"
ORG = "org_units:\n  - {id: cs, name: 计算机学院}\n"


async def _org(conn, tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(ORG, encoding="utf-8")
    await import_file(conn, path, tz=TZ)


async def _names(conn) -> dict[str, str]:
    return {p.id: p.name for p in (await load_roster(conn)).people}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
async def test_csv_in_the_encodings_universities_use(conn, tmp_path, encoding: str) -> None:
    await _org(conn, tmp_path)
    text = HEADER + "2023001,student,张伟,cs,04A1B2C3D4\n2023002,student,欧阳娜娜,cs,\n"
    path = tmp_path / f"people-{encoding}.csv"
    path.write_bytes(text.encode(encoding))
    await import_file(conn, path, tz=TZ)
    names = await _names(conn)
    assert names["2023001"] == "张伟"
    assert names["2023002"] == "欧阳娜娜"


async def test_gb18030_only_characters(conn, tmp_path) -> None:
    """A rare given name outside GBK (U+3400 block) still reads from a GB18030 file."""
    await _org(conn, tmp_path)
    path = tmp_path / "people.csv"
    path.write_bytes((HEADER + "2023003,student,王㐀,cs,\n").encode("gb18030"))
    await import_file(conn, path, tz=TZ)
    assert (await _names(conn))["2023003"] == "王㐀"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ((HEADER + "1,student,Jos\xe9,,\n").encode("latin-1"), "neither UTF-8 nor GBK/GB18030"),
        ((HEADER + "1,student,李,,\n").encode("utf-16"), "the file is UTF-16"),
    ],
)
async def test_an_unreadable_encoding_is_one_line_with_a_hint(
    conn, tmp_path, raw: bytes, expected: str
) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(raw)
    with pytest.raises(ManifestError) as caught:
        await import_file(conn, path, tz=TZ)
    message = str(caught.value)
    assert message.startswith("people.csv: ")
    assert expected in message
    assert "save it as UTF-8 CSV" in message
    assert "\n" not in message


def _workbook(path: Path, rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


async def test_xlsx_people_file(conn, tmp_path) -> None:
    await _org(conn, tmp_path)
    path = _workbook(
        tmp_path / "学生名单.xlsx",
        [
            ["id", "kind", "name", "org_unit", "card_uid"],
            [2023001, "student", "张伟", "cs", "04A1B2C3D4"],  # an id typed as a number
            ["2023002", "student", "李娜", "cs", None],
            [None, None, None, None, None],  # Excel's empty rows at the end
        ],
    )
    report = await import_file(conn, path, tz=TZ)
    assert report.sections["people"].inserted == 2
    roster = await load_roster(conn)
    assert {p.id: p.name for p in roster.people} == {"2023001": "张伟", "2023002": "李娜"}
    assert {(c.uid, c.person_id) for c in roster.cards} == {("04A1B2C3D4", "2023001")}
    assert (await import_file(conn, path, tz=TZ)).changed is False


def _with_cached_formula(path: Path) -> None:
    """Give the workbook's formula a saved value, as Excel does when it saves."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet, n = re.subn(
        r'<c r="C2"([^>]*)><f>([^<]*)</f><v\s*/?>(?:</v>)?</c>',
        r'<c r="C2" t="str"><f>\2</f><v>张伟</v></c>',
        sheet,
    )
    assert n == 1, sheet
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, body in parts.items():
            target.writestr(name, body)


async def test_xlsx_formulas_read_by_their_saved_value_or_refused(conn, tmp_path) -> None:
    await _org(conn, tmp_path)
    rows: list[list[object]] = [
        ["id", "kind", "name", "org_unit", "card_uid"],
        ["2023001", "student", '=CONCAT("张","伟")', "cs", None],
    ]
    unsaved = _workbook(tmp_path / "unsaved.xlsx", rows)
    with pytest.raises(
        ManifestError, match=r"unsaved.xlsx: row 2 column 3: the formula .* has no saved value"
    ):
        await import_file(conn, unsaved, tz=TZ)
    assert await _names(conn) == {}
    saved = _workbook(tmp_path / "saved.xlsx", rows)
    _with_cached_formula(saved)
    await import_file(conn, saved, tz=TZ)
    assert (await _names(conn))["2023001"] == "张伟"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"\xd0\xcf\x11\xe0" + b"\0" * 100,
            "an old .xls workbook: open it in Excel or WPS and save it as .xlsx",
        ),
        (b"id,kind,name\n", "not an Excel .xlsx workbook"),
    ],
)
async def test_a_file_that_is_no_workbook(conn, tmp_path, raw: bytes, expected: str) -> None:
    path = tmp_path / "people.xlsx"
    path.write_bytes(raw)
    with pytest.raises(
        ManifestError, match=re.escape(f"people.xlsx: cannot read the workbook: {expected}")
    ):
        await import_file(conn, path, tz=TZ)


def _people_csv(tmp_path: Path, name: str, students: range, staff: range = range(0)) -> Path:
    lines = [HEADER.strip()]
    lines += [f"S{i:03d},student,Student {i},cs," for i in students]
    lines += [f"T{i:03d},staff,Teacher {i},cs," for i in staff]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


async def _active(conn) -> set[str]:
    return {r[0] for r in await conn.fetch("SELECT id FROM people WHERE active")}


async def test_sync_deactivates_who_the_full_export_leaves_out(conn, tmp_path) -> None:
    await _org(conn, tmp_path)
    await import_file(conn, _people_csv(tmp_path, "all.csv", range(20), range(3)), tz=TZ)
    # The next export: S000 and S001 graduated, S020 enrolled; staff come from another system.
    export = _people_csv(tmp_path, "students.csv", range(2, 21))

    dry = await import_file(
        conn, export, tz=TZ, sync=SyncOptions(dry_run=True), operator="registrar"
    )
    assert dry.dry_run and dry.sync is not None
    assert dry.sync.kinds == ("student",)
    assert dry.sync.deactivated == ("S000", "S001")
    assert dry.sync.active == 20
    assert not refused_share(dry.sync, 0.1)
    assert len(await _active(conn)) == 23  # a dry run writes nothing
    assert "S020" not in await _names(conn)

    report = await import_file(conn, export, tz=TZ, sync=SyncOptions(), operator="registrar")
    assert report.sync is not None and report.sync.deactivated == ("S000", "S001")
    active = await _active(conn)
    assert {"S000", "S001"} & active == set()
    assert {"S020", "T000", "T001", "T002"} <= active  # staff are not in a student export
    audit = await conn.fetch(
        "SELECT operator, entity_id, after FROM audit_log WHERE action = 'deactivate' ORDER BY entity_id"
    )
    assert [(r["operator"], r["entity_id"]) for r in audit] == [
        ("registrar", "S000"),
        ("registrar", "S001"),
    ]
    assert audit[0]["after"]["why"] == "absent from the full export students.csv"
    again = await import_file(conn, export, tz=TZ, sync=SyncOptions())
    assert again.sync is not None and again.sync.deactivated == ()


async def test_sync_refuses_a_truncated_export(conn, tmp_path) -> None:
    await _org(conn, tmp_path)
    await import_file(conn, _people_csv(tmp_path, "all.csv", range(20)), tz=TZ)
    truncated = _people_csv(tmp_path, "truncated.csv", range(5))  # 15 of 20 missing
    dry = await import_file(conn, truncated, tz=TZ, sync=SyncOptions(dry_run=True))
    assert dry.sync is not None and len(dry.sync.deactivated) == 15
    assert refused_share(dry.sync, 0.1)
    with pytest.raises(
        ManifestError,
        match=r"would deactivate 15 of 20 active student \(75%\), more than the 10% allowed",
    ):
        await import_file(conn, truncated, tz=TZ, sync=SyncOptions())
    assert len(await _active(conn)) == 20
    # Allowed explicitly (e.g. the end of a school year), it goes through.
    report = await import_file(conn, truncated, tz=TZ, sync=SyncOptions(max_share=0.8))
    assert report.sync is not None and len(report.sync.deactivated) == 15
    assert await _active(conn) == {f"S{i:03d}" for i in range(5)}


async def test_sync_needs_a_people_file(conn, tmp_path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(ORG, encoding="utf-8")
    with pytest.raises(ManifestError, match="a sync needs a people file"):
        await import_file(conn, path, tz=TZ, sync=SyncOptions())
