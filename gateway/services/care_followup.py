"""Caretakers' follow-up (issue #15, point 4): record each contact with a person in
isolation, and find the cases that have gone quiet, for their caretaker and, a day later,
for the health officers."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from gateway.domain.care import CareContact, CareContactError, FollowUp, follow_up
from gateway.services.errors import InvalidValueError, NotFoundError
from gateway.store.audit import record_audit
from gateway.store.care_contacts import (
    IsolationCase,
    RecordedContact,
    contacts_of,
    isolation_cases,
    record_contact,
)
from gateway.store.health import lock_people


async def record_care_contact(
    conn: asyncpg.Connection,
    person_id: str,
    contact: CareContact,
    *,
    by: str,
    now: datetime,
    caretaker: str | None = None,
) -> RecordedContact:
    """Record one contact with a person now in isolation, audited.

    `caretaker` (a caretaker recording through their own page) must be the person's
    assigned caretaker; anyone else is told there is no such case, so the route does not
    reveal who is in isolation. Operators (health officers, admins) pass None.
    """
    async with conn.transaction():
        await lock_people(conn, [person_id])  # the case cannot end or move under us
        found = await isolation_cases(conn, now, person_ids=[person_id])
        if not found or (caretaker is not None and found[0].caretaker_id != caretaker):
            raise NotFoundError(f"no current isolation case {person_id!r} in your care")
        case = found[0]
        try:
            contact.checked(now, case.since)
        except CareContactError as exc:
            raise InvalidValueError(str(exc)) from exc
        recorded = await record_contact(conn, person_id, case.caretaker_id, contact, by)
        await record_audit(
            conn,
            by,
            "record_care_contact",
            "care_contact",
            person_id,
            after={
                "id": recorded.id,
                "channel": recorded.channel.value,
                "at": recorded.at.isoformat(),
                "feeling": recorded.feeling.value,
                "caretaker_id": recorded.caretaker_id,
            },
        )
    return recorded


async def case_contacts(
    conn: asyncpg.Connection, person_id: str, *, now: datetime, caretaker: str | None = None
) -> tuple[IsolationCase, list[RecordedContact]]:
    """A current case and its contacts since it began (only the caretaker's own case when
    `caretaker` is given)."""
    found = await isolation_cases(conn, now, person_ids=[person_id])
    if not found or (caretaker is not None and found[0].caretaker_id != caretaker):
        raise NotFoundError(f"no current isolation case {person_id!r} in your care")
    return found[0], await contacts_of(conn, person_id, since=found[0].since)


async def follow_ups(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    caretaker: str | None = None,
    at_least: FollowUp | None = None,
    org_scope: str | None = None,
) -> list[IsolationCase]:
    """Current isolation cases; only one caretaker's
    when given; only those flagged at least to `at_least` when given (health officers
    ask for `health_officer`); only those of an org unit's subtree when given."""
    cases = await isolation_cases(conn, now, caretaker_id=caretaker, org_scope=org_scope)
    if at_least is None:
        return cases
    wanted = {FollowUp.HEALTH_OFFICER}
    if at_least is FollowUp.CARETAKER:
        wanted.add(FollowUp.CARETAKER)
    return [c for c in cases if follow_up(c.since, c.last_contact_at, now) in wanted]
