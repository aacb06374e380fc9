"""A report as one CSV file: the numbers, then each list as a titled section.

UTF-8 with a byte-order mark, so spreadsheet programs show Chinese names correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from gateway.domain.reports import DailyReport
from gateway.domain.spreadsheet import safe_value
from gateway.services.reports.labels import (
    COLUMNS,
    LISTS,
    NOTES,
    ZONE_KINDS,
    bilingual,
    label,
    list_rows,
    passage_rows,
    summary_rows,
    title,
)


def render_csv(report: DailyReport, *, with_health: bool) -> bytes:
    """The report's CSV; lists with health detail only when `with_health`."""
    out = io.StringIO()
    writer = _SafeWriter(csv.writer(out, lineterminator="\r\n"))
    writer.writerow([title(report)])
    writer.writerow(["指标 / Metric", "数值 / Value"])
    writer.writerows(summary_rows(report))
    passages = passage_rows(report.summary)
    if passages:
        writer.writerow([])
        writer.writerow(["放行通行 (按区域类型) / Admitted passages by zone kind"])
        writer.writerow(["区域类型 / Zone kind", "进 / In", "出 / Out"])
        writer.writerows([label(ZONE_KINDS, k), i, o] for k, i, o in passages)
    for name, rows in list_rows(report, with_health).items():
        writer.writerow([])
        writer.writerow([f"{bilingual(LISTS[name])} ({len(rows)})"])
        columns = COLUMNS[name]
        writer.writerow([f"{zh} / {en}" for _, zh, en in columns])
        for row in rows:
            writer.writerow([row.get(key) for key, _, _ in columns])
    writer.writerow([])
    for note in NOTES:
        writer.writerow([note])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


class _SafeWriter:
    """A csv writer whose every cell goes through `safe_value` (no formula in any cell)."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_value(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
