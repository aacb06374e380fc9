"""A report as an XLSX workbook: a summary sheet, a trend sheet and one sheet per list."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from gateway.domain.reports import DailyReport
from gateway.domain.spreadsheet import safe_value
from gateway.services.reports.labels import (
    COLUMNS,
    LISTS,
    NOTES,
    ZONE_KINDS,
    label,
    list_rows,
    passage_rows,
    summary_rows,
    title,
)

_BOLD = Font(bold=True)


def _append(sheet: Worksheet, cells: list[Any]) -> None:
    """A row of cells, none of them a formula (openpyxl takes text starting '=' for one)."""
    sheet.append([safe_value(v) for v in cells])


def _header(sheet: Worksheet, cells: list[str]) -> None:
    _append(sheet, cells)
    for cell in sheet[sheet.max_row]:
        cell.font = _BOLD
    sheet.freeze_panes = f"A{sheet.max_row + 1}"


def _widths(sheet: Worksheet) -> None:
    for column in sheet.columns:
        longest = max((len(str(c.value)) for c in column if c.value is not None), default=8)
        sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, longest + 2))


def render_xlsx(report: DailyReport, *, with_health: bool) -> bytes:
    """The report's workbook; list sheets with health detail only when `with_health`."""
    book = Workbook()
    # Fixed document times: the same report renders to the same workbook content.
    book.properties.creator = "CampusGate"
    book.properties.title = title(report)
    book.properties.created = report.generated_at.replace(tzinfo=None)
    book.properties.modified = report.generated_at.replace(tzinfo=None)

    summary = book.active
    summary.title = "Summary 汇总"
    _append(summary, [title(report)])
    summary["A1"].font = Font(bold=True, size=13)
    _header(summary, ["指标 / Metric", "数值 / Value"])
    for row in summary_rows(report):
        _append(summary, list(row))
    summary.append([])
    for note in NOTES:
        _append(summary, [note])
    summary.column_dimensions["A"].width = 44
    summary.column_dimensions["B"].width = 36

    trend = book.create_sheet("Trend 趋势")
    _header(trend, ["日期 / Day", "在校 / Present", "发热 / Fevers"])
    for point in report.summary["trend"]:
        _append(trend, [point["day"], point["present"], point["fevers"]])
    _widths(trend)

    if "passages" in report.summary:
        passages = book.create_sheet("Passages 通行")
        _header(passages, ["区域类型 / Zone kind", "进 / In", "出 / Out"])
        for kind, inward, outward in passage_rows(report.summary):
            _append(passages, [label(ZONE_KINDS, kind), inward, outward])
        _widths(passages)

    for name, rows in list_rows(report, with_health).items():
        zh, en = LISTS[name]
        sheet = book.create_sheet(f"{en} {zh}"[:31])
        columns = COLUMNS[name]
        _header(sheet, [f"{czh} / {cen}" for _, czh, cen in columns])
        for row in rows:
            _append(sheet, [row.get(key) for key, _, _ in columns])
        _widths(sheet)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
