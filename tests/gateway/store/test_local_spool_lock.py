"""One process per spool: a second waits for it (as long as told), then gives up clearly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gateway.store.local_spool import LocalSpool, SpoolInUse


def test_a_spool_held_elsewhere_is_refused_at_once_by_default(tmp_path: Path) -> None:
    held = LocalSpool(tmp_path / "w1.sqlite3")
    try:
        with pytest.raises(SpoolInUse, match="in use by another gateway process"):
            LocalSpool(tmp_path / "w1.sqlite3")
    finally:
        held.close()


def test_a_starting_gateway_waits_for_a_brief_look_by_another(tmp_path: Path) -> None:
    """Another worker on the data dir opens this spool as left behind and lets go of it
    (what `left_spools` does at its start): the spool's own gateway gets it."""
    held = LocalSpool(tmp_path / "w1.sqlite3")
    releaser = threading.Timer(0.5, held.close)
    releaser.start()
    started = time.monotonic()
    mine = LocalSpool(tmp_path / "w1.sqlite3", wait_s=30)
    try:
        assert time.monotonic() - started >= 0.4  # it did wait for the other one
    finally:
        mine.close()
        releaser.join()


def test_waiting_has_an_end(tmp_path: Path) -> None:
    held = LocalSpool(tmp_path / "w1.sqlite3")
    try:
        with pytest.raises(SpoolInUse, match="already running on this data dir"):
            LocalSpool(tmp_path / "w1.sqlite3", wait_s=0.3)
    finally:
        held.close()
