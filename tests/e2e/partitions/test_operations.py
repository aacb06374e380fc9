"""Partitioned workers through an operator's day: clean stops, a rolling restart, every
worker restarted at once, two workers with default ids on one host, pairing at a door, one
`device_offline` per drop (issue 14).

The restarts and the pairing run on both brokers (`broker` parametrized): the test
Mosquitto (MQTT 5) and a three-node NATS cluster (MQTT 3.1.1, sessions in JetStream).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import pytest
from partition_fixtures import (
    RATE,
    BrokerUnderTest,
    Load,
    Workers,
    leases,
    logged_card_counts,
    partition_of_device,
    plain_doors,
    wait_balanced,
    wait_first_answers,
)

from firmware_sim.campus import Campus
from firmware_sim.fleet import AlertWatch, Fleet

# Card events per second over all doors for the restarts on the NATS cluster: RATE by
# default, as on Mosquitto; CAMPUSGATE_TEST_CLUSTER_RATE=300 runs the load (on a
# shared 2-core machine NATS 2.9 then answers some events too late: README.md,
# "Clustered broker"), as for test_cluster_failover.py.
CLUSTER_RATE = float(os.environ.get("CAMPUSGATE_TEST_CLUSTER_RATE", RATE))
# On the test Mosquitto and on the three-node NATS cluster (its own, per test).
ON_BOTH_BROKERS = pytest.mark.parametrize("broker", ["mosquitto", "nats"], indirect=True)


def broker_name(broker: BrokerUnderTest) -> str:
    return f"NATS cluster ({len(broker.urls)} nodes)" if broker.protocol else "Mosquitto"


def restart_rate(broker: BrokerUnderTest) -> float:
    return CLUSTER_RATE if broker.protocol else RATE


def assert_answers_agree(fleet: Fleet, broker: BrokerUnderTest) -> int:
    """No conflicting verdicts, no answer to an event never sent; the repeated finals.

    On Mosquitto one final per send. NATS sends an event again when its acknowledgement
    is late (`ack_wait`), and the gateway answers the repeat from memory with the same
    verdict: a second final, which the terminal ignores (docs/protocol.md)."""
    problems = fleet.problems()
    if broker.protocol:
        problems = [p for p in problems if "final decisions for" not in p]
    assert problems == [], problems[:10]
    return sum(t.repeated_finals for t in fleet)


async def assert_all_accounted(load: Load, dsn: str) -> int:
    missing = await load.answered(timeout=120)  # a backlog after the restarts
    logged = await logged_card_counts(dsn, [e for _, e, _ in load.sent])
    # Told apart on failure: unanswered but logged (an answer lost, or refused by the
    # terminal as too old to act on), or never decided at all.
    refused = sum(t.refused_commands.get("stale", 0) for t in load.fleet)
    assert missing == [], (
        f"{len(missing)} of {len(load.sent)} unanswered, {sum(k in logged for k in missing)} "
        f"of them logged; {refused} answers refused by the terminals as stale: {missing[:5]}"
    )
    twice = {k: n for k, n in logged.items() if n != 1}
    never = {(d, e) for d, e, _ in load.sent} - set(logged)
    assert twice == {} and never == set(), (twice, list(never)[:5])
    return len(load.sent)


async def wait_without(dsn: str, worker: str, timeout: float = 30) -> float:
    """Seconds until every partition is held and none by `worker`."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        held = await leases(dsn)
        if len(held) == 64 and worker not in held.values():
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{worker}'s partitions not taken over within {timeout} s")


