"""A door's allowlist for offline decisions (docs/protocol.md, "Offline decisions").

What one terminal needs to decide alone: the cards that may use its zone (or are in the
emergency group) as keyed hashes, each with the windows when its holder may enter and a
flag (emergency group), and the door's rules. Held people are left out, not flagged.
Entries are compiled per zone in card-uid space (`ZoneEntries`); hashing with the
device's salt happens only when a list or a delta is written, so a change touches only
the cards it changed. A door people leave by (`out`, `both`) also carries its exit set:
a short prefix of every known card's hash, nothing else (`exit_prefixes`). Pure: no
clock, no I/O.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = 1
HASH_BYTES = 12
SALT_BYTES = 16
# An exit prefix is the first 3 bytes of the card's HMAC: a 50,000-card roster fills 0.3 %
# of the 2^24 prefixes, so a stolen exit door's set matches ~256 times more of the 2^32
# 4-byte uids than there are cards (it does not give the roster away), while an unknown
# card is let out offline at most 0.3 % of the time (leaving is free anyway).
EXIT_PREFIX_BYTES = 3
EXIT_DIRECTIONS = frozenset({"out", "both"})

FLAG_HELD = 1  # no longer set: held people are left out of lists (terminals still honour it)
FLAG_EMERGENCY = 2

# Online reasons a terminal gives as `unknown_card` offline: those cards are not listed.
UNLISTED_REASONS = frozenset({"unknown_card", "card_revoked", "health_hold", "not_authorized"})

# A delta larger than this share of its base list is folded into a new full list.
FOLD_SHARE = 0.25

Windows = tuple[tuple[int, int], ...]  # [start, end) in Unix seconds, sorted, disjoint


@dataclass(frozen=True, slots=True)
class Entry:
    """One card at one zone: when its holder may enter, and its flags."""

    windows: Windows
    flags: int = 0


ZoneEntries = Mapping[str, Entry]  # card uid (upper-case hex) -> entry


@dataclass(frozen=True, slots=True)
class DoorRules:
    """The door's rules as a terminal applies them offline."""

    requires_temperature: bool
    fever_threshold_c: float
    capacity: int | None
    capacity_mode: str
    occupancy: int
    levels: tuple[str, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "requires_temperature": self.requires_temperature,
            "fever_threshold_c": self.fever_threshold_c,
            "capacity": self.capacity,
            "capacity_mode": self.capacity_mode,
            "occupancy": self.occupancy,
            "levels": list(self.levels),
        }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def device_salt(secret: bytes, device_id: str) -> bytes:
    """The device's fixed salt: derived from a gateway secret, so it survives restarts."""
    return hmac.digest(secret, b"campusgate-allowlist-salt\n" + device_id.encode(), "sha256")[
        :SALT_BYTES
    ]


def card_hash(salt: bytes, card_uid: str) -> str:
    """base64url of the first 12 bytes of HMAC-SHA256(salt, uid in upper-case hex)."""
    return b64url(hmac.digest(salt, card_uid.upper().encode("ascii"), "sha256")[:HASH_BYTES])


def exits_salt(secret: bytes) -> bytes:
    """The salt of every door's exit set: one for the campus (the sets are the same at
    every door, so a set hashed once serves them all; a door salt would only cost time)."""
    return hmac.digest(secret, b"campusgate-exit-salt", "sha256")[:SALT_BYTES]


def exit_prefix(salt: bytes, card_uid: str) -> bytes:
    """The card's exit prefix: the first bytes of HMAC-SHA256(exit salt, uid)."""
    return hmac.digest(salt, card_uid.upper().encode("ascii"), "sha256")[:EXIT_PREFIX_BYTES]


def exit_prefixes(salt: bytes, card_uids: Iterable[str]) -> str:
    """base64url of the sorted exit prefixes of `card_uids`, repeats kept (a multiset:
    two cards may share a prefix, and removing one must not remove the other)."""
    return b64url(b"".join(sorted(exit_prefix(salt, uid) for uid in card_uids)))


def reasons_agree(offline_reason: str, online_reason: str) -> bool:
    """Whether an offline reason is the one the contract maps the online reason to."""
    if offline_reason == "unknown_card":
        return online_reason in UNLISTED_REASONS
    return offline_reason == online_reason


class WindowTable:
    """The list's table of window sets; a delta appends to it, never renumbers."""

    def __init__(self, sets: Iterable[Windows] = ()) -> None:
        self.sets: list[Windows] = []
        self._index: dict[Windows, int] = {}
        for windows in sets:
            self.index_of(windows)

    def index_of(self, windows: Windows) -> int:
        """The set's index, appending it when new; -1 for no window at all."""
        if not windows:
            return -1
        at = self._index.get(windows)
        if at is None:
            at = self._index[windows] = len(self.sets)
            self.sets.append(windows)
        return at

    def copy(self) -> WindowTable:
        return WindowTable(self.sets)


