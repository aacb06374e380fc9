"""The decision for one card at one door (contract section 3): pure, no clock.

The checks run in the contract's order and the first that fails decides:
unknown_card, card_revoked, health_hold, checkin_required, not_authorized,
temperature_required,
temperature_invalid, fever, zone_full. Leaving (`out`) is decided on identity
alone (free egress: fire codes require that people can always leave, and a person
in home isolation must be able to go home): an unknown card is denied
unknown_card, a known card is admitted whatever its validity, health, grants,
temperature or the zone's capacity, and a person under a health hold leaving
raises isolation_breach (admitted, logged as a passage) so the guards and the
caretaker can follow up.

The zone's effective rules (its capacity mode, and the response levels in force,
issue #5) fit into that order without new reasons: barred visitors and labs open
only to named people are grant checks (not_authorized), temperature at every door
is the temperature_required check, scaled capacity is zone_full. A level that asks
for today's check-in at a zone (issue #15) adds the one new reason, checkin_required,
judged on the campus day of `now` against the index's check-ins, for students and staff
only (visitors are governed by their pass). A zone in capacity
mode `alert` admits at capacity and raises zone_full instead of denying. The level
rules govern entering only: a lockdown gets visitors and lab guests out, it does not
lock them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.domain.alerts import AlertKind
from gateway.domain.decisions import (
    DEFAULT_UNLOCK_MS,
    Decision,
    Reason,
    Verdict,
    terminal_message,
)
from gateway.domain.events import Direction
from gateway.domain.health import HealthStatus
from gateway.domain.levels import ZoneRules
from gateway.domain.roster import (
    CapacityMode,
    Card,
    Door,
    DoorDirection,
    Grant,
    Person,
    PersonKind,
    Zone,
)
from gateway.policy.roster_index import RosterIndex

# A reading outside these bounds (inclusive) is a bad measurement, not a body.
MIN_VALID_C = 34.0
MAX_VALID_C = 43.0

# Readings are compared at 0.01 C: a thermal frame's float32 37.3 is 37.29999923...,
# which must still be a fever at a 37.3 threshold.
_CELSIUS_DIGITS = 2

_ALERT_FOR: dict[Reason, AlertKind] = {
    Reason.UNKNOWN_CARD: AlertKind.OUTSIDER,
    Reason.CARD_REVOKED: AlertKind.CARD_REVOKED,
    Reason.HEALTH_HOLD: AlertKind.ISOLATION_BREACH,
    Reason.NOT_AUTHORIZED: AlertKind.UNAUTHORIZED,
    Reason.TEMPERATURE_INVALID: AlertKind.TEMPERATURE_INVALID,
    Reason.FEVER: AlertKind.FEVER,
    Reason.ZONE_FULL: AlertKind.ZONE_FULL,
}

# A fever reading paired with a card refused by one of these still raises `fever`.
_REFUSED_BEFORE_TEMPERATURE = frozenset(
    {
        Reason.UNKNOWN_CARD,
        Reason.CARD_REVOKED,
        Reason.HEALTH_HOLD,
        Reason.CHECKIN_REQUIRED,
        Reason.NOT_AUTHORIZED,
    }
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `decide` found, with what the pipeline must do about it."""

    verdict: Verdict
    reason: Reason
    zone: Zone
    direction: Direction
    person: Person | None = None
    card: Card | None = None
    celsius: float | None = None
    alerts: tuple[AlertKind, ...] = ()
    health_change: HealthStatus | None = None  # set the person's status to this

    @property
    def admitted(self) -> bool:
        return self.verdict is Verdict.ADMIT

    @property
    def message(self) -> str:
        """The terminal's text; never a health detail."""
        return terminal_message(
            self.verdict, self.reason, self.person.name if self.person else None
        )

    @property
    def unlock_ms(self) -> int:
        return DEFAULT_UNLOCK_MS if self.verdict is Verdict.ADMIT else 0


def to_decision(event_id: str, outcome: Outcome) -> Decision:
    """The command for the card event `event_id`."""
    return Decision(
        event_id=event_id,
        verdict=outcome.verdict,
        reason=outcome.reason,
        message=outcome.message,
        unlock_ms=outcome.unlock_ms,
    )


def resolve_direction(requested: Direction | None, door: Door) -> Direction:
    """The event's direction if it gave one, else the door's; a `both` door means in."""
    if requested is not None:
        return requested
    return Direction.OUT if door.direction is DoorDirection.OUT else Direction.IN


def grant_allows(grant: Grant, now: datetime, local: datetime) -> bool:
    """True when `grant` is valid at `now` and its schedule covers `local` (campus time)."""
    if grant.valid_from is not None and now < grant.valid_from:
        return False
    if grant.valid_until is not None and now >= grant.valid_until:
        return False
    return grant.schedule is None or grant.schedule.allows(local)


def _card_invalid(card: Card, person: Person, now: datetime) -> bool:
    return (
        card.revoked
        or (card.valid_until is not None and now >= card.valid_until)
        or not person.active
        or (person.valid_until is not None and now >= person.valid_until)
    )


def _authorized(
    index: RosterIndex,
    person: Person,
    zone: Zone,
    rules: ZoneRules,
    now: datetime,
    tz: ZoneInfo,
) -> bool:
    """May `person` enter `zone` at `now` under `rules`."""
    if rules.bar_visitors and person.kind is PersonKind.VISITOR:
        return False
    local = now.astimezone(tz)
    if rules.labs_named_only:  # only grants that name this person count
        grants = index.zone_grants(zone.id).by_person.get(person.id, ())
        return any(grant_allows(g, now, local) for g in grants)
    return any(grant_allows(g, now, local) for g in index.candidate_grants(person, zone.id))


