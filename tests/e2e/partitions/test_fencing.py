"""A live worker that falls behind its lease must not log what its successor logs (issue 14).

Under heavy machine load a worker's lease renewals ran late, another worker took its
partitions, and the first one's journal batch committed after the new owner had loaded
the partition's recent decisions: the events were logged twice. Here the worker is
stopped outright (SIGSTOP: no CPU at all, its TCP connections left open, perhaps in the
middle of a write) for two leases, three times, under load; its partitions go to the
others, and when it runs again whatever it decided meanwhile is fenced off by the lease
check in its journal's transaction. Every card event is answered and logged exactly once.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time

from partition_fixtures import (
    LEASE_S,
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
from firmware_sim.fleet import Fleet

STALLS = 3
_FENCED = re.compile(r"journal: (\d+) log rows and (\d+) other items left out")


def fenced_rows(workers: Workers, n: int) -> int:
    return sum(int(m[0]) for m in _FENCED.findall(workers.log(n).read_text(errors="replace")))


async def test_a_worker_stalled_past_its_lease_logs_nothing_its_successor_logs(
    workers: Workers, scanner_campus: Campus, partition_dsn: str, broker: BrokerUnderTest
) -> None:
    """Costs about 60 s: 3 workers; one is stopped for 2 leases, 3 times, under load."""
    facts = scanner_campus.facts
    devices = plain_doors(scanner_campus)
    for n in (1, 2, 3):
        workers.spawn(n)
    held = await wait_balanced(partition_dsn, 3)
    async with Fleet(broker.url, devices, prefix=workers.prefix) as fleet:
        await wait_first_answers(fleet, devices, facts.resident_cards[0])
        load = Load(fleet, devices, facts.resident_cards)
        load.start()
        owner = {d: held[partition_of_device(d, facts.device_doors[d])] for d in devices}
        stalled = max(
            (1, 2, 3), key=lambda n: sum(w == workers.worker_id(n) for w in owner.values())
        )
        proc = workers.procs[stalled]
        taken_after: list[float] = []
        for _ in range(STALLS):
            await asyncio.sleep(2)
            proc.send_signal(signal.SIGSTOP)
            stopped_at = time.perf_counter()
            try:
                # Its partitions go to the others while it cannot even renew.
                while time.perf_counter() - stopped_at < 30:
                    now_held = await leases(partition_dsn)
                    if len(now_held) == 64 and workers.worker_id(stalled) not in now_held.values():
                        taken_after.append(time.perf_counter() - stopped_at)
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(max(0.0, 2 * LEASE_S - (time.perf_counter() - stopped_at)))
            finally:
                proc.send_signal(signal.SIGCONT)
            await wait_balanced(partition_dsn, 3)  # it runs again and gets its share back
        await asyncio.sleep(2)
        await load.stop()
        missing = await load.answered(timeout=30)

    sent = load.sent
    logged = await logged_card_counts(partition_dsn, [e for _, e, _ in sent])
    twice = {k: n for k, n in logged.items() if n != 1}
    never = {(d, e) for d, e, _ in sent} - set(logged)
    repeated = sum(fleet[d].repeated_finals for d in devices)
    print(
        f"\n{STALLS} stalls of 1 of 3 workers for {2 * LEASE_S:.0f} s (2 leases) at {RATE} "
        f"events/s: {len(sent)} card events, {len(missing)} unanswered, {len(never)} never "
        f"logged, {len(twice)} logged twice; partitions taken "
        f"{', '.join(f'{t:.2f}' for t in taken_after)} s after each stop; rows fenced off "
        f"by the stalled worker: {fenced_rows(workers, stalled)}; {repeated} repeated final "
        "answers (same decision, from the log)"
    )
    assert len(taken_after) == STALLS, taken_after
    assert missing == [], f"{len(missing)} of {len(sent)} unanswered: {missing[:5]}"
    assert never == set(), list(never)[:5]
    assert twice == {}, twice
