"""A report as one self-contained HTML page with inline SVG charts.

Every value is escaped; the page needs no script and no outside resource, so the
console shows it in a sandboxed frame and an e-mail carries it as its body.
"""

from __future__ import annotations

from html import escape
from typing import Any

from gateway.domain.reports import GUARDED_ZONE_KINDS, DailyReport
from gateway.services.reports import charts
from gateway.services.reports.labels import (
    COLUMNS,
    LISTS,
    METRICS,
    NOTES,
    REASONS,
    STATUSES,
    ZONE_KINDS,
    bilingual,
    health_counts,
    label,
    list_rows,
    passage_rows,
    summary_rows,
    title,
)

# The page allows nothing but its own inline styles and images (a report is data).
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}
.cards{display:flex;flex-wrap:wrap;gap:.6em}
.card{border:1px solid #ccd;border-radius:6px;padding:.5em .8em;min-width:9em}
.card b{display:block;font-size:1.5em}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccd;padding:.2em .5em;text-align:left}
th{background:#eef}.charts{display:flex;flex-wrap:wrap;gap:1em}.charts svg{max-width:100%;height:auto}
.note{color:#666;font-size:.85em}
"""


def _table(head: list[str], rows: list[list[Any]], css_id: str) -> str:
    out = [f'<table id="{css_id}"><thead><tr>']
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in row)
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _cards(summary: dict[str, Any]) -> str:
    keys = ("people", "present", "absent", "screenings", "fevers", "new_isolations")
    cards = [(label(METRICS, k), summary[k], k) for k in keys]
    cards.append((label(METRICS, "denied_total"), summary["denied_total"], "denied_total"))
    blocked = summary["outsiders_blocked"]["total"]
    cards.append((label(METRICS, "outsiders_blocked"), blocked, "outsiders_blocked"))
    if "passages" in summary:  # reports stored before these numbers have none
        refused = summary["visitors_refused"]["total"]
        cards.append((label(METRICS, "visitors_refused"), refused, "visitors_refused"))
        cards.append((label(METRICS, "passages"), summary["passages"]["total"], "passages"))
        unscreened = summary["never_screened"]
        cards.append((label(METRICS, "never_screened"), unscreened, "never_screened"))
    return '<div class="cards">' + "".join(
        f'<div class="card" data-metric="{k}">{escape(name)}<b>{value}</b></div>'
        for name, value, k in cards
    ) + "</div>"  # fmt: skip


def _new_sections(s: dict[str, Any]) -> list[str]:
    """Visitors refused beside the outsiders, and the admitted passages by zone kind."""
    refused = s["visitors_refused"]
    by_kind = [
        [label(ZONE_KINDS, k), refused["by_zone_kind"].get(k, 0)] for k in GUARDED_ZONE_KINDS
    ]
    by_kind.append([label(METRICS, "outsiders_and_visitors"), s["outsiders_and_visitors"]])
    passages = [[label(ZONE_KINDS, k), i, o] for k, i, o in passage_rows(s)]
    p = s["passages"]
    passages.append(["合计 / Total", p["in"], p["out"]])
    return [
        f"<h2>{escape(label(METRICS, 'visitors_refused'))}</h2>",
        _table(["区域类型 / Zone kind", "次数 / Attempts"], by_kind, "visitors-refused"),
        f"<h2>{escape(label(METRICS, 'passages'))}</h2>",
        _table(["区域类型 / Zone kind", "进 / In", "出 / Out"], passages, "passages"),
    ]


def render_html(report: DailyReport, *, with_health: bool, charts_on: bool = True) -> str:
    """The report page; lists with health detail only when `with_health`."""
    s = report.summary
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title(report))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title(report))}</h1>",
        f'<p class="note">截至 / as of {escape(s["cutoff"])}'
        + ("" if s["complete"] else " (当天未结束 / the day is not over)")
        + "</p>",
        _cards(s),
    ]
    if charts_on:
        parts += [
            '<div class="charts">',
            charts.trend_chart(s["trend"]),
            charts.health_chart(dict(health_counts(s))),
            charts.denied_chart(dict(sorted(s["denied"].items()))),
        ]
        if "passages" in s:
            parts.append(charts.passages_chart(passage_rows(s)))
        parts.append("</div>")
    parts.append("<h2>汇总 / Summary</h2>")
    parts.append(
        _table(
            ["指标 / Metric", "数值 / Value"], [list(r) for r in summary_rows(report)], "summary"
        )
    )
    health = [[label(STATUSES, k), v] for k, v in health_counts(s)]
    parts.append("<h2>健康状态 / Health statuses</h2>")
    parts.append(_table(["状态 / Status", "人数 / People"], health, "health-counts"))
    denied = [[label(REASONS, k), v] for k, v in sorted(s["denied"].items())]
    parts.append("<h2>拒绝原因 / Denied by reason</h2>")
    parts.append(_table(["原因 / Reason", "次数 / Attempts"], denied, "denied"))
    doors = sorted([k, v] for k, v in s["outsiders_blocked"]["by_door"].items())
    parts.append(f"<h2>{escape(label(METRICS, 'outsiders_blocked'))}</h2>")
    parts.append(_table(["门 / Door", "次数 / Attempts"], doors, "outsiders"))
    if "passages" in s:
        parts += _new_sections(s)
    for name, rows in list_rows(report, with_health).items():
        columns = COLUMNS[name]
        parts.append(f"<h2>{escape(bilingual(LISTS[name]))} ({len(rows)})</h2>")
        body = [[row.get(key) for key, _, _ in columns] for row in rows]
        parts.append(_table([f"{zh} / {en}" for _, zh, en in columns], body, f"list-{name}"))
    if not with_health:
        parts.append('<p class="note">名单含健康信息, 仅限有权限的角色查看 / '
                     "lists with health detail are shown only to roles that may read health.</p>")  # fmt: skip
    parts += [f'<p class="note">{escape(n)}</p>' for n in NOTES]
    parts.append("</body></html>")
    return "\n".join(parts)
