"""`campusgate sim`: simulated door devices for demos and tests (CONTRACT.md section 2).

The simulated doors belong to a generated sample campus, and the gateway only
answers devices and cards it knows, so the campus must be the one the gateway
serves. Write it, import it, then drive it with the same --people and --seed:

    campusgate sim campus --people 3000 --seed 2020 --out campus.yaml
    campusgate import campus.yaml
    campusgate serve &                          # same database and broker
    campusgate sim doors --people 3000 --seed 2020 --rate 5
    campusgate sim scenarios --people 3000 --seed 2020
    campusgate sim qr term-office CGQ1....       # a visitor pass's QR token at a door

`doors` and `scenarios` need the broker the gateway serves (CAMPUSGATE_MQTT_URL
or --mqtt-url, `mqtts://` for TLS with --mqtt-ca-file) and its topic prefix; they
never start one of their own. On a broker that enforces device identities, each
simulated door logs in as itself: `--device-secrets` (the device-secrets.csv of
`campusgate devices credentials`) or `--device-certs` (`campusgate certs device`);
the URL's own account (e.g. campusgate-integration) then only watches the alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from devices.transports.mqtt import BrokerAddress, MqttError
from firmware_sim import scenarios
from firmware_sim.campus import Campus, CampusFacts, dump_manifest, generate_campus
from firmware_sim.fleet import AlertWatch, Fleet, load_device_secrets
from firmware_sim.terminal import SimTerminal
from gateway.cli import settings_of
from gateway.cli.runtime import run, stop_signal
from gateway.settings import Settings

DEFAULT_PEOPLE = 3000  # the same sample campus as `campusgate demo`
DEFAULT_SEED = 2020
MIN_PEOPLE = 200  # fewer leave no room for the special people the scenarios need
MAX_PEOPLE = 200_000
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
CONNECT_TIMEOUT_S = 10.0
SUMMARY_EVERY_S = 5.0
DRAIN_S = 5.0  # how long `doors` waits for outstanding decisions after stopping


class Bounded(click.ParamType):
    """A number within [low, high]; a bad value is a one-line error, not a usage dump."""

    def __init__(self, kind: type[int] | type[float], low: float, high: float | None) -> None:
        self.kind = kind
        self.low = low
        self.high = high
        self.name = kind.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        flag = param.opts[0] if param is not None else "value"
        span = f"{self.low:g}-{self.high:g}" if self.high is not None else f"at least {self.low:g}"
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            raise click.ClickException(f"{flag}: {value!r} is not a number ({span})") from None
        if number < self.low or (self.high is not None and number > self.high):
            raise click.ClickException(f"{flag}: {value} is out of range ({span})")
        return number


def _campus_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--seed",
        default=DEFAULT_SEED,
        show_default=True,
        type=int,
        help="campus generator seed; use the one the imported campus was written with",
    )(func)
    return click.option(
        "--people",
        default=DEFAULT_PEOPLE,
        show_default=True,
        type=Bounded(int, MIN_PEOPLE, MAX_PEOPLE),
        help="campus size; use the one the imported campus was written with",
    )(func)


def _identity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--device-certs",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=None,
        help="directory of each device's {id}.crt and {id}.key (`campusgate certs device`), "
        "for a listener that takes the certificate's name as the username",
    )(func)
    return click.option(
        "--device-secrets",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="device-secrets.csv of `campusgate devices credentials`: each simulated door "
        "logs in as itself with its own password",
    )(func)


@dataclass(frozen=True)
class DeviceIdentities:
    """How the simulated doors log in: their own passwords and/or certificates."""

    passwords: dict[str, str] | None = None
    cert_dir: Path | None = None

    @classmethod
    def load(cls, secrets_file: Path | None, cert_dir: Path | None) -> DeviceIdentities:
        try:
            passwords = load_device_secrets(secrets_file) if secrets_file else None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        return cls(passwords, cert_dir)

    def check(self, devices: Iterable[str]) -> None:
        """A one-line error naming the devices the secrets file has no password for."""
        if self.passwords is None:
            return
        missing = [d for d in devices if d not in self.passwords]
        if missing:
            raise click.ClickException(
                f"--device-secrets has no password for {len(missing)} devices of this campus "
                f"(e.g. {missing[0]}): run `campusgate devices credentials` after importing it"
            )

    def fleet_options(self) -> dict[str, Any]:
        return {"passwords": self.passwords, "cert_dir": self.cert_dir}


def _generate(people: int, seed: int) -> Campus:
    try:
        return generate_campus(seed=seed, people=people)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _broker(settings: Settings) -> BrokerAddress:
    if not settings.mqtt_url:
        raise click.ClickException(
            "no broker configured: set CAMPUSGATE_MQTT_URL (or pass --mqtt-url before `sim`) "
            "to the broker the gateway serves"
        )
    try:
        return BrokerAddress.parse(settings.mqtt_url, **settings.mqtt_options())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _campus_hint(people: int, seed: int) -> str:
    return (
        f"the gateway must serve the campus of `campusgate sim campus --people {people} "
        f"--seed {seed}` (imported with `campusgate import`)"
    )


@click.group()
def command() -> None:
    """Simulated door devices (MQTT) for demos and tests.

    \b
    First write the sample campus and import it where the gateway serves:
      campusgate sim campus --people N --seed S --out campus.yaml
      campusgate import campus.yaml
    then run `sim doors` or `sim scenarios` with the same --people and --seed
    against the gateway's broker (CAMPUSGATE_MQTT_URL) and topic prefix.
    """


# ---- sim campus --------------------------------------------------------------------


@command.command("campus")
@_campus_options
@click.option(
    "--out",
    "out",
    default="campus.yaml",
    show_default=True,
    type=click.Path(path_type=Path),
    help="manifest file to write: YAML, or JSON when it ends in .json",
)
def campus_command(people: int, seed: int, out: Path) -> None:
    """Write a generated sample campus manifest for `campusgate import`."""
    if out.suffix.lower() not in MANIFEST_SUFFIXES:
        raise click.ClickException(
            f"{out}: the manifest must end in {', '.join(MANIFEST_SUFFIXES)} "
            "(`campusgate import` reads the format from the suffix)"
        )
    if out.is_dir():
        raise click.ClickException(f"{out} is a directory; give a file name")
    if not out.parent.is_dir():
        raise click.ClickException(f"{out}: directory {out.parent} does not exist")
    campus = _generate(people, seed)
    try:
        dump_manifest(campus.manifest, out)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(_campus_summary(out, campus, seed))
    click.echo(
        f"next: campusgate import {out}; then campusgate sim doors|scenarios "
        f"--people {people} --seed {seed}",
        err=True,
    )


def _campus_summary(out: Path, campus: Campus, seed: int) -> str:
    m, facts = campus.manifest, campus.facts
    kinds = Counter(p["kind"] for p in m["people"])
    isolated = [h["person"] for h in m["health"]]
    who = ", ".join(isolated) if isolated else "nobody"
    return (
        f"wrote {out} (seed {seed}): {len(m['people'])} people "
        f"({kinds['student']} students, {kinds['staff']} staff, {kinds['visitor']} visitors), "
        f"{len(m['zones'])} zones, {len(m['doors'])} doors, {len(m['devices'])} devices; "
        f"isolated: {who}; isolated card {facts.isolated_card or '-'}"
    )


# ---- sim doors ---------------------------------------------------------------------


def _chosen_devices(facts: CampusFacts, only: Iterable[str]) -> list[str]:
    wanted = [d.strip() for item in only for d in item.split(",") if d.strip()]
    if not wanted:
        return list(facts.mqtt_devices)
    unknown = [d for d in wanted if d not in facts.device_doors]
    if unknown:
        known = ", ".join(facts.mqtt_devices[:4])
        raise click.ClickException(
            f"--only: no device {unknown[0]} on this campus (devices are like {known}, ...)"
        )
    return list(dict.fromkeys(wanted))


class DecisionTally:
    """Final decisions received by the fleet, by reason (the fleet's `on_decision` hook)."""

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()

    def __call__(
        self, terminal: SimTerminal, event_id: str, body: dict[str, Any], now: float
    ) -> None:
        self.reasons[str(body.get("reason"))] += 1

    @property
    def decided(self) -> int:
        return sum(self.reasons.values())

    def line(self, sent: int) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in self.reasons.most_common()) or "-"
        return f"sent {sent}  decided {self.decided}  awaiting {sent - self.decided}  ({reasons})"


