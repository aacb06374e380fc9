"""`campusgate demo`: the whole system on one machine, with a simulated campus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.live import Live

from devices.transports.mqtt import BrokerAddress, MqttError
from firmware_sim import scenarios
from firmware_sim.campus import Campus, dump_manifest, generate_campus
from firmware_sim.fleet import AlertWatch, Fleet
from firmware_sim.hardware import DoorHardware, demo_hardware
from gateway.cli import settings_of
from gateway.cli.api_process import ApiProcess, ApiProcessError, api_socket, console_url
from gateway.cli.demo_identity import DemoAccounts, make_accounts, probe_enforcement
from gateway.cli.demo_offline import offline_showcase
from gateway.cli.demo_people import show_checkin, show_visitor_pass
from gateway.cli.demo_view import LiveView
from gateway.cli.demo_workflows import (
    remeasure_fevers,
    show_daily_report,
    show_traced_chain,
    walk_out_leftovers,
)
from gateway.cli.local_broker import find_mosquitto
from gateway.cli.runtime import (
    gateway_config,
    open_broker,
    open_database,
    run,
    stop_signal,
)
from gateway.cli.sim import MAX_PEOPLE, MIN_PEOPLE
from gateway.observe.logs import formatter as log_formatter
from gateway.pipeline.door_worker import Gateway
from gateway.pipeline.serial_reader_pool import parse_osdp_keys
from gateway.pipeline.signing import PublicKeyInfo
from gateway.services.accounts import set_password
from gateway.services.broker_credentials import (
    GATEWAY_ACCOUNT,
    INTEGRATION_ACCOUNT,
    SIM_ACCOUNT,
    CredentialsError,
)
from gateway.services.health import clear_fever_watch
from gateway.services.importer import ManifestError, import_file
from gateway.settings import Settings
from gateway.store.db import connect
from gateway.store.operators import OperatorExistsError, add_operator

DEMO_LOGINS = (
    ("demo-admin", "admin"),
    ("demo-guard", "guard"),
    ("demo-officer", "health_officer"),
)

_LOGGER = logging.getLogger(__name__)
OWN_LOGGERS = frozenset({"gateway", "devices", "firmware_sim", "api"})


async def _import_campus(
    dsn: str,
    campus: Campus,
    path: Path,
    tz: ZoneInfo,
    console: Console,
    fever_threshold_c: float,
) -> None:
    conn = await connect(dsn)
    try:
        report = await import_file(conn, path, tz=tz, operator="demo")
        # An earlier demo run put its fever people on fever_watch; a health officer's
        # re-measurement clears them, so the showcase can show a fever again.
        fever_people = [
            p.id for p in campus.facts.people if set(p.cards) & set(campus.facts.fever_cards)
        ]
        cleared = await clear_fever_watch(
            conn,
            fever_people,
            by="demo",
            reason="re-measured normal before the demo",
            celsius=36.5,
            threshold_c=fever_threshold_c,
        )
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        await conn.close()
    changed = "imported" if report.changed else "already up to date"
    console.print(f"sample campus {changed} ({report.seconds:.1f} s): {path}")
    if cleared:
        console.print(f"cleared fever_watch of {len(cleared)} people from an earlier run")


async def _demo_logins(dsn: str) -> list[tuple[str, str, str]]:
    """(name, role, password) of the demo operators, with fresh passwords each run."""
    conn = await connect(dsn)
    logins = []
    try:
        for name, role in DEMO_LOGINS:
            with contextlib.suppress(OperatorExistsError):
                await add_operator(conn, name, role)
            password = secrets.token_urlsafe(9)
            await set_password(conn, name, password, by="demo")
            logins.append((name, role, password))
    finally:
        await conn.close()
    return logins


async def _broker_accounts(
    settings: Settings, dsn: str, local_broker: str, data_dir: Path, console: Console
) -> DemoAccounts | None:
    """Accounts for the demo's own Mosquitto; None for a configured broker or amqtt."""
    if settings.mqtt_url or local_broker == "amqtt" or find_mosquitto() is None:
        return None
    try:
        return await make_accounts(dsn, data_dir / "mosquitto" / "accounts", settings.topic_prefix)
    except CredentialsError as exc:
        console.print(
            f"broker accounts: {exc}; the demo's mosquitto runs without them", highlight=False
        )
        return None


