"""The demo's epidemic-prevention showcase: a traced chain of contacts and a daily report."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from rich.console import Console
from rich.tree import Tree

from firmware_sim.campus import CampusFacts
from firmware_sim.chain import traced_chain
from firmware_sim.fleet import Fleet
from firmware_sim.scenarios import ScenarioResult
from gateway.domain.reports import Audience
from gateway.domain.tracing import MIN_OVERLAP_S
from gateway.services.health import clear_fever_watch
from gateway.services.reports import generate_reports
from gateway.services.reports.service import reports_dir
from gateway.services.tracing import TraceRequest, trace
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.occupancy import inside_entries

# The chain's stays are long enough for the tracing rule as the console applies it: a
# contact is an overlap of at least MIN_OVERLAP_S (60 s). The second generation is traced
# from first-generation contacts of at least a minute's exposure (the console's default is
# 15 min; the printed link sets 1 min, a field of the tracing page).
CHAIN_DWELL_S = MIN_OVERLAP_S + 5
CHAIN_SECOND_MIN_EXPOSURE_S = 60.0
SHOWN_PER_GENERATION = 10
WALK_OUT_TIMEOUT_S = 10.0
MISSING_SHOWN = 5  # of the missing list, on screen (the report files hold it whole)


@dataclass(frozen=True, slots=True)
class TracedChain:
    index_person: str
    result: ScenarioResult
    console_query: str  # the trace's parameters for the console link (?trace_person=...)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


async def walk_out_leftovers(fleet: Fleet, facts: CampusFacts, dsn: str, settings: Settings) -> int:
    """Everyone the occupancy store counts inside leaves by a door of their zone (or, when the
    zone has no exit the fleet drives, by the main gate's exit, which ends their stays too).

    People left inside by earlier demo runs (or by the showcase) would otherwise share the
    chain's zones for up to CAMPUSGATE_TRACE_MAX_STAY_H and be traced as contacts of it.
    Returns how many left.
    """
    conn = await connect(dsn)
    try:
        inside = await inside_entries(conn, datetime.now(UTC), settings.trace_max_stay_h)
    finally:
        await conn.close()
    people = {p.id: p for p in facts.people}
    exits: dict[str, str] = {}  # zone -> device
    for device, door in facts.device_doors.items():
        zone = facts.door_zones.get(door)
        if device in fleet and zone and facts.door_directions.get(door) in ("out", "both"):
            exits.setdefault(zone, device)
    waits = []
    for zone, person_id, _ in inside:
        person = people.get(person_id)
        if person is None or not person.cards or person.isolated or not person.active:
            continue  # not of this campus, or kept in by its rules
        device = exits.get(zone, facts.gate_exit_device)
        terminal = fleet[device]
        waits.append(
            terminal.decision(terminal.swipe(person.cards[0], direction="out"), WALK_OUT_TIMEOUT_S)
        )
    outcomes = await asyncio.gather(*waits, return_exceptions=True)
    return sum(1 for o in outcomes if isinstance(o, dict) and o.get("decision") == "admit")


async def remeasure_fevers(dsn: str, facts: CampusFacts, settings: Settings) -> list[str]:
    """Clear fever_watch of every simulated person on it, as a re-measurement would.

    Earlier runs leave people on fever_watch beyond the reserved fever cards: a reading
    taken without a card binds to the nearest card at its door, and a gateway that
    reuses its broker session gets the earlier run's unacknowledged events again when it
    starts. Either would deny the showcase's residents with health_hold.
    """
    conn = await connect(dsn)
    try:
        return await clear_fever_watch(
            conn,
            [p.id for p in facts.people],
            by="demo",
            reason="re-measured normal before the demo's showcase",
            celsius=36.5,
            threshold_c=settings.fever_threshold_c,
        )
    finally:
        await conn.close()


async def show_traced_chain(
    fleet: Fleet, facts: CampusFacts, dsn: str, settings: Settings, console: Console
) -> TracedChain:
    """A meets B, then B meets C through the simulated doors; trace A two generations deep,
    as the console does (overlaps of at least a minute), and check B is a first-generation
    contact and C a second-generation one. Prints the chain as a tree."""
    left = await walk_out_leftovers(fleet, facts, dsn, settings)
    if left:
        console.print(f"  {left} people still inside from earlier traffic walked out first")
    with console.status(
        f"A and B share a zone for {CHAIN_DWELL_S:.0f} s, then B and C "
        f"(about {2 * CHAIN_DWELL_S / 60 + 0.3:.0f} min; Ctrl-C stops)"
    ):
        chain = await traced_chain(fleet, facts, dwell_s=CHAIN_DWELL_S)
    # Whole seconds: the console's time field has no finer grain. The three left (and the
    # leftovers walked out) before `began`, so no earlier stay overlaps the chain's.
    start = chain.began.replace(microsecond=0)
    request = TraceRequest(
        chain.a,
        start=start,
        generations=2,
        second_min_exposure_s=CHAIN_SECOND_MIN_EXPOSURE_S,
    )
    conn = await connect(dsn)
    try:
        result = await trace(conn, request, settings, by="demo")
    finally:
        await conn.close()
    found = {c.person_id: c.generation for c in result.contacts}
    chain.result.expect(
        f"traced from {chain.a}: {chain.b} first generation, {chain.c} second",
        "1/2",
        f"{found.get(chain.b, '-')}/{found.get(chain.c, '-')}",
    )
    console.print(str(chain.result), highlight=False)
    tree = Tree(f"[bold]{result.name or chain.a}[/bold] ({chain.a}), traced 2 generations")
    first_gen = [c for c in result.contacts if c.generation == 1]
    second_gen = [c for c in result.contacts if c.generation == 2]
    first = {c.person_id: tree.add(_label(c)) for c in _shown(first_gen, chain.b)}
    for contact in _shown(second_gen, chain.c):
        # Hang each second-generation contact under the first-generation contact it was
        # found through: the chain's B when B is among them, else the most exposed one.
        through = [p for p in contact.via if p in first]
        parent = first[chain.b] if chain.b in through else first[through[0]] if through else tree
        parent.add(_label(contact))
    hidden = len(result.contacts) - len(first) - min(len(second_gen), SHOWN_PER_GENERATION)
    if hidden > 0:
        tree.add(f"... and {hidden} more")
    console.print(tree)
    console.print(
        f"  {len(result.contacts)} contacts in all, overlaps of at least "
        f"{MIN_OVERLAP_S:.0f} s since {start.astimezone(settings.tz):%H:%M:%S}",
        highlight=False,
    )
    query = urlencode(
        {
            "trace_person": chain.a,
            "trace_from": start.isoformat(),
            "trace_generations": 2,
            "trace_min_overlap_s": f"{MIN_OVERLAP_S:g}",
            "trace_second_min_exposure_s": f"{CHAIN_SECOND_MIN_EXPOSURE_S:g}",
        }
    )
    return TracedChain(chain.a, chain.result, query)


def _shown(contacts: list, keep: str) -> list:  # type: ignore[type-arg]
    """The first SHOWN_PER_GENERATION contacts (most exposed first), with `keep` among them."""
    shown = contacts[:SHOWN_PER_GENERATION]
    if keep not in {c.person_id for c in shown}:
        shown += [c for c in contacts if c.person_id == keep]
    return shown


def _label(contact) -> str:  # type: ignore[no-untyped-def]
    zones = ", ".join(contact.zones)
    return (
        f"{contact.name or contact.person_id} ({contact.person_id}) · gen {contact.generation} · "
        f"{zones} · exposure {_duration(contact.exposure_s)} · {contact.encounters} encounter(s)"
    )


async def show_daily_report(dsn: str, settings: Settings, console: Console) -> ScenarioResult:
    """Generate today's reports so far (campus and each college), write the files, send
    them when recipients are configured, and print the campus student report's numbers
    and the students' and staff's check-in numbers with those missing (issue #15)."""
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
    result = ScenarioResult("daily report with check-in numbers")
    audiences = (
        (Audience.STUDENT, "students", "student affairs"),
        (Audience.STAFF, "staff", "the school office"),
    )
    for audience, who, to in audiences:
        report = next(
            (r for r in reports if r.org_unit_id is None and r.audience is audience), None
        )
        numbers = report.summary.get("checkins") if report else None
        result.expect(f"{audience.value} report has check-in numbers", "yes", _yes(numbers))
        if report is None or numbers is None:
            continue
        missing = report.lists.get("checkin_missing", [])
        result.expect(
            f"{audience.value} missing list = missing count",
            str(numbers["missing"]),
            str(len(missing)),
        )
        if audience is Audience.STUDENT:  # the showcase's student checked in just before
            result.expect("students checked in today", "at least 1", _at_least_1(numbers["made"]))
        rate = "-" if numbers["rate"] is None else f"{numbers['rate']:.1%}"
        shown = ", ".join(str(p.get("person_id", p)) for p in missing[:MISSING_SHOWN])
        more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        console.print(
            f"  check-ins, {who} (to {to}): {numbers['made']} of "
            f"{numbers['expected']} ({rate}), {numbers['missing']} missing, "
            f"{numbers['flagged']} with fever or symptoms, {numbers['case_contact']} case "
            f"contacts; not checked in: {shown or '-'}{more}",
            highlight=False,
        )
    console.print(
        f"  {len(reports)} reports (CSV, XLSX, HTML with charts) in {folder}; "
        "in the console under Daily reports"
        + ("" if settings.report_recipients else "; set CAMPUSGATE_REPORT_RECIPIENTS to send them"),
        highlight=False,
    )
    console.print(str(result), highlight=False)
    return result


def _yes(value: object) -> str:
    return "no" if value is None else "yes"


def _at_least_1(count: int) -> str:
    return "at least 1" if count >= 1 else str(count)
