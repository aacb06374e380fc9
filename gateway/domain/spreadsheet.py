"""Cells for CSV and XLSX exports: data, never formulas.

A spreadsheet program runs a cell that starts with `=`, `+`, `-` or `@` (and some read a
leading tab or carriage return the same way) as a formula: a person named
`=HYPERLINK("http://x","y")` would become a link. Such text gets a leading apostrophe,
which spreadsheet programs show as text; numbers stay numbers.
"""

from __future__ import annotations

from datetime import date, datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """`text`, with a leading apostrophe when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_value(value: object) -> object:
    """`value` for a cell as it is (datetimes stay datetimes for XLSX), text neutralised."""
    return safe_text(value) if isinstance(value, str) else value


def safe_cell(value: object) -> object:
    """A value for a CSV or XLSX cell: numbers, booleans and None as they are, times as
    ISO 8601, any other text neutralised by `safe_text`."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return safe_text(str(value))
