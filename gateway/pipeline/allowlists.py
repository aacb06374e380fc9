"""Door allowlists for offline decisions (issue 13): compile, sign, publish, keep current.

Every registered device gets its door's list, retained on `P/devices/{id}/allowlist`.
The roster index is copy-on-write, so a new index object means something changed (roster,
grant, health status, level): the zones are recompiled off the event loop, compared with
what each device's list holds, and only the difference goes out, as a cumulative delta
retained on `P/devices/{id}/allowlist-delta`. A delta grown too large, a new device, or
a list nearing its expiry gets a new full list. A door people leave by (`out`, `both`)
carries its exit set (every known card, as a short hash prefix): a card new to the roster
or gone from it reaches those lists as a delta too (`exits_add`, `exits_remove`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.codecs.contract_json import sign_command
from gateway.domain.allowlist import (
    EXIT_DIRECTIONS,
    Change,
    DoorRules,
    ListHeader,
    WindowTable,
    ZoneEntries,
    delta,
    device_salt,
    diff,
    diff_among,
    exit_prefixes,
    exits_salt,
    full_list,
    should_fold,
)
from gateway.domain.roster import Device, Door
from gateway.pipeline.signing import Ed25519CommandSigner
from gateway.pipeline.topics import Topics
from gateway.policy.allowlist_compile import (
    compile_zones,
    door_rules,
    known_cards,
    person_cards,
)
from gateway.policy.roster_index import RosterIndex

_LOGGER = logging.getLogger(__name__)

POLL_S = 0.2  # how often the roster index is looked at: a change goes out well within 1 s
DEFAULT_DAYS = 3.0


@dataclass(frozen=True, slots=True)
class AllowlistConfig:
    tz: ZoneInfo
    fever_threshold_c: float
    days: float = DEFAULT_DAYS  # CAMPUSGATE_ALLOWLIST_DAYS
    emergency_units: Collection[str] = ()  # CAMPUSGATE_OFFLINE_EMERGENCY_UNITS

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.days)


@dataclass(slots=True)
class _DeviceList:
    """What one device was last given: its full list (the base) and the delta on it."""

    header: ListHeader
    salt: bytes
    version: int
    entries: ZoneEntries
    table: WindowTable
    issued: datetime
    rules: DoorRules
    delta_version: int | None = None
    delta_rules: DoorRules | None = None
    delta_change: Change | None = None
    exits: frozenset[str] | None = None  # the known cards of its exit set (None: no set)


@dataclass(slots=True)
class Compiled:
    """One compilation of every zone's entries."""

    started: datetime
    zones: dict[str, ZoneEntries] = field(default_factory=dict)
    seconds: float = 0.0
    known: frozenset[str] = frozenset()  # every card an exit admits


def compile_all(
    index: RosterIndex,
    config: AllowlistConfig,
    start: datetime,
    zone_ids: Collection[str],
    *,
    at: datetime | None = None,
    interned: dict | None = None,
) -> Compiled:
    """Entries of the given zones over [start, start + horizon); holds judged at `at`."""
    began = time.perf_counter()
    compiled = Compiled(start)
    compiled.zones.update(
        compile_zones(
            index,
            zone_ids,
            start=start,
            end=start + config.horizon,
            tz=config.tz,
            emergency_units=config.emergency_units,
            at=at,
            interned=interned,
        )
    )
    compiled.seconds = time.perf_counter() - began
    return compiled


def salt_secret(key: Ed25519PrivateKey) -> bytes:
    """The secret the device salts derive from: the signing key's seed, never published."""
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


