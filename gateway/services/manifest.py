"""Reading a campus manifest (YAML or JSON) or a people CSV into domain objects.

This module checks each row on its own (fields, types, enum values, dates,
card UIDs, schedules) and duplicates inside the file; references between rows
and to the database are checked by the importer. Every problem is a
ManifestError whose message is one line naming the file and the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import yaml

from gateway.domain.cards import CardUidError, normalize_card_uid
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.privacy import (
    ContactError,
    PersonContact,
    normalize_id_number,
    normalize_phone,
)
from gateway.domain.roster import (
    ZONE_FIELDS,
    CapacityMode,
    Card,
    Device,
    DeviceKind,
    Door,
    DoorDirection,
    Grant,
    GrantSubject,
    OrgUnit,
    Person,
    PersonKind,
    SerialProtocol,
    Transport,
    Zone,
    ZoneKind,
)
from gateway.domain.schedule import ScheduleError, parse_schedule
from gateway.services.fast_yaml import load_yaml

SECTIONS = ("org_units", "zones", "doors", "devices", "people", "grants", "health")
CSV_HEADER = ("id", "kind", "name", "org_unit", "card_uid")
CSV_CONTACT_COLUMNS = ("phone", "id_number")  # optional, after the contract's header
SERIAL_PROTOCOLS = tuple(p.value for p in SerialProtocol)

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


class ManifestError(ValueError):
    """A manifest that cannot be imported; the message names the file and the row."""


@dataclass(frozen=True, slots=True)
class Labeled(Generic[T]):
    """A parsed row and where it came from, e.g. ``people[12] (id 2020110013)``."""

    label: str
    item: T


@dataclass(slots=True)
class Manifest:
    """What a file asks to upsert, in file order."""

    source: str
    now: datetime
    org_units: list[Labeled[OrgUnit]] = field(default_factory=list)
    zones: list[Labeled[Zone]] = field(default_factory=list)
    doors: list[Labeled[Door]] = field(default_factory=list)
    devices: list[Labeled[Device]] = field(default_factory=list)
    people: list[Labeled[Person]] = field(default_factory=list)
    cards: list[Labeled[Card]] = field(default_factory=list)
    grants: list[Labeled[Grant]] = field(default_factory=list)
    health: list[Labeled[HealthRecord]] = field(default_factory=list)
    # Phones and ID numbers given for people (apart from Person: the roster never holds them).
    contacts: list[Labeled[PersonContact]] = field(default_factory=list)
    # A people CSV names who people are, not whether they may enter: importing one must
    # not re-activate a deactivated person or un-revoke a card.
    identity_only: bool = False


class _Row:
    """One mapping of the file, with typed accessors that raise ManifestError."""

    def __init__(self, source: str, label: str, data: object, allowed: tuple[str, ...]) -> None:
        self.source = source
        self.label = label
        if not isinstance(data, Mapping):
            self.fail(f"expected a mapping of fields, got {_kind(data)}")
        self.data: Mapping[str, Any] = data
        unknown = [k for k in data if k not in allowed]
        if unknown:
            self.fail(f"unknown field {unknown[0]!r}; expected some of {', '.join(allowed)}")

    def fail(self, message: str) -> Any:
        raise ManifestError(f"{self.source}: {self.label}: {message}")

    def ident(self, name: str, *, required: bool = True) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            return self.fail(f"missing {name}") if required else None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.fail(f"{name} must be a text id, got {_kind(value)}")
        text = str(value).strip()
        if not text:
            self.fail(f"{name} must not be blank")
        return text

    def text(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            return self.fail(f"missing {name}") if required else default
        if not isinstance(value, str):
            self.fail(f"{name} must be text, got {_kind(value)}")
        return value.strip()

    def choice(self, name: str, enum: type[E], default: E | None = None) -> E:
        value = self.data.get(name)
        if value is None or value == "":
            return default if default is not None else self.fail(f"missing {name}")
        try:
            return enum(value)
        except ValueError:
            options = ", ".join(m.value for m in enum)
            return self.fail(f"{name} {value!r} is not one of {options}")

    def flag(self, name: str, default: bool) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(f"{name} must be true or false, got {value!r}")
        return value

    def count(self, name: str, *, minimum: int) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(f"{name} must be a whole number of at least {minimum}, got {value!r}")
        return value

    def when(
        self, name: str, tz: ZoneInfo, data: Mapping[str, Any] | None = None
    ) -> datetime | None:
        value = (self.data if data is None else data).get(name)
        if value is None or value == "":
            return None
        try:
            return to_datetime(value, tz)
        except ValueError as exc:
            return self.fail(f"{name}: {exc}")


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def to_datetime(value: object, tz: ZoneInfo) -> datetime:
    """A date means the start of that day in `tz`; a time without offset is read in `tz`."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or date-time") from None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=tz)
    raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or date-time")


