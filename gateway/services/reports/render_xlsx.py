"""A report as an XLSX workbook: a summary sheet, a trend sheet and one sheet per list."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from gateway.domain.reports import DailyReport
from gateway.services.reports.labels import (
    COLUMNS,
    LISTS,
    NOTES,
    summary_rows,
    title,
    visible_lists,
)

_BOLD = Font(bold=True)


def _header(sheet: Worksheet, cells: list[str]) -> None:
    sheet.append(cells)
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
    summary.append([title(report)])
    summary["A1"].font = Font(bold=True, size=13)
    _header(summary, ["指标 / Metric", "数值 / Value"])
    for row in summary_rows(report):
        summary.append(list(row))
    summary.append([])
    for note in NOTES:
        summary.append([note])
    summary.column_dimensions["A"].width = 44
    summary.column_dimensions["B"].width = 36

    trend = book.create_sheet("Trend 趋势")
    _header(trend, ["日期 / Day", "在校 / Present", "发热 / Fevers"])
    for point in report.summary["trend"]:
        trend.append([point["day"], point["present"], point["fevers"]])
    _widths(trend)

    for name in visible_lists(report, with_health):
        zh, en = LISTS[name]
        sheet = book.create_sheet(f"{en} {zh}"[:31])
        columns = COLUMNS[name]
        _header(sheet, [f"{czh} / {cen}" for _, czh, cen in columns])
        for row in report.lists.get(name, []):
            sheet.append([row.get(key) for key, _, _ in columns])
        _widths(sheet)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
