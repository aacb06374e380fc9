"""event_time(): the device's clock when plausible, else the receipt time (contract section 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.pipeline.device_clocks import AHEAD, SKEW_ALERT, event_time

RECEIVED = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
MAX_LATE = timedelta(hours=12)
S, H = timedelta(seconds=1), timedelta(hours=1)

# name: (device ts - receipt, floor - receipt or None, logged at device ts?, skewed?)
CASES = {
    "on-time": (-0.2 * S, -10 * S, True, False),
    "no-floor-yet": (-0.2 * S, None, True, False),
    "ahead-within-tolerance": (AHEAD, -10 * S, True, False),
    "ahead-beyond-tolerance": (AHEAD + S, -10 * S, False, False),
    "ahead-by-hours": (3 * H, -10 * S, False, True),
    "ahead-by-years": (timedelta(days=3 * 365), None, False, True),
    "late-after-an-outage": (-70 * S, -5 * H, True, False),
    "late-by-hours-after-a-long-outage": (-11 * H, -11.5 * H, True, False),
    "at-the-floor": (-5 * S, -5 * S, True, False),
    "below-the-floor-a-little": (-6 * S, -5 * S, False, False),
    "behind-by-an-hour": (-H, -10 * S, False, True),
    "behind-by-years": (-timedelta(days=3 * 365), -10 * S, False, True),
    "behind-by-years-no-floor": (-timedelta(days=3 * 365), None, False, True),
    "older-than-the-max-stay": (-13 * H, -14 * H, False, True),
    "floor-in-the-future-of-receipt": (-S, 30 * S, False, False),
}


@pytest.mark.parametrize(("offset", "floor", "device", "skewed"), CASES.values(), ids=CASES.keys())
def test_event_time(offset, floor, device: bool, skewed: bool) -> None:
    ts = RECEIVED + offset
    stamp = event_time(ts, RECEIVED, None if floor is None else RECEIVED + floor, MAX_LATE)
    assert stamp.at == (ts if device else RECEIVED)
    assert (stamp.plausible, stamp.skewed) == (device, skewed)


def test_skew_threshold_is_minutes_not_seconds() -> None:
    assert timedelta(minutes=1) < SKEW_ALERT <= timedelta(hours=1)
    just = event_time(RECEIVED + SKEW_ALERT, RECEIVED, None, MAX_LATE)
    below = event_time(RECEIVED + SKEW_ALERT - S, RECEIVED, None, MAX_LATE)
    assert just.skewed and not below.skewed and not below.plausible


def test_a_zone_of_another_offset_is_the_same_instant() -> None:
    from zoneinfo import ZoneInfo

    ts = (RECEIVED - S).astimezone(ZoneInfo("Asia/Shanghai"))
    assert event_time(ts, RECEIVED, None, MAX_LATE).at == RECEIVED - S
