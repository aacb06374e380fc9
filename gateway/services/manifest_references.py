"""A manifest's references, checked before anything is written: every row must name
things the file or the database has, org units must form a tree, a card must not
change hands, and a caretaker must be staff."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain

from gateway.domain.roster import PersonKind
from gateway.services.manifest import Manifest, ManifestError
from gateway.store.roster_write import RosterKeys

Problem = tuple[str, str]  # (row label, what is wrong)


@dataclass(frozen=True, slots=True)
class _Known:
    """The ids the file and the database have between them (the file's rows win)."""

    parents: dict[str, str | None]  # org unit -> parent
    zones: frozenset[str]
    doors: frozenset[str]
    kinds: dict[str, str]  # person -> kind
    card_holders: dict[str, str]  # stored card uid -> person

    @classmethod
    def of(cls, m: Manifest, keys: RosterKeys) -> _Known:
        parents = dict(keys.org_unit_parents)
        parents.update((r.item.id, r.item.parent_id) for r in m.org_units)
        kinds = dict(keys.people)
        kinds.update((r.item.id, r.item.kind.value) for r in m.people)
        return cls(
            parents=parents,
            zones=keys.zones | {r.item.id for r in m.zones},
            doors=keys.doors | {r.item.id for r in m.doors},
            kinds=kinds,
            card_holders=keys.card_holders,
        )


def check_references(m: Manifest, keys: RosterKeys) -> None:
    """Raise ManifestError for the first row naming something neither file nor database has."""
    known = _Known.of(m, keys)
    _raise_first(m, _unknown_parents(m, known))
    _check_cycles(m, known.parents)
    _raise_first(m, chain.from_iterable(check(m, known) for check in ROW_CHECKS))


def _raise_first(m: Manifest, problems: Iterator[Problem]) -> None:
    first = next(problems, None)
    if first is not None:
        label, message = first
        raise ManifestError(f"{m.source}: {label}: {message}")


def _unknown_parents(m: Manifest, known: _Known) -> Iterator[Problem]:
    for row in m.org_units:
        if row.item.parent_id is not None and row.item.parent_id not in known.parents:
            yield row.label, f"unknown parent org unit {row.item.parent_id!r}"


def _check_cycles(m: Manifest, parents: dict[str, str | None]) -> None:
    """Org units must form a tree once the file's parents replace the stored ones."""
    settled: set[str] = set()
    for row in m.org_units:
        path: list[str] = []
        on_path: set[str] = set()
        unit: str | None = row.item.id
        while unit is not None and unit not in settled:
            if unit in on_path:
                cycle = " -> ".join([*path[path.index(unit) :], unit])
                raise ManifestError(f"{m.source}: {row.label}: org units form a cycle: {cycle}")
            path.append(unit)
            on_path.add(unit)
            unit = parents.get(unit)
        settled.update(path)


def _doors(m: Manifest, known: _Known) -> Iterator[Problem]:
    for row in m.doors:
        if row.item.zone_id not in known.zones:
            yield row.label, f"unknown zone {row.item.zone_id!r}"


def _devices(m: Manifest, known: _Known) -> Iterator[Problem]:
    for row in m.devices:
        if row.item.door_id not in known.doors:
            yield row.label, f"unknown door {row.item.door_id!r}"


def _people(m: Manifest, known: _Known) -> Iterator[Problem]:
    for row in m.people:
        if row.item.org_unit_id is not None and row.item.org_unit_id not in known.parents:
            yield row.label, f"unknown org unit {row.item.org_unit_id!r}"


def _cards(m: Manifest, known: _Known) -> Iterator[Problem]:
    for row in m.cards:
        holder = known.card_holders.get(row.item.uid)
        if holder is not None and holder != row.item.person_id:
            yield row.label, f"card {row.item.uid} is already held by person {holder!r}"


def _grants(m: Manifest, known: _Known) -> Iterator[Problem]:
    for row in m.grants:
        subject = row.item.subject
        if subject.person_id is not None and subject.person_id not in known.kinds:
            yield row.label, f"unknown person {subject.person_id!r}"
        if subject.org_unit_id is not None and subject.org_unit_id not in known.parents:
            yield row.label, f"unknown org unit {subject.org_unit_id!r}"
        if row.item.zone_id not in known.zones:
            yield row.label, f"unknown zone {row.item.zone_id!r}"


def _health(m: Manifest, known: _Known) -> Iterator[Problem]:
    for row in m.health:
        record = row.item
        if record.person_id not in known.kinds:
            yield row.label, f"unknown person {record.person_id!r}"
        if record.caretaker_id is None:
            continue
        caretaker_kind = known.kinds.get(record.caretaker_id)
        if caretaker_kind is None:
            yield row.label, f"unknown caretaker {record.caretaker_id!r}"
        elif caretaker_kind != PersonKind.STAFF.value:
            yield (
                row.label,
                f"caretaker {record.caretaker_id!r} is a {caretaker_kind}, not staff",
            )


# After the org-unit tree, the sections in the order a reader of the file meets them.
ROW_CHECKS: tuple[Callable[[Manifest, _Known], Iterator[Problem]], ...] = (
    _doors,
    _devices,
    _people,
    _cards,
    _grants,
    _health,
)
