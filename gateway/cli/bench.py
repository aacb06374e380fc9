"""`campusgate bench`: the load benchmark of CONTRACT.md section 7.

Registers the bench's own zone, doors, devices and people, drives N simulated
terminals against the gateway (started here with `--spawn`), then drives the
same load through the bare echo responder on the same broker, and compares.
The load generation and measurement live in `firmware_sim.load_driver`.

On a broker that enforces device identities (`campusgate devices credentials`), the
gateway and the echo responder log in with --mqtt-url's account (the gateway's) and each
simulated door as itself (--device-secrets), on --device-url when devices have a listener
of their own. The ACL grants no topics outside the campus prefix, so the echo phase then
answers on the gateway's own prefix, which is why this needs --spawn: the bench stops the
gateway (and ends its broker session) before the echo responder takes its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from devices.transports.mqtt import BrokerAddress, MqttClient, MqttError, Protocol
from firmware_sim.fleet import load_device_secrets
from firmware_sim.load_driver import (
    ECHO_PREFIX,
    PEOPLE,
    ZONE_ID,
    BenchError,
    ChildProcess,
    LoadSpec,
    Phase,
    PhaseProgress,
    PhaseResult,
    Window,
    bench_manifest,
    device_id,
    echo_process,
    median_run,
    report,
    signing_cost,
)
from gateway.cli import settings_of
from gateway.cli.api_flood import FLOOD_PRIORITY, ApiFlood, FloodProcess
from gateway.cli.bench_flood import (
    CpuAccounts,
    descendants,
    flooded,
    split_by_flood,
    split_placement,
)
from gateway.cli.bench_workers import (
    MAX_WORKERS,
    WorkersPlan,
    WorkersStep,
    check_no_other_workers,
    check_workers,
    print_table,
    run_steps,
)
from gateway.cli.cpu_priority import parse_cpus
from gateway.cli.local_broker import LocalMosquitto
from gateway.cli.runtime import Broker, open_broker, open_database
from gateway.services.accounts import issue_token
from gateway.services.importer import ImportReport, import_manifest
from gateway.services.manifest import ManifestError, parse_manifest
from gateway.settings import Settings
from gateway.store.db import connect, redact_dsn
from gateway.store.operators import add_operator, operator_exists

BENCH_GATEWAY_ID = "campusgate-bench-gateway"  # fixed: one dormant broker session, not one per run
GATEWAY_READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
PLAIN_PROGRESS_EVERY_S = 2.0


@click.command()
@click.option(
    "--doors", type=int, default=100, show_default=True, help="simulated terminals, one per door"
)
@click.option(
    "--rate",
    type=float,
    default=1000.0,
    show_default=True,
    help="card events per second in total; 0 = as fast as answered",
)
@click.option(
    "--duration", type=float, default=20.0, show_default=True, help="seconds of load per phase"
)
@click.option(
    "--spawn",
    is_flag=True,
    help="start a gateway (`campusgate serve`) for the run and stop it afterwards",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the results (section 7) to FILE",
)
@click.option(
    "--window",
    type=int,
    default=64,
    show_default=True,
    help="outstanding events per terminal at --rate 0",
)
@click.option(
    "--grace", type=float, default=5.0, show_default=True, help="seconds to wait for late decisions"
)
@click.option(
    "--signing",
    type=click.Choice(["on", "off", "both"]),
    default="on",
    show_default=True,
    help="sign the spawned gateway's commands; `both` runs it once each way and reports the cost",
)
@click.option(
    "--api-flood",
    type=click.IntRange(0, 256),
    default=0,
    show_default=True,
    help="with --spawn: this many clients flood the API (failed logins, events, trace and "
    "muster CSV) during the gateway phase",
)
@click.option(
    "--flood-windows",
    type=click.FloatRange(0, 60),
    default=0.0,
    show_default=True,
    help="with --api-flood: pause and resume the flood every this many seconds and compare "
    "door latencies with it running and with the API idle in the same gateway run, with "
    "each part's CPU (0: flood throughout)",
)
@click.option(
    "--flood-priority",
    default=FLOOD_PRIORITY,
    show_default=True,
    help="with --api-flood: the flood clients' CPU priority, `idle` (SCHED_IDLE) or a "
    "niceness 0-19 (a real attacker's CPU is another machine's)",
)
@click.option(
    "--split-cpus",
    metavar="DOOR:API",
    help="with --flood-windows: keep the door path (gateway, simulated doors, broker, the "
    "gateway's PostgreSQL backends) on the CPUs DOOR and the API, its flood and its backends "
    "on API (cpuset lists, e.g. 0:1): what a host that gives the API cores of its own "
    "measures; needs the right to set CPU affinity of those processes",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="with --spawn: run the gateway phase this many times per signing mode, in rounds "
    "that alternate which mode goes first; the figures are the median runs'",
)
@click.option(
    "--device-secrets",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="device-secrets.csv of `campusgate devices credentials`: each simulated door logs "
    "in as itself (needs --spawn and --mqtt-url with the gateway's account)",
)
@click.option(
    "--device-url",
    default=None,
    help="where the simulated doors connect when not at --mqtt-url (e.g. the broker's "
    "device listener, mqtts://host:8885); CAMPUSGATE_MQTT_CA_FILE applies to it too",
)
@click.option(
    "--zone-capacity",
    type=click.IntRange(1),
    default=None,
    help="give the bench zone this capacity, so that every entry claims its place in the "
    "zone count shared by the workers (its cost on the door path)",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="with --spawn: instead of one `serve`, run the load against 1, 2, ..., N "
    f"partitioned `campusgate worker` processes in turn (at most {MAX_WORKERS}), each "
    "step once the partitions are balanced over its workers",
)
@click.pass_context
def command(
    ctx: click.Context,
    doors: int,
    rate: float,
    duration: float,
    spawn: bool,
    json_path: Path | None,
    window: int,
    grace: float,
    signing: str,
    api_flood: int,
    repeat: int,
    flood_windows: float,
    flood_priority: str,
    split_cpus: str | None,
    device_secrets: Path | None,
    device_url: str | None,
    zone_capacity: int | None,
    workers: int | None,
) -> None:
    """Measure the gateway against a bare MQTT echo responder under the same load."""
    settings = settings_of(ctx)
    if workers is not None:
        _check_workers_options(workers, spawn, signing, repeat, api_flood, device_secrets)
    spec = LoadSpec(
        doors=doors,
        rate=rate,
        duration_s=duration,
        window=window,
        grace_s=grace,
        zone_capacity=zone_capacity,
    )
    try:
        spec.check()
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if json_path is not None and not json_path.parent.is_dir():
        raise click.ClickException(f"{json_path}: directory {json_path.parent} does not exist")
    if not settings.mqtt_url and not spawn:
        raise click.ClickException(
            "no broker configured: pass --mqtt-url (or CAMPUSGATE_MQTT_URL) of the broker the gateway "
            "serves, or --spawn to start a gateway on an embedded broker"
        )
    if signing != "on" and not spawn:
        raise click.ClickException(
            f"--signing {signing} needs --spawn: the bench sets the CAMPUSGATE_SIGN_COMMANDS of "
            "the gateway it starts, and cannot change one that is already serving"
        )
    if repeat > 1 and not spawn:
        raise click.ClickException("--repeat needs --spawn (each run starts a fresh gateway)")
    flood_priority, placement = _check_flood_options(
        api_flood, spawn, flood_windows, flood_priority, split_cpus
    )
    doors_login = _doors_login(settings, spawn, device_secrets, device_url)
    modes = {"on": (True,), "off": (False,), "both": (True, False)}[signing]
    console = Console(stderr=True)
    if workers is not None:
        _bench_workers_command(settings, spec, workers, console, json_path, doors_login, signing)
        return
    runs, echo, failure, windowed = asyncio.run(
        _bench(
            settings,
            spec,
            spawn=spawn,
            console=console,
            modes=modes,
            api_flood=api_flood,
            repeat=repeat,
            flood_windows=flood_windows,
            flood_priority=flood_priority,
            placement=placement,
            doors_login=doors_login,
        )
    )
    main_runs = runs.get(True) or runs.get(False) or []
    unsigned_runs = (runs.get(False) or []) if len(modes) > 1 else []
    gateway = median_run(main_runs) if main_runs else None
    _print_table(spec, gateway, echo, main_runs, unsigned_runs)
    if failure is not None:
        raise click.ClickException(failure)
    assert gateway is not None and echo is not None
    document = report(spec, gateway, echo, unsigned_runs or None, signed_runs=main_runs)
    document["config"]["signing"] = "both" if unsigned_runs else "on" if gateway.signed else "off"
    if api_flood:
        document["config"]["flood_priority"] = flood_priority
    if windowed:
        document["config"]["flood_windows_s"] = flood_windows
        document["config"]["split_cpus"] = split_cpus
        document["api_flood_windows"] = windowed
    if repeat > 1:
        document["config"]["repeat"] = repeat
        document["runs"] = {
            "gateway": [_run_figures(r) for r in main_runs],
            **(
                {"gateway_unsigned": [_run_figures(r) for r in unsigned_runs]}
                if unsigned_runs
                else {}
            ),
        }
    _write_results(json_path, document, console)


def _check_workers_options(
    workers: int,
    spawn: bool,
    signing: str,
    repeat: int,
    api_flood: int,
    device_secrets: Path | None,
) -> None:
    try:
        check_workers(workers)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if not spawn:
        raise click.ClickException(
            "--workers needs --spawn: the bench starts the workers of each step itself"
        )
    clashes = {
        "--signing both": signing == "both",
        "--repeat": repeat > 1,
        "--api-flood": api_flood > 0,
        # The ACL grants the gateway's account its own prefix only; each step has its own.
        "--device-secrets": device_secrets is not None,
    }
    for option, given in clashes.items():
        if given:
            raise click.ClickException(f"--workers cannot be combined with {option}")


def _bench_workers_command(
    settings: Settings,
    spec: LoadSpec,
    workers: int,
    console: Console,
    json_path: Path | None,
    doors_login: DoorsLogin | None,
    signing: str,
) -> None:
    steps, echo, failure = asyncio.run(
        _bench_workers(settings, spec, workers, console, doors_login, signed=signing == "on")
    )
    print_table(spec, steps, echo, _fmt)
    if failure is not None:
        raise click.ClickException(failure)
    first = steps[0].result
    assert first is not None and echo is not None
    # "gateway" is one worker's run: the section 7 shape, with every step beside it.
    document = report(spec, first, echo)
    document["config"] |= {
        "signing": signing,
        "workers": workers,
        "partitions": settings.partitions,
    }
    document["workers"] = [step.figures() for step in steps]
    _write_results(json_path, document, console)


def _write_results(json_path: Path | None, document: dict[str, Any], console: Console) -> None:
    if json_path is None:
        return
    try:
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise click.ClickException(f"cannot write {json_path}: {exc.strerror or exc}") from None
    console.print(f"results written to {json_path}")


async def _bench_workers(
    settings: Settings,
    spec: LoadSpec,
    workers: int,
    console: Console,
    doors_login: DoorsLogin | None,
    *,
    signed: bool,
) -> tuple[list[WorkersStep], PhaseResult | None, str | None]:
    """The worker steps, then the echo phase; a step's failure is returned (after the
    echo phase), setup failures raise."""
    dsn = await open_database(settings, migrate=True)
    broker = await open_broker(settings)
    try:
        await _check_broker(broker.address)
        try:
            await check_no_other_workers(dsn)
        except BenchError as exc:
            raise click.ClickException(str(exc)) from None
        await _register(dsn, settings, spec.doors, spec.zone_capacity)
        logs = Path(tempfile.mkdtemp(prefix="campusgate-bench-"))
        url = _broker_url(settings, broker)
        login = doors_login or DoorsLogin(url)
        env = _gateway_env(settings, dsn, url)
        env["CAMPUSGATE_SIGN_COMMANDS"] = "true" if signed else "false"
        plan = WorkersPlan(
            env,
            settings.topic_prefix,
            settings.partitions,
            settings.partition_lease_s,
            logs,
            broker.address,
        )
        console.print(
            f"bench --workers {workers}: {spec.doors} doors, {settings.partitions} partitions, "
            f"logs in {logs}",
            highlight=False,
        )
        with _progress(console, spec) as show:

            def phase_for(k: int, cpu_clock: Any) -> Phase:
                return Phase(
                    f"{k} worker(s)",
                    login.url,
                    plan.prefix(k),
                    spec,
                    progress=show,
                    ready_timeout_s=GATEWAY_READY_TIMEOUT_S,
                    cpu_clock=cpu_clock,
                    probe_every_door=True,
                )

            steps, failure = await run_steps(plan, workers, phase_for, console)
            echo = await _echo_phase(spec, url, logs, show, login=login)
        return steps, echo, failure
    finally:
        await broker.close()


async def _bench(
    settings: Settings,
    spec: LoadSpec,
    *,
    spawn: bool,
    console: Console,
    modes: tuple[bool, ...] = (True,),
    api_flood: int = 0,
    repeat: int = 1,
    flood_windows: float = 0.0,
    flood_priority: str = FLOOD_PRIORITY,
    placement: dict[str, frozenset[int]] | None = None,
    doors_login: DoorsLogin | None = None,
) -> tuple[dict[bool, list[PhaseResult]], PhaseResult | None, str | None, list[dict[str, Any]]]:
    """The gateway phase (`repeat` times per signing mode) and the echo phase; the gateway's
    failure is returned (after the echo phase), setup failures raise.

    Repeats run in rounds of one phase per mode, and every other round starts with the
    other mode, so a machine getting busier or quieter during the run weighs on both alike.
    """
    dsn = await open_database(settings, migrate=True)
    broker = await open_broker(settings)
    try:
        await _check_broker(broker.address)
        imported = await _register(dsn, settings, spec.doors, spec.zone_capacity)
        changed = sum(c.inserted + c.updated for c in imported.sections.values())
        console.print(
            f"bench roster: {spec.doors} doors, {PEOPLE} people in bench-zone ({changed} rows changed)"
        )
        logs = Path(tempfile.mkdtemp(prefix="campusgate-bench-"))
        url = _broker_url(settings, broker)
        login = doors_login or DoorsLogin(url)
        login.check(spec.doors)
        runs: dict[bool, list[PhaseResult]] = {}
        windowed: list[dict[str, Any]] = []
        failure: str | None = None
        with _progress(console, spec) as show:
            for round_no in range(repeat):
                order = modes if round_no % 2 == 0 else modes[::-1]
                for signed in order:
                    flood = await _flood_for(dsn, api_flood) if api_flood else None
                    result, failure = await _gateway_phase(
                        settings,
                        spec,
                        dsn,
                        url,
                        spawn,
                        logs,
                        show,
                        signed=signed,
                        flood=flood,
                        flood_windows_s=flood_windows,
                        flood_priority=flood_priority,
                        placement=placement,
                        broker_pid=_broker_pid(broker),
                        login=login,
                    )
                    if flood is not None:
                        console.print(flood.result.summary())
                        if flood.windows:
                            windowed.append(flood.windows)
                            console.print(_windows_line(flood.windows), highlight=False)
                    if result is not None:
                        runs.setdefault(signed, []).append(result)
                    if failure is not None:
                        break
                if failure is not None:
                    break
            if login.passwords is not None:
                await _end_gateway_session(broker.address)
            echo = await _echo_phase(
                spec, url, logs, show, login=login, prefix=settings.topic_prefix
            )
        return runs, echo, failure, windowed
    finally:
        await broker.close()


async def _check_broker(address: BrokerAddress) -> None:
    client = MqttClient(address, client_id=f"campusgate-bench-check-{os.getpid()}")
    try:
        await client.connect(5.0)
    except MqttError as exc:
        raise click.ClickException(f"{exc}; check CAMPUSGATE_MQTT_URL / --mqtt-url") from None
    await client.close()


async def _register(
    dsn: str, settings: Settings, doors: int, zone_capacity: int | None = None
) -> ImportReport:
    """Upsert the bench roster (idempotent: a re-run changes nothing)."""
    try:
        manifest = parse_manifest(
            bench_manifest(doors, zone_capacity=zone_capacity), "bench roster", settings.tz
        )
        conn = await connect(dsn, timeout=10.0)
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise click.ClickException(
            f"cannot reach the database at {redact_dsn(dsn)}: {exc}"
        ) from None
    try:
        return await import_manifest(conn, manifest, operator="bench")
    except ManifestError as exc:
        raise click.ClickException(f"cannot register the bench roster: {exc}") from None
    finally:
        await conn.close()


@dataclass(frozen=True)
class DoorsLogin:
    """Where the simulated doors connect, and their own passwords when they log in as
    themselves."""

    url: str
    passwords: dict[str, str] | None = None
    secrets_file: Path | None = None

    def check(self, doors: int) -> None:
        """Every bench device has a password (its roster is registered by now)."""
        if self.passwords is None:
            return
        missing = [device_id(i) for i in range(doors) if device_id(i) not in self.passwords]
        if missing:
            raise click.ClickException(
                f"{self.secrets_file} has no password for {len(missing)} bench devices (e.g. "
                f"{missing[0]}); their roster is registered now: run `campusgate devices "
                "credentials` (and reload the broker), then the bench again"
            )


def _doors_login(
    settings: Settings, spawn: bool, secrets_file: Path | None, device_url: str | None
) -> DoorsLogin | None:
    if secrets_file is None and device_url is None:
        return None
    if secrets_file is not None and not (spawn and settings.mqtt_url):
        raise click.ClickException(
            "--device-secrets needs --spawn and --mqtt-url with the gateway's account: the "
            "echo phase answers on the gateway's topics (the only ones the ACL grants) once "
            "the bench has stopped the gateway it started"
        )
    url = _with_tls_files(device_url or settings.mqtt_url or "", settings, ca_only=True)
    try:
        BrokerAddress.parse(url)
        passwords = load_device_secrets(secrets_file) if secrets_file else None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return DoorsLogin(url, passwords, secrets_file)


def _with_tls_files(url: str, settings: Settings, *, ca_only: bool = False) -> str:
    """`url` carrying CAMPUSGATE_MQTT_PROTOCOL and the CAMPUSGATE_MQTT_* TLS files in its
    query (`?protocol=3.1.1&ca=...`), so the processes and phases the bench starts from a
    URL alone connect as this one does; each URL of a clustered broker's list alike."""
    return ",".join(_url_with(item, settings, ca_only) for item in url.split(","))


