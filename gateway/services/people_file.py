"""People files as universities keep them: CSV in UTF-8 or GBK/GB18030, or an Excel workbook.

Both become rows of strings for the people parser of gateway/services/manifest.py;
every problem is a one-line ManifestError that says what to do next.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path

from gateway.services.manifest import ManifestError

PEOPLE_SUFFIXES = (".csv", ".xlsx")
SAVE_AS_UTF8 = (
    "save it as UTF-8 CSV (Excel: Save As > 'CSV UTF-8'; WPS: 另存为 CSV, 编码 UTF-8) "
    "or as an Excel .xlsx workbook, and import again"
)


def decode_text(raw: bytes, source: str) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK and GB2312).

    UTF-8 is tried strictly first: a GBK file is almost never valid UTF-8, while a
    UTF-8 file often is valid GB18030 (as mojibake), so the order matters.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ManifestError(
            f"{source}: the file is UTF-16 (Excel's 'Unicode text'); {SAVE_AS_UTF8}"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{source}: cannot read the text: it is neither UTF-8 nor GBK/GB18030 "
            f"(byte 0x{raw[exc.start]:02x} at offset {exc.start}); {SAVE_AS_UTF8}"
        ) from None


def csv_rows(raw: bytes, source: str) -> Iterator[list[str]]:
    """The rows of a CSV file in any of the encodings `decode_text` reads."""
    return csv.reader(io.StringIO(decode_text(raw, source), newline=""))


def _cell_text(value: object) -> str:
    """A cell as the CSV export would show it: 2023001 not 2023001.0, dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def xlsx_rows(path: Path, source: str) -> list[list[str]]:
    """The first sheet of an .xlsx workbook as rows of text, formulas by their saved values.

    A formula cell without a saved value (a file written by a program that does not
    compute formulas) is refused rather than read as empty.
    """
    from openpyxl import load_workbook  # only an Excel import pays for it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        values_book = load_workbook(path, read_only=True, data_only=True)
        formulas_book = load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        hint = (
            "an old .xls workbook: open it in Excel or WPS and save it as .xlsx"
            if path.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"
            else f"not an Excel .xlsx workbook ({exc.__class__.__name__})"
        )
        raise ManifestError(f"{source}: cannot read the workbook: {hint}") from None
    try:
        values_sheet = values_book.worksheets[0]
        formulas_sheet = formulas_book.worksheets[0]
        rows: list[list[str]] = []
        for line, (values, formulas) in enumerate(
            zip(
                values_sheet.iter_rows(values_only=True),
                formulas_sheet.iter_rows(values_only=True),
                strict=False,
            ),
            start=1,
        ):
            for column, (value, formula) in enumerate(zip(values, formulas, strict=False)):
                if value is None and isinstance(formula, str) and formula.startswith("="):
                    raise ManifestError(
                        f"{source}: row {line} column {column + 1}: the formula {formula[:40]} "
                        "has no saved value; open the file in Excel or WPS and save it "
                        "(or paste the cells as values), then import again"
                    )
            rows.append([_cell_text(v) for v in values])
    finally:
        values_book.close()
        formulas_book.close()
    while rows and rows[-1] and all(not v for v in rows[-1]):
        rows.pop()
    # Excel pads rows to the sheet's widest: trailing empty cells beyond the header go.
    if rows:
        width = len(rows[0])
        while width and not rows[0][width - 1]:
            width -= 1
        rows = [r[:width] if not any(r[width:]) else r for r in rows]
    return rows


def people_rows(path: Path, source: str) -> Iterator[list[str]]:
    """The rows of a people file (`.csv` or `.xlsx`), header first."""
    if path.suffix.lower() == ".xlsx":
        return iter(xlsx_rows(path, source))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{source}: cannot read the file: {exc.strerror}") from None
    return csv_rows(raw, source)
