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
    # The first door's list (dorm-0) holds only who may enter there, without the held:
    # dorm-0's classes (class i % 400, dorm class % 3), staff (every 10th), the personal
    # grants (every 97th); people p0 and p500 are under a hold.
    may_enter = {i for i in range(600) if (i % 400) % 3 == 0 or i % 10 == 0 or i % 97 == 0} - {
        0,
        500,
    }
    assert figures["door_list_cards"] == len(may_enter)
    # A health status reaches only the doors that list the person: p1 (class-1, dept-1)
    # lives in dorm-1 and works in lab-0, two doors each.
    assert figures["deltas"] == 4
    assert figures["grant_change_deltas"] == 2  # a grant only its zone's doors
    assert figures["grant_change_full_lists"] == 0
    # Every door is used both ways: its exit set holds every known card, and a new card
    # reaches every door as a delta.
    assert figures["door_exit_set_cards"] == 600
    assert figures["new_card_deltas"] == 8 and figures["new_card_full_lists"] == 0
    assert figures["offline_online_agreement"] == "20000/20000"
