"""The report's charts as inline SVG (matplotlib's object API: no pyplot, no GUI backend).

SVG keeps text as text (svg.fonttype none), so the browser draws it with its own
fonts, and a fixed hash salt with no date makes the same report render byte for byte
the same SVG. Titles, axes and category names are bilingual ("中文 / English"), like
the rest of the report, so the Chinese console reads them in Chinese.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from gateway.services.reports.labels import REASONS, STATUSES, ZONE_KINDS, bilingual, label

matplotlib.rcParams["svg.hashsalt"] = "campusgate-report"
matplotlib.rcParams["svg.fonttype"] = "none"
# Chinese text: measured with a CJK font where one is installed (the browser draws it anyway).
matplotlib.rcParams["font.family"] = ["sans-serif"]
matplotlib.rcParams["font.sans-serif"] = [
    "DejaVu Sans",
    "Noto Sans CJK SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
]

_BLUE, _RED, _GREY = "#2f6db5", "#c0392b", "#7f8c8d"


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    with warnings.catch_warnings():
        # Without a CJK font installed, matplotlib warns per glyph; the SVG keeps the text.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: it sits inline


def _empty(axes: Any, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", color=_GREY)
    axes.set_axis_off()


def denied_chart(denied: dict[str, int]) -> str:
    """Horizontal bars: denied attempts by reason."""
    figure = Figure(figsize=(6, 2.6))
    axes = figure.add_subplot()
    if not denied:
        _empty(axes, bilingual(("无拒绝记录", "no denied attempts")))
    else:
        reasons = list(denied)
        axes.barh([label(REASONS, r) for r in reasons], [denied[r] for r in reasons], color=_RED)
        axes.invert_yaxis()
        axes.set_xlabel(bilingual(("拒绝次数", "denied attempts")))
        axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_title(bilingual(("按原因拒绝", "Denied by reason")))
    return _svg(figure)


def health_chart(health: dict[str, int]) -> str:
    """Bars: people per health status (clear apart, in the title, so the rest stay visible)."""
    figure = Figure(figsize=(6, 2.6))
    axes = figure.add_subplot()
    others = {k: v for k, v in health.items() if k != "clear"}
    axes.bar(
        [STATUSES[k][0] if k in STATUSES else k for k in others], list(others.values()), color=_BLUE
    )
    axes.tick_params(axis="x", labelrotation=20)
    axes.yaxis.get_major_locator().set_params(integer=True)
    clear = health.get("clear", 0)
    axes.set_title(f"健康状态 (正常 {clear}) / Health status (clear: {clear})")
    return _svg(figure)


def trend_chart(trend: list[dict[str, Any]]) -> str:
    """Lines: people present and people with a fever over the last days."""
    figure = Figure(figsize=(6, 2.6))
    axes = figure.add_subplot()
    days = [p["day"][5:] for p in trend]
    present = bilingual(("在校", "present"))
    fever = bilingual(("发热", "fevers"))
    axes.plot(days, [p["present"] for p in trend], marker="o", color=_BLUE, label=present)
    axes.set_ylabel(present)
    axes.yaxis.get_major_locator().set_params(integer=True)
    fevers = axes.twinx()
    fevers.plot(days, [p["fevers"] for p in trend], marker="s", color=_RED, label=fever)
    fevers.set_ylabel(fever)
    fevers.yaxis.get_major_locator().set_params(integer=True)
    fevers.set_ylim(bottom=0, top=max(1, *(p["fevers"] for p in trend)) * 1.2)
    axes.set_ylim(bottom=0)
    axes.set_title(bilingual(("近 7 天", "Last 7 days")))
    figure.legend(loc="lower center", ncol=2, fontsize="small", bbox_to_anchor=(0.5, -0.1))
    return _svg(figure)


def passages_chart(rows: list[tuple[str, int, int]]) -> str:
    """Stacked bars: admitted passages in and out by zone kind."""
    figure = Figure(figsize=(6, 2.6))
    axes = figure.add_subplot()
    if not rows:
        _empty(axes, bilingual(("无放行通行", "no admitted passages")))
    else:
        kinds = [label(ZONE_KINDS, k) for k, _, _ in rows]
        inward = [i for _, i, _ in rows]
        axes.bar(kinds, inward, color=_BLUE, label=bilingual(("进", "in")))
        axes.bar(
            kinds,
            [o for _, _, o in rows],
            bottom=inward,
            color=_GREY,
            label=bilingual(("出", "out")),
        )
        axes.set_xlim(-0.75, max(len(kinds), 4) - 0.25)  # one kind stays a bar, not a wall
        axes.yaxis.get_major_locator().set_params(integer=True)
        axes.legend(fontsize="small")
    axes.set_title(bilingual(("按区域类型的放行通行", "Admitted passages by zone kind")))
    return _svg(figure)
