"""`bench --split-cpus`: the placement of the run's parts, and giving CPUs back."""

from __future__ import annotations

import os
import threading

import pytest

from gateway.cli.bench_flood import API_SIDE, DOOR_SIDE, pin_process, split_placement, unpin


def test_the_door_path_and_the_api_side_get_their_own_cpus() -> None:
    placement = split_placement(frozenset({0}), frozenset({1}))
    assert {placement[p] for p in DOOR_SIDE} == {frozenset({0})}
    assert {placement[p] for p in API_SIDE} == {frozenset({1})}
    assert "postgres_api" in API_SIDE and "postgres_gateway" in DOOR_SIDE


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to move between")
def test_every_thread_is_moved_and_given_back() -> None:
    before = os.sched_getaffinity(0)
    one = frozenset({min(before)})
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)  # a second thread of this process
    worker.start()
    original: dict[int, set[int]] = {}
    try:
        assert pin_process(os.getpid(), one, original)
        assert worker.native_id in original and threading.get_native_id() in original
        assert os.sched_getaffinity(worker.native_id) == one
        assert os.sched_getaffinity(0) == one
        unpin(original)
        assert os.sched_getaffinity(worker.native_id) == before
        assert os.sched_getaffinity(0) == before
        assert original == {}
    finally:
        os.sched_setaffinity(0, before)
        stop.set()
        worker.join()


def test_a_process_gone_is_not_placed() -> None:
    assert not pin_process(2**22 + 7, frozenset({0}), {})
