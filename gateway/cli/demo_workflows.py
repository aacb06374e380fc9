"""The demo's epidemic-prevention showcase: a traced chain of contacts and a daily report."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.tree import Tree

from firmware_sim.campus import CampusFacts
from firmware_sim.chain import traced_chain
from firmware_sim.fleet import Fleet
from gateway.domain.reports import Audience
from gateway.services.reports import generate_reports
from gateway.services.reports.service import reports_dir
from gateway.services.tracing import TraceRequest, trace
from gateway.settings import Settings
from gateway.store.db import connect

# The chain's stays last a few seconds; a real trace counts overlaps of a minute or more.
DEMO_DWELL_S = 3.0
DEMO_MIN_OVERLAP_S = 1.0


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


async def show_traced_chain(
    fleet: Fleet, facts: CampusFacts, dsn: str, settings: Settings, console: Console
) -> str:
    """A meets B, then B meets C through the simulated doors; trace A two generations deep.

    Prints the chain as a tree and returns the index person's id.
    """
    chain = await traced_chain(fleet, facts, dwell_s=DEMO_DWELL_S)
    console.print(str(chain.result), highlight=False)
    conn = await connect(dsn)
    try:
        result = await trace(
            conn,
            TraceRequest(
                chain.a,
                # From the chain's start: earlier runs' traffic the same day would add
                # contacts of its own and could make C a first-generation contact.
                start=chain.began,
                generations=2,
                limit=50,
                min_overlap_s=DEMO_MIN_OVERLAP_S,
                second_min_exposure_s=DEMO_MIN_OVERLAP_S,
            ),
            settings,
            by="demo",
        )
    finally:
        await conn.close()
    tree = Tree(f"[bold]{result.name or chain.a}[/bold] ({chain.a}), traced 2 generations")
    first = {c.person_id: tree.add(_label(c)) for c in result.contacts if c.generation == 1}
    second = [c for c in result.contacts if c.generation == 2]
    for contact in second:
        # Hang each second-generation contact under the first-generation contact it was
        # found through: the chain's B when B is among them, else the most exposed one.
        through = [p for p in contact.via if p in first]
        parent = first[chain.b] if chain.b in through else first[through[0]] if through else tree
        parent.add(_label(contact))
    console.print(tree)
    found = {c.person_id: c.generation for c in result.contacts}
    ok = found.get(chain.b) == 1 and found.get(chain.c) == 2
    verdict = "PASS" if ok else "FAIL"
    console.print(
        f"{verdict}  traced chain: {chain.b} is a first-generation contact of {chain.a}, "
        f"{chain.c} a second-generation one ({len(result.contacts)} contacts in all)",
        highlight=False,
    )
    return chain.a


def _label(contact) -> str:  # type: ignore[no-untyped-def]
    zones = ", ".join(contact.zones)
    return (
        f"{contact.name or contact.person_id} ({contact.person_id}) · gen {contact.generation} · "
        f"{zones} · exposure {_duration(contact.exposure_s)} · {contact.encounters} encounter(s)"
    )


async def show_daily_report(dsn: str, settings: Settings, console: Console) -> None:
    """Generate today's reports so far (campus and each college), write the files, send
    them when recipients are configured, and print the campus student report's numbers."""
    conn = await connect(dsn)
    try:
        reports = await generate_reports(
            conn,
            day=datetime.now(settings.tz).date(),
            settings=settings,
            by="demo",
            send=bool(settings.report_recipients),
            write_files=True,
        )
    finally:
        await conn.close()
    campus = next(r for r in reports if r.org_unit_id is None and r.audience is Audience.STUDENT)
    s = campus.summary
    folder = reports_dir(settings) / campus.day.isoformat()
    console.print(
        f"[bold]daily report[/bold] {campus.day} so far, students campus-wide: "
        f"{s['people']} people, {s['present']} present, {s['screenings']} screenings, "
        f"{s['fevers']} fevers, {s['new_isolations']} new isolations, "
        f"{s['denied_total']} denied, {s['outsiders_blocked']['total']} outsiders blocked",
        highlight=False,
    )
    console.print(
        f"  {len(reports)} reports (CSV, XLSX, HTML with charts) in {folder}; "
        "in the console under Daily reports"
        + ("" if settings.report_recipients else "; set CAMPUSGATE_REPORT_RECIPIENTS to send them"),
        highlight=False,
    )