@ON_BOTH_BROKERS
async def test_clean_stop_and_rolling_restart_lose_nothing(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 40 s: 3 workers, one stopped (its partitions taken at once), then each
    restarted in turn under load (300 card events/s on NATS)."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)
    for n in (1, 2, 3):
        workers.spawn(n)
    await wait_balanced(partition_dsn, 3)
    async with Fleet(broker.url, devices, prefix=workers.prefix) as fleet:
        await wait_first_answers(fleet, devices, facts.resident_cards[0])
        load = Load(fleet, devices, facts.resident_cards, rate=restart_rate(broker))
        load.start()
        await asyncio.sleep(2)
        assert workers.stop(3) == 0, workers.tail(3)
        handover = await wait_without(partition_dsn, workers.worker_id(3))
        await wait_balanced(partition_dsn, 2)
        # Rolling restart: each worker stopped and started again, the next once balanced
        # (3 was just stopped: started again, it is the first of the round).
        workers.spawn(3)
        await wait_balanced(partition_dsn, 3)
        for n in (1, 2):
            t0 = time.perf_counter()
            assert workers.stop(n) == 0, workers.tail(n)
            t1 = time.perf_counter()
            workers.spawn(n)
            await wait_balanced(partition_dsn, 3)
            print(
                f"restart {n}: stop {t1 - t0:.1f} s, start+balance {time.perf_counter() - t1:.1f} s"
            )
        await asyncio.sleep(1)
        await load.stop()
        total = await assert_all_accounted(load, partition_dsn)
    repeated = assert_answers_agree(fleet, broker)
    print(
        f"\n{broker_name(broker)}, {restart_rate(broker)} events/s: clean stop: the stopped "
        f"worker's partitions held by the others {handover:.2f} s after SIGTERM returned; rolling "
        f"restart of 3 workers: {total} card events, 0 lost, 0 logged twice; {repeated} "
        "repeated final answers (ignored by the terminals)"
    )


@ON_BOTH_BROKERS
async def test_every_worker_restarted_at_once_loses_nothing(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 30 s: 3 workers SIGTERMed together under load (RATE, or
    CAMPUSGATE_TEST_CLUSTER_RATE on NATS) and started
    again together. While none runs, the broker keeps each partition's persistent session
    and queues its doors' events; the workers that take the partitions receive them."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)
    for n in (1, 2, 3):
        workers.spawn(n)
    await wait_balanced(partition_dsn, 3)
    async with Fleet(broker.url, devices, prefix=workers.prefix) as fleet:
        await wait_first_answers(fleet, devices, facts.resident_cards[0])
        load = Load(fleet, devices, facts.resident_cards, rate=restart_rate(broker))
        load.start()
        await asyncio.sleep(2)
        procs = dict(workers.procs)
        workers.stop_all()
        codes = {n: proc.wait(30) for n, proc in procs.items()}
        assert codes == {1: 0, 2: 0, 3: 0}, [workers.tail(n) for n in procs]
        all_stopped = time.perf_counter()
        assert await leases(partition_dsn) == {}, "a lease outlived a clean stop"
        await asyncio.sleep(1)
        for n in (1, 2, 3):
            workers.spawn(n)
        await wait_balanced(partition_dsn, 3)
        balanced = time.perf_counter()
        await asyncio.sleep(2)
        await load.stop()
        total = await assert_all_accounted(load, partition_dsn)
    repeated = assert_answers_agree(fleet, broker)
    queued = [(d, e) for d, e, t in load.sent if all_stopped <= t <= balanced]
    answered_by = max(fleet[d].decided_at[e] for d, e in queued) - all_stopped
    print(
        f"\n{broker_name(broker)}, {restart_rate(broker)} events/s, all 3 workers restarted "
        f"at once: {total} card events, 0 lost, 0 logged twice; {len(queued)} sent between "
        f"the last exit and the new workers' balance ({balanced - all_stopped:.1f} s), all "
        f"answered within {answered_by:.1f} s of that exit; {repeated} repeated final answers"
    )


async def test_two_workers_with_default_ids_on_one_host_do_not_collide(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 15 s: two workers without --worker-id, 4 s of load."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)
    for n in (1, 2):
        workers.spawn(n, explicit_id=False)
    held = await wait_balanced(partition_dsn, 2)
    ids = set(held.values())
    assert len(ids) == 2 and all(i.startswith("campusgate-worker-") for i in ids), ids
    async with Fleet(broker.url, devices, prefix=workers.prefix) as fleet:
        await wait_first_answers(fleet, devices, facts.resident_cards[0])
        load = Load(fleet, devices, facts.resident_cards)
        load.start()
        await asyncio.sleep(4)
        await load.stop()
        total = await assert_all_accounted(load, partition_dsn)
        assert sum(fleet[d].repeated_finals for d in devices) == 0
    for n in (1, 2):  # no session was ever taken from the other, nor lost
        log = workers.log(n).read_text(errors="replace")
        assert "to another worker" not in log and "lease held by another" not in log, log[-3000:]
    print(f"\ntwo default-id workers on one host: ids {sorted(ids)}; {total} events, each once")


def dorm_cards(campus: Campus, dorm: str) -> list[str]:
    return [
        p.cards[0]
        for p in campus.facts.people
        if p.dorm == dorm and p.active and not p.isolated and p.kind == "student"
    ]


@ON_BOTH_BROKERS
async def test_a_card_and_its_doors_scanner_reading_always_pair(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 15 s: 3 workers, 4 temperature doors, 5 cards each way at every door
    (the card first, or the scanner's reading first)."""
    facts = scanner_campus.facts
    doors = sorted(facts.temperature_doors)
    for n in (1, 2, 3):
        workers.spawn(n)
    held = await wait_balanced(partition_dsn, 3)
    owners = {held[partition_of_device(f"term-{d}", d)] for d in doors}
    terminals = [f"term-{d}" for d in doors]
    scanners = [f"scan-{d}" for d in doors]
    results: Counter[str] = Counter()
    async with Fleet(broker.url, terminals + scanners, prefix=workers.prefix) as fleet:
        for door, terminal, scanner in zip(doors, terminals, scanners, strict=True):
            cards = dorm_cards(scanner_campus, door.removesuffix("-main"))
            sent = []
            for k, card in enumerate(cards[:10]):
                if k % 2:  # the reading reaches the gateway first
                    fleet[scanner].measure(36.4 + k / 100)
                    await asyncio.sleep(0.05)
                    sent.append(fleet[terminal].swipe(card, direction="in"))
                else:  # the card first
                    sent.append(fleet[terminal].swipe(card, direction="in"))
                    await asyncio.sleep(0.05)
                    fleet[scanner].measure(36.4 + k / 100)
                final = await fleet[terminal].decision(sent[-1], timeout=15)
                results[f"{final['decision']}/{final['reason']}"] += 1
    assert results == Counter({"admit/ok": 10 * len(doors)}), results
    print(
        f"\n{broker_name(broker)}: pairing at {len(doors)} doors owned by {len(owners)} "
        f"workers: {dict(results)}"
    )


async def test_one_device_offline_per_device_drop(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 12 s: 3 workers; three terminals drop (last will) while all subscribe."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)[:3]
    for n in (1, 2, 3):
        workers.spawn(n)
    await wait_balanced(partition_dsn, 3)
    async with (
        AlertWatch(broker.url, prefix=workers.prefix) as alerts,
        Fleet(broker.url, devices, prefix=workers.prefix) as fleet,
    ):
        await wait_first_answers(fleet, devices, facts.resident_cards[0])
        mark = alerts.mark()
        for device in devices:
            await fleet[device].crash()
        for device in devices:
            found = await alerts.wait_for("device_offline", device=device, since=mark, timeout=15)
            assert found is not None, device
        await asyncio.sleep(2)  # a second worker's alert would show by now
        counts = {d: len(alerts.matching("device_offline", device=d, since=mark)) for d in devices}
    assert counts == dict.fromkeys(devices, 1), counts


async def test_an_unregistered_device_is_alerted_once(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 12 s: 3 workers; a device id not in the roster sends a card event:
    one `unknown_device` alert (from the owner of partition 0), not one per worker."""
    facts = scanner_campus.facts
    known = plain_doors(scanner_campus)[0]
    ghost = f"term-ghost-{workers.prefix}"
    for n in (1, 2, 3):
        workers.spawn(n)
    await wait_balanced(partition_dsn, 3)
    async with (
        AlertWatch(broker.url, prefix=workers.prefix) as alerts,
        Fleet(broker.url, [known, ghost], prefix=workers.prefix) as fleet,
    ):
        await wait_first_answers(fleet, [known], facts.resident_cards[0])
        await asyncio.sleep(1.5)  # a tick: partition 0's owner watches for unknown ids
        eid = fleet[ghost].swipe(facts.resident_cards[1], direction="in")
        found = await alerts.wait_for("unknown_device", device=ghost, timeout=10)
        assert found is not None
        await asyncio.sleep(2)
        assert len(alerts.matching("unknown_device", device=ghost)) == 1
        assert eid not in fleet[ghost].decided_at  # nobody decided it


async def test_a_card_waiting_for_its_reading_moves_with_its_door(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 30 s. One worker owns every door; a card waits at a temperature door
    for its reading; a second worker starts and the door's partition moves to it (a
    worker over its share hands over its highest partitions); the reading then pairs
    with the card there, and the card is answered once."""
    door = "dorm-1-main"
    assert partition_of_device(f"term-{door}", door) >= 32  # among those handed over
    terminal_id, scanner_id = f"term-{door}", f"scan-{door}"
    card = dorm_cards(scanner_campus, "dorm-1")[3]
    window_s = 20.0
    workers.extra_env["CAMPUSGATE_TEMPERATURE_WINDOW_S"] = str(window_s)
    workers.spawn(1)
    await wait_balanced(partition_dsn, 1)
    async with Fleet(broker.url, [terminal_id, scanner_id], prefix=workers.prefix) as fleet:
        terminal = fleet[terminal_id]
        # Until the door answers (its session subscribed); a reading settles the card.
        for _ in range(30):
            first = terminal.swipe(card, direction="in")
            if await terminal.wait_pending(first, timeout=1) is not None:
                fleet[scanner_id].measure(36.4)
                await terminal.decision(first, timeout=10)
                break
        else:
            raise TimeoutError("the door never answered")
        eid = terminal.swipe(card, direction="in")
        swiped = time.perf_counter()
        assert (await terminal.wait_pending(eid, timeout=10))["decision"] == "pending"
        workers.spawn(2)
        held = await wait_balanced(partition_dsn, 2)
        assert held[partition_of_device(terminal_id, door)] == workers.worker_id(2)
        fleet[scanner_id].measure(36.5)
        final = await terminal.decision(eid, timeout=30)
        moved_after = time.perf_counter() - swiped
        # The first owner would deny the card when its window ends, had it kept it.
        await asyncio.sleep(max(1.0, swiped + window_s + 1.5 - time.perf_counter()))
        assert (final["decision"], final["reason"]) == ("admit", "ok"), (final, moved_after)
        assert len(terminal.finals(eid)) == 1, terminal.finals(eid)
        assert len(terminal.pendings(eid)) == 1, terminal.pendings(eid)
    logged = await logged_card_counts(partition_dsn, [eid])
    assert logged == {(terminal_id, eid): 1}


async def test_serve_partitioned_is_one_worker_among_others_and_the_count_is_the_campus(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 20 s: `serve --partitioned` (API, jobs) and a worker split the doors;
    a worker started with another partition count refuses to start, saying which."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)
    workers.spawn(1, serve=True)
    workers.spawn(2)
    held = await wait_balanced(partition_dsn, 2)
    assert set(held.values()) == {workers.worker_id(1), workers.worker_id(2)}
    async with Fleet(broker.url, devices, prefix=workers.prefix) as fleet:
        await wait_first_answers(fleet, devices, facts.resident_cards[0])
        load = Load(fleet, devices, facts.resident_cards)
        load.start()
        await asyncio.sleep(3)
        await load.stop()
        await assert_all_accounted(load, partition_dsn)
    odd = workers.spawn(3, settings={"CAMPUSGATE_PARTITIONS": "32"})
    assert odd.wait(60) == 1
    workers.procs.pop(3)
    said = workers.log(3).read_text(errors="replace")
    assert "CAMPUSGATE_PARTITIONS is 32 but this campus was set up with 64" in said, said
    assert "set CAMPUSGATE_PARTITIONS=64 on every worker" in said, said


async def test_a_cleanly_stopped_worker_leaves_its_waiting_cards_to_the_next_owner(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 20 s: 2 workers; a card waits at a temperature door, its owner is
    stopped (SIGTERM); the other takes the door and pairs the card with the reading."""
    door = "dorm-1-main"
    terminal_id, scanner_id = f"term-{door}", f"scan-{door}"
    card = dorm_cards(scanner_campus, "dorm-1")[5]
    workers.extra_env["CAMPUSGATE_TEMPERATURE_WINDOW_S"] = "20"
    workers.spawn(1)
    workers.spawn(2)
    held = await wait_balanced(partition_dsn, 2)
    owner = 1 if held[partition_of_device(terminal_id, door)] == workers.worker_id(1) else 2
    async with Fleet(broker.url, [terminal_id, scanner_id], prefix=workers.prefix) as fleet:
        terminal = fleet[terminal_id]
        for _ in range(30):  # until the door answers
            first = terminal.swipe(card, direction="in")
            if await terminal.wait_pending(first, timeout=1) is not None:
                fleet[scanner_id].measure(36.4)
                await terminal.decision(first, timeout=10)
                break
        else:
            raise TimeoutError("the door never answered")
        eid = terminal.swipe(card, direction="in")
        assert (await terminal.wait_pending(eid, timeout=10))["decision"] == "pending"
        assert workers.stop(owner) == 0, workers.tail(owner)
        fleet[scanner_id].measure(36.5)
        final = await terminal.decision(eid, timeout=30)
        await asyncio.sleep(1)
        assert (final["decision"], final["reason"]) == ("admit", "ok"), final
        assert len(terminal.finals(eid)) == 1, terminal.finals(eid)
    assert await logged_card_counts(partition_dsn, [eid]) == {(terminal_id, eid): 1}
    assert "left 1 cards waiting for a temperature" in workers.log(owner).read_text()
