"""One spreadsheet cell of a report file, safe to open: text that a spreadsheet program
would read as a formula (a name such as `=HYPERLINK(...)` or `@SUM(...)`) is written
with a leading single quote, so it stays text (CSV and XLSX writers alike)."""

from __future__ import annotations

from typing import Any

# What starts a formula in Excel, LibreOffice and Sheets (tab and CR begin DDE tricks).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` as a cell: text starting a formula quoted, anything else as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