def _url_with(url: str, settings: Settings, ca_only: bool) -> str:
    params: dict[str, Any] = {"protocol": settings.mqtt_protocol}
    if url.strip().startswith("mqtts://"):
        params["ca"] = settings.mqtt_ca_file
        if not ca_only:
            params |= {"cert": settings.mqtt_cert_file, "key": settings.mqtt_key_file}
    parts = urlsplit(url.strip())
    query = parse_qsl(parts.query)
    present = {name for name, _ in query}
    added = [(name, str(value)) for name, value in params.items() if value and name not in present]
    if not added:
        return url
    return urlunsplit(parts._replace(query=urlencode(query + added)))


async def _end_gateway_session(address: BrokerAddress) -> None:
    """End the stopped gateway's broker session: it would keep the echo phase's events
    (on its own topics) queued for its next start, which would then decide them."""
    client = MqttClient(address, client_id=BENCH_GATEWAY_ID, clean_start=True)
    try:
        await client.connect(5.0)
    except MqttError as exc:
        raise click.ClickException(f"cannot end the gateway's broker session: {exc}") from None
    await client.close()


def _broker_pid(broker: Broker) -> int | None:
    """The embedded Mosquitto's process, whose CPU the flood windows account for."""
    embedded = broker.embedded
    if isinstance(embedded, LocalMosquitto) and embedded.process is not None:
        return embedded.process.pid
    return None


