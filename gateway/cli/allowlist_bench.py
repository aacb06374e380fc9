"""`campusgate allowlist-bench`: size of a door's allowlist and time to compile every door.

Builds a campus in memory (no database, no broker): N people in departments and classes
with cards, one dormitory zone per building, labs, and grants by unit, kind and person
with weekly schedules; some people held. Every door is used both ways, so every list
carries its exit set (every known card). Prints the size of one door's signed full list
(bytes, and gzip for a link that compresses) and of its exit set, the time to compile every
zone, to hash and sign every door's list, one health change and one new card as deltas.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_sim.offline import AllowlistHolder, decide_offline
from gateway.domain.allowlist import EXIT_PREFIX_BYTES, reasons_agree
from gateway.domain.campus import CampusRoster
from gateway.domain.events import Direction
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.roster import (
    Card,
    Device,
    DeviceKind,
    Door,
    Grant,
    GrantSubject,
    OrgUnit,
    Person,
    PersonKind,
    Zone,
    ZoneKind,
)
from gateway.domain.schedule import parse_schedule
from gateway.pipeline.allowlists import AllowlistConfig, AllowlistPublisher, salt_secret
from gateway.pipeline.signing import Ed25519CommandSigner, PublicKeyInfo
from gateway.pipeline.topics import Topics
from gateway.policy.decide import decide
from gateway.policy.roster_index import RosterIndex


def campus(people: int, buildings: int, doors_per_zone: int) -> CampusRoster:
    """A synthetic campus: `buildings` dormitory zones plus 10% as many labs."""
    units = [OrgUnit("uni", "University")]
    units += [OrgUnit(f"dept-{d}", f"Dept {d}", "uni") for d in range(20)]
    units += [OrgUnit(f"class-{c}", f"Class {c}", f"dept-{c % 20}") for c in range(400)]
    zones = [Zone(f"dorm-{b}", f"Dorm {b}", ZoneKind.DORMITORY, 2000) for b in range(buildings)]
    zones += [Zone(f"lab-{b}", f"Lab {b}", ZoneKind.LAB) for b in range(max(1, buildings // 10))]
    doors, devices = [], []
    for zone in zones:
        for n in range(doors_per_zone):
            doors.append(Door(f"{zone.id}-door-{n}", zone.id))
            devices.append(
                Device(f"{zone.id}-term-{n}", f"{zone.id}-door-{n}", DeviceKind.TERMINAL)
            )
    folks, cards, health = [], [], []
    since = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(people):
        kind = PersonKind.STUDENT if i % 10 else PersonKind.STAFF
        folks.append(Person(f"p{i}", kind, f"Person {i}", f"class-{i % 400}"))
        cards.append(Card(f"{0x04000000 + i:08X}", f"p{i}"))
        if i % 500 == 0:
            health.append(HealthRecord(f"p{i}", HealthStatus.HOME_ISOLATION, since))
    night = parse_schedule("daily 06:00-23:30")
    day = parse_schedule("Mon-Fri 08:00-18:00; Sat 09:00-12:00")
    grants = [Grant(GrantSubject(kind=PersonKind.STAFF), z.id, None) for z in zones]
    for c in range(400):  # each class lives in one dormitory
        grants.append(Grant(GrantSubject(org_unit_id=f"class-{c}"), f"dorm-{c % buildings}", night))
    for d in range(20):
        grants.append(
            Grant(GrantSubject(org_unit_id=f"dept-{d}"), f"lab-{d % len(zones[buildings:])}", day)
        )
    grants += [Grant(GrantSubject(person_id=f"p{i}"), "dorm-0", day) for i in range(0, people, 97)]
    return CampusRoster(
        org_units=tuple(units),
        zones=tuple(zones),
        doors=tuple(doors),
        devices=tuple(devices),
        people=tuple(folks),
        cards=tuple(cards),
        grants=tuple(grants),
        health=tuple(health),
    )


def agreement(
    index: RosterIndex,
    config: AllowlistConfig,
    *,
    sent_lists: list[bytes],
    key: Ed25519PrivateKey,
    samples: int = 20_000,
) -> tuple[int, int, int]:
    """Offline (the terminal's rules on its list) against online (`decide`) decisions for
    random cards at random minutes of the next day at the first door, entering and (every
    other sample) leaving; reasons must agree by the documented mapping (a card that is
    not listed is unknown offline). Returns (agree, documented differences, samples): the
    documented one here is an unknown card let out for sharing a known card's exit prefix."""
    payload = sent_lists[0]
    device_id = json.loads(payload)["device"]
    terminal = AllowlistHolder(device_id, PublicKeyInfo.of(key).public_raw)
    assert terminal.take_list(payload)
    device = index.device(device_id)
    assert device is not None
    door = index.door(device.door_id)
    assert door is not None
    uids = [card.uid for card in index.cards()] + [f"{0xDEAD0000 + n:08X}" for n in range(100)]
    rng = random.Random(13)
    start = datetime.now(UTC)
    agree = documented = 0
    for n in range(samples):
        uid = rng.choice(uids)
        at = start + timedelta(minutes=rng.randrange(24 * 60))
        direction = Direction.OUT if n % 2 else Direction.IN
        online = decide(
            index,
            door=door,
            card_uid=uid,
            direction=direction,
            now=at,
            tz=config.tz,
            celsius=None,
            fever_threshold_c=config.fever_threshold_c,
            occupancy=0,
            temperature_window_open=False,
        )
        verdict, reason = decide_offline(
            terminal.current, uid, direction=direction.value, now=at.timestamp()
        )
        agree += verdict == online.verdict.value and reasons_agree(reason, online.reason.value)
        documented += (direction, verdict, online.reason.value) == (
            Direction.OUT,
            "admit",
            "unknown_card",
        )
    return agree, documented, samples


@click.command("allowlist-bench")
@click.option("--people", default=50_000, show_default=True)
@click.option("--buildings", default=40, show_default=True, help="dormitory zones")
@click.option("--doors-per-zone", default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def command(people: int, buildings: int, doors_per_zone: int, as_json: bool) -> None:
    """Measure allowlist size and compile time for a synthetic campus."""
    tz = ZoneInfo("Asia/Shanghai")
    config = AllowlistConfig(tz=tz, fever_threshold_c=37.3)
    state = {"index": RosterIndex.build(campus(people, buildings, doors_per_zone))}
    key = Ed25519PrivateKey.generate()
    sent: list[tuple[str, bytes]] = []
    publisher = AllowlistPublisher(
        publish=lambda topic, payload: sent.append((topic, payload)),
        topics=Topics("bench"),
        index=lambda: state["index"],
        occupancy=lambda zone_id: 0,
        signer=Ed25519CommandSigner(key),
        secret=salt_secret(key),
        config=config,
    )

    began, cpu = time.perf_counter(), time.process_time()
    asyncio.run(publisher.refresh())
    full_s, compile_s = time.perf_counter() - began, publisher.last_compile_s
    full_cpu_s = time.process_time() - cpu
    lists = [payload for topic, payload in sent if topic.endswith("/allowlist")]
    first_index = state["index"]
    first = lists[0]

    # One health change, as a status set at the API: a delta to every door listing the person.
    sent.clear()
    now = datetime.now(UTC)
    state["index"] = state["index"].with_health(HealthRecord("p1", HealthStatus.CLOSE_CONTACT, now))
    began = time.perf_counter()
    asyncio.run(publisher.refresh())
    delta_s = time.perf_counter() - began
    deltas = [payload for topic, payload in sent if topic.endswith("/allowlist-delta")]

    # A roster change (one more grant, as a reload after an import): a new index.
    roster = campus(people, buildings, doors_per_zone)
    extra = Grant(GrantSubject(person_id="p3"), "lab-0", None)
    state["index"] = RosterIndex.build(
        dataclasses.replace(roster, grants=(*roster.grants, extra), health=roster.health)
    ).with_health(HealthRecord("p1", HealthStatus.CLOSE_CONTACT, now))
    sent.clear()
    began = time.perf_counter()
    asyncio.run(publisher.refresh())
    roster_s = time.perf_counter() - began
    roster_deltas = [p for t, p in sent if t.endswith("/allowlist-delta") and p]
    roster_fulls = [p for t, p in sent if t.endswith("/allowlist")]

    # A card new to the roster: every door people leave by learns it as a delta.
    roster = dataclasses.replace(
        roster,
        grants=(*roster.grants, extra),
        people=(*roster.people, Person("new", PersonKind.VISITOR, "New", "uni")),
        cards=(*roster.cards, Card("0BADCAFE", "new")),
    )
    state["index"] = RosterIndex.build(roster).with_health(
        HealthRecord("p1", HealthStatus.CLOSE_CONTACT, now)
    )
    sent.clear()
    began, cpu = time.perf_counter(), time.process_time()
    asyncio.run(publisher.refresh())
    card_s, card_cpu_s = time.perf_counter() - began, time.process_time() - cpu
    card_deltas = [p for t, p in sent if t.endswith("/allowlist-delta") and p]
    card_fulls = [p for t, p in sent if t.endswith("/allowlist")]

    # The first lists against the roster they were compiled from.
    agree, documented, samples = agreement(first_index, config, sent_lists=lists, key=key)

    exits = json.loads(first).get("exits", "")
    figures = {
        "people": people,
        "zones": sum(1 for _ in state["index"].zones()),
        "doors": len(lists),
        "door_list_cards": len(json.loads(first)["cards"]),
        "door_list_bytes": len(first),
        "door_list_gzip_bytes": len(gzip.compress(first)),
        "door_exit_set_cards": len(exits) * 3 // 4 // EXIT_PREFIX_BYTES,
        "door_exit_set_bytes": len(exits),
        "compile_all_zones_s": round(compile_s, 3),
        "compile_hash_sign_all_doors_s": round(full_s, 3),
        # CPU seconds of this process: what the work costs when the machine is shared.
        "compile_hash_sign_all_doors_cpu_s": round(full_cpu_s, 3),
        "health_change_to_deltas_s": round(delta_s, 3),
        "delta_bytes": len(deltas[0]) if deltas else 0,
        "deltas": len(deltas),
        "grant_change_to_deltas_s": round(roster_s, 3),
        "grant_change_deltas": len(roster_deltas),
        "grant_change_full_lists": len(roster_fulls),
        "new_card_to_deltas_s": round(card_s, 3),
        "new_card_to_deltas_cpu_s": round(card_cpu_s, 3),
        "new_card_deltas": len(card_deltas),
        "new_card_full_lists": len(card_fulls),
        "offline_online_agreement": f"{agree}/{samples}",
        "offline_online_exit_prefix_shared": documented,
    }
    if as_json:
        click.echo(json.dumps(figures))
    else:
        for name, value in figures.items():
            click.echo(f"{name:30} {value}")
