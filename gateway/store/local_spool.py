"""The gateway's local spool: an append-only SQLite file of journal batches.

While PostgreSQL is away the journal makes its batches durable here instead
(gateway/pipeline/spool.py); they are drained into the store in order when it is
back. Every append is committed with `synchronous=FULL` (fsynced) before the
caller goes on. Sequence numbers never go back (AUTOINCREMENT), and the file has
an id of its own, so the store's drain mark (`spool_drains`) names this file.
Blocking calls: run them off the event loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


class SpoolInUse(RuntimeError):
    """Another process holds the spool file."""


@dataclass(frozen=True, slots=True)
class SpooledRow:
    seq: int
    items: int
    body: bytes
    unsure: bytes | None  # set: an earlier write of these items to the store may have committed


class LocalSpool:
    """One SQLite file; thread-safe (one call at a time)."""

    def __init__(self, path: Path, *, wait_s: float = 0.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One process per spool: a second would drain the first one's rows beside it.
        # `wait_s`: how long to wait for it (a worker starting while another one, on the
        # same data dir, looks into or drains its spool as left behind: `left_spools`).
        self._flock = path.with_suffix(".lock").open("a")
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(self._flock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._flock.close()
                    raise SpoolInUse(
                        f"{path} is in use by another gateway process (waited {wait_s:.0f} s):"
                        " is a gateway with this id already running on this data dir?"
                    ) from None
                time.sleep(0.1)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " items INTEGER NOT NULL, unsure BLOB, body BLOB NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('id', ?)", (uuid.uuid4().hex,))
            row = self._db.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
        self.id: str = row[0]
        self.items, self.rows = self._count()

    def _count(self) -> tuple[int, int]:
        items, rows = self._db.execute(
            "SELECT coalesce(sum(items), 0), count(*) FROM spool"
        ).fetchone()
        return int(items), int(rows)

    def append(self, body: bytes, items: int, unsure: bytes | None = None) -> int:
        """Store one batch durably; returns its sequence number."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO spool (items, unsure, body) VALUES (?, ?, ?)", (items, unsure, body)
            )
            self.items += items
            self.rows += 1
            return int(cursor.lastrowid or 0)

    def oldest(self, max_items: int) -> list[SpooledRow]:
        """The oldest rows, at least one, up to about `max_items` items in all."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, items, body, unsure FROM spool ORDER BY seq LIMIT 1000"
            ).fetchall()
        taken: list[SpooledRow] = []
        total = 0
        for seq, items, body, unsure in rows:
            if taken and total + items > max_items:
                break
            taken.append(SpooledRow(seq, items, body, unsure))
            total += items
        return taken

    def remove_through(self, seq: int) -> None:
        """Forget the rows up to `seq` (they are in the store)."""
        with self._lock:
            self._db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))
            self.items, self.rows = self._count()

    def all_rows(self) -> list[SpooledRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, items, body, unsure FROM spool ORDER BY seq"
            ).fetchall()
        return [SpooledRow(seq, items, body, unsure) for seq, items, body, unsure in rows]

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._flock.close()  # releases the lock