async def _connect(*clients: Fleet | AlertWatch, address: BrokerAddress) -> None:
    try:
        for client in clients:
            await client.start(CONNECT_TIMEOUT_S)
    except MqttError as exc:
        raise click.ClickException(
            f"{exc}; check CAMPUSGATE_MQTT_URL and that the broker is running"
        ) from None


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def run_doors(
    settings: Settings,
    facts: CampusFacts,
    devices: list[str],
    *,
    rate: float,
    duration: float | None,
    hint: str,
    identities: DeviceIdentities = DeviceIdentities(),
) -> None:
    address = _broker(settings)
    tally = DecisionTally()
    fleet = Fleet(
        address,
        devices,
        prefix=settings.topic_prefix,
        on_decision=tally,
        **identities.fleet_options(),
    )
    stats = scenarios.TrafficStats()
    stop_traffic = asyncio.Event()
    traffic: asyncio.Task[scenarios.TrafficStats] | None = None
    started = time.monotonic()
    try:
        async with stop_signal() as stop:
            await _connect(fleet, address=address)
            click.echo(
                f"{len(fleet)} simulated devices on broker {address} "
                f"(prefix {settings.topic_prefix}); about {rate:g} actions/s; Ctrl-C stops"
            )
            traffic = asyncio.create_task(
                scenarios.traffic(fleet, facts, rate, stop_traffic, stats=stats)
            )
            deadline = None if duration is None else started + duration
            while not stop.is_set() and not traffic.done():
                left = SUMMARY_EVERY_S if deadline is None else deadline - time.monotonic()
                await _wait(stop, min(SUMMARY_EVERY_S, left))
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not stop.is_set():
                    click.echo(tally.line(len(stats.card_events)))
            stop_traffic.set()
            await traffic
            # Decisions still on their way (a pending temperature pairing, say); Ctrl-C skips.
            stop.clear()
            drain_until = time.monotonic() + DRAIN_S
            while tally.decided < len(stats.card_events) and time.monotonic() < drain_until:
                await _wait(stop, 0.1)
                if stop.is_set():
                    break
    finally:
        stop_traffic.set()
        if traffic is not None and not traffic.done():
            traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await traffic
        await fleet.stop()
    _final_doors_summary(stats, tally, fleet, time.monotonic() - started, settings, hint)