def read_manifest(path: Path, tz: ZoneInfo, now: datetime | None = None) -> Manifest:
    """Read and check a YAML/JSON manifest or a people CSV (chosen by the file's suffix).

    `now` (default: the current time) is the `since` of health rows that give none.
    """
    from gateway.services.people_file import PEOPLE_SUFFIXES, people_rows

    source = path.name
    suffix = path.suffix.lower()
    if suffix in PEOPLE_SUFFIXES:
        return parse_people_rows(people_rows(path, source), source, tz)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{source}: cannot read the file: {exc}") from None
    if suffix == ".json":
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{source}: not valid JSON: {exc}") from None
        except RecursionError:
            raise ManifestError(f"{source}: not valid JSON: nested too deeply") from None
    else:
        try:
            document = load_yaml(raw)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise ManifestError(f"{source}: not valid YAML{at}: {problem}") from None
        except (ValueError, RecursionError) as exc:  # e.g. a date such as 2026-13-45
            raise ManifestError(f"{source}: not valid YAML: {exc}") from None
    return parse_manifest(document, source, tz, now)


def parse_manifest(
    document: object, source: str, tz: ZoneInfo, now: datetime | None = None
) -> Manifest:
    """Check a loaded YAML/JSON document and turn it into a Manifest."""
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ManifestError(f"{source}: expected a mapping of sections, got {_kind(document)}")
    unknown = [k for k in document if k not in SECTIONS]
    if unknown:
        raise ManifestError(
            f"{source}: unknown section {unknown[0]!r}; expected some of {', '.join(SECTIONS)}"
        )
    manifest = Manifest(source, now=now or datetime.now(tz))
    for section in SECTIONS:
        rows = document.get(section)
        if rows is None:
            continue
        if not isinstance(rows, list):
            raise ManifestError(f"{source}: {section} must be a list, got {_kind(rows)}")
        parse_row = _PARSERS[section]
        for index, data in enumerate(rows):
            parse_row(manifest, _label(section, index, data), data, tz)
    _check_duplicates(manifest)
    return manifest


def _label(section: str, index: int, data: object) -> str:
    key = "person" if section == "health" else "id"
    ident = data.get(key) if isinstance(data, Mapping) else None
    return (
        f"{section}[{index}] ({key} {ident})" if ident not in (None, "") else f"{section}[{index}]"
    )


def _org_unit(m: Manifest, label: str, data: object, tz: ZoneInfo) -> None:
    row = _Row(m.source, label, data, ("id", "name", "parent"))
    unit = OrgUnit(
        row.ident("id"), row.text("name", required=True), row.ident("parent", required=False)
    )
    if unit.parent_id == unit.id:
        row.fail("an org unit cannot be its own parent")
    m.org_units.append(Labeled(label, unit))


def _zone(m: Manifest, label: str, data: object, tz: ZoneInfo) -> None:
    row = _Row(m.source, label, data, ZONE_FIELDS)
    minutes = row.count("gathering_minutes", minimum=0)
    if minutes is not None and minutes > 1440:
        row.fail(f"gathering_minutes must be at most 1440 (a day), got {minutes}")
    zone = Zone(
        row.ident("id"),
        row.text("name", required=True),
        row.choice("kind", ZoneKind),
        row.count("capacity", minimum=0),
        row.choice("capacity_mode", CapacityMode, CapacityMode.ENFORCE),
        row.count("gathering_threshold", minimum=1),
        10 if minutes is None else minutes,
    )
    m.zones.append(Labeled(label, zone))


def _door(m: Manifest, label: str, data: object, tz: ZoneInfo) -> None:
    row = _Row(m.source, label, data, ("id", "name", "zone", "direction", "requires_temperature"))
    door = Door(
        row.ident("id"),
        row.ident("zone"),
        row.choice("direction", DoorDirection, DoorDirection.BOTH),
        row.flag("requires_temperature", False),
        row.text("name"),
    )
    m.doors.append(Labeled(label, door))


def _device(m: Manifest, label: str, data: object, tz: ZoneInfo) -> None:
    fields = ("id", "door", "kind", "transport", "port", "protocol", "baud")
    row = _Row(m.source, label, data, fields)
    transport = row.choice("transport", Transport, Transport.MQTT)
    port, protocol = row.text("port"), row.text("protocol")
    if protocol is not None and protocol not in SERIAL_PROTOCOLS:
        row.fail(f"protocol {protocol!r} is not one of {', '.join(SERIAL_PROTOCOLS)}")
    if transport is Transport.SERIAL and (port is None or protocol is None):
        row.fail("a serial device needs a port and a protocol")
    device = Device(
        row.ident("id"),
        row.ident("door"),
        row.choice("kind", DeviceKind),
        transport,
        port,
        protocol,
        row.count("baud", minimum=1),
    )
    m.devices.append(Labeled(label, device))