class AllowlistPublisher:
    """Keeps every device's retained allowlist current with the roster index."""

    def __init__(
        self,
        *,
        publish: Callable[[str, bytes], None],
        topics: Topics,
        index: Callable[[], RosterIndex],
        occupancy: Callable[[str], int],
        signer: Ed25519CommandSigner,
        secret: bytes,
        config: AllowlistConfig,
    ) -> None:
        self._publish = publish
        self._topics = topics
        self._index = index
        self._occupancy = occupancy
        self._signer = signer
        self._secret = secret
        self._exit_salt = exits_salt(secret)
        self._exit_set: tuple[frozenset[str], str] | None = None  # known cards, hashed
        self._config = config
        self._lists: dict[str, _DeviceList] = {}
        self._task: asyncio.Task[None] | None = None
        self._seen: RosterIndex | None = None
        self._compiled: Compiled | None = None
        self._compiled_index: RosterIndex | None = None
        self._person_cards: dict[str, list[str]] = {}
        self._interned: dict = {}
        # id(zone map) -> (the full compilation's map it derives from, uids changed since,
        # the map itself, which keeps the id valid)
        self._lineage: dict[int, tuple[ZoneEntries, frozenset[str], ZoneEntries]] = {}
        self.fulls = 0
        self.deltas = 0
        self.last_compile_s = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="allowlists")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def republish(self) -> None:
        """Send every device its list again as new (a reconnect to a broker that lost them)."""
        self._lists.clear()
        self._seen = self._compiled = self._compiled_index = None

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a bug here must not stop the lists for good
                _LOGGER.exception("allowlists: refresh failed; trying again")
            await asyncio.sleep(POLL_S)

    async def refresh(self) -> int:
        """Bring every device's list up to date; returns how many lists or deltas went out."""
        index = self._index()
        now = datetime.now(UTC)
        due = any(self._needs_new(held, now) for held in self._lists.values())
        if index is self._seen and not due:
            return 0
        self._seen = index
        occupancy = {zone.id: self._occupancy(zone.id) for zone in index.zones()}
        # Compiling, hashing and signing take long for a big campus: off the event loop.
        out = await asyncio.to_thread(self._prepare, index, occupancy, now)
        for topic, payload in out:
            self._publish(topic, payload)
        return sum(1 for _, payload in out if payload)

    def _prepare(
        self, index: RosterIndex, occupancy: dict[str, int], now: datetime
    ) -> list[tuple[str, bytes]]:
        compiled = self._compile(index, now)
        self._diffs: dict[tuple[int, int], Change] = {}
        self._exit_diffs: dict[tuple[int, int], tuple[frozenset[str], frozenset[str]]] = {}
        out: list[tuple[str, bytes]] = []
        for device in list(index.devices()):
            door = index.door(device.door_id)
            if door is None:
                continue
            rules = door_rules(
                index,
                door,
                fever_threshold_c=self._config.fever_threshold_c,
                occupancy=occupancy.get(door.zone_id, 0),
            )
            entries = compiled.zones.get(door.zone_id, {})
            out.extend(self._lists_for(device, door, entries, rules, now))
        for gone in set(self._lists) - {d.id for d in index.devices()}:
            del self._lists[gone]
        self._prune_lineage()
        return out

    def _compile(self, index: RosterIndex, now: datetime) -> Compiled:
        """Every zone's entries, over the same window as the lists out there unless they are
        due for renewal; only what changed when only health statuses or levels changed."""
        zone_ids = {door.zone_id for door in _doors(index)}
        before, old = self._compiled, self._compiled_index
        began = time.perf_counter()
        if before is None or now - before.started > self._config.horizon / 3:
            self._interned = {}  # a new window: nothing carries over
            compiled = compile_all(index, self._config, now, zone_ids, interned=self._interned)
            self._person_cards = person_cards(index)
        else:
            changes = None if old is None else index.changes_since(old)
            if changes is None or not zone_ids <= before.zones.keys():
                # The org-unit tree changed: every card again, over the same window as
                # before, so unchanged cards come out as the very same entries.
                compiled = compile_all(
                    index, self._config, before.started, zone_ids, at=now, interned=self._interned
                )
                self._person_cards = person_cards(index)
            else:
                compiled = self._recompile(index, before, changes, zone_ids, now)
        known = known_cards(index)
        # The same object while it is equal: deltas compare exit sets by identity first.
        compiled.known = before.known if before is not None and before.known == known else known
        compiled.seconds = time.perf_counter() - began
        self._compiled, self._compiled_index = compiled, index
        self.last_compile_s = compiled.seconds
        return compiled

    def _recompile(
        self,
        index: RosterIndex,
        before: Compiled,
        changes: tuple[set[str], set[str]],
        zone_ids: set[str],
        now: datetime,
    ) -> Compiled:
        """Only what changed: the zones whose grants or rules changed, and in the others
        the cards of the people who changed (a health status, a card, a person)."""
        people, remade = changes
        remade &= zone_ids
        compiled = compile_all(
            index, self._config, before.started, remade, at=now, interned=self._interned
        )
        kept = zone_ids - remade
        if not people:
            compiled.zones.update({z: before.zones[z] for z in kept})
            return compiled
        old_cards, self._person_cards = self._person_cards, person_cards(index)
        uids = frozenset(
            u for p in people for u in (*old_cards.get(p, ()), *self._person_cards.get(p, ()))
        )
        cards = [card for uid in uids if (card := index.card(uid)) is not None]
        fresh = compile_zones(
            index,
            kept,
            start=before.started,
            end=before.started + self._config.horizon,
            tz=self._config.tz,
            emergency_units=self._config.emergency_units,
            at=now,
            interned=self._interned,
            cards=cards,
        )
        for zone_id in kept:
            parent = before.zones[zone_id]
            entries = dict(parent)
            for uid in uids:
                entries.pop(uid, None)
            entries.update(fresh[zone_id])
            compiled.zones[zone_id] = entries
            root, touched, _ = self._lineage.get(id(parent), (parent, frozenset(), parent))
            self._lineage[id(entries)] = (root, touched | uids, entries)
        return compiled

    def _diff(self, base: ZoneEntries, current: ZoneEntries) -> Change:
        """diff(base, current), looking only at the cards touched since their common root
        compilation when both derive from one (the usual case: a few people changed)."""
        mine = self._lineage.get(id(current), (current, frozenset(), current))
        theirs = self._lineage.get(id(base), (base, frozenset(), base))
        if mine[0] is theirs[0]:
            return diff_among(base, current, mine[1] | theirs[1])
        return diff(base, current)

    def _prune_lineage(self) -> None:
        """Keep the lineage of the zone maps still in use (the last compilation, the bases)."""
        live = {id(z) for z in (self._compiled.zones.values() if self._compiled else ())}
        live.update(id(held.entries) for held in self._lists.values())
        self._lineage = {k: v for k, v in self._lineage.items() if k in live}

    def _needs_new(self, held: _DeviceList, now: datetime) -> bool:
        # A list is remade when a third of its life is gone, so terminals always hold one
        # with days to run.
        return now - held.issued > self._config.horizon / 3

    def _lists_for(
        self, device: Device, door: Door, entries: ZoneEntries, rules: DoorRules, now: datetime
    ) -> list[tuple[str, bytes]]:
        held = self._lists.get(device.id)
        if (
            held is None
            or self._needs_new(held, now)
            or held.header.door_id != door.id
            or held.header.direction != str(door.direction)
        ):
            return self._full(device, door, entries, rules, now)
        key = (id(held.entries), id(entries))
        change = self._diffs.get(key)
        if change is None:  # the doors of one zone share their base: one diff each
            change = self._diffs[key] = self._diff(held.entries, entries)
        if held.exits is not None:
            change = self._with_exits(change, held.exits)
        if should_fold(change, len(held.entries) + len(held.exits or ())):
            return self._full(device, door, entries, rules, now)
        if not change and held.delta_version is None and held.rules == rules:
            return []
        if held.delta_rules == rules and held.delta_change == change:
            return []
        version, _ = self._signer.stamp()
        fields = delta(
            held.header,
            base_version=held.version,
            version=version,
            salt=held.salt,
            rules=rules,
            base_table=held.table,
            change=change,
            exit_salt=self._exit_salt if held.exits is not None else None,
        )
        held.delta_version, held.delta_rules, held.delta_change = version, rules, change
        self.deltas += 1
        payload = sign_command(fields, device.id, self._signer)
        return [(self._topics.allowlist_delta(device.id), payload)]

    def _with_exits(self, change: Change, base: frozenset[str]) -> Change:
        """`change` with the cards gone to and from the roster since the exit set `base`."""
        known = self._compiled.known if self._compiled is not None else base
        key = (id(base), id(known))
        moved = self._exit_diffs.get(key)
        if moved is None:  # exit doors listed in one compilation share their base set
            moved = self._exit_diffs[key] = (
                (frozenset(), frozenset()) if base is known else (known - base, base - known)
            )
        return dataclasses.replace(change, exits_add=moved[0], exits_remove=moved[1])

    def _full(
        self, device: Device, door: Door, entries: ZoneEntries, rules: DoorRules, now: datetime
    ) -> list[tuple[str, bytes]]:
        version, issued = self._signer.stamp()
        # The list holds windows from its compilation's start: it expires a horizon after.
        start = self._compiled.started if self._compiled is not None else now
        header = ListHeader(
            device_id=device.id,
            door_id=door.id,
            zone_id=door.zone_id,
            direction=str(door.direction),
            tz=self._config.tz.key,
            issued=issued,
            expires=_rfc3339(start + self._config.horizon),
        )
        salt = device_salt(self._secret, device.id)
        exits, exit_set = None, None
        if header.direction in EXIT_DIRECTIONS:
            exits = self._compiled.known if self._compiled is not None else frozenset()
            if self._exit_set is None or self._exit_set[0] is not exits:
                # Hashed once for every exit door (one campus salt): 50,000 cards, ~0.1 s.
                self._exit_set = (exits, exit_prefixes(self._exit_salt, exits))
            exit_set = (self._exit_salt, self._exit_set[1])
        fields, table = full_list(
            header, version=version, salt=salt, rules=rules, entries=entries, exits=exit_set
        )
        self._lists[device.id] = _DeviceList(
            header, salt, version, entries, table, start, rules, exits=exits
        )
        self.fulls += 1
        payload = sign_command(fields, device.id, self._signer)
        # An empty retained message clears the old delta: it was on the previous base.
        return [
            (self._topics.allowlist(device.id), payload),
            (self._topics.allowlist_delta(device.id), b""),
        ]


def _doors(index: RosterIndex):
    for device in index.devices():
        door = index.door(device.door_id)
        if door is not None:
            yield door


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