def _wire_sets(sets: Iterable[Windows]) -> list[list[list[int]]]:
    return [[[start, end] for start, end in windows] for windows in sets]


@dataclass(frozen=True, slots=True)
class ListHeader:
    """What every list and delta for one device carries."""

    device_id: str
    door_id: str
    zone_id: str
    direction: str
    tz: str
    issued: str  # RFC 3339, UTC
    expires: str  # RFC 3339, UTC


def full_list(
    header: ListHeader,
    *,
    version: int,
    salt: bytes,
    rules: DoorRules,
    entries: ZoneEntries,
    exits: tuple[bytes, str] | None = None,
) -> tuple[dict[str, Any], WindowTable]:
    """The fields of a full list (to be signed), and its window table for later deltas.
    `exits`: (exit salt, `exit_prefixes` of the known cards) for a door people leave by."""
    table = WindowTable()
    cards = [
        [card_hash(salt, uid), table.index_of(entry.windows), entry.flags]
        for uid, entry in entries.items()
    ]
    fields = {
        "type": "allowlist",
        "v": FORMAT_VERSION,
        "device": header.device_id,
        "door": header.door_id,
        "zone": header.zone_id,
        "version": version,
        "issued": header.issued,
        "expires": header.expires,
        "tz": header.tz,
        "salt": b64url(salt),
        "direction": header.direction,
        "rules": rules.to_wire(),
        "windows": _wire_sets(table.sets),
        "cards": cards,
    }
    if exits is not None:
        fields["exit_salt"], fields["exits"] = b64url(exits[0]), exits[1]
    return fields, table


@dataclass(frozen=True, slots=True)
class Change:
    """What changed between two zone compilations, in uid space."""

    upsert: dict[str, Entry]
    remove: frozenset[str]
    exits_add: frozenset[str] = frozenset()  # known cards new since the base list
    exits_remove: frozenset[str] = frozenset()  # known then, unknown now

    def __len__(self) -> int:
        return len(self.upsert) + len(self.remove) + len(self.exits_add) + len(self.exits_remove)


def diff(base: ZoneEntries, current: ZoneEntries) -> Change:
    """The cumulative change from `base` to `current`."""
    if base is current:
        return Change({}, frozenset())
    # Entries carried over from one compilation to the next are the same objects: `is`
    # settles most of them without comparing windows.
    get = base.get
    upsert = {
        uid: entry
        for uid, entry in current.items()
        if (held := get(uid)) is not entry and held != entry
    }
    remove = frozenset(uid for uid in base if uid not in current)
    return Change(upsert, remove)


def diff_among(base: ZoneEntries, current: ZoneEntries, uids: Iterable[str]) -> Change:
    """The change from `base` to `current` when only `uids` may differ between them."""
    upsert: dict[str, Entry] = {}
    remove: set[str] = set()
    for uid in uids:
        entry = current.get(uid)
        if entry is None:
            if uid in base:
                remove.add(uid)
        elif (held := base.get(uid)) is not entry and held != entry:
            upsert[uid] = entry
    return Change(upsert, frozenset(remove))


def should_fold(change: Change, base_size: int) -> bool:
    """True when a delta has grown past its share of the base: publish a new full list."""
    return len(change) > max(16, FOLD_SHARE * base_size)


def delta(
    header: ListHeader,
    *,
    base_version: int,
    version: int,
    salt: bytes,
    rules: DoorRules,
    base_table: WindowTable,
    change: Change,
    exit_salt: bytes | None = None,
) -> dict[str, Any]:
    """The fields of a cumulative delta (to be signed) on the list `base_version`;
    `exit_salt`: the base list has an exit set (the delta then says how it changed)."""
    table = base_table.copy()
    first_new = len(table.sets)
    upsert = [
        [card_hash(salt, uid), table.index_of(entry.windows), entry.flags]
        for uid, entry in change.upsert.items()
    ]
    return {
        "type": "allowlist_delta",
        "v": FORMAT_VERSION,
        "device": header.device_id,
        "base": base_version,
        "version": version,
        "rules": rules.to_wire(),
        "windows": _wire_sets(table.sets[first_new:]),
        "upsert": upsert,
        "remove": sorted(card_hash(salt, uid) for uid in change.remove),
        **(
            {
                "exits_add": sorted(
                    b64url(exit_prefix(exit_salt, uid)) for uid in change.exits_add
                ),
                "exits_remove": sorted(
                    b64url(exit_prefix(exit_salt, uid)) for uid in change.exits_remove
                ),
            }
            if exit_salt is not None
            else {}
        ),
    }
