"""The `campusgate` command: the composition root.

Each subcommand lives in its own module of this package and is loaded only
when it runs, so `campusgate --help` stays quick and one broken extra cannot
take the others down.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click
from pydantic import ValidationError

from gateway.observe.logs import configure as configure_logging
from gateway.settings import Settings

# name -> module holding a click command called `command`
SUBCOMMANDS: dict[str, str] = {
    "demo": "gateway.cli.demo",
    "serve": "gateway.cli.serve",
    "worker": "gateway.cli.worker",
    "migrate": "gateway.cli.migrate",
    "import": "gateway.cli.importer",
    "user": "gateway.cli.user",
    "person": "gateway.cli.person",
    "sim": "gateway.cli.sim",
    "bench": "gateway.cli.bench",
    "report": "gateway.cli.report",
    "trace": "gateway.cli.trace",
    "trace-bench": "gateway.cli.trace_bench",
    "allowlist-bench": "gateway.cli.allowlist_bench",
    "checkin-bench": "gateway.cli.checkin_bench",
    "retention": "gateway.cli.retention",
    "export": "gateway.cli.export",
    "travel": "gateway.cli.travel",
    "devices": "gateway.cli.devices",
    "certs": "gateway.cli.certs",
    "keys": "gateway.cli.keys",
}

# Every setting has a flag of the same name (`--api-port` for CAMPUSGATE_API_PORT);
# pydantic converts the text as it does the environment's.
_SETTING_FLAGS = tuple(
    (
        f"--{name.replace('_', '-')}",
        name,
        field.annotation if field.annotation in (int, float) else str,
    )
    for name, field in Settings.model_fields.items()
)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = SUBCOMMANDS.get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(module).command


def settings_of(ctx: click.Context) -> Settings:
    """The settings built by the top-level group for this run."""
    return ctx.find_root().obj["settings"]


def fail(message: str) -> None:
    """Exit non-zero with a one-line error (contract section 2)."""
    raise click.ClickException(message)


def _settings_options(func: Any) -> Any:
    for flag, name, kind in reversed(_SETTING_FLAGS):
        func = click.option(
            flag, name, type=kind, default=None, help=f"overrides CAMPUSGATE_{name.upper()}"
        )(func)
    return func


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@_settings_options
@click.pass_context
def main(ctx: click.Context, **overrides: Any) -> None:
    """CampusGate: campus access control and IoT gateway for epidemic prevention."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise click.ClickException(f"bad setting {field}: {first['msg']}") from None
    _check_broker_url(settings)
    configure_logging(settings.log_level, settings.log_format, logging.StreamHandler(sys.stderr))
    ctx.obj = {"settings": settings}


def _check_broker_url(settings: Settings) -> None:
    """The whole broker URL (list) is understood before any command starts anything."""
    if not settings.mqtt_url:
        return
    from devices.transports.mqtt import BrokerAddress

    try:
        BrokerAddress.parse(settings.mqtt_url, **settings.mqtt_options())
    except ValueError as exc:
        raise click.ClickException(f"bad setting mqtt_url: {exc}") from None
