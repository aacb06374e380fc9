"""Fixtures of the policy tables: the test campus indexed, and decide() in campus time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from policy_campus import CAMPUS_TZ, FEVER_C, MONDAY_NOON, campus_roster

from gateway.domain.events import Direction
from gateway.policy import Outcome, RosterIndex, decide, resolve_direction


@pytest.fixture(scope="session")
def index() -> RosterIndex:
    return RosterIndex.build(campus_roster())


Decide = Callable[..., Outcome]


@pytest.fixture
def decide_at(index: RosterIndex) -> Decide:
    """decide() at a door of the test campus, with the contract's defaults."""

    def run(
        door_id: str,
        card_uid: str,
        now: datetime = MONDAY_NOON,
        *,
        direction: Direction | None = None,
        celsius: float | None = None,
        occupancy: int = 0,
        window_open: bool = False,
        tz: ZoneInfo = CAMPUS_TZ,
        roster: RosterIndex | None = None,
    ) -> Outcome:
        use = roster or index
        door = use.door(door_id)
        assert door is not None, door_id
        return decide(
            use,
            door=door,
            card_uid=card_uid,
            direction=resolve_direction(direction, door),
            now=now,
            tz=tz,
            celsius=celsius,
            fever_threshold_c=FEVER_C,
            occupancy=occupancy,
            temperature_window_open=window_open,
        )

    return run
