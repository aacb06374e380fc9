"""The manifest's optional zone fields: capacity_mode, gathering_threshold, gathering_minutes."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from gateway.domain.roster import CapacityMode
from gateway.services.manifest import ManifestError, parse_manifest

TZ = ZoneInfo("Asia/Shanghai")


def zone(**fields):
    document = {"zones": [{"id": "hall", "name": "Hall", "kind": "teaching", **fields}]}
    return parse_manifest(document, "campus.yaml", TZ).zones[0].item


def test_defaults_enforce_and_no_gathering_watch() -> None:
    hall = zone(capacity=10)
    assert (hall.capacity_mode, hall.gathering_threshold, hall.gathering_minutes) == (
        CapacityMode.ENFORCE,
        None,
        10,
    )


def test_fields_are_read() -> None:
    hall = zone(capacity_mode="alert", gathering_threshold=50, gathering_minutes=0)
    assert (hall.capacity_mode, hall.gathering_threshold, hall.gathering_minutes) == (
        CapacityMode.ALERT,
        50,
        0,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"capacity_mode": "maybe"}, "capacity_mode 'maybe' is not one of enforce, alert"),
        ({"gathering_threshold": 0}, "gathering_threshold must be a whole number of at least 1"),
        ({"gathering_threshold": "many"}, "gathering_threshold must be a whole number"),
        ({"gathering_minutes": -1}, "gathering_minutes must be a whole number of at least 0"),
        ({"gathering_minutes": 1441}, "gathering_minutes must be at most 1440"),
    ],
)
def test_bad_values_are_one_line_errors(fields, message) -> None:
    with pytest.raises(ManifestError, match=message) as caught:
        zone(**fields)
    assert str(caught.value).startswith("campus.yaml: zones[0] (id hall): ")
    assert "\n" not in str(caught.value)