def _final_doors_summary(
    stats: scenarios.TrafficStats,
    tally: DecisionTally,
    fleet: Fleet,
    seconds: float,
    settings: Settings,
    hint: str,
) -> None:
    sent = len(stats.card_events)
    click.echo(f"final: {tally.line(sent)} in {seconds:.1f} s")
    actions = ", ".join(f"{a} {n}" for a, n in stats.actions.most_common()) or "-"
    click.echo(f"actions: {actions}")
    problems = fleet.problems()
    for problem in problems[:10]:
        click.echo(f"protocol problem: {problem}", err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} protocol problems in the gateway's answers")
    if sent and not tally.decided:
        raise click.ClickException(
            f"no decisions came back: is a gateway serving this broker with topic prefix "
            f"'{settings.topic_prefix}'? {hint}"
        )


@command.command("doors")
@_campus_options
@click.option(
    "--rate",
    default=5.0,
    show_default=True,
    type=Bounded(float, 0.1, 2000),
    help="traffic actions per second",
)
@click.option(
    "--duration",
    default=None,
    type=Bounded(float, 1, None),
    help="stop after this many seconds (default: Ctrl-C)",
)
@click.option(
    "--only",
    multiple=True,
    metavar="DEVICE",
    help="simulate only these devices (repeat, or separate by commas)",
)
@_identity_options
@click.pass_context
def doors_command(
    ctx: click.Context,
    people: int,
    seed: int,
    rate: float,
    duration: float | None,
    only: tuple[str, ...],
    device_secrets: Path | None,
    device_certs: Path | None,
) -> None:
    """Play realistic door traffic on the campus's simulated terminals."""
    settings = settings_of(ctx)
    _broker(settings)  # fail before generating a large campus
    identities = DeviceIdentities.load(device_secrets, device_certs)
    facts = _generate(people, seed).facts
    devices = _chosen_devices(facts, only)
    identities.check(devices)
    hint = _campus_hint(people, seed)
    run(
        lambda: run_doors(
            settings,
            facts,
            devices,
            rate=rate,
            duration=duration,
            hint=hint,
            identities=identities,
        )
    )


# ---- sim scenarios -----------------------------------------------------------------


async def run_scenarios(
    settings: Settings,
    facts: CampusFacts,
    *,
    slow: bool,
    fever_which: int,
    timeout: float,
    identities: DeviceIdentities = DeviceIdentities(),
) -> list[scenarios.ScenarioResult]:
    address = _broker(settings)
    fleet = Fleet(
        address, facts.mqtt_devices, prefix=settings.topic_prefix, **identities.fleet_options()
    )
    alerts = AlertWatch(address, prefix=settings.topic_prefix)
    try:
        await _connect(alerts, fleet, address=address)
        return await scenarios.run_all(
            fleet,
            facts,
            alerts=alerts,
            timeout=timeout,
            fever_which=fever_which,
            include_slow=slow,
            window_s=settings.temperature_window_s,
        )
    finally:
        await fleet.stop()
        await alerts.stop()