def _person(m: Manifest, label: str, data: object, tz: ZoneInfo) -> None:
    fields = ("id", "kind", "name", "org_unit", "active", "valid_until", "cards")
    row = _Row(m.source, label, data, (*fields, *CSV_CONTACT_COLUMNS))
    person = Person(
        row.ident("id"),
        row.choice("kind", PersonKind),
        row.text("name", required=True),
        row.ident("org_unit", required=False),
        row.flag("active", True),
        row.when("valid_until", tz),
    )
    m.people.append(Labeled(label, person))
    _contact(m, row, person.id)
    cards = row.data.get("cards") or []
    if not isinstance(cards, list):
        row.fail(f"cards must be a list, got {_kind(cards)}")
    for entry in cards:
        m.cards.append(Labeled(label, _card(row, entry, person.id, tz)))


def _contact(m: Manifest, row: _Row, person_id: str) -> None:
    """The person's optional phone and id_number, normalized; nothing when neither is given."""
    values: dict[str, str | None] = {}
    for name, normalize in (("phone", normalize_phone), ("id_number", normalize_id_number)):
        raw = row.data.get(name)
        if raw is not None and not isinstance(raw, str):
            # An unquoted number loses leading zeros (or reads as octal) in YAML.
            row.fail(f"{name} must be quoted text, got {_kind(raw)}")
        text = row.text(name)
        try:
            values[name] = normalize(text) if text else None
        except ContactError as exc:
            row.fail(str(exc))
    if values["phone"] is not None or values["id_number"] is not None:
        m.contacts.append(Labeled(row.label, PersonContact(person_id, **values)))


def _card(row: _Row, entry: object, person_id: str, tz: ZoneInfo) -> Card:
    if isinstance(entry, Mapping):
        unknown = [k for k in entry if k not in ("uid", "revoked", "valid_until")]
        if unknown:
            row.fail(
                f"unknown card field {unknown[0]!r}; expected some of uid, revoked, valid_until"
            )
        uid, revoked = entry.get("uid"), entry.get("revoked", False)
        if not isinstance(revoked, bool):
            row.fail(f"card revoked must be true or false, got {revoked!r}")
        valid_until = row.when("valid_until", tz, entry)
    else:
        uid, revoked, valid_until = entry, False, None
    if not isinstance(uid, str):
        row.fail(f"card_uid {uid!r} must be quoted text (hex of 4, 5, 7 or 10 bytes)")
    try:
        canonical = normalize_card_uid(uid)
    except CardUidError as exc:
        return row.fail(str(exc))
    return Card(canonical, person_id, revoked, valid_until)


def _grant(m: Manifest, label: str, data: object, tz: ZoneInfo) -> None:
    row = _Row(m.source, label, data, ("subject", "zone", "schedule", "valid_from", "valid_until"))
    subject = row.data.get("subject")
    if not isinstance(subject, Mapping):
        row.fail("subject must be one of {person: ID}, {org_unit: ID} or {kind: KIND}")
    sub = _Row(m.source, label, subject, ("person", "org_unit", "kind"))
    if sum(subject.get(k) not in (None, "") for k in ("person", "org_unit", "kind")) != 1:
        row.fail("subject must name exactly one of person, org_unit or kind")
    kind = sub.choice("kind", PersonKind) if subject.get("kind") not in (None, "") else None
    grant_subject = GrantSubject(
        sub.ident("person", required=False), sub.ident("org_unit", required=False), kind
    )
    zone_id = row.ident("zone")
    row.label = f"{label} ({grant_subject.key()} -> {zone_id})"
    schedule_text = row.text("schedule")
    try:
        schedule = parse_schedule(schedule_text) if schedule_text else None
    except ScheduleError as exc:
        row.fail(str(exc))
    valid_from, valid_until = row.when("valid_from", tz), row.when("valid_until", tz)
    if valid_from and valid_until and valid_until <= valid_from:
        row.fail("valid_until must be after valid_from")
    grant = Grant(grant_subject, zone_id, schedule, valid_from, valid_until)
    m.grants.append(Labeled(row.label, grant))


def _health(m: Manifest, label: str, data: object, tz: ZoneInfo) -> None:
    fields = ("person", "status", "since", "until", "reason", "caretaker")
    row = _Row(m.source, label, data, fields)
    since = row.when("since", tz)
    until = row.when("until", tz)
    if since and until and until <= since:
        row.fail("until must be after since")
    status = row.choice("status", HealthStatus)
    if until and status in (HealthStatus.CLEAR, HealthStatus.RECOVERED):
        row.fail(f"{status.value} takes no until (a status returns to clear at its until)")
    record = HealthRecord(
        row.ident("person"),
        status,
        since or m.now,
        until,
        row.text("reason", default="") or "",
        row.ident("caretaker", required=False),
    )
    m.health.append(Labeled(label, record))