def _broker_url(settings: Settings, broker: Broker) -> str:
    if settings.mqtt_url:
        return _with_tls_files(settings.mqtt_url, settings)
    address = broker.address  # the embedded broker speaks MQTT 3.1.1 only
    suffix = "?protocol=3.1.1" if address.protocol is Protocol.V311 else ""
    return f"mqtt://{address.host}:{address.port}{suffix}"


async def _flood_for(dsn: str, clients: int) -> ApiFlood:
    """An API flood against the spawned gateway's API, with an admin token of its own."""
    port = _free_port()
    conn = await connect(dsn)
    try:
        name = "bench-api-flood"
        if await operator_exists(conn, name):
            token = await issue_token(conn, name, by="bench", expires_in=timedelta(hours=1))
        else:
            await add_operator(conn, name, "admin")
            token = await issue_token(conn, name, by="bench", expires_in=timedelta(hours=1))
    finally:
        await conn.close()
    return ApiFlood(
        f"http://127.0.0.1:{port}",
        token,
        clients=clients,
        person="bench-p0",
        zone=ZONE_ID,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _gateway_phase(
    settings: Settings,
    spec: LoadSpec,
    dsn: str,
    url: str,
    spawn: bool,
    logs: Path,
    show: Any,
    *,
    signed: bool = True,
    flood: ApiFlood | None = None,
    flood_windows_s: float = 0.0,
    flood_priority: str = FLOOD_PRIORITY,
    placement: dict[str, frozenset[int]] | None = None,
    broker_pid: int | None = None,
    login: DoorsLogin | None = None,
) -> tuple[PhaseResult | None, str | None]:
    name = "gateway" if signed else "gateway-unsigned"
    doors = login or DoorsLogin(url)

    def phase(cpu_clock: Any = None) -> Phase:
        return Phase(
            name,
            doors.url,
            settings.topic_prefix,
            spec,
            progress=show,
            ready_timeout_s=GATEWAY_READY_TIMEOUT_S,
            cpu_clock=cpu_clock,
            passwords=doors.passwords,
        )

    if not spawn:
        try:
            return await _run_phase(phase()), None
        except BenchError as exc:
            return None, f"gateway phase failed: {exc}"
    env = _gateway_env(settings, dsn, url, flood)
    env["CAMPUSGATE_SIGN_COMMANDS"] = "true" if signed else "false"
    child = ChildProcess(
        f"{name} (campusgate serve)",
        [sys.executable, "-m", "gateway", "serve", "--client-id", BENCH_GATEWAY_ID],
        env=env,
        log_path=logs / f"{name}.log",
    )
    await child.start()
    result: PhaseResult | None = None
    failure: str | None = None
    measured = phase(child.cpu_s)
    windows: list[Window] = []
    process = FloodProcess(flood, priority=flood_priority) if flood is not None else None
    accounts = (
        _cpu_accounts(dsn, child, process, broker_pid, placement or {})
        if process is not None
        else None
    )
    try:
        work = flooded(_run_phase(measured), process, flood_windows_s, windows, accounts)
        result = await child.watch(work)
        if flood is not None and windows:
            flood.windows = split_by_flood(measured.samples(), windows, flood.result.busy)
            if accounts is not None:
                flood.windows["per_s"] = accounts.figures()
    except BenchError as exc:
        failure = f"gateway phase failed: {exc} (log: {child.log_path})"
    finally:
        status = await child.stop(STOP_TIMEOUT_S)
    if failure is None and status not in (0, None):
        failure = f"the gateway exited with status {status} when stopped: {child.tail()} (log: {child.log_path})"
    return result, failure


def _check_flood_options(
    api_flood: int, spawn: bool, windows_s: float, priority: str, split_cpus: str | None
) -> tuple[str, dict[str, frozenset[int]] | None]:
    """The flood options checked: the flood's priority, and the CPU placement if asked."""
    if windows_s and not api_flood:
        raise click.ClickException("--flood-windows needs --api-flood")
    if api_flood and not spawn:
        raise click.ClickException("--api-flood needs --spawn (the bench starts the API it floods)")
    priority = priority.strip().lower()
    if not (priority == "idle" or (priority.isdigit() and int(priority) <= 19)):
        raise click.ClickException("--flood-priority must be `idle` or a niceness 0-19")
    return priority, _split_placement(split_cpus, windows_s) if split_cpus else None


def _split_placement(text: str, flood_windows: float) -> dict[str, frozenset[int]]:
    """`--split-cpus DOOR:API` as a placement of the run's parts (bench_flood.split_placement)."""
    if not flood_windows:
        raise click.ClickException("--split-cpus needs --flood-windows (it is applied per window)")
    door_text, sep, api_text = text.partition(":")
    try:
        door, api = parse_cpus(door_text), parse_cpus(api_text)
    except ValueError as exc:
        raise click.ClickException(f"--split-cpus {text}: {exc}") from None
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else frozenset()
    if not sep or not door or not api or door & api:
        raise click.ClickException(
            f"--split-cpus {text}: give two disjoint CPU lists, the door path's and the API's, "
            "as DOOR:API (e.g. 0:1)"
        )
    if not (door | api) <= available:
        missing = ",".join(str(c) for c in sorted((door | api) - available))
        raise click.ClickException(f"--split-cpus {text}: CPU {missing} is not available here")
    return split_placement(door, api)


def _cpu_accounts(
    dsn: str,
    gateway: ChildProcess,
    flood: FloodProcess,
    broker_pid: int | None,
    placement: dict[str, frozenset[int]],
) -> CpuAccounts:
    """Who to charge CPU time to, per flood window: the parts of this bench run."""

    def one(pid: int | None) -> list[int]:
        return [pid] if pid is not None else []

    return CpuAccounts(
        dsn,
        {
            "gateway": lambda: one(gateway.pid),
            "api": lambda: descendants(gateway.pid) if gateway.pid is not None else [],
            "flood": lambda: one(flood.pid),
            "bench": lambda: [os.getpid()],
            "broker": lambda: one(broker_pid),
        },
        placement=placement,
    )


def _gateway_env(
    settings: Settings, dsn: str, url: str, flood: ApiFlood | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CAMPUSGATE_DATABASE_URL=dsn,
        CAMPUSGATE_MQTT_URL=url,
        CAMPUSGATE_TOPIC_PREFIX=settings.topic_prefix,
        CAMPUSGATE_TIMEZONE=settings.timezone,
        # The command-signing key lives under the data dir (or where the setting says).
        CAMPUSGATE_DATA_DIR=str(settings.data_dir),
        CAMPUSGATE_LOG_LEVEL=settings.log_level,
        # Keep clear of an HTTP API already serving on the configured port.
        CAMPUSGATE_API_PORT="0",  # any free port, chosen when it binds: the console is not measured
        CAMPUSGATE_METRICS_PORT="0",  # no worker metrics server: one may already run here
    )
    if settings.signing_key_file is not None:
        env["CAMPUSGATE_SIGNING_KEY_FILE"] = str(settings.signing_key_file)
    if flood is not None:
        env["CAMPUSGATE_API_PORT"] = flood.base_url.rsplit(":", 1)[1]
        # Every failed login of the flood costs a hash: no lock-out cuts it short.
        env["CAMPUSGATE_LOGIN_FAILURES_PER_NAME"] = "1000"
        env["CAMPUSGATE_LOGIN_FAILURES_PER_ADDRESS"] = "100000"
    return env


async def _echo_phase(
    spec: LoadSpec,
    url: str,
    logs: Path,
    show: Any,
    *,
    login: DoorsLogin | None = None,
    prefix: str = ECHO_PREFIX,
) -> PhaseResult:
    """The echo responder on `url`; on the gateway's `prefix` when the doors log in as
    themselves (an ACL grants them nothing else), else on its own."""
    doors = login or DoorsLogin(url)
    topics = prefix if doors.passwords is not None else ECHO_PREFIX
    child = echo_process(url, logs / "echo.log", prefix=topics)
    await child.start()
    try:
        phase = Phase("echo", doors.url, topics, spec, progress=show, passwords=doors.passwords)
        return await child.watch(_run_phase(phase))
    except BenchError as exc:
        raise click.ClickException(f"echo phase failed: {exc} (log: {child.log_path})") from None
    finally:
        await child.stop(STOP_TIMEOUT_S)


async def _run_phase(phase: Phase) -> PhaseResult:
    try:
        return await phase.run()
    except MqttError as exc:
        raise BenchError(f"{phase.name}: {exc}") from None


@contextlib.contextmanager
def _progress(console: Console, spec: LoadSpec) -> Iterator[Any]:
    """A progress hook: a rich bar on a terminal, a line every few seconds otherwise."""
    if not console.is_terminal:
        last = {"at": 0.0}

        def line(p: PhaseProgress) -> None:
            now = time.monotonic()
            if now - last["at"] >= PLAIN_PROGRESS_EVERY_S:
                last["at"] = now
                console.print(
                    f"{p.phase} {p.stage}: {p.elapsed_s:5.1f} s, sent {p.sent}, decided {p.decided}",
                    highlight=False,
                )

        yield line
        return
    bar = Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TextColumn("sent {task.fields[sent]:>8}  decided {task.fields[decided]:>8}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(p: PhaseProgress) -> None:
        if p.phase not in tasks:
            tasks[p.phase] = bar.add_task(p.phase, total=spec.duration_s, sent=0, decided=0)
        bar.update(
            tasks[p.phase],
            description=f"{p.phase} {p.stage}",
            completed=min(p.elapsed_s, spec.duration_s) if p.stage != "probe" else 0,
            sent=p.sent,
            decided=p.decided,
        )

    with bar:
        yield update


def _windows_line(windows: dict[str, Any]) -> str:
    on, off = windows["on"], windows["off"]
    line = (
        f"door decisions while the API flood ran: p50 {_fmt(on['p50_ms'])} ms, "
        f"p99 {_fmt(on['p99_ms'])} ms ({on['decided']}); while it was paused and the API "
        f"idle: p50 {_fmt(off['p50_ms'])} ms, p99 {_fmt(off['p99_ms'])} ms ({off['decided']}; "
        f"{windows['off_overlapped']} left out: the API was still answering the flood)"
    )
    per_s = windows.get("per_s", {})
    for state in ("on", "off"):
        if state in per_s:
            shown = ", ".join(f"{k} {v:g}" for k, v in per_s[state].items())
            line += f"\n  per second, flood {'running' if state == 'on' else 'paused'}: {shown}"
    return line


def _run_figures(result: PhaseResult) -> dict[str, Any]:
    return {**result.as_contract(), "cpu_us_per_decision": result.cpu_us_per_decision}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f}" if value < 100 else f"{value:,.1f}"


def _print_table(
    spec: LoadSpec,
    gateway: PhaseResult | None,
    echo: PhaseResult | None,
    runs: Sequence[PhaseResult] = (),
    unsigned_runs: Sequence[PhaseResult] = (),
) -> None:
    load = "saturation" if not spec.open_loop else f"{spec.rate:g}/s"
    table = Table(title=f"campusgate bench: {spec.doors} doors, {load}, {spec.duration_s:g} s")
    for column in ("phase", "sent", "decided", "lost", "per_s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    unsigned = median_run(unsigned_runs) if unsigned_runs else None
    phases: list[tuple[str, PhaseResult | None]] = []
    if len(runs) > 1:  # every run, then the median ones
        phases += [(f"gateway #{i + 1}", r) for i, r in enumerate(runs)]
        phases += [(f"unsigned #{i + 1}", r) for i, r in enumerate(unsigned_runs)]
    median = " (median)" if len(runs) > 1 else ""
    phases.append((f"gateway{median}", gateway))
    if unsigned is not None:
        phases.append((f"unsigned{median}", unsigned))
    phases.append(("echo", echo))
    for name, result in phases:
        if result is None:
            table.add_row(name, "failed", "", "", "", "", "", "")
            continue
        table.add_row(
            name,
            str(result.sent),
            str(result.decided),
            str(result.lost),
            f"{result.per_s:,.1f}",
            _fmt(result.p50_ms),
            _fmt(result.p95_ms),
            _fmt(result.p99_ms),
        )
    if gateway is not None and echo is not None:
        ratios = report(spec, gateway, echo)["ratio"]
        table.add_row(
            "gateway/echo", "", "", "", _fmt(ratios["per_s"]), "", "", _fmt(ratios["p99_ms"])
        )
    if runs and unsigned_runs:
        cost = signing_cost(runs, unsigned_runs)["signing"]
        table.add_row("signed/off", "", "", "", _fmt(cost["per_s_ratio"]), "", "", "")
        paired = (
            f" (median of {cost['rounds']} rounds, each signed vs unsigned: "
            f"{-cost['median_round_cost_pct']:+}%)"
            if cost["rounds"] > 1
            else ""
        )
        table.caption = (
            f"signing: {-cost['cost_pct']:+}% {load} throughput{paired}"
            + (
                f"; gateway CPU {cost['cpu_us_per_decision']} us per decision signed, "
                f"{cost['cpu_us_per_decision_unsigned']} unsigned ({cost['cpu_cost_pct']:+}%)"
                if cost["cpu_cost_pct"] is not None
                else ""
            )
            + (
                f"; {cost['decisions_per_signature']} decisions per signature"
                if cost["decisions_per_signature"]
                else ""
            )
        )
    console = Console()
    console.print(table)
    if gateway is not None:
        other = {k: v for k, v in gateway.verdicts.items() if k != "admit/ok"}
        if other:
            shown = ", ".join(f"{k} {v}" for k, v in sorted(other.items()))
            Console(stderr=True).print(f"[yellow]gateway decisions other than admit/ok: {shown}")
