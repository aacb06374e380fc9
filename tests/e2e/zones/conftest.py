"""A small campus for occupancy, gatherings and response levels: a fresh database per
test, a gateway on the private broker, simulated terminals and the operator API
(tests/campus_fixtures.py)."""

from __future__ import annotations

import pytest
from campus_fixtures import (  # noqa: F401  (fixtures of tests/campus_fixtures.py)
    Campus,
    alerts,
    api,
    campus_dsn,
    fleet,
    gateway,
    key_file,
    prefix,
    start_gateway,
)
from zones_campus import CAMPUS, DEVICES, ROLES


@pytest.fixture
def campus() -> Campus:
    return Campus("zones", CAMPUS, DEVICES, operators={role: (role, None) for role in ROLES})