def _scenario_hints(
    results: list[scenarios.ScenarioResult], settings: Settings, campus_hint: str
) -> list[str]:
    got = [c.got for r in results for c in r.checks if not c.ok]
    hints = []
    if got and all(g in ("no decision", "no alert") or g.startswith("none") for g in got):
        hints.append(
            f"no answers at all: is a gateway serving this broker with topic prefix "
            f"'{settings.topic_prefix}'? {campus_hint}"
        )
    if "deny/unknown_card" in got:
        hints.append(f"known cards were denied as unknown: {campus_hint}")
    if "deny/health_hold" in got:
        hints.append(
            "a reserved fever person is on fever_watch from an earlier run or `sim doors`: "
            "try another --fever-card (0-4), or have a health officer clear them"
        )
    return hints


@command.command("scenarios")
@_campus_options
@click.option(
    "--slow",
    is_flag=True,
    help="also wait out the temperature pairing window (CAMPUSGATE_TEMPERATURE_WINDOW_S)",
)
@click.option(
    "--fever-card",
    "fever_card",
    type=Bounded(int, 0, 4),
    default=None,
    help="which reserved resident reads a fever (0-4; default random); "
    "each run puts that person on fever_watch",
)
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    type=Bounded(float, 0.5, 60),
    help="seconds to wait for each decision or alert",
)
@_identity_options
@click.pass_context
def scenarios_command(
    ctx: click.Context,
    people: int,
    seed: int,
    slow: bool,
    fever_card: int | None,
    timeout: float,
    device_secrets: Path | None,
    device_certs: Path | None,
) -> None:
    """Run every scripted scenario once against the gateway; PASS or FAIL each."""
    settings = settings_of(ctx)
    _broker(settings)
    identities = DeviceIdentities.load(device_secrets, device_certs)
    facts = _generate(people, seed).facts
    identities.check(facts.mqtt_devices)
    which = fever_card if fever_card is not None else random.randrange(len(facts.fever_cards))
    results: list[scenarios.ScenarioResult] = []

    async def main() -> None:
        results.extend(
            await run_scenarios(
                settings,
                facts,
                slow=slow,
                fever_which=which,
                timeout=timeout,
                identities=identities,
            )
        )

    run(main)
    for result in results:
        click.echo(str(result))
    failed = [r.name for r in results if not r.ok]
    click.echo(f"{len(results) - len(failed)} of {len(results)} scenarios passed")
    if not results:
        raise click.ClickException("interrupted before any scenario finished")
    if failed:
        for hint in _scenario_hints(results, settings, _campus_hint(people, seed)):
            click.echo(f"hint: {hint}", err=True)
        raise click.ClickException(
            f"{len(failed)} of {len(results)} scenarios failed: {', '.join(failed)}"
        )


# ---- sim qr ------------------------------------------------------------------------


async def scan_qr(
    settings: Settings, device_id: str, token: str, direction: str | None, timeout: float
) -> dict[str, Any]:
    """Scan `token` at the simulated terminal `device_id`; its final decision."""
    address = _broker(settings)
    terminal = SimTerminal(address, device_id, prefix=settings.topic_prefix)
    try:
        await terminal.start(CONNECT_TIMEOUT_S)
    except MqttError as exc:
        raise click.ClickException(
            f"{exc}; check CAMPUSGATE_MQTT_URL and that the broker is running"
        ) from None
    try:
        event_id = terminal.scan_qr(token, direction=direction)
        try:
            return await terminal.decision(event_id, timeout=timeout)
        except TimeoutError:
            raise click.ClickException(
                f"no decision within {timeout} s: is a gateway serving this broker with topic "
                f"prefix '{settings.topic_prefix}', and is {device_id} registered?"
            ) from None
    finally:
        await terminal.stop()


@command.command("qr")
@click.argument("device")
@click.argument("token")
@click.option("--direction", type=click.Choice(["in", "out"]), default=None)
@click.option("--timeout", default=5.0, show_default=True, type=Bounded(float, 0.5, 120))
@click.pass_context
def qr_command(
    ctx: click.Context, device: str, token: str, direction: str | None, timeout: float
) -> None:
    """Scan a visitor pass's QR token (its text) at the simulated terminal DEVICE."""
    decision = run(lambda: scan_qr(settings_of(ctx), device, token, direction, timeout))
    if decision is None:  # Ctrl-C
        return
    click.echo(f"{decision['decision']}/{decision['reason']}: {decision.get('message', '')}")
