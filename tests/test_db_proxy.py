"""The tests' fault proxy (tests/db_proxy.py) does to connections what it says."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from db_proxy import FaultyProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _roundtrip(port: int, timeout: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"ping")
        await writer.drain()
        return await asyncio.wait_for(reader.read(4), timeout)
    finally:
        writer.transport.abort()


async def test_a_dead_route_swallows_open_and_new_connections_until_healed() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with FaultyProxy(f"mqtt://127.0.0.1:{port}") as proxy:
            assert await _roundtrip(proxy.port, 2) == b"ping"
            proxy.black_hole(new_too=True)
            with pytest.raises(TimeoutError):  # accepted, and then nothing
                await _roundtrip(proxy.port, 0.5)
            proxy.heal()
            assert await _roundtrip(proxy.port, 2) == b"ping"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_cut_resets_new_connections_until_accepted() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with FaultyProxy(f"postgresql://u@127.0.0.1:{port}/db") as proxy:
            assert proxy.dsn == f"postgresql://u@127.0.0.1:{proxy.port}/db"
            proxy.cut()
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            # Reset at once: an end of stream or a reset, never an echo.
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(4), 2) == b""
            writer.transport.abort()
            proxy.accept()
            assert await _roundtrip(proxy.port, 2) == b"ping"
    finally:
        server.close()
        await server.wait_closed()
