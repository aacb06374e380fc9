"""`campusgate allowlist-bench` runs and its figures hang together (no speed asserted)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gateway.cli.allowlist_bench import command


def test_allowlist_bench_prints_consistent_figures():
    run = CliRunner().invoke(
        command, ["--people", "600", "--buildings", "3", "--doors-per-zone", "2", "--json"]
    )
    assert run.exit_code == 0, run.output
    figures = json.loads(run.output.strip().splitlines()[-1])
    assert figures["doors"] == 8  # 3 dormitories and 1 lab, 2 doors each
    assert figures["door_list_cards"] == 600
    assert figures["deltas"] == 8  # a health status reaches every door
    assert figures["grant_change_deltas"] == 2  # a grant only its zone's doors
    assert figures["grant_change_full_lists"] == 0
    assert figures["offline_online_agreement"] == "20000/20000"
