"""Daily reports: the day's facts aggregated in SQL, and the stored reports and deliveries.

The access log is scanned once per day and folded per person in SQL (a few thousand
rows for a campus, however many events it logged); the services roll those rows up per
org unit. Nothing here returns asyncpg records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from gateway.domain.reports import (
    GUARDED_ZONE_KINDS,
    ISOLATING,
    ZONE_KINDS,
    Audience,
    Channel,
    DailyReport,
    Delivery,
    FeverReading,
    PersonDay,
    StatusChange,
    TrendPoint,
    VisitorRefusal,
)
from gateway.domain.roster import OrgUnit

# Final card decisions of the window [$1, $2): the day's passages and attempts.
_IN_WINDOW = """
    WHERE e.received_at >= $1 AND e.received_at < $2 AND e.type = 'card'
      AND e.decision IN ('admit', 'deny')
"""
_CARD_EVENTS = "\n    FROM access_events e" + _IN_WINDOW
# The same with the zone of each event: the zone logged with it, its kind as the roster
# holds it now (a zone since removed has no kind).
_CARD_EVENTS_IN_ZONES = (
    "\n    FROM access_events e LEFT JOIN zones z ON z.id = e.zone_id" + _IN_WINDOW
)

# The last recorded status of every person before the cut-off ($3).
_STATUS_AT = """
    SELECT DISTINCT ON (person_id) person_id, status, since, until, reason, caretaker_id
    FROM health_history WHERE changed_at < $3
    ORDER BY person_id, changed_at DESC, id DESC
"""

# Admitted passages per (zone kind, direction), each a column counted in the one scan
# (a fixed set: the roster's zone kinds, in and out).
_PASSAGE_KEYS = tuple((kind, direction) for kind in ZONE_KINDS for direction in ("in", "out"))
_PASSAGE_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE e.decision = 'admit' AND coalesce(z.kind, 'other') = '{kind}'"
    f" AND e.direction = '{direction}')::int AS p_{kind}_{direction}"
    for kind, direction in _PASSAGE_KEYS
)
_PASSAGE_SUMS = ", ".join(f"sum(p_{k}_{d})::int AS p_{k}_{d}" for k, d in _PASSAGE_KEYS)
_PASSAGE_ARRAY = ", ".join(f"coalesce(d.p_{k}_{d}, 0)" for k, d in _PASSAGE_KEYS)

_PEOPLE_DAY = f"""
WITH per_reason AS (
    SELECT e.person_id, e.decision, e.reason, count(*)::int AS n,
           count(e.celsius)::int AS readings, max(e.celsius) AS max_c,
           min(e.received_at) AS first_at, {_PASSAGE_COUNTS}
    {_CARD_EVENTS_IN_ZONES} AND e.person_id IS NOT NULL
    GROUP BY e.person_id, e.decision, e.reason
), per_person AS (
    SELECT person_id, bool_or(decision = 'admit') AS present, sum(readings)::int AS screenings,
           max(max_c) FILTER (WHERE reason = 'fever') AS fever_c,
           coalesce(jsonb_object_agg(reason, n) FILTER (WHERE decision = 'deny'), '{{}}'::jsonb)
               AS denied,
           min(first_at) FILTER (WHERE decision = 'admit') AS first_at, {_PASSAGE_SUMS}
    FROM per_reason GROUP BY person_id
), status AS ({_STATUS_AT})
SELECT p.id, p.name, p.kind, p.org_unit_id, p.active,
       coalesce(d.present, false), coalesce(d.screenings, 0), d.fever_c,
       coalesce(d.denied, '{{}}'::jsonb),
       CASE WHEN s.until IS NOT NULL AND s.until <= $3 THEN 'clear'
            ELSE coalesce(s.status, 'clear') END,
       s.since, s.until, coalesce(s.reason, ''), s.caretaker_id, c.name,
       ARRAY[{_PASSAGE_ARRAY}], d.first_at, f.door_id