_PARSERS: dict[str, Callable[[Manifest, str, object, ZoneInfo], None]] = {
    "org_units": _org_unit,
    "zones": _zone,
    "doors": _door,
    "devices": _device,
    "people": _person,
    "grants": _grant,
    "health": _health,
}


def _check_duplicates(m: Manifest) -> None:
    def unique(rows: list[Labeled[Any]], key: Callable[[Any], str], what: str) -> None:
        seen: dict[str, str] = {}
        for row in rows:
            k = key(row.item)
            if k in seen:
                raise ManifestError(
                    f"{m.source}: {row.label}: {what} {k} also appears at {seen[k]}"
                )
            seen[k] = row.label

    unique(m.org_units, lambda u: u.id, "org unit")
    unique(m.zones, lambda z: z.id, "zone")
    unique(m.doors, lambda d: d.id, "door")
    unique(m.devices, lambda d: d.id, "device")
    unique(m.people, lambda p: p.id, "person")
    unique(m.cards, lambda c: c.uid, "card")
    unique(m.grants, lambda g: f"{g.subject.key()} -> {g.zone_id}", "grant")
    unique(m.health, lambda h: h.person_id, "health status of person")


def parse_people_rows(reader: Iterator[list[str]], source: str, tz: ZoneInfo) -> Manifest:
    """People rows (of a CSV or a workbook's first sheet), the header first."""
    header = next(reader, None)
    columns = _csv_columns(header)
    if columns is None:
        raise ManifestError(
            f"{source}: line 1: the header must be {','.join(CSV_HEADER)}"
            f" (optionally followed by {','.join(CSV_CONTACT_COLUMNS)})"
        )
    manifest = Manifest(source, now=datetime.now(tz), identity_only=True)
    people: dict[str, Labeled[Person]] = {}
    contacts: dict[str, Labeled[PersonContact]] = {}
    for line, values in enumerate(reader, start=2):
        if not values or all(not v.strip() for v in values):
            continue
        label = f"line {line}" + (f" (id {values[0].strip()})" if values[0].strip() else "")
        if len(values) != len(columns):
            raise ManifestError(
                f"{source}: {label}: expected {len(columns)} columns, got {len(values)}"
            )
        data = {k: v.strip() for k, v in zip(columns, values, strict=True)}
        row = _Row(source, label, data, columns)
        person = Person(
            row.ident("id"),
            row.choice("kind", PersonKind),
            row.text("name", required=True),
            row.ident("org_unit", required=False),
        )
        earlier = people.get(person.id)
        if earlier is None:
            people[person.id] = Labeled(label, person)
            manifest.people.append(people[person.id])
        elif earlier.item != person:
            row.fail(f"kind, name or org_unit differ from {earlier.label} of the same person")
        if data["card_uid"]:
            manifest.cards.append(Labeled(label, _card(row, data["card_uid"], person.id, tz)))
        _merge_csv_contact(row, person.id, contacts)
    manifest.contacts.extend(contacts.values())
    _check_duplicates(manifest)
    return manifest


def _csv_columns(header: list[str] | None) -> tuple[str, ...] | None:
    """The file's columns: the contract's header, then any of the contact columns once."""
    if header is None:
        return None
    names = tuple(h.strip().lower() for h in header)
    extra = names[len(CSV_HEADER) :]
    if names[: len(CSV_HEADER)] != CSV_HEADER or len(set(extra)) != len(extra):
        return None
    return names if all(c in CSV_CONTACT_COLUMNS for c in extra) else None


def _merge_csv_contact(row: _Row, person_id: str, seen: dict[str, Labeled[PersonContact]]) -> None:
    """Fold one row's phone and id_number into the person's; rows must not disagree."""
    scratch = Manifest(row.source, now=datetime.min)
    _contact(scratch, row, person_id)
    if not scratch.contacts:
        return
    given = scratch.contacts[0].item
    earlier = seen.get(person_id)
    if earlier is None:
        seen[person_id] = scratch.contacts[0]
        return
    merged = earlier.item
    for name in CSV_CONTACT_COLUMNS:
        old, new = getattr(merged, name), getattr(given, name)
        if old is not None and new is not None and old != new:
            row.fail(f"{name} differs from {earlier.label} of the same person")
        if old is None and new is not None:
            merged = replace(merged, **{name: new})
    seen[person_id] = Labeled(earlier.label, merged)
