"""Stays precomputed from the access log for contact tracing (table `presence_stays`).

A stay opens with an admitted `in` card passage of a person in a zone and ends exactly
as gateway/store/tracing.py ends other people's stays: at the person's next passage in
that zone when it is an `out` at most `max_stay_s` later, otherwise at their next
passage anywhere (strictly later), at most `max_stay_s` after the start. Its end
depends only on passages up to `s + max_stay_s`, so once the log is complete up to
there the stay is final and can be stored.

`presence_stays_watermark.upto` says that every stay starting before it is stored, built
with `max_stay_s`. Stays are added in chunks, each chunk in one transaction together
with the watermark, so the table and the watermark always agree.

A passage is logged at its device's time, so one queued at the broker while the
gateway was down can arrive after the stays it changes were stored (those that start
up to a max stay before it). The access log marks it: `stale_from` is the oldest such
passage (`mark_stale`). From then on the tracer reads the stored stays only up to a
max stay before it (`usable_upto`), and the next materialization deletes the stays
from there and builds them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

# Stays starting in [$1, $2), from the passages up to $2 + max stay ($3 seconds). The
# same-zone successor by lead (as the tracer's own read); the next passage anywhere is
# the first strictly later one (as the tracer's lookup).
_MATERIALIZE = """
INSERT INTO presence_stays (zone_id, s, e, person_id)
SELECT zone_id, t,
       CASE WHEN next_dir = 'out' AND next_zone_t <= t + make_interval(secs => $3)
            THEN next_zone_t
            ELSE least(coalesce(next_any_t, t + make_interval(secs => $3)),
                       t + make_interval(secs => $3))
       END,
       person_id
FROM (
    SELECT person_id, zone_id, direction, received_at AS t,
           lead(received_at) OVER by_zone AS next_zone_t,
           lead(direction) OVER by_zone AS next_dir,
           first_value(received_at) OVER (
               PARTITION BY person_id ORDER BY received_at
               RANGE BETWEEN '1 microsecond' FOLLOWING AND UNBOUNDED FOLLOWING
           ) AS next_any_t
    FROM access_events
    WHERE type = 'card' AND decision = 'admit' AND person_id IS NOT NULL
      AND received_at >= $1::timestamptz
      AND received_at <= $2::timestamptz + make_interval(secs => $3)
    WINDOW by_zone AS (PARTITION BY person_id, zone_id ORDER BY received_at)
) p
WHERE direction = 'in' AND zone_id IS NOT NULL AND t < $2::timestamptz
"""

_SET_WATERMARK = """
INSERT INTO presence_stays_watermark (upto, max_stay_s) VALUES ($1, $2)
ON CONFLICT (singleton) DO UPDATE
    SET upto = EXCLUDED.upto, max_stay_s = EXCLUDED.max_stay_s, updated_at = now()
"""

# Materializing a long backlog goes a day of stays per transaction.
CHUNK = timedelta(days=1)


# A passage logged this much before it reached the gateway may change stored stays:
# well below the job's settling margin (gateway/services/tracing_stays.py).
LATE = timedelta(minutes=1)

_MARK_STALE = """
UPDATE presence_stays_watermark
SET stale_from = least(coalesce(stale_from, $1::timestamptz), $1::timestamptz)
WHERE upto > $1::timestamptz - make_interval(secs => max_stay_s)
"""

# The stays from a max stay before the oldest late passage on are built again.
_REWIND = """
UPDATE presence_stays_watermark
SET upto = least(upto, stale_from - make_interval(secs => max_stay_s)), stale_from = NULL
WHERE stale_from IS NOT NULL
RETURNING upto
"""


@dataclass(frozen=True, slots=True)
class Watermark:
    upto: datetime  # every stay that started before this is stored
    max_stay_s: float  # ... built with this max stay
    stale_from: datetime | None = None  # a passage this old was logged late: see above

    @property
    def usable_upto(self) -> datetime:
        """Before when the stored stays are right: none changed by a late passage."""
        if self.stale_from is None:
            return self.upto
        return min(self.upto, self.stale_from - timedelta(seconds=self.max_stay_s))


@dataclass(frozen=True, slots=True)
class Materialized:
    """What one materialization did."""

    stays: int  # rows added
    upto: datetime | None  # the watermark afterwards (None: nothing to build from yet)
    rebuilt: bool  # the max stay had changed: the table was emptied first


async def watermark(conn: asyncpg.Connection) -> Watermark | None:
    row = await conn.fetchrow("SELECT upto, max_stay_s, stale_from FROM presence_stays_watermark")
    if row is None:
        return None
    return Watermark(row["upto"], float(row["max_stay_s"]), row["stale_from"])


async def usable_upto(conn: asyncpg.Connection, max_stay_s: float) -> datetime | None:
    """Before when the stored stays can stand in for the log for `max_stay_s` (None: never)."""
    mark = await watermark(conn)
    return mark.usable_upto if mark is not None and mark.max_stay_s == max_stay_s else None


async def mark_stale(conn: asyncpg.Connection, oldest: datetime) -> None:
    """A passage at `oldest` was logged late: stored stays it may change are not used."""
    await conn.execute(_MARK_STALE, oldest)


async def _rewind(conn: asyncpg.Connection) -> None:
    """Delete the stays a late passage may have changed; the watermark goes back before them."""
    async with conn.transaction():
        upto = await conn.fetchval(_REWIND)
        if upto is not None:
            await conn.execute("DELETE FROM presence_stays WHERE s >= $1", upto)


async def materialize(
    conn: asyncpg.Connection, max_stay_s: float, upto: datetime, *, chunk: timedelta = CHUNK
) -> Materialized:
    """Store every stay that starts before `upto`, from the watermark on (or from the start).

    The caller makes sure the log is complete up to `upto + max_stay_s` and that no other
    materialization runs at once (the job's advisory lock). A changed max stay empties
    the table and starts over.
    """
    await _rewind(conn)
    mark = await watermark(conn)
    rebuilt = False
    if mark is not None and mark.max_stay_s != max_stay_s:
        async with conn.transaction():
            await conn.execute("TRUNCATE presence_stays")
            await conn.execute("DELETE FROM presence_stays_watermark")
        mark, rebuilt = None, True
    if mark is not None:
        lo: datetime | None = mark.upto
    else:
        lo = await conn.fetchval(
            "SELECT min(received_at) FROM access_events"
            " WHERE type = 'card' AND decision = 'admit' AND person_id IS NOT NULL"
        )
        if lo is None:
            return Materialized(0, None, rebuilt)
    stays = 0
    done = mark.upto if mark is not None else None
    while lo < upto:
        hi = min(lo + chunk, upto)
        async with conn.transaction():
            status = await conn.execute(_MATERIALIZE, lo, hi, max_stay_s)
            await conn.execute(_SET_WATERMARK, hi, max_stay_s)
        stays += int(status.rsplit(" ", 1)[-1])
        lo = done = hi
    return Materialized(stays, done, rebuilt)
