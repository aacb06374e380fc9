"""Every setting has its flag and its row in the README's settings table (issue 16, point 8)."""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner

import gateway.cli
from gateway.cli import main
from gateway.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def _table_variables() -> set[str]:
    text = README.read_text()
    table = text[text.index("| variable | meaning | default |") :].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `CAMPUSGATE_([A-Z0-9_]+)`", table, flags=re.MULTILINE))


def test_every_setting_is_in_the_readme_table() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    assert _table_variables() == settings


def test_every_setting_has_a_flag() -> None:
    help_text = CliRunner().invoke(main, ["--help"]).output
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')} " in help_text, name


SEEN: dict[str, Settings] = {}


@click.command()
@click.pass_context
def command(ctx: click.Context) -> None:
    """Stands in for a subcommand: keeps the settings the group built."""
    SEEN["settings"] = ctx.find_root().obj["settings"]


def test_flags_reach_the_settings(tmp_path, monkeypatch) -> None:
    """A flag of each type lands in the settings a command sees (and wins over the env)."""
    monkeypatch.setitem(gateway.cli.SUBCOMMANDS, "show-settings", __name__)
    result = CliRunner().invoke(
        main,
        [
            "--api-port", "8123", "--api-host", "0.0.0.0", "--partition-client-prefix", "gw-east-p",
            "--trace-max-stay-h", "8.5", "--data-dir", str(tmp_path), "show-settings",
        ],
        env={"CAMPUSGATE_API_PORT": "9000"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    settings = SEEN["settings"]
    assert (settings.api_port, settings.api_host, settings.partition_client_prefix) == (
        8123,
        "0.0.0.0",
        "gw-east-p",
    )
    assert settings.trace_max_stay_h == 8.5
    assert settings.data_dir == tmp_path
