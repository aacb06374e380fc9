"""The HTTP API and console (with the campus's scheduled jobs) in a process of their own.

`campusgate serve` runs the door loop in its own process and this one beside it, so no
API work (password hashing, exports, report generation, traces) takes CPU time from the
event loop that decides doors. Started with the `spawn` method: a fresh interpreter that
shares nothing with the gateway but the listening socket it is handed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click

from gateway.cli.cpu_priority import apply_cpu_affinity, apply_cpu_priority
from gateway.observe.logs import configure
from gateway.settings import Settings

_LOGGER = logging.getLogger(__name__)
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
PARENT_CHECK_S = 0.5
# How the API's database connections show in pg_stat_activity (and to the bench's accounts).
APPLICATION_NAME = "campusgate-api"


def with_application_name(dsn: str, name: str = APPLICATION_NAME) -> str:
    """`dsn` whose connections say `application_name=name`, unless it names one already."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "application_name" for key, _ in query):
        return dsn
    return urlunsplit(parts._replace(query=urlencode([*query, ("application_name", name)])))


class ApiProcessError(RuntimeError):
    """The API process could not start, or ended while `serve` was running."""


def api_socket(settings: Settings, *, any_port_if_busy: bool) -> socket.socket:
    """The API's listening socket on CAMPUSGATE_API_HOST/PORT, bound here and handed to the
    child; when the port is taken, any free one (`any_port_if_busy`) or a one-line error."""
    host, port = settings.api_host, settings.api_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        if not any_port_if_busy:
            sock.close()
            raise click.ClickException(
                f"the API cannot listen on {host}:{port} ({exc.strerror}); "
                "set CAMPUSGATE_API_PORT / --api-port"
            ) from None
        sock.bind((host, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def console_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/" if ":" not in host else f"http://[{host}]:{port}/"


class ApiProcess:
    """The API child process: start (waits until it listens), watch, stop."""

    def __init__(
        self, settings: Settings, dsn: str, sock: socket.socket, *, log_file: Path | None = None
    ) -> None:
        """`log_file`: where the child logs (the demo's screen is its live view); stderr
        when None."""
        self._settings = settings
        self._dsn = with_application_name(dsn)
        self._sock = sock
        self._log_file = log_file
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=False)
        self._process = context.Process(
            target=run_api_process,
            args=(self._settings, self._dsn, self._sock, theirs, self._log_file),
            name="campusgate-api",
            daemon=False,
        )
        self._process.start()
        theirs.close()
        answer = await asyncio.to_thread(_wait_ready, ours, self._process)
        ours.close()
        if answer != "ready":
            await self.stop()
            raise ApiProcessError(answer)

    async def ended(self) -> int | None:
        """Wait until the process ends; its exit code."""
        assert self._process is not None
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        sentinel = self._process.sentinel
        loop.add_reader(sentinel, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            loop.remove_reader(sentinel)
        await asyncio.to_thread(self._process.join, 1.0)
        return self._process.exitcode

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; the exit code."""
        process = self._process
        if process is None or process.exitcode is not None:
            return process.exitcode if process else None
        process.terminate()
        await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        if process.exitcode is None:
            _LOGGER.warning("the API process did not stop in %.0f s; killing it", STOP_TIMEOUT_S)
            process.kill()
            await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        return process.exitcode


def _wait_ready(conn: Connection, process: multiprocessing.process.BaseProcess) -> str:
    if not conn.poll(READY_TIMEOUT_S):
        return f"the API process did not start within {READY_TIMEOUT_S:.0f} s"
    try:
        return conn.recv()
    except EOFError:
        process.join(STOP_TIMEOUT_S)
        return f"the API process exited during start-up (exit code {process.exitcode}); see the log"


def run_api_process(
    settings: Settings,
    dsn: str,
    sock: socket.socket,
    ready: Connection,
    log_file: Path | None = None,
) -> None:
    """Entry point of the child: serve until SIGINT/SIGTERM or the parent goes away."""
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":  # JSON lines like the gateway's (CAMPUSGATE_LOG_FORMAT)
        configure(settings.log_level, settings.log_format, handler)
    else:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s [api]: %(message)s",
            handlers=[handler],
        )
    try:
        asyncio.run(_serve(settings, dsn, sock, ready))
    except click.ClickException as exc:
        with contextlib.suppress(OSError, ValueError):
            ready.send(exc.format_message())
        sys.exit(2)
    except KeyboardInterrupt:
        pass


async def _serve(settings: Settings, dsn: str, sock: socket.socket, ready: Connection) -> None:
    import uvicorn

    from api.app import create_app
    from gateway.cli.runtime import campus_scheduler

    parent = os.getppid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sock.setblocking(False)
    async with campus_scheduler(settings, dsn):
        # log_config=None: uvicorn's records go through the root handler set above.
        config = uvicorn.Config(
            create_app(settings, dsn), log_level="warning", lifespan="on", log_config=None
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve(sockets=[sock]), name="api-server")
        while not server.started:
            if task.done():
                task.result()
                raise click.ClickException("the API did not start; see the log")
            await asyncio.sleep(0.05)
        # From now on the API yields the CPU to the door loop when both want it (a login
        # flood, a report run); its start-up ran at normal priority to meet the deadline.
        priority = apply_cpu_priority(settings.api_cpu_priority)
        try:
            cpus = apply_cpu_affinity(settings.api_cpus)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _LOGGER.info("API process CPU priority: %s; runs on %s", priority, cpus)
        ready.send("ready")
        ready.close()
        # Ends on a signal, when uvicorn stops, or when the gateway process is gone
        # (SIGKILLed): an orphaned API would keep the port and the scheduler running.
        while not stop.is_set() and not task.done() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARENT_CHECK_S)
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, STOP_TIMEOUT_S)
