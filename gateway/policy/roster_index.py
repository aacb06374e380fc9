"""An in-memory index over a `CampusRoster` for the per-event path.

Built once per roster load; every lookup a decision makes is then a dict
access. Health changes are applied by copy-on-write of the health map only, so
a fever decision takes effect on the next event without a rebuild, and an
index already handed to a decision in progress never changes under it. Daily
check-ins (issue #15) are applied the same way, to a map of each person's latest
check-in day.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from gateway.domain.campus import CampusRoster
from gateway.domain.health import HealthRecord
from gateway.domain.levels import ActiveLevels, ResponseLevel, ZoneRules, zone_rules
from gateway.domain.roster import Card, Device, Door, Grant, OrgUnit, Person, PersonKind, Zone


class RosterError(ValueError):
    """A roster that cannot be indexed: a dangling door or device, or a contradiction."""


@dataclass(frozen=True, slots=True)
class ZoneGrants:
    """The grants of one zone, keyed by what their subject names."""

    by_person: dict[str, tuple[Grant, ...]] = field(default_factory=dict)
    by_org_unit: dict[str, tuple[Grant, ...]] = field(default_factory=dict)
    by_kind: dict[PersonKind, tuple[Grant, ...]] = field(default_factory=dict)


_NO_GRANTS = ZoneGrants()
_NO_ZONE_RULES = ZoneRules()


class RosterIndex:
    """O(1) lookups by card uid, person, device, door and zone; grants per zone."""

    __slots__ = (
        "_ancestors",
        "_cards",
        "_checkins",
        "_devices",
        "_doors",
        "_grants",
        "_health",
        "_org_units",
        "_people",
        "_rules",
        "_zones",
    )

    def __init__(
        self,
        *,
        cards: dict[str, Card],
        people: dict[str, Person],
        devices: dict[str, Device],
        doors: dict[str, Door],
        zones: dict[str, Zone],
        org_units: dict[str, OrgUnit],
        ancestors: dict[str, tuple[str, ...]],
        grants: dict[str, ZoneGrants],
        health: dict[str, HealthRecord],
        rules: dict[str, ZoneRules] | None = None,
        checkins: dict[str, date] | None = None,
    ) -> None:
        # Use `build`; this constructor trusts its arguments.
        self._cards = cards
        self._people = people
        self._devices = devices
        self._doors = doors
        self._zones = zones
        self._org_units = org_units
        self._ancestors = ancestors
        self._grants = grants
        self._health = health
        self._rules = rules if rules is not None else _zone_rules(zones, (), ActiveLevels())
        self._checkins = checkins if checkins is not None else {}

    # -- construction -------------------------------------------------------

    @classmethod
    def build(cls, roster: CampusRoster) -> RosterIndex:
        """Index a roster; raise RosterError for a door without its zone, a device
        without its door, a malformed grant subject or a card uid held twice."""
        zones = {z.id: z for z in roster.zones}
        doors = {d.id: d for d in roster.doors}
        for door in roster.doors:
            if door.zone_id not in zones:
                raise RosterError(f"door {door.id!r} names unknown zone {door.zone_id!r}")
        devices = {d.id: d for d in roster.devices}
        for device in roster.devices:
            if device.door_id not in doors:
                raise RosterError(f"device {device.id!r} names unknown door {device.door_id!r}")
        cards: dict[str, Card] = {}
        for card in roster.cards:
            uid = card.uid.upper()
            held = cards.get(uid)
            if held is not None and held.person_id != card.person_id:
                raise RosterError(
                    f"card {uid} is held by both {held.person_id!r} and {card.person_id!r}"
                )
            cards[uid] = card
        org_units = {u.id: u for u in roster.org_units}
        return cls(
            cards=cards,
            people={p.id: p for p in roster.people},
            devices=devices,
            doors=doors,
            zones=zones,
            org_units=org_units,
            ancestors=_ancestor_chains(org_units),
            grants=_index_grants(roster.grants),
            health={h.person_id: h for h in roster.health},
            rules=_zone_rules(zones, roster.levels, roster.active_levels),
            checkins=_latest_days(roster.checkins),
        )

    def with_health(self, record: HealthRecord) -> RosterIndex:
        """A new index with `record` as its person's current status; self is unchanged."""
        health = dict(self._health)
        health[record.person_id] = record
        return self._with_health_map(health)

    def replace_health(self, records: Iterable[HealthRecord]) -> RosterIndex:
        """A new index whose health statuses are exactly `records` (a health-only reload)."""
        return self._with_health_map({h.person_id: h for h in records})

    def with_levels(
        self, definitions: Iterable[ResponseLevel], active: ActiveLevels
    ) -> RosterIndex:
        """A new index under these response levels (a levels-only reload); self is unchanged."""
        return self._copy(self._health, _zone_rules(self._zones, definitions, active))

    def with_checkins(self, checkins: Iterable[tuple[str, date]]) -> RosterIndex:
        """A new index knowing these (person, campus day) check-ins; self is unchanged.

        A day older than the one already known for a person is ignored (notifications
        may arrive out of order)."""
        merged = dict(self._checkins)
        for person_id, day in checkins:
            known = merged.get(person_id)
            if known is None or day > known:
                merged[person_id] = day
        return self._copy(self._health, self._rules, merged)

    def checked_in(self, person_id: str, day: date) -> bool:
        """True when the person's latest known check-in is for campus day `day`."""
        return self._checkins.get(person_id) == day

    def _with_health_map(self, health: dict[str, HealthRecord]) -> RosterIndex:
        return self._copy(health, self._rules)

    def _copy(
        self,
        health: dict[str, HealthRecord],
        rules: dict[str, ZoneRules],
        checkins: dict[str, date] | None = None,
    ) -> RosterIndex:
        return RosterIndex(
            cards=self._cards,
            people=self._people,
            devices=self._devices,
            doors=self._doors,
            zones=self._zones,
            org_units=self._org_units,
            ancestors=self._ancestors,
            grants=self._grants,
            health=health,
            rules=rules,
            checkins=self._checkins if checkins is None else checkins,
        )

    # -- lookups ------------------------------------------------------------

    def card(self, uid: str) -> Card | None:
        """The card with this uid (any case), or None."""
        return self._cards.get(uid) or self._cards.get(uid.upper())

    def person(self, person_id: str) -> Person | None:
        return self._people.get(person_id)

    def person_of_card(self, uid: str) -> Person | None:
        """The holder of the card with this uid, or None (no check of validity)."""
        card = self.card(uid)
        return None if card is None else self._people.get(card.person_id)

    def device(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def devices(self) -> Iterator[Device]:
        """Every registered device."""
        return iter(self._devices.values())

    def door(self, door_id: str) -> Door | None:
        return self._doors.get(door_id)

    def zone(self, zone_id: str) -> Zone | None:
        return self._zones.get(zone_id)

    def org_unit(self, org_unit_id: str) -> OrgUnit | None:
        return self._org_units.get(org_unit_id)

    def door_of_device(self, device_id: str) -> Door | None:
        """The door a registered device sits at, or None for an unknown device."""
        device = self._devices.get(device_id)
        return None if device is None else self._doors[device.door_id]

    def zone_of_door(self, door: Door) -> Zone:
        """The zone behind a door; KeyError for a door that is not from this roster."""
        try:
            return self._zones[door.zone_id]
        except KeyError:
            raise KeyError(f"door {door.id!r} names unknown zone {door.zone_id!r}") from None

    def zone_rules(self, zone_id: str) -> ZoneRules:
        """The zone's effective rules under the active response levels."""
        return self._rules.get(zone_id) or _NO_ZONE_RULES

    def zones(self) -> Iterator[Zone]:
        return iter(self._zones.values())

    def changes_since(self, old: RosterIndex) -> tuple[set[str], set[str]] | None:
        """(people whose cards may decide differently, zones whose grants, settings or rules
        differ) between `old` and self; None when the org-unit tree changed (anything may)."""
        if self._ancestors != old._ancestors:
            return None
        people = _changed_keys(self._people, old._people) | self.health_changed(old)
        for uid in _changed_keys(self._cards, old._cards):
            for card in (self._cards.get(uid), old._cards.get(uid)):
                if card is not None:
                    people.add(card.person_id)
        zones = (
            _changed_keys(self._grants, old._grants)
            | _changed_keys(self._zones, old._zones)
            | _changed_keys(self._rules, old._rules)
        )
        return people, zones

    def health_changed(self, other: RosterIndex) -> set[str]:
        """The people whose health record differs between self and `other`."""
        mine, theirs = self._health, other._health
        if mine is theirs:
            return set()
        changed = {p for p, record in mine.items() if theirs.get(p) != record}
        return changed | {p for p in theirs if p not in mine}

    def cards(self) -> Iterator[Card]:
        """Every card, valid or not (the door allowlists walk them)."""
        return iter(self._cards.values())

    def health(self, person_id: str) -> HealthRecord | None:
        """The person's current health record, or None when none was ever set."""
        return self._health.get(person_id)

    def ancestors(self, org_unit_id: str) -> tuple[str, ...]:
        """The unit itself and every unit above it, nearest first."""
        return self._ancestors.get(org_unit_id, (org_unit_id,))

    def zone_grants(self, zone_id: str) -> ZoneGrants:
        return self._grants.get(zone_id, _NO_GRANTS)

    def candidate_grants(self, person: Person, zone_id: str) -> Iterator[Grant]:
        """Grants of the zone whose subject covers the person, not yet judged by time.

        An org unit's grants are for its members: a visitor (a host's guest on a pass,
        filed in the host's unit) is let in only by grants naming them, or visitors as a
        kind, so a grant to the whole unit never opens a zone to its guests.
        """
        grants = self._grants.get(zone_id)
        if grants is None:
            return
        yield from grants.by_person.get(person.id, ())
        unit_member = person.kind is not PersonKind.VISITOR
        if grants.by_org_unit and person.org_unit_id is not None and unit_member:
            for unit in self.ancestors(person.org_unit_id):
                yield from grants.by_org_unit.get(unit, ())
        yield from grants.by_kind.get(person.kind, ())

    def __repr__(self) -> str:
        return (
            f"RosterIndex(people={len(self._people)}, cards={len(self._cards)}, "
            f"doors={len(self._doors)}, zones={len(self._zones)}, "
            f"grant_zones={len(self._grants)}, health={len(self._health)})"
        )


def _changed_keys(new: dict[Any, Any], old: dict[Any, Any]) -> set[Any]:
    """Keys whose values differ between two maps, or that only one has."""
    if new is old:
        return set()
    changed = {key for key, value in new.items() if old.get(key) != value}
    changed.update(key for key in old if key not in new)
    return changed


def _latest_days(checkins: Iterable[tuple[str, date]]) -> dict[str, date]:
    latest: dict[str, date] = {}
    for person_id, day in checkins:
        known = latest.get(person_id)
        if known is None or day > known:
            latest[person_id] = day
    return latest


def _zone_rules(
    zones: dict[str, Zone], definitions: Iterable[ResponseLevel], active: ActiveLevels
) -> dict[str, ZoneRules]:
    by_name = {level.name: level for level in definitions}
    return {zone_id: zone_rules(zone, by_name, active) for zone_id, zone in zones.items()}


def _ancestor_chains(org_units: dict[str, OrgUnit]) -> dict[str, tuple[str, ...]]:
    """Each unit's chain up to its root; a cycle in the parents ends the chain."""
    chains: dict[str, tuple[str, ...]] = {}
    for unit_id in org_units:
        chain = [unit_id]
        seen = {unit_id}
        parent = org_units[unit_id].parent_id
        while parent is not None and parent not in seen:
            known = chains.get(parent)
            if known is not None and not seen.intersection(known):
                chain.extend(known)
                break
            chain.append(parent)
            seen.add(parent)
            above = org_units.get(parent)
            parent = None if above is None else above.parent_id
        chains[unit_id] = tuple(chain)
    return chains


def _index_grants(grants: Iterable[Grant]) -> dict[str, ZoneGrants]:
    by_zone: dict[
        str,
        tuple[dict[str, list[Grant]], dict[str, list[Grant]], dict[PersonKind, list[Grant]]],
    ] = {}
    for grant in grants:
        person_map, unit_map, kind_map = by_zone.setdefault(grant.zone_id, ({}, {}, {}))
        subject = grant.subject
        named = [subject.person_id, subject.org_unit_id, subject.kind]
        if sum(x is not None for x in named) != 1:
            raise RosterError(
                f"a grant for zone {grant.zone_id!r} must name exactly one of "
                f"person, org_unit or kind: {subject!r}"
            )
        if subject.person_id is not None:
            person_map.setdefault(subject.person_id, []).append(grant)
        elif subject.org_unit_id is not None:
            unit_map.setdefault(subject.org_unit_id, []).append(grant)
        elif subject.kind is not None:  # always, by the check above
            kind_map.setdefault(subject.kind, []).append(grant)
    return {
        zone_id: ZoneGrants(
            by_person={k: tuple(v) for k, v in person_map.items()},
            by_org_unit={k: tuple(v) for k, v in unit_map.items()},
            by_kind={k: tuple(v) for k, v in kind_map.items()},
        )
        for zone_id, (person_map, unit_map, kind_map) in by_zone.items()
    }