def _accounts_note(accounts: DemoAccounts) -> str:
    return (
        f"broker accounts in {accounts.folder}: the gateway logs in as {GATEWAY_ACCOUNT}, "
        f"each of the {len(accounts.devices)} MQTT devices as itself (its own password), "
        f"the alert watcher as {INTEGRATION_ACCOUNT}, the live view as {SIM_ACCOUNT} "
        "(it reads every door's commands)"
    )


async def _stop_api(api: ApiProcess, started: asyncio.Task[None]) -> None:
    with contextlib.suppress(ApiProcessError, asyncio.CancelledError):
        await started  # a start still under way finishes (or fails) first
    await api.stop()


def _log_to_file(data_dir: Path, level: str, log_format: str = "text") -> Path:
    """The demo's screen belongs to the live view: logs go to a file, errors still show."""
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "demo.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    to_file = logging.FileHandler(path)
    to_file.setFormatter(log_formatter(log_format))
    to_screen = logging.StreamHandler(sys.stderr)
    to_screen.setLevel(logging.ERROR)
    # Only our own errors interrupt the view; amqtt's (when it is the broker) stay in the file.
    to_screen.addFilter(lambda record: record.name.split(".")[0] in OWN_LOGGERS)
    root.addHandler(to_file)
    root.addHandler(to_screen)
    root.setLevel(level.upper())
    for chatty in ("amqtt", "transitions"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return path


async def run_demo(
    ctx: click.Context,
    *,
    people: int,
    rate: float,
    duration: float | None,
    live: bool,
    local_broker: str = "auto",
    chain: bool = True,
) -> bool:
    """Run the demo until Ctrl-C or `duration`; False when a showcase check failed."""
    settings = settings_of(ctx)
    try:  # merged with the demo reader's key below: a bad setting fails before anything starts
        parse_osdp_keys(settings.osdp_keys)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    console = Console(soft_wrap=True)
    data_dir = settings.data_dir.expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = _log_to_file(data_dir, settings.log_level, settings.log_format)
    console.print(f"CampusGate demo: data in {data_dir}, log in {log_path}")

    with console.status(
        "starting the database (embedded PostgreSQL unless CAMPUSGATE_DATABASE_URL is set)"
    ):
        dsn = await open_database(settings)
    if not settings.database_url:
        console.print(
            f"embedded PostgreSQL under {data_dir / 'pg'}: it stops when the demo exits",
            highlight=False,
        )
    stop_traffic = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        # The API and the scheduled jobs run in a process of their own, as under `serve`;
        # it boots while the campus is imported and the broker and the gateway start here.
        sock = api_socket(settings, any_port_if_busy=True)
        stack.callback(sock.close)
        api = ApiProcess(settings, dsn, sock, log_file=log_path.with_name("api.log"))
        api_started = asyncio.create_task(api.start(), name="demo-api-start")
        stack.push_async_callback(_stop_api, api, api_started)
        campus = generate_campus(seed=2020, people=people)
        plan = demo_hardware(campus.manifest, campus.facts, data_dir / "dev")
        manifest_path = data_dir / "demo-campus.yaml"
        dump_manifest(campus.manifest, manifest_path)
        dump_manifest(plan.manifest, data_dir / "demo-hardware.yaml")
        for path in (manifest_path, data_dir / "demo-hardware.yaml"):
            await _import_campus(
                dsn, campus, path, settings.tz, console, settings.fever_threshold_c
            )
        accounts = await _broker_accounts(settings, dsn, local_broker, data_dir, console)
        with console.status(
            "starting the broker (mosquitto if installed, else in-process amqtt, "
            "unless CAMPUSGATE_MQTT_URL is set)"
        ):
            broker = await open_broker(
                settings, local=local_broker, credentials=accounts.folder if accounts else None
            )
        stack.push_async_callback(broker.close)
        if accounts is not None and not broker.enforces_identities:
            accounts = None  # mosquitto did not start: amqtt took its place
        address = broker.address
        # The demo's terminals are provisioned with the command-signing key, as real ones are.
        config = gateway_config(
            settings,
            dsn,
            accounts.login(address, GATEWAY_ACCOUNT) if accounts else address,
            client_id="campusgate-demo-gateway",
        )
        pin = PublicKeyInfo.of(config.signing_key).public_key if config.signing_key else None
        # The simulated OSDP reader and the gateway's control panel share a fresh key each run.
        keys = json.loads(settings.osdp_keys or "{}")
        gateway = Gateway(
            replace(config, osdp_keys=json.dumps({**keys, plan.osdp_device: plan.osdp_key}))
        )
        view = LiveView(
            accounts.login(address, SIM_ACCOUNT) if accounts else address, settings.topic_prefix
        )
        fleet = Fleet(
            address,
            campus.facts.mqtt_devices,
            prefix=settings.topic_prefix,
            command_key=pin,
            passwords=accounts.devices if accounts else None,
        )
        alert_watch = AlertWatch(
            accounts.login(address, INTEGRATION_ACCOUNT) if accounts else address,
            prefix=settings.topic_prefix,
        )
        hardware = DoorHardware(  # ports exist before the gateway reads them
            plan,
            address,
            settings.topic_prefix,
            password=accounts.devices.get(plan.camera_device) if accounts else None,
        )
        stack.callback(lambda: console.print(f"demo stopped: {gateway.counters.snapshot()}"))
        stop = await stack.enter_async_context(stop_signal())
        try:
            await gateway.start()
            stack.push_async_callback(gateway.stop)
            await view.client.connect()
            stack.push_async_callback(view.client.close)
            await alert_watch.start()
            stack.push_async_callback(alert_watch.stop)
            await fleet.start()
            stack.push_async_callback(fleet.stop)
            await hardware.start()
            stack.push_async_callback(hardware.stop)
        except MqttError as exc:
            raise click.ClickException(str(exc)) from None
        console.print(
            f"gateway up: {len(campus.facts.mqtt_devices)} simulated MQTT door devices, an OSDP and an "
            f"RDM6300 reader on pseudo-terminals, a thermal camera; "
            f"{len(campus.manifest.get('people', []))} people; broker {broker.kind}"
        )
        console.print(broker.identity_note, highlight=False)
        checks: list[scenarios.ScenarioResult] = []
        if accounts is not None:
            console.print(_accounts_note(accounts), highlight=False)
            device, other = campus.facts.mqtt_devices[:2]
            probe = await probe_enforcement(address, accounts, settings.topic_prefix, device, other)
            console.print(str(probe), highlight=False)
            checks.append(probe)
        try:
            await api_started
        except ApiProcessError as exc:
            raise click.ClickException(str(exc)) from None
        url = console_url(sock)
        logins = await _demo_logins(dsn)
        console.print(
            f"[bold]console[/bold]: {url}  (API docs: {url}docs; API process {api.pid})",
            highlight=False,
        )
        for name, role, password in logins:
            console.print(f"  login {name} / {password}  ({role})", highlight=False)
        if config.signing_key is not None:
            kid = PublicKeyInfo.of(config.signing_key).kid
            console.print(
                f"[bold]signed commands[/bold]: key {kid}, terminals verify every command "
                "(campusgate keys show)",
                highlight=False,
            )
        showcase = asyncio.create_task(
            _showcase(
                fleet,
                campus,
                alert_watch,
                hardware,
                dsn,
                settings,
                console,
                url,
                signed=pin is not None,
                chain=chain,
                checks=checks,
                attacker=accounts.login(address, GATEWAY_ACCOUNT) if accounts else None,
                admin=(logins[0][0], logins[0][2]),
            )
        )
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({showcase, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not showcase.done():
            showcase.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await showcase
            console.print("stopped during the showcase")
            return True
        results = showcase.result()
        if pin is not None and config.allowlists is not None:
            offline_dir = data_dir / "offline-gate"
            shutil.rmtree(offline_dir, ignore_errors=True)  # a fresh door: no earlier journal
            console.print("[bold]offline decisions[/bold]: the gateway stops, the gate goes on")
            offline = await offline_showcase(gateway, fleet, campus, dsn, pin, offline_dir, console)
            console.print(str(offline), highlight=False)
            results.append(offline)
        failed = [r.name for r in results if not r.ok]
        if failed:
            summary = (
                f"FAIL  showcase: {len(failed)} of {len(results)} checks failed: "
                f"{', '.join(failed)} (details above and in {log_path}); the demo will exit 1"
            )
        else:
            summary = f"PASS  showcase: all {len(results)} checks passed"
        console.print(summary, highlight=False)
        if failed:
            stack.callback(lambda: console.print(summary, highlight=False))
        tasks = [
            asyncio.create_task(scenarios.traffic(fleet, campus.facts, rate, stop_traffic)),
            asyncio.create_task(hardware.traffic(fleet, campus.facts, stop_traffic)),
        ]

        async def stop_tasks() -> None:
            stop_traffic.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)

        stack.push_async_callback(stop_tasks)
        console.print(f"[bold]live traffic[/bold] at about {rate:g} actions/s; Ctrl-C stops")
        await _watch(view, gateway, stop, duration, live, console)
    return not failed


async def _showcase(
    fleet: Fleet,
    campus: Campus,
    alert_watch: AlertWatch,
    hardware: DoorHardware,
    dsn: str,
    settings: Settings,
    console: Console,
    url: str,
    *,
    signed: bool = False,
    chain: bool = True,
    checks: list[scenarios.ScenarioResult] | None = None,
    attacker: BrokerAddress | None = None,
    admin: tuple[str, str] | None = None,
) -> list[scenarios.ScenarioResult]:
    """One of each situation, the traced chain (unless `chain` is false) and the daily
    report; the checks' results after `checks` (made and shown already).

    `attacker`: the broker account the forger of commands holds (the fleet's by default);
    `admin`: (name, password) of the operator who approves the visitor pass."""
    console.print("[bold]showcase[/bold]: one of each situation the gateway handles")
    # People an earlier run left inside would fill zones and share the chain's stays, and
    # people it left on fever_watch would be held at the doors.
    left = await walk_out_leftovers(fleet, campus.facts, dsn, settings)
    if left:
        console.print(f"  {left} people left inside by an earlier run walked out first")
    cleared = await remeasure_fevers(dsn, campus.facts, settings)
    if cleared:
        console.print(f"  {len(cleared)} people an earlier run left on fever_watch re-measured")
    results = await scenarios.run_all(
        fleet,
        campus.facts,
        alerts=alert_watch,
        fever_which=random.randrange(len(campus.facts.fever_cards)),
    )
    results += await hardware.showcase(fleet, campus.facts, alert_watch)
    if signed:  # terminals refuse a forged and a replayed command
        forged = await scenarios.forged_commands(fleet, campus.facts, attacker_account=attacker)
        results.append(forged)
    for result in results:
        console.print(str(result), highlight=False)
    if signed and attacker is not None:
        console.print(
            f"  (the forger logged in as {attacker.username}: the ACL lets only the gateway's "
            "account write commands, so this is a stolen gateway password; the signature "
            "still kept the door shut)",
            highlight=False,
        )
    results = [*(checks or []), *results]
    if chain:
        console.print("[bold]contact tracing[/bold]: a chain of contacts through the doors")
        traced = await show_traced_chain(fleet, campus.facts, dsn, settings, console)
        results.append(traced.result)
        console.print(
            f"  trace it yourself: {url}?{traced.console_query}#tracing "
            f"(log in as demo-officer; the link fills in person {traced.index_person} and the "
            "trace's parameters)",
            highlight=False,
        )
    else:
        console.print("[bold]contact tracing[/bold]: the chain is skipped (--no-chain)")
    results += await _people_showcase(fleet, campus, dsn, console, url, admin, signed=signed)
    results.append(await show_daily_report(dsn, settings, console))
    return results


async def _people_showcase(
    fleet: Fleet,
    campus: Campus,
    dsn: str,
    console: Console,
    url: str,
    admin: tuple[str, str] | None,
    *,
    signed: bool,
) -> list[scenarios.ScenarioResult]:
    """Issue #15: a student's check-in through the API, and a visitor pass at the doors
    (its QR token is signed with the command-signing key: only when commands are signed)."""
    console.print("[bold]people[/bold]: a daily check-in on the phone page, a visitor pass")
    results = [await show_checkin(dsn, url, campus.facts, console)]
    console.print(str(results[0]), highlight=False)
    if signed and admin is not None:
        results.append(await show_visitor_pass(fleet, dsn, url, campus.facts, admin, console))
        console.print(str(results[-1]), highlight=False)
    else:
        console.print("  visitor pass skipped: QR tokens need the command-signing key")
    return results


async def _watch(
    view: LiveView,
    gateway: Gateway,
    stop: asyncio.Event,
    duration: float | None,
    live: bool,
    console: Console,
) -> None:
    deadline = None if duration is None else time.monotonic() + duration

    def header() -> str:
        c = gateway.counters
        return (
            f"received {c.received}  decided {c.decided}  rejected {c.rejected}  "
            f"duplicates {c.duplicate}  alerts {c.alerts}  logged {gateway.journal.written if gateway.journal else 0}"
        )

    async def tick() -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
        return not stop.is_set() and (deadline is None or time.monotonic() < deadline)

    if live and console.is_terminal:
        with Live(
            view.render(header()), console=console, refresh_per_second=4, screen=False
        ) as screen:
            while await tick():
                screen.update(view.render(header()))
        return
    last_print = 0.0
    while await tick():
        if time.monotonic() - last_print >= 5:
            last_print = time.monotonic()
            console.print(header())


@click.command()
@click.option(
    "--people", default=3000, show_default=True, type=click.IntRange(MIN_PEOPLE, MAX_PEOPLE)
)
@click.option(
    "--rate",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1, 2000),
    help="traffic actions per second",
)
@click.option(
    "--duration", default=None, type=click.FloatRange(1, None), help="stop after this many seconds"
)
@click.option(
    "--live/--no-live", default=True, help="a live table (on a terminal) or periodic lines"
)
@click.option(
    "--broker",
    "local_broker",
    type=click.Choice(["auto", "mosquitto", "amqtt"]),
    default="auto",
    show_default=True,
    help="the demo's own broker when CAMPUSGATE_MQTT_URL is not set (auto: mosquitto if installed)",
)
@click.option(
    "--chain/--no-chain",
    default=True,
    show_default=True,
    help="show contact tracing with a chain of contacts made at the doors (its stays last "
    "the tracing rule's minute each, so it adds about two minutes before live traffic)",
)
@click.pass_context
def command(
    ctx: click.Context,
    people: int,
    rate: float,
    duration: float | None,
    live: bool,
    local_broker: str,
    chain: bool,
) -> None:
    """The whole system on one machine: database, broker, sample campus, simulated doors, gateway."""
    if not sys.stdout.isatty():
        live = False
    passed = run(
        lambda: run_demo(
            ctx,
            people=people,
            rate=rate,
            duration=duration,
            live=live,
            local_broker=local_broker,
            chain=chain,
        )
    )
    if passed is False:
        ctx.exit(1)
