"""A report as one CSV file: the numbers, then each list as a titled section.

UTF-8 with a byte-order mark, so spreadsheet programs show Chinese names correctly.
"""

from __future__ import annotations

import csv
import io

from gateway.domain.reports import DailyReport
from gateway.services.reports.labels import (
    COLUMNS,
    LISTS,
    NOTES,
    bilingual,
    summary_rows,
    title,
    visible_lists,
)


def render_csv(report: DailyReport, *, with_health: bool) -> bytes:
    """The report's CSV; lists with health detail only when `with_health`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([title(report)])
    writer.writerow(["指标 / Metric", "数值 / Value"])
    writer.writerows(summary_rows(report))
    for name in visible_lists(report, with_health):
        rows = report.lists.get(name, [])
        writer.writerow([])
        writer.writerow([f"{bilingual(LISTS[name])} ({len(rows)})"])
        columns = COLUMNS[name]
        writer.writerow([f"{zh} / {en}" for _, zh, en in columns])
        for row in rows:
            writer.writerow(["" if row.get(key) is None else row[key] for key, _, _ in columns])
    writer.writerow([])
    for note in NOTES:
        writer.writerow([note])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
