"""Retention of the audit log: old entries keep who did what to which object and when,
but lose the personal details of their snapshots once the data they describe is gone.

A redacted entry keeps id, operator (the actor), action, entity, entity_id and ts; its
`before` and `after` become `{"redacted": [the keys they had]}` (so it still says which
fields changed) and `redacted_at` is set. Migration 0029 lets only that change through,
and only inside a transaction that sets `campusgate.retention_redact`.

Which entries, by the data they describe:
- health data (statuses, readings, check-ins and their reviews, care contacts, travel
  declarations and trip plans, caretakers' case lists, close-contact marking): older
  than the health period, as the data itself;
- visitor passes (requests, decisions, QR fetches, unmasking): once the pass has been
  deleted by retention (it ended before the access cut-off);
- a person (their account, sessions, invitations, exports, roster edits): once that
  person's account goes, i.e. deactivated or expired before the account cut-off.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from gateway.store.person_accounts import DEPARTED_PERSON

# Audit entities whose snapshots are health data (and go with the health period).
HEALTH_ENTITIES = (
    "health_status",
    "health_reading",
    "daily_checkin",
    "checkin_contact_review",
    "care_contact",
    "travel_declaration",
    "caretaker_cases",
)
# Entries on entity "person" whose snapshots are health data rather than about the person.
HEALTH_PERSON_ACTIONS = ("trace", "mark_close_contacts")
PERSON_ENTITIES = ("person", "person_session")


_WHERE = {
    "audit_redacted_health": (
        "ts < $1 AND (entity = ANY($2::text[]) OR (entity = 'person' AND action = ANY($3::text[])))"
    ),
    "audit_redacted_visitor_passes": (
        # Gone, or going in this run (a dry run counts those too).
        "entity = 'visitor_pass' AND NOT EXISTS (SELECT 1 FROM visitor_passes v"
        " WHERE v.id::text = audit_log.entity_id AND v.ends_at >= $1)"
    ),
    "audit_redacted_people": (
        "entity = ANY($2::text[]) AND EXISTS (SELECT 1 FROM people p"
        f" WHERE p.id = audit_log.entity_id AND {DEPARTED_PERSON})"
    ),
}


def _redacted(column: str) -> str:
    """SQL for a snapshot reduced to the names of its keys."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL"
        f" WHEN jsonb_typeof({column}) = 'object' THEN jsonb_build_object('redacted',"
        f" (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb)"
        f" FROM jsonb_object_keys({column}) k))"
        """ ELSE '{"redacted": []}'::jsonb END"""
    )


async def redact_audit(
    conn: asyncpg.Connection,
    *,
    health_cutoff: datetime,
    access_cutoff: datetime,
    account_cutoff: datetime,
    dry_run: bool,
) -> dict[str, int]:
    """Redact (or count) the entries each rule reaches that are not redacted yet."""
    steps: list[tuple[str, tuple[object, ...]]] = [
        (
            "audit_redacted_health",
            (health_cutoff, list(HEALTH_ENTITIES), list(HEALTH_PERSON_ACTIONS)),
        ),
        ("audit_redacted_people", (account_cutoff, list(PERSON_ENTITIES))),
    ]
    if await conn.fetchval("SELECT to_regclass('visitor_passes') IS NOT NULL"):
        steps.insert(1, ("audit_redacted_visitor_passes", (access_cutoff,)))
    counts: dict[str, int] = {}
    for key, args in steps:
        where = f"redacted_at IS NULL AND {_WHERE[key]}"
        if dry_run:
            counts[key] = int(
                await conn.fetchval(f"SELECT count(*) FROM audit_log WHERE {where}", *args)
            )
            continue
        async with conn.transaction():
            # The one change audit_log lets through (migration 0029), local to this transaction.
            await conn.execute("SET LOCAL campusgate.retention_redact = 'on'")
            status = await conn.execute(
                f"UPDATE audit_log SET before = {_redacted('before')},"
                f" after = {_redacted('after')}, redacted_at = now() WHERE {where}",
                *args,
            )
        counts[key] = int(status.rsplit(" ", 1)[-1])
    return counts