def _needs_checkin(person: Person, rules: ZoneRules) -> bool:
    """Today's check-in is asked of students and staff only: visitors have no account to
    check in with and are governed by their pass."""
    return rules.require_checkin and person.kind is not PersonKind.VISITOR


def is_fever_reading(celsius: float, threshold_c: float) -> bool:
    """True when a reading is at or above the threshold (compared at 0.01 C)."""
    return round(celsius, _CELSIUS_DIGITS) >= round(threshold_c, _CELSIUS_DIGITS)


def is_valid_reading(celsius: float) -> bool:
    """True when a reading lies in 34.0-43.0 C inclusive; NaN and infinities are invalid."""
    return MIN_VALID_C <= round(celsius, _CELSIUS_DIGITS) <= MAX_VALID_C


def decide(
    index: RosterIndex,
    *,
    door: Door,
    card_uid: str,
    direction: Direction,
    now: datetime,
    tz: ZoneInfo,
    celsius: float | None,
    fever_threshold_c: float,
    occupancy: int,
    temperature_window_open: bool,
    rules: ZoneRules | None = None,
) -> Outcome:
    """Decide one card at `door` at `now` (timezone-aware; schedules read in `tz`).

    `celsius` is the paired reading, if any; `temperature_window_open` says whether
    a reading may still arrive (then a door that requires one answers `pending`);
    `occupancy` is the zone's current count; `rules` the zone's effective rules
    (default: the index's, under its response levels).

    Besides the deciding reason's alert, a valid fever reading paired with a card
    that an earlier check refused still raises a `fever` alert, so that it is not
    lost; only a `fever` decision changes the person's health status.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    zone = index.zone_of_door(door)
    if rules is None:
        rules = index.zone_rules(zone.id)
    measured = celsius if direction is Direction.IN else None
    over_capacity = False
    card = index.card(card_uid)
    person = None if card is None else index.person(card.person_id)
    held = False
    if card is None or person is None:
        verdict, reason = Verdict.DENY, Reason.UNKNOWN_CARD
        card = None
    elif direction is Direction.OUT:  # free egress: identity alone
        verdict, reason = Verdict.ADMIT, Reason.OK
        record = index.health(person.id)
        held = record is not None and record.holds(now)
    else:
        verdict, reason = _check(
            index,
            door=door,
            zone=zone,
            rules=rules,
            card=card,
            person=person,
            now=now,
            tz=tz,
            measured=measured,
            fever_threshold_c=fever_threshold_c,
            occupancy=occupancy,
            temperature_window_open=temperature_window_open,
        )
        over_capacity = (
            verdict is Verdict.ADMIT and rules.capacity is not None and occupancy >= rules.capacity
        )
    alerts = _alerts(verdict, reason, measured, fever_threshold_c)
    if held:  # a held person left: admitted, but the guards and the caretaker hear of it
        alerts = (AlertKind.ISOLATION_BREACH, *alerts)
    if over_capacity:  # capacity mode `alert`: admitted, but the guards hear of it
        alerts = (*alerts, AlertKind.ZONE_FULL)
    return Outcome(
        verdict=verdict,
        reason=reason,
        zone=zone,
        direction=direction,
        person=person,
        card=card,
        celsius=celsius,
        alerts=alerts,
        health_change=HealthStatus.FEVER_WATCH if reason is Reason.FEVER else None,
    )


def _check(
    index: RosterIndex,
    *,
    door: Door,
    zone: Zone,
    rules: ZoneRules,
    card: Card,
    person: Person,
    now: datetime,
    tz: ZoneInfo,
    measured: float | None,
    fever_threshold_c: float,
    occupancy: int,
    temperature_window_open: bool,
) -> tuple[Verdict, Reason]:
    """The checks of a known card entering, in contract order."""
    if _card_invalid(card, person, now):
        return Verdict.DENY, Reason.CARD_REVOKED
    record = index.health(person.id)
    if record is not None and record.holds(now):
        return Verdict.DENY, Reason.HEALTH_HOLD
    if _needs_checkin(person, rules) and not index.checked_in(person.id, now.astimezone(tz).date()):
        return Verdict.DENY, Reason.CHECKIN_REQUIRED
    if not _authorized(index, person, zone, rules, now, tz):
        return Verdict.DENY, Reason.NOT_AUTHORIZED
    if measured is None:
        if door.requires_temperature or rules.require_temperature:
            verdict = Verdict.PENDING if temperature_window_open else Verdict.DENY
            return verdict, Reason.TEMPERATURE_REQUIRED
    elif not is_valid_reading(measured):
        return Verdict.DENY, Reason.TEMPERATURE_INVALID
    elif is_fever_reading(measured, fever_threshold_c):
        return Verdict.DENY, Reason.FEVER
    if (
        rules.capacity is not None
        and occupancy >= rules.capacity
        and rules.capacity_mode is CapacityMode.ENFORCE
    ):
        return Verdict.DENY, Reason.ZONE_FULL
    return Verdict.ADMIT, Reason.OK


def _alerts(
    verdict: Verdict, reason: Reason, measured: float | None, fever_threshold_c: float
) -> tuple[AlertKind, ...]:
    kind = _ALERT_FOR.get(reason) if verdict is Verdict.DENY else None
    alerts: tuple[AlertKind, ...] = () if kind is None else (kind,)
    if (
        reason in _REFUSED_BEFORE_TEMPERATURE
        and measured is not None
        and is_valid_reading(measured)
        and is_fever_reading(measured, fever_threshold_c)
    ):
        alerts = (*alerts, AlertKind.FEVER)
    return alerts