FROM people p
LEFT JOIN per_person d ON d.person_id = p.id
LEFT JOIN status s ON s.person_id = p.id
LEFT JOIN people c ON c.id = s.caretaker_id
-- The door of the first passage, looked up (by the person index) only for the people
-- the report lists with it: present and never screened.
LEFT JOIN LATERAL (
    SELECT e.door_id FROM access_events e
    WHERE d.present AND d.screenings = 0 AND e.person_id = p.id AND e.received_at = d.first_at
      AND e.type = 'card' AND e.decision = 'admit'
    ORDER BY e.event_id LIMIT 1
) f ON true
WHERE p.kind = ANY($4::text[])
ORDER BY p.id
"""


async def people_day(
    conn: asyncpg.Connection,
    start: datetime,
    end: datetime,
    cutoff: datetime,
    kinds: Sequence[str] = tuple(Audience),
) -> list[PersonDay]:
    """Every person of `kinds` with their day [start, end) and their status at `cutoff`."""
    rows = await conn.fetch(_PEOPLE_DAY, start, end, cutoff, list(kinds))
    return [
        PersonDay(
            person_id=r[0],
            name=r[1],
            kind=r[2],
            org_unit_id=r[3],
            active=r[4],
            present=r[5],
            screenings=r[6],
            fever_c=r[7],
            denied=dict(r[8]),
            status=r[9],
            since=r[10],
            until=r[11],
            reason=r[12],
            caretaker_id=r[13],
            caretaker_name=r[14],
            passages={key: n for key, n in zip(_PASSAGE_KEYS, r[15], strict=True) if n},
            first_passage_at=r[16],
            first_passage_door=r[17],
        )
        for r in rows
    ]


async def visitors_refused(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> list[VisitorRefusal]:
    """Registered visitors' cards denied at doors of dormitories and labs, oldest first."""
    rows = await conn.fetch(
        "SELECT e.person_id, p.name, p.org_unit_id, e.received_at, e.door_id, e.zone_id,"
        " z.kind, e.reason FROM access_events e JOIN people p ON p.id = e.person_id"
        " JOIN zones z ON z.id = e.zone_id"
        + _IN_WINDOW
        + " AND e.decision = 'deny' AND p.kind = 'visitor' AND z.kind = ANY($3::text[])"
        " ORDER BY e.received_at, e.event_id",
        start,
        end,
        list(GUARDED_ZONE_KINDS),
    )
    return [VisitorRefusal(*r) for r in rows]


async def fever_readings(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> list[FeverReading]:
    """Every fever decision of the window, oldest first."""
    rows = await conn.fetch(
        "SELECT e.person_id, e.received_at, e.celsius, e.door_id"
        + _CARD_EVENTS
        + " AND e.reason = 'fever' AND e.person_id IS NOT NULL ORDER BY e.received_at",
        start,
        end,
    )
    return [FeverReading(r[0], r[1], r[2], r[3]) for r in rows]


async def outsiders_by_door(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> dict[str, int]:
    """Unknown cards denied per door in the window (outsiders have no org unit)."""
    rows = await conn.fetch(
        "SELECT coalesce(e.door_id, '?'), count(*)::int"
        + _CARD_EVENTS
        + " AND e.decision = 'deny' AND e.reason = 'unknown_card' GROUP BY 1 ORDER BY 1",
        start,
        end,
    )
    return {r[0]: r[1] for r in rows}


async def status_changes(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> list[StatusChange]:
    """Changes in [start, end) into an isolating status from any other (effective) one."""
    rows = await conn.fetch(
        """
        WITH touched AS (
            SELECT DISTINCT person_id FROM health_history
            WHERE changed_at >= $1 AND changed_at < $2
        ), ordered AS (
            SELECT h.*, lag(h.status) OVER w AS prev_status, lag(h.until) OVER w AS prev_until
            FROM health_history h JOIN touched USING (person_id)
            WHERE h.changed_at < $2
            WINDOW w AS (PARTITION BY h.person_id ORDER BY h.changed_at, h.id)
        )
        SELECT o.person_id, o.status,
               CASE WHEN o.prev_status IS NULL THEN 'clear'
                    WHEN o.prev_until IS NOT NULL AND o.prev_until <= o.changed_at THEN 'clear'
                    ELSE o.prev_status END AS previous,
               o.since, o.until, o.reason, o.caretaker_id, c.name, o.changed_at, o.changed_by
        FROM ordered o LEFT JOIN people c ON c.id = o.caretaker_id
        WHERE o.changed_at >= $1 AND o.status = ANY($3::text[])
        ORDER BY o.changed_at, o.id
        """,
        start,
        end,
        list(ISOLATING),
    )
    return [StatusChange(*r) for r in rows if r[1] != r[2]]


async def trend(
    conn: asyncpg.Connection, start: datetime, end: datetime, timezone: str
) -> list[TrendPoint]:
    """Per campus-local day, org unit and kind: people present and people with a fever."""
    rows = await conn.fetch(
        """
        WITH daily AS (
            SELECT (e.received_at AT TIME ZONE $3)::date AS day, e.person_id,
                   bool_or(e.decision = 'admit') AS present, bool_or(e.reason = 'fever') AS fever
        """
        + _CARD_EVENTS
        + """ AND e.person_id IS NOT NULL
            GROUP BY 1, 2
        )
        SELECT d.day, p.org_unit_id, p.kind,
               count(*) FILTER (WHERE d.present)::int, count(*) FILTER (WHERE d.fever)::int
        FROM daily d JOIN people p ON p.id = d.person_id
        GROUP BY 1, 2, 3
        """,
        start,
        end,
        timezone,
    )
    return [TrendPoint(*r) for r in rows]


async def day_has_events(conn: asyncpg.Connection, day: date, tz: ZoneInfo) -> bool:
    """True when the access log holds any event received on the campus day `day`."""
    start = datetime.combine(day, time(), tzinfo=tz)
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM access_events WHERE received_at >= $1 AND received_at < $2)",
            start,
            start + timedelta(days=1),
        )
    )


