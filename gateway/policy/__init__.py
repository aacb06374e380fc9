"""Pure decision logic: the order of checks, grants, pairing, capacity; no I/O, no clock."""

from gateway.policy.decide import (
    MAX_VALID_C,
    MIN_VALID_C,
    Outcome,
    decide,
    grant_allows,
    is_fever_reading,
    is_valid_reading,
    resolve_direction,
    to_decision,
)
from gateway.policy.occupancy import Occupancy
from gateway.policy.pairing import Expired, ExpiredReading, PairingBook
from gateway.policy.roster_index import RosterError, RosterIndex, ZoneGrants

__all__ = [
    "MAX_VALID_C",
    "MIN_VALID_C",
    "Expired",
    "ExpiredReading",
    "Occupancy",
    "Outcome",
    "PairingBook",
    "RosterError",
    "RosterIndex",
    "ZoneGrants",
    "decide",
    "grant_allows",
    "is_fever_reading",
    "is_valid_reading",
    "resolve_direction",
    "to_decision",
]
