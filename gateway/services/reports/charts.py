"""The report's charts as inline SVG (matplotlib's object API: no pyplot, no GUI backend).

SVG keeps text as text (svg.fonttype none), so the browser draws it with its own
fonts, and a fixed hash salt with no date makes the same report render byte for byte
the same SVG.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib
from matplotlib.figure import Figure

matplotlib.rcParams["svg.hashsalt"] = "campusgate-report"
matplotlib.rcParams["svg.fonttype"] = "none"

_BLUE, _RED, _GREY = "#2f6db5", "#c0392b", "#7f8c8d"


def _svg(figure: Figure) -> str:
    out = io.StringIO()
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
        _empty(axes, "no denied attempts")
    else:
        reasons = list(denied)
        axes.barh(reasons, [denied[r] for r in reasons], color=_RED)
        axes.invert_yaxis()
        axes.set_xlabel("denied attempts")
        axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_title("Denied by reason")
    return _svg(figure)


def health_chart(health: dict[str, int]) -> str:
    """Bars: people per health status (clear apart, in the title, so the rest stay visible)."""
    figure = Figure(figsize=(6, 2.6))
    axes = figure.add_subplot()
    others = {k: v for k, v in health.items() if k != "clear"}
    axes.bar(list(others), list(others.values()), color=_BLUE)
    axes.tick_params(axis="x", labelrotation=20)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_title(f"Health status (clear: {health.get('clear', 0)})")
    return _svg(figure)


def trend_chart(trend: list[dict[str, Any]]) -> str:
    """Lines: people present and people with a fever over the last days."""
    figure = Figure(figsize=(6, 2.6))
    axes = figure.add_subplot()
    days = [p["day"][5:] for p in trend]
    axes.plot(days, [p["present"] for p in trend], marker="o", color=_BLUE, label="present")
    axes.set_ylabel("present")
    axes.yaxis.get_major_locator().set_params(integer=True)
    fevers = axes.twinx()
    fevers.plot(days, [p["fevers"] for p in trend], marker="s", color=_RED, label="fevers")
    fevers.set_ylabel("fevers")
    fevers.yaxis.get_major_locator().set_params(integer=True)
    fevers.set_ylim(bottom=0, top=max(1, *(p["fevers"] for p in trend)) * 1.2)
    axes.set_ylim(bottom=0)
    axes.set_title("Last 7 days")
    figure.legend(loc="lower center", ncol=2, fontsize="small", bbox_to_anchor=(0.5, -0.1))
    return _svg(figure)


def passages_chart(rows: list[tuple[str, int, int]]) -> str:
    """Stacked bars: admitted passages in and out by zone kind."""
    figure = Figure(figsize=(6, 2.6))
    axes = figure.add_subplot()
    if not rows:
        _empty(axes, "no admitted passages")
    else:
        kinds = [k for k, _, _ in rows]
        inward = [i for _, i, _ in rows]
        axes.bar(kinds, inward, color=_BLUE, label="in")
        axes.bar(kinds, [o for _, _, o in rows], bottom=inward, color=_GREY, label="out")
        axes.set_xlim(-0.75, max(len(kinds), 4) - 0.25)  # one kind stays a bar, not a wall
        axes.yaxis.get_major_locator().set_params(integer=True)
        axes.legend(fontsize="small")
    axes.set_title("Admitted passages by zone kind")
    return _svg(figure)