async def org_units(conn: asyncpg.Connection) -> list[OrgUnit]:
    rows = await conn.fetch("SELECT id, name, parent_id FROM org_units ORDER BY id")
    return [OrgUnit(r[0], r[1], r[2]) for r in rows]


# ---- stored reports ------------------------------------------------------------------

_REPORT_COLUMNS = (
    "id, day, org_unit_id, audience, generated_at, generated_by, scheduled, cutoff, summary"
)


def _report(r: asyncpg.Record, with_lists: bool) -> DailyReport:
    return DailyReport(
        id=r["id"],
        day=r["day"],
        org_unit_id=r["org_unit_id"],
        audience=Audience(r["audience"]),
        generated_at=r["generated_at"],
        generated_by=r["generated_by"],
        scheduled=r["scheduled"],
        cutoff=r["cutoff"],
        summary=r["summary"],
        lists=r["lists"] if with_lists else {},
    )


async def insert_report(
    conn: asyncpg.Connection,
    *,
    day: date,
    org_unit_id: str | None,
    audience: Audience,
    generated_at: datetime,
    generated_by: str,
    scheduled: bool,
    cutoff: datetime,
    summary: dict[str, Any],
    lists: dict[str, list[dict[str, Any]]],
) -> DailyReport:
    row = await conn.fetchrow(
        "INSERT INTO daily_reports (day, org_unit_id, audience, generated_at, generated_by,"
        " scheduled, cutoff, summary, lists) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        f" RETURNING {_REPORT_COLUMNS}, lists",
        day,
        org_unit_id,
        audience.value,
        generated_at,
        generated_by,
        scheduled,
        cutoff,
        summary,
        lists,
    )
    return _report(row, True)


async def get_report(conn: asyncpg.Connection, report_id: int) -> DailyReport | None:
    row = await conn.fetchrow(
        f"SELECT {_REPORT_COLUMNS}, lists FROM daily_reports WHERE id = $1", report_id
    )
    return _report(row, True) if row else None


async def list_reports(
    conn: asyncpg.Connection,
    *,
    day: date | None = None,
    org_units: Sequence[str | None] | None = None,
    audience: Audience | None = None,
    scheduled: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DailyReport]:
    """Reports newest first, without their lists; `org_units` may hold None (campus-wide)."""
    keys = None if org_units is None else ["*" if u is None else u for u in org_units]
    rows = await conn.fetch(
        f"SELECT {_REPORT_COLUMNS} FROM daily_reports"
        " WHERE ($1::date IS NULL OR day = $1) AND ($2::text[] IS NULL OR org_unit_key = ANY($2))"
        " AND ($3::text IS NULL OR audience = $3) AND ($4::boolean IS NULL OR scheduled = $4)"
        " ORDER BY day DESC, generated_at DESC, id DESC LIMIT $5 OFFSET $6",
        day,
        keys,
        audience.value if audience else None,
        scheduled,
        limit,
        offset,
    )
    return [_report(r, False) for r in rows]


# ---- deliveries ----------------------------------------------------------------------


def _delivery(r: asyncpg.Record) -> Delivery:
    return Delivery(
        r["id"],
        r["report_id"],
        Channel(r["channel"]),
        r["recipient"],
        r["sent_at"],
        r["status"],
        r["error"],
        r["sent_by"],
    )


async def record_delivery(
    conn: asyncpg.Connection,
    *,
    report_id: int,
    channel: Channel,
    recipient: str,
    ok: bool,
    error: str | None,
    sent_by: str,
) -> Delivery:
    row = await conn.fetchrow(
        "INSERT INTO report_deliveries (report_id, channel, recipient, status, error, sent_by)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        report_id,
        channel.value,
        recipient,
        "ok" if ok else "failed",
        error,
        sent_by,
    )
    return _delivery(row)


async def deliveries_of(conn: asyncpg.Connection, report_ids: Sequence[int]) -> list[Delivery]:
    rows = await conn.fetch(
        "SELECT * FROM report_deliveries WHERE report_id = ANY($1::bigint[])"
        " ORDER BY report_id, sent_at, id",
        list(report_ids),
    )
    return [_delivery(r) for r in rows]


async def failed_deliveries(conn: asyncpg.Connection, since: datetime) -> list[tuple[int, str]]:
    """(report id, recipient) whose latest attempt failed, for reports generated since `since`."""
    rows = await conn.fetch(
        """
        SELECT report_id, recipient FROM (
            SELECT DISTINCT ON (d.report_id, d.recipient) d.report_id, d.recipient, d.status
            FROM report_deliveries d JOIN daily_reports r ON r.id = d.report_id
            WHERE r.generated_at >= $1
            ORDER BY d.report_id, d.recipient, d.sent_at DESC, d.id DESC
        ) latest WHERE status = 'failed' ORDER BY report_id, recipient
        """,
        since,
    )
    return [(r[0], r[1]) for r in rows]
