"""Soak: a gateway under steady load through a database outage, a broker SIGKILL and a
black-holed broker connection; counts how often each event was answered and logged.

    .venv/bin/python tests/e2e/bench/soak_faults.py --rate 300 --db-outage 150 --blackhole 60

It makes its own database (on --admin-dsn), its own Mosquitto from
deploy/mosquitto/mosquitto.conf (persistent, so it can be killed and restarted), runs the
gateway in this process behind two TCP proxies it controls (one to PostgreSQL, cut for
the outage; one to the broker, black-holed: open but forwarding nothing), and prints a
JSON summary. The terminals talk to the broker directly.

"Answered" counts what a terminal acts on, the first final decision per event_id
(docs/protocol.md); the repeated decision messages terminals received and ignored,
and the events they republished after a reconnect, are counted apart, and the
unanswered and repeated ones are placed in the phase in which they were sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

# The shared test helpers (tests/), and the repository root: without it tests/gateway and the
# other mirror folders would shadow the packages of the same name (the editable install's
# finder is asked after the path).
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from broker_fixtures import start_mosquitto
from db_proxy import FaultyProxy

from devices.transports.mqtt import BrokerAddress
from firmware_sim.campus import dump_manifest, generate_campus
from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.importer import import_file
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

TZ = ZoneInfo("Asia/Shanghai")


async def make_campus_db(admin_dsn: str) -> tuple[str, str, object]:
    name = f"cg_soak_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    await apply_migrations(dsn)
    campus = generate_campus(seed=7, people=400)
    folder = Path(tempfile.mkdtemp())
    dump_manifest(campus.manifest, folder / "campus.yaml")
    conn = await connect(dsn)
    try:
        await import_file(conn, folder / "campus.yaml", tz=TZ)
    finally:
        await conn.close()
    return dsn, name, campus


def _reason(finals: list[dict[str, object]]) -> object:
    """The reason of the first final decision (the one the terminal acted on)."""
    return finals[0].get("reason") if finals else None


async def soak(args: argparse.Namespace) -> dict[str, object]:
    dsn, name, campus = await make_campus_db(args.admin_dsn)
    workdir = Path(tempfile.mkdtemp())
    broker, port = start_mosquitto(workdir, persistent=True)
    print(f"broker workdir {workdir}", file=sys.stderr)
    db_proxy, mqtt_proxy = FaultyProxy(dsn), FaultyProxy(f"mqtt://127.0.0.1:{port}")
    await db_proxy.start()
    await mqtt_proxy.start()
    prefix = f"soak{secrets.token_hex(3)}"
    config = GatewayConfig(
        database_url=db_proxy.dsn,
        broker=BrokerAddress.parse(f"mqtt://127.0.0.1:{mqtt_proxy.port}"),
        topic_prefix=prefix,
        policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
        client_id=f"gw-{prefix}",
        mqtt_keepalive_s=args.keepalive,
        # As `campusgate serve` runs it: decisions go on through a database outage,
        # journaled to a local spool (--no-spool: doors wait for the database).
        spool_path=workdir / "spool" / f"gw-{prefix}.sqlite3" if args.spool else None,
    )
    gateway = Gateway(config)
    await gateway.start()
    facts = campus.facts  # type: ignore[attr-defined]
    devices = list(facts.mqtt_devices)
    cards = list(facts.resident_cards)
    sent: list[tuple[str, str]] = []
    sent_s: list[float] = []  # seconds since start when each event was sent
    loop = asyncio.get_running_loop()
    timeline: list[tuple[float, str]] = []
    started = loop.time()

    def mark(what: str) -> None:
        timeline.append((round(loop.time() - started, 1), what))
        print(f"{timeline[-1][0]:7.1f} s  {what}  (sent {len(sent)})", file=sys.stderr)

    async with Fleet(
        f"mqtt://127.0.0.1:{port}", devices, prefix=prefix, session_expiry_s=3600
    ) as fleet:
        terminals = list(fleet)
        stop = asyncio.Event()

        async def traffic() -> None:
            k = 0
            t0 = loop.time()
            while not stop.is_set():
                due = t0 + k / args.rate
                delay = due - loop.time()
                # Behind schedule (a loaded machine), still yield: a catch-up run without
                # an await would starve the gateway and the fault timeline in this loop.
                await asyncio.sleep(max(delay, 0.0))
                terminal = terminals[k % len(terminals)]
                sent.append((terminal.device_id, terminal.swipe(cards[k % len(cards)])))
                sent_s.append(loop.time() - started)
                k += 1

        load = asyncio.create_task(traffic())
        mark("traffic on")
        await asyncio.sleep(args.gap)
        mark("database cut")
        if args.db_fault == "freeze":
            db_proxy.black_hole(new_too=True)  # silent: no reset, connects hang
        else:
            db_proxy.cut()
        await asyncio.sleep(args.db_outage)
        if args.db_fault == "freeze":
            db_proxy.heal()
        else:
            db_proxy.accept()
        mark("database back")
        await asyncio.sleep(args.gap)
        mark("broker SIGKILL")
        broker.kill()
        broker.wait(10)
        await asyncio.sleep(args.broker_down)
        broker, _ = start_mosquitto(workdir, port=port, persistent=True)
        mark("broker restarted")
        await asyncio.sleep(args.gap)
        mark("gateway's broker link black-holed")
        mqtt_proxy.black_hole(new_too=True)  # a dead route: reconnects hang too
        await asyncio.sleep(args.blackhole)
        mqtt_proxy.heal()
        mark("black hole healed")
        await asyncio.sleep(args.gap)
        stop.set()
        await load
        mark("traffic off")
        deadline = loop.time() + args.drain
        for device_id, eid in sent:
            with contextlib.suppress(TimeoutError):
                await fleet[device_id].decision(eid, timeout=max(deadline - loop.time(), 0.01))
        await asyncio.sleep(2.0)
        mark("drained")
        # The spool's drain into PostgreSQL may still run (a loaded machine): the log is
        # counted once it is done, or what is left in the spool is reported.
        for _ in range(int(args.drain * 2)):
            if not gateway.journal.spooling:
                break
            await asyncio.sleep(0.5)
        spool_left = gateway.spool.items if gateway.spool is not None else 0
        mark("spool drained" if not spool_left else f"spool still holds {spool_left} items")
        # What a terminal acts on: the first final decision per event_id (docs/protocol.md).
        acted = {(t.device_id, eid) for t in fleet for eid in t.decided_at}
        # What reached it: every final decision message, repeats included.
        finals = Counter((t.device_id, eid) for t in fleet for eid in t.sent for _ in t.finals(eid))
        opened = Counter((t.device_id, eid) for t in fleet for eid in t.unlocked)
        late = sum(len(t.late) for t in fleet)
        stale = sum(len(t.stale) for t in fleet)
        slow = sum(
            1
            for t in fleet
            for eid in t.sent
            if t.latency_s(eid) is not None and t.latency_s(eid) > 10.0  # type: ignore[operator]
        )
        # Seconds from each swipe to the first final decision (None: never answered).
        latencies = [fleet[device_id].latency_s(eid) for device_id, eid in sent]
        # The same, less the wait the policy makes on purpose: a card at a temperature
        # door whose reading never comes is told `pending` at once and denied
        # `temperature_required` when the window passes (docs/protocol.md), so its final
        # decision is due `temperature_window_s` after the swipe, outage or not.
        window = config.policy.temperature_window_s
        gaps = [
            None
            if x is None
            else x - (window if _reason(fleet[d].finals(e)) == "temperature_required" else 0.0)
            for (d, e), x in zip(sent, latencies, strict=True)
        ]
        terminal_redelivered = sum(t.redelivered for t in fleet)
        repeated_finals = sum(t.repeated_finals for t in fleet)
        republished = sum(t.republished for t in fleet)
        # Of the repeated final decisions: (MQTT dup flag, late) of every decision message.
        repeat_flags = Counter(
            f"dup={c.dup} late={c.body.get('late')}"
            for t in fleet
            for c in t.commands
            if c.body is not None
            and c.body.get("type") == "decision"
            and len(t.finals(str(c.body.get("event_id")))) > 1
        )
    counters = gateway.counters.snapshot()
    reconnects = gateway.mqtt.reconnects if gateway.mqtt else None
    await gateway.stop()
    broker.terminate()
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT device_id, event_id, count(*) AS n FROM access_events"
            " WHERE event_id = ANY($1) GROUP BY 1, 2",
            [eid for _, eid in sent],
        )
    finally:
        await conn.close()
    logged = Counter({(r["device_id"], r["event_id"]): r["n"] for r in rows})
    admin = await asyncpg.connect(args.admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    by_messages = Counter(finals[key] for key in sent)
    by_rows = Counter(logged[key] for key in sent)

    def phase(at: float) -> str:
        return max((m for m in timeline if m[0] <= at), default=(0.0, "start"))[1]

    def by_phase(keep: list[bool]) -> dict[str, int]:
        return dict(Counter(phase(at) for at, k in zip(sent_s, keep, strict=True) if k))

    cut_at = next(at for at, what in timeline if what == "database cut")
    around_cut = sorted(
        x
        for at, x in zip(sent_s, latencies, strict=True)
        if x is not None and cut_at - 1.0 <= at <= cut_at + 5.0
    )
    in_outage = sorted(
        x
        for at, x in zip(sent_s, latencies, strict=True)
        if x is not None and phase(at) == "database cut"
    )
    gaps_in_outage = sorted(
        x
        for at, x in zip(sent_s, gaps, strict=True)
        if x is not None and phase(at) == "database cut"
    )
    gaps_by_phase: dict[str, float] = {}
    for at, x in zip(sent_s, gaps, strict=True):
        if x is not None:
            gaps_by_phase[phase(at)] = round(max(gaps_by_phase.get(phase(at), 0.0), x), 3)

    def quantile(xs: list[float], q: float) -> float:
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 3) if xs else 0.0

    return {
        "rate_per_s": args.rate,
        # The switch to the local spool: events sent from 1 s before the cut to 5 s after.
        "longest_answer_s_around_db_cut": round(around_cut[-1], 3) if around_cut else None,
        "db_outage_answer_s_p50_p99_max": [
            quantile(in_outage, 0.5),
            quantile(in_outage, 0.99),
            round(in_outage[-1], 3) if in_outage else None,
        ],
        # Less the temperature window where the policy waits for a reading on purpose.
        "db_outage_gap_s_p50_p99_max_less_designed_wait": [
            quantile(gaps_in_outage, 0.5),
            quantile(gaps_in_outage, 0.99),
            round(gaps_in_outage[-1], 3) if gaps_in_outage else None,
        ],
        "longest_gap_s_less_designed_wait_by_phase": gaps_by_phase,
        "spool_items_at_stop": spool_left,
        # Each switch to the spool: (seconds since start, how long the oldest item of the
        # batch whose write failed waited until durable in the spool).
        "journal_switches_s": [
            (round(at - started, 1), round(wait, 3))
            for at, wait in getattr(gateway.journal, "switches", ())
        ],
        "journal_probes_and_away": [
            getattr(gateway.journal, "probes", None),
            getattr(gateway.journal, "away", None),
        ],
        "terminals": len(devices),
        "events": len(sent),
        # A terminal acts on one final decision per event: these count events, not messages.
        "answered_once": sum(1 for key in sent if key in acted),
        "unanswered": sum(1 for key in sent if key not in acted),
        "doors_opened_twice": sum(1 for n in opened.values() if n > 1),
        "logged_once": by_rows.get(1, 0),
        "logged_twice_or_more": sum(n for k, n in by_rows.items() if k > 1),
        "not_logged": by_rows.get(0, 0),
        # Raw messages: events that got more than one final decision message, and the
        # repeats terminals received and did not act on (DUP resends included).
        "events_with_repeated_decision_messages": sum(n for k, n in by_messages.items() if k > 1),
        "repeated_final_messages_ignored": repeated_finals,
        "dup_flagged_resends_ignored": terminal_redelivered,
        "repeated_decision_flags": dict(repeat_flags),
        "events_republished_by_terminals": republished,
        "late_decisions_at_terminals": late,
        "decisions_arriving_over_10s_after_swipe": slow,
        "of_those_not_marked_late_kept_shut_by_terminal": stale,
        "over_10s_by_phase": by_phase([x is not None and x > 10.0 for x in latencies]),
        "longest_answer_s_by_phase": {
            name: round(
                max(
                    (
                        x
                        for at, x in zip(sent_s, latencies, strict=True)
                        if x is not None and phase(at) == name
                    ),
                    default=0.0,
                ),
                3,
            )
            for name in {phase(at) for at in sent_s}
        },
        "gateway_reconnects": reconnects,
        "gateway_counters": counters,
        "unanswered_by_phase": by_phase([key not in acted for key in sent]),
        "unanswered_but_logged": sum(1 for key in sent if key not in acted and logged[key]),
        "repeated_messages_by_phase": by_phase([finals[key] > 1 for key in sent]),
        "timeline_s": timeline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rate", type=float, default=300.0, help="card events per second")
    parser.add_argument("--db-outage", type=float, default=150.0, help="seconds")
    parser.add_argument(
        "--db-fault",
        choices=("cut", "freeze"),
        default="cut",
        help="cut: connections reset, new ones refused; freeze: nothing answers, nothing resets",
    )
    parser.add_argument("--broker-down", type=float, default=1.0, help="seconds")
    parser.add_argument("--blackhole", type=float, default=60.0, help="seconds")
    parser.add_argument("--keepalive", type=int, default=10, help="gateway MQTT keepalive, s")
    parser.add_argument("--gap", type=float, default=5.0, help="seconds between faults")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for answers")
    parser.add_argument(
        "--spool",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="journal to a local spool while the database is away (as serve does)",
    )
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    started = time.perf_counter()
    summary = asyncio.run(soak(args))
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
