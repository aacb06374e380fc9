"""Contact tracing use cases: trace a person (one or two generations), mark close contacts.

Both are audited: who traced whom over which window, and who was marked by whom.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.domain.health import HealthRecord, HealthStatus
from gateway.domain.spreadsheet import safe_cell
from gateway.domain.tracing import (
    MIN_OVERLAP_S,
    SECOND_MAX_SEEDS,
    SECOND_MAX_SEEDS_LIMIT,
    SECOND_MIN_EXPOSURE_S,
    Contact,
    MarkOutcome,
    TraceResult,
    TraceWindow,
)
from gateway.services.caretaking import choose_caretakers, reassign_cases
from gateway.services.errors import InvalidValueError, NotFoundError
from gateway.services.health import lock_people
from gateway.settings import Settings
from gateway.store import tracing as store
from gateway.store.audit import record_audit
from gateway.store.health import set_health_many

MAX_WINDOW_DAYS = 60
# Statuses a close_contact mark must never replace: they are stronger.
STRONGER = frozenset({HealthStatus.SUSPECTED, HealthStatus.CONFIRMED})
# Statuses that already isolate: replaced only when the mark lasts longer.
ISOLATING = frozenset({HealthStatus.CLOSE_CONTACT, HealthStatus.HOME_ISOLATION})


class TraceError(InvalidValueError):
    """Bad input to a trace or a mark (unknown person, bad window): the caller's fault."""


class UnknownPerson(NotFoundError, TraceError):
    """The person to trace or mark from does not exist."""


@dataclass(frozen=True, slots=True)
class TraceRequest:
    person_id: str
    start: datetime | None = None
    end: datetime | None = None
    days: int | None = None
    generations: int = 1
    limit: int | None = None
    min_overlap_s: float = MIN_OVERLAP_S
    # Second generation: traced from first-generation contacts with at least this much
    # exposure, the top `second_max_seeds` of them.
    second_min_exposure_s: float = SECOND_MIN_EXPOSURE_S
    second_max_seeds: int = SECOND_MAX_SEEDS


def window_of(
    request: TraceRequest, settings: Settings, now: datetime | None = None
) -> TraceWindow:
    """The window a request means: `start`/`end`, else `days` (default from settings) to now."""
    now = now or datetime.now(UTC)
    end = request.end or now
    if request.start is not None and request.days is not None:
        raise TraceError("give either a start or a number of days, not both")
    days = request.days if request.days is not None else settings.trace_window_days
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise TraceError(f"days must be 1-{MAX_WINDOW_DAYS}")
    start = request.start or end - timedelta(days=days)
    for when in (start, end):
        if when.tzinfo is None:
            raise TraceError("times need a UTC offset, e.g. 2026-03-01T08:00:00+08:00")
    if start >= end:
        raise TraceError("the window must start before it ends")
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        raise TraceError(f"the window may span at most {MAX_WINDOW_DAYS} days")
    if request.generations not in (1, 2):
        raise TraceError("generations must be 1 or 2")
    if request.min_overlap_s < 0:
        raise TraceError("min_overlap_s must not be negative")
    if request.second_min_exposure_s < 0:
        raise TraceError("second_min_exposure_s must not be negative")
    if not 1 <= request.second_max_seeds <= SECOND_MAX_SEEDS_LIMIT:
        raise TraceError(f"second_max_seeds must be 1-{SECOND_MAX_SEEDS_LIMIT}")
    return TraceWindow(
        start=start,
        end=end,
        max_stay_s=settings.trace_max_stay_h * 3600.0,
        entry_gap_s=settings.trace_entry_gap_s,
        min_overlap_s=request.min_overlap_s,
    )


async def trace(
    conn: asyncpg.Connection,
    request: TraceRequest,
    settings: Settings,
    *,
    by: str,
    now: datetime | None = None,
) -> TraceResult:
    """Everyone who shared a zone with the person in the window, ranked by exposure.

    Second generation: contacts of the close first-generation contacts (exposure at least
    `second_min_exposure_s`, the top `second_max_seeds`) from each one's first encounter
    with the index person on, without the index and the first generation; each names
    the first-generation contacts it was found through (`via`).
    """
    window = window_of(request, settings, now)
    exists, name = await store.person_name(conn, request.person_id)
    if not exists:
        raise UnknownPerson(f"no person {request.person_id!r}")
    first = await store.find_contacts(conn, [(request.person_id, window.start)], window)
    contacts: list[Contact] = list(first)
    eligible: list[Contact] = []
    seeds: list[Contact] = []
    if request.generations == 2:
        # `first` is ranked by exposure, so the cap keeps the closest contacts.
        eligible = [c for c in first if c.exposure_s >= request.second_min_exposure_s]
        seeds = eligible[: request.second_max_seeds]
        contacts += await store.find_contacts(
            conn,
            [(c.person_id, c.first_encounter) for c in seeds],
            window,
            exclude=[request.person_id, *(c.person_id for c in first)],
            generation=2,
        )
    truncated = request.limit is not None and len(contacts) > request.limit
    if request.limit is not None:
        # Keep the ranking within each generation; the first generation comes first.
        contacts = contacts[: request.limit]
    await record_audit(
        conn,
        by,
        "trace",
        "person",
        request.person_id,
        after={
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "generations": request.generations,
            "first_generation": len(first),
            "second_seeds": len(seeds),
            "second_min_exposure_s": request.second_min_exposure_s,
            "returned": len(contacts),
        },
    )
    return TraceResult(
        request.person_id,
        name,
        window,
        request.generations,
        tuple(contacts),
        truncated,
        second_seeds=tuple(c.person_id for c in seeds),
        second_seeds_eligible=len(eligible),
        second_seeds_truncated=len(eligible) > len(seeds),
        second_min_exposure_s=request.second_min_exposure_s,
        second_max_seeds=request.second_max_seeds,
    )


