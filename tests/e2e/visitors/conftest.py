"""Visitor passes end to end: a fresh database per test, a gateway signing with a key
the API reads too, simulated terminals, the operator API and a host signed in as a
person (tests/campus_fixtures.py)."""

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
from visitors_campus import CAMPUS, DEVICES, OPERATORS


@pytest.fixture
def campus() -> Campus:
    return Campus("visitors", CAMPUS, DEVICES, operators=OPERATORS, signed=True, host="T1")
