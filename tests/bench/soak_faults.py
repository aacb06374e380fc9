"""Soak: a gateway under steady load through a database outage, a broker SIGKILL and a
black-holed broker connection; counts how often each event was answered and logged.

    .venv/bin/python tests/bench/soak_faults.py --rate 300 --db-outage 150 --blackhole 60

It makes its own database (on --admin-dsn), its own Mosquitto from
deploy/mosquitto/mosquitto.conf (persistent, so it can be killed and restarted), runs the
gateway in this process behind two TCP proxies it controls (one to PostgreSQL, cut for
the outage; one to the broker, black-holed: open but forwarding nothing), and prints a
JSON summary. The terminals talk to the broker directly.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from broker_fixtures import start_mosquitto

from devices.transports.mqtt import BrokerAddress
from firmware_sim.campus import dump_manifest, generate_campus
from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy
from gateway.services.importer import import_file
from gateway.store.db import connect
from gateway.store.migrate import apply_migrations

TZ = ZoneInfo("Asia/Shanghai")


class Proxy:
    """TCP proxy: `cut()` aborts links and refuses new ones; `blackhole()` keeps links open
    but forwards nothing (as a dead route would) until `heal()`."""

    def __init__(self, port: int) -> None:
        self._target = ("127.0.0.1", port)
        self._links: set[asyncio.StreamWriter] = set()
        self.refusing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        self.refusing = True
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def blackhole(self) -> None:
        self._flowing.clear()

    def heal(self) -> None:
        self.refusing = False
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        await self._flowing.wait()  # a connect into the black hole hangs
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update({writer, up_writer})

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    # Held in the hole as TCP would retransmit it: it arrives after healing,
                    # by when the keepalives on both ends have given the link up.
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


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


async def soak(args: argparse.Namespace) -> dict[str, object]:
    dsn, name, campus = await make_campus_db(args.admin_dsn)
    workdir = Path(tempfile.mkdtemp())
    broker, port = start_mosquitto(workdir, persistent=True)
    db_port = int(dsn.rsplit(":", 1)[1].split("/")[0])
    db_proxy, mqtt_proxy = Proxy(db_port), Proxy(port)
    await db_proxy.start()
    await mqtt_proxy.start()
    prefix = f"soak{secrets.token_hex(3)}"
    config = GatewayConfig(
        database_url=dsn.replace(f":{db_port}/", f":{db_proxy.port}/"),
        broker=BrokerAddress.parse(f"mqtt://127.0.0.1:{mqtt_proxy.port}"),
        topic_prefix=prefix,
        policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=2.0),
        client_id=f"gw-{prefix}",
        mqtt_keepalive_s=args.keepalive,
    )
    gateway = Gateway(config)
    await gateway.start()
    facts = campus.facts  # type: ignore[attr-defined]
    devices = list(facts.mqtt_devices)
    cards = list(facts.resident_cards)
    sent: list[tuple[str, str]] = []
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
                if delay > 0:
                    await asyncio.sleep(delay)
                terminal = terminals[k % len(terminals)]
                sent.append((terminal.device_id, terminal.swipe(cards[k % len(cards)])))
                k += 1

        load = asyncio.create_task(traffic())
        mark("traffic on")
        await asyncio.sleep(args.gap)
        mark("database cut")
        db_proxy.cut()
        await asyncio.sleep(args.db_outage)
        db_proxy.heal()
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
        mqtt_proxy.blackhole()
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
        finals = Counter((t.device_id, eid) for t in fleet for eid in t.sent for _ in t.finals(eid))
        late = sum(len(t.late) for t in fleet)
        stale = sum(len(t.stale) for t in fleet)
        slow = sum(
            1
            for t in fleet
            for eid in t.sent
            if t.latency_s(eid) is not None and t.latency_s(eid) > 10.0  # type: ignore[operator]
        )
        terminal_redelivered = sum(t.redelivered for t in fleet)
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
    by_answers = Counter(finals[key] for key in sent)
    by_rows = Counter(logged[key] for key in sent)
    return {
        "rate_per_s": args.rate,
        "terminals": len(devices),
        "events": len(sent),
        "answered_once": by_answers.get(1, 0),
        "answered_twice_or_more": sum(n for k, n in by_answers.items() if k > 1),
        "unanswered": by_answers.get(0, 0),
        "logged_once": by_rows.get(1, 0),
        "logged_twice_or_more": sum(n for k, n in by_rows.items() if k > 1),
        "not_logged": by_rows.get(0, 0),
        "late_decisions_at_terminals": late,
        "terminal_ignored_redeliveries": terminal_redelivered,
        "decisions_arriving_over_10s_after_swipe": slow,
        "of_those_not_marked_late_kept_shut_by_terminal": stale,
        "gateway_reconnects": reconnects,
        "gateway_counters": counters,
        "timeline_s": timeline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rate", type=float, default=300.0, help="card events per second")
    parser.add_argument("--db-outage", type=float, default=150.0, help="seconds")
    parser.add_argument("--broker-down", type=float, default=1.0, help="seconds")
    parser.add_argument("--blackhole", type=float, default=60.0, help="seconds")
    parser.add_argument("--keepalive", type=int, default=10, help="gateway MQTT keepalive, s")
    parser.add_argument("--gap", type=float, default=5.0, help="seconds between faults")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for answers")
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