CSV_HEADER = (
    "generation",
    "person_id",
    "name",
    "method",
    "exposure_s",
    "overlap_s",
    "encounters",
    "proximity_encounters",
    "first_encounter",
    "last_encounter",
    "zones",
    "via",
    "second_seed",
)


def contacts_csv(result: TraceResult) -> str:
    """The contacts as CSV with a header row (times in UTC, RFC 3339).

    `via`: the first-generation contacts a second-generation one was found through.
    `second_seed` (first generation of a two-generation trace): `yes` when the second
    generation was traced from this contact, `capped` when its exposure was enough but
    `second_max_seeds` left it out, `no` when its exposure was too short.
    """
    seeds = set(result.second_seeds)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for c in result.contacts:
        writer.writerow(
            safe_cell(cell)
            for cell in (
                c.generation,
                c.person_id,
                c.name or "",
                c.method.value,
                c.exposure_s,
                c.overlap_s,
                c.encounters,
                c.proximity_encounters,
                c.first_encounter.astimezone(UTC).isoformat(),
                c.last_encounter.astimezone(UTC).isoformat(),
                " ".join(c.zones),
                " ".join(c.via),
                _seed_mark(c, result, seeds),
            )
        )
    return out.getvalue()


def _seed_mark(contact: Contact, result: TraceResult, seeds: set[str]) -> str:
    if result.generations < 2 or contact.generation != 1:
        return ""
    if contact.person_id in seeds:
        return "yes"
    return "capped" if contact.exposure_s >= result.second_min_exposure_s else "no"


async def mark_close_contacts(
    conn: asyncpg.Connection,
    index_person: str,
    contacts: Sequence[str],
    *,
    reason: str,
    by: str,
    isolation_days: int,
    now: datetime | None = None,
) -> MarkOutcome:
    """Set `close_contact` until now + `isolation_days`, with caretakers, in one transaction.

    Never replaces a stronger status (suspected, confirmed), nor an isolation that already
    lasts as long; those are returned as skipped, with why. The roster trigger tells the
    gateways, which deny the marked people at once.
    """
    now = now or datetime.now(UTC)
    until = now + timedelta(days=isolation_days)
    wanted = list(dict.fromkeys(contacts))
    if not wanted:
        raise TraceError("choose at least one contact to mark")
    if not reason.strip():
        raise TraceError("give a reason")
    async with conn.transaction():
        if not (await store.person_name(conn, index_person))[0]:
            raise UnknownPerson(f"no person {index_person!r}")
        # Lock them as every other status change does, so an officer's concurrent
        # `confirmed` is seen here and never replaced by the weaker close_contact.
        known = await lock_people(conn, wanted)
        unknown = [p for p in wanted if p not in known]
        if unknown:
            raise UnknownPerson(f"no person {unknown[0]!r}")
        current = await store.current_statuses(conn, wanted)
        skipped: list[tuple[str, str]] = []
        chosen: list[str] = []
        for person in wanted:
            if person == index_person:
                skipped.append((person, "the index person is not their own contact"))
                continue
            why = _why_not(current.get(person), now, until)
            if why:
                skipped.append((person, why))
            else:
                chosen.append(person)
        # Everyone chosen is held by this step: none of them cares for another (see
        # choose_caretakers), and those who cared for others before hand them on below.
        caretakers = await choose_caretakers(conn, chosen) if chosen else {}
        text = f"close contact of {index_person}: {reason.strip()}"
        records = [
            HealthRecord(
                person,
                HealthStatus.CLOSE_CONTACT,
                since=now,
                until=until,
                reason=text,
                caretaker_id=caretakers.get(person),
                set_by=by,
            )
            for person in chosen
        ]
        await set_health_many(conn, records, changed_by=by)
        reassigned = await reassign_cases(conn, by=by, caretakers=chosen, now=now)
        await record_audit(
            conn,
            by,
            "mark_close_contacts",
            "person",
            index_person,
            after={
                "marked": chosen,
                "skipped": dict(skipped),
                "until": until.isoformat(),
                "reason": reason.strip(),
            },
        )
    return MarkOutcome(
        tuple((p, caretakers.get(p)) for p in chosen), tuple(skipped), until, tuple(reassigned)
    )


def _why_not(current: HealthRecord | None, now: datetime, until: datetime) -> str | None:
    if current is None:
        return None
    status = current.effective_status(now)
    if status in STRONGER:
        return f"already {status.value} (a stronger status than close_contact)"
    if status in ISOLATING and (current.until is None or current.until >= until):
        held = "indefinitely" if current.until is None else f"until {current.until.isoformat()}"
        return f"already {status.value} {held}"
    return None
