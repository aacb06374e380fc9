"""The database goes away mid-stream: decisions wait, nothing is lost, all arrive after."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from firmware_sim.fleet import Fleet
from gateway.pipeline.door_worker import Gateway


class CuttableProxy:
    """A TCP proxy in front of PostgreSQL whose cable can be pulled and plugged back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.base_events.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.blocked = False
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.block()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def block(self) -> None:
        self.blocked = True
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def unblock(self) -> None:
        self.blocked = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update({writer, up_writer})

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


def through(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    user = f"{netloc[0]}@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


async def test_decisions_wait_for_the_database_and_none_is_lost(
    campus_dsn, mqtt_url, prefix, campus, config_factory
):
    target = urlsplit(campus_dsn)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    gateway = Gateway(
        config_factory(through(campus_dsn, proxy.port), mqtt_url, prefix, client_id=f"gw-{prefix}")
    )
    await gateway.start()
    facts = campus.facts
    try:
        async with Fleet(mqtt_url, [facts.gate_device], prefix=prefix) as fleet:
            terminal = fleet[facts.gate_device]
            first = terminal.swipe(facts.resident_cards[0])
            assert (await terminal.decision(first))["decision"] == "admit"

            proxy.block()
            during = [terminal.swipe(facts.resident_cards[k % 10]) for k in range(30)]
            await asyncio.sleep(1.5)
            assert not any(terminal.finals(eid) for eid in during), (
                "a decision was sent before it was durable"
            )
            assert gateway.journal.failures >= 1

            proxy.unblock()
            for eid in during:
                assert (await terminal.decision(eid, timeout=30))["decision"] == "admit"
    finally:
        await gateway.stop()
        await proxy.stop()

    conn = await asyncpg.connect(campus_dsn)
    try:
        logged = await conn.fetchval(
            "SELECT count(*) FROM access_events WHERE device_id = $1 AND event_id = ANY($2)",
            facts.gate_device,
            during,
        )
    finally:
        await conn.close()
    assert logged == len(during)
