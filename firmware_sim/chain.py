"""A chain of contacts made through the simulated terminals, for the demo and the tests.

Person A and B share the lab (or, when the lab's schedule keeps them out, the
dormitory), then B and C share the dormitory after A has left: traced from A with
two generations, B is a first-generation contact and C a second-generation one.
Stays last `dwell_s` seconds, so trace with a minimum overlap below that.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from firmware_sim.campus import CampusFacts, SimPerson
from firmware_sim.fleet import Fleet
from firmware_sim.scenarios import ScenarioResult
from firmware_sim.terminal import SimTerminal

NORMAL_C = 36.5


@dataclass(frozen=True, slots=True)
class Chain:
    a: str
    b: str
    c: str
    zone_ab: str
    zone_bc: str
    result: ScenarioResult
    began: datetime  # after the three left wherever they were: trace from here


def chain_people(facts: CampusFacts) -> tuple[SimPerson, SimPerson, SimPerson]:
    """Three healthy residents of the facts' dormitory in the lab's college: first those
    no scenario uses, then the last of `facts.resident_cards` (scenarios use the first)."""
    excluded = {*facts.fever_cards, facts.isolated_card, facts.inactive_card}
    excluded.add(facts.lab_member_card)
    residents = {card: rank for rank, card in enumerate(facts.resident_cards)}
    fitting = [
        p
        for p in facts.people
        if p.kind == "student"
        and p.dorm == facts.dorm
        and p.college == facts.lab_college
        and p.active
        and not p.isolated
        and p.cards
        and not excluded & set(p.cards)
    ]
    fitting.sort(key=lambda p: -residents.get(p.cards[0], len(residents)))
    if len(fitting) < 3:
        raise ValueError("the campus has too few residents of the lab's college for a chain")
    return fitting[0], fitting[1], fitting[2]


async def _pass(
    result: ScenarioResult,
    what: str,
    terminal: SimTerminal,
    card: str,
    direction: str,
    timeout: float,
    celsius: float | None = None,
) -> bool:
    eid = terminal.swipe(card, direction=direction, celsius=celsius)
    try:
        decision = await terminal.decision(eid, timeout)
        got = f"{decision.get('decision')}/{decision.get('reason')}"
    except TimeoutError:
        got = "no decision"
    result.expect(what, "admit/ok", got)
    return got == "admit/ok"


async def traced_chain(
    fleet: Fleet, facts: CampusFacts, *, dwell_s: float = 3.0, timeout: float = 5.0
) -> Chain:
    """Make A meet B, then B meet C (A gone by then); returns who and where."""
    a, b, c = chain_people(facts)
    result = ScenarioResult("traced chain")
    dorm_in, dorm_out = fleet[facts.temperature_device], fleet[facts.dorm_exit_device]
    lab = fleet[facts.lab_device]

    async def enter_dorm(person: SimPerson) -> bool:
        return await _pass(
            result, f"{person.id} into the dormitory", dorm_in, person.cards[0], "in", timeout,
            NORMAL_C,
        )  # fmt: skip

    async def leave_dorm(person: SimPerson) -> bool:
        return await _pass(result, f"{person.id} out", dorm_out, person.cards[0], "out", timeout)

    # Earlier traffic may have left any of them inside somewhere: a passage ends every
    # stay of theirs, so C cannot still be in the dormitory from before when A is there.
    for person in (a, b, c):
        await leave_dorm(person)
    await asyncio.sleep(0.1)
    began = datetime.now(UTC)

    # A and B: the lab when its schedule lets them in now, else the dormitory.
    eid = lab.swipe(a.cards[0], direction="in")
    try:
        first = await lab.decision(eid, timeout)
    except TimeoutError:
        first = {}
    if first.get("decision") == "admit":
        zone_ab = facts.door_zones[facts.lab_door]
        result.expect(f"{a.id} into the lab", "admit/ok", "admit/ok")
        await _pass(result, f"{b.id} into the lab", lab, b.cards[0], "in", timeout)
        await asyncio.sleep(dwell_s)
        await _pass(result, f"{a.id} out of the lab", lab, a.cards[0], "out", timeout)
        await _pass(result, f"{b.id} out of the lab", lab, b.cards[0], "out", timeout)
    else:
        zone_ab = facts.dorm
        await enter_dorm(a)
        await enter_dorm(b)
        await asyncio.sleep(dwell_s)
        await leave_dorm(a)
        await leave_dorm(b)
    await asyncio.sleep(0.5)  # A is gone well before C arrives
    await enter_dorm(b)
    await enter_dorm(c)
    await asyncio.sleep(dwell_s)
    await leave_dorm(b)
    await leave_dorm(c)
    return Chain(a.id, b.id, c.id, zone_ab, facts.dorm, result, began)
