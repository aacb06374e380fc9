"""The journal's local spool: decisions stay durable while PostgreSQL is away.

When a journal write fails for want of a database (the stall the journal already
detects), the journal makes its batches durable in a bounded SQLite file under the
data dir (gateway/store/local_spool.py) and answers the doors at once; a drain
writes the spooled batches into PostgreSQL in order when it answers again, each
drain transaction with the spool's mark (`spool_drains`), so that a gateway
killed mid-drain logs no row twice. A full spool makes the journal wait for the
database as before (doors wait; nothing is lost).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import hashlib
import logging
import pickle
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gateway.domain.alerts import Alert, AlertKind, AlertStatus, Severity
from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import EventType
from gateway.domain.health import HealthRecord, HealthStatus
from gateway.store.local_spool import LocalSpool, SpooledRow, SpoolInUse

_LOGGER = logging.getLogger(__name__)

DEFAULT_BOUND = 500_000  # items (log rows, alerts, states): ~1 h of 300 events/s
ALERT_SHARE = 0.5  # a warning (and the Prometheus rule) once the spool passes this share


class SpoolFormatError(ValueError):
    """The spool holds batches written in a format this gateway does not read."""


@functools.cache
def spool_format() -> str:
    """The encoding of spooled batches: pickle, and the shape of every type pickled.

    Pickles name classes and their fields: a gateway whose spooled types differ (an
    upgrade or rollback during an outage) must not read another's file. Any change to
    these types changes this string, so such a file is refused at start, not misread.
    """
    from gateway.pipeline.journal import AlertChange  # the journal imports this module

    shapes: list[str] = []
    for kind in (AccessRecord, Alert, AlertChange, HealthRecord):
        shapes.append(f"{kind.__qualname__}({','.join(f.name for f in dataclasses.fields(kind))})")
    members: tuple[type[enum.Enum], ...] = (
        EventType,
        Verdict,
        Reason,
        AlertKind,
        AlertStatus,
        Severity,
        HealthStatus,
    )
    for kind in members:
        shapes.append(f"{kind.__qualname__}({','.join(str(m.value) for m in kind)})")
    digest = hashlib.sha256(";".join(shapes).encode()).hexdigest()[:16]
    return f"pickle{pickle.HIGHEST_PROTOCOL}-{digest}"


def _gateway_version() -> str:
    try:
        return version("campusgate")
    except PackageNotFoundError:
        return "unknown"


def spool_path(data_dir: Path, client_id: str) -> Path:
    """The spool file of the worker `client_id` (one per worker: its MQTT session's events)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in client_id)
    return data_dir / "spool" / f"{safe}.sqlite3"


def left_spools(own: Path) -> Iterator[Spool]:
    """The non-empty spools beside `own` that no running worker holds, oldest name first.

    A worker's spool is named by its id (the hostname by default): a container recreated
    under another name would leave its spool, whose events the broker has had acks for,
    undrained for good. The caller drains and closes each one.
    """
    for path in sorted(own.parent.glob("*.sqlite3")):
        if path == own:
            continue
        try:
            spool = Spool(path)
        except SpoolInUse:  # its worker is running and drains it itself
            continue
        if spool.empty:
            spool.close()
            continue
        yield spool


class Spool:
    """Batches in, in order; their items out again for the drain."""

    def __init__(self, path: Path, *, bound: int = DEFAULT_BOUND, wait_s: float = 0.0) -> None:
        self.file = LocalSpool(path, wait_s=wait_s)
        try:
            _check_format(self.file)
        except SpoolFormatError:
            self.file.close()
            raise
        self.bound = bound
        self.spooled = 0  # items spooled since start
        self.drained = 0  # items drained since start
        self.drained_records = 0  # access-log rows of them written
        self._warned = False
        self._reserved = 0  # items whose append is under way
        self.oldest_since: float | None = time.monotonic() if self.file.rows else None

    @property
    def id(self) -> str:
        return self.file.id

    @property
    def items(self) -> int:
        """Items held (those being appended included)."""
        return self.file.items + self._reserved

    @property
    def empty(self) -> bool:
        return self.file.rows == 0 and self._reserved == 0

    def has_room(self, items: int) -> bool:
        return self.items + items <= self.bound

    async def append(self, parts: object, items: int, unsure: object | None = None) -> None:
        """Make `parts` (a batch's items) durable; `unsure` is what tells whether an earlier
        write of them to the store committed (see Journal._already_written)."""
        body = pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)
        doubt = None if unsure is None else pickle.dumps(unsure)
        self._reserved += items
        try:
            await asyncio.to_thread(self.file.append, body, items, doubt)
        finally:
            self._reserved -= items
        self.spooled += items
        if self.oldest_since is None:
            self.oldest_since = time.monotonic()
        if not self._warned and self.items > self.bound * ALERT_SHARE:
            self._warned = True
            _LOGGER.error(
                "journal spool at %d of %d items: the database has been away long; at the "
                "bound doors wait for it again",
                self.items,
                self.bound,
            )

    async def oldest(self, max_items: int) -> list[SpooledRow]:
        return await asyncio.to_thread(self.file.oldest, max_items)

    async def remove_through(self, seq: int, items: int) -> None:
        await asyncio.to_thread(self.file.remove_through, seq)
        self.drained += items
        if self.file.rows == 0:
            self.oldest_since = None
        if self.items <= self.bound * ALERT_SHARE:
            self._warned = False

    def records(self) -> list[AccessRecord]:
        """Every access record held, oldest first (to remember their decisions at start)."""
        found: list[AccessRecord] = []
        for row in self.file.all_rows():
            for records, *_ in decode(row):
                found += records
        return found

    def close(self) -> None:
        self.file.close()


def _check_format(file: LocalSpool) -> None:
    """Refuse a spool holding batches of another format; stamp an empty one with ours."""
    written, ours = file.meta("format"), spool_format()
    if written != ours and file.rows:
        writer = file.meta("writer") or "a gateway from before spool formats"
        raise SpoolFormatError(
            f"the journal spool {file.path} holds {file.items} items written by campusgate "
            f"{writer} in format {written or 'unversioned'}; this campusgate "
            f"{_gateway_version()} writes {ours} and cannot read them. Start the version that "
            "wrote them with the same data dir and database until the spool drains (its rows "
            "are in the access log then and the file is empty), then upgrade. Do not delete "
            "the file: its decisions were acknowledged and are logged nowhere else"
        )
    if written != ours:
        file.set_meta("format", ours)
        file.set_meta("writer", _gateway_version())


def decode(row: SpooledRow) -> list[tuple[list[Any], ...]]:
    """The parts of a spooled batch, each (records, alerts, alert changes, health, device
    states); the row's doubt (`doubt`) is about the first part.

    The file is the gateway's own, written under its data dir: it is trusted like the code.
    """
    return pickle.loads(row.body)


def doubt(row: SpooledRow) -> object | None:
    return None if row.unsure is None else pickle.loads(row.unsure)
