"""Seeding the duplicate memory from the access log (at start, or on taking a partition)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from gateway.domain.decisions import Decision
from gateway.pipeline.dedupe import SeenEvents
from gateway.policy.roster_index import RosterIndex


def remember_decisions(
    seen: SeenEvents, recent: Sequence[tuple[object, ...]], index: RosterIndex
) -> None:
    """Remember logged card decisions (`access_log.recent_decisions(with_person=True)` rows):
    a duplicate gets the original decision, greeting included."""
    now, clock = datetime.now(UTC), time.perf_counter()
    for device_id, event_id, verdict, reason, person_id, received_at, offline in recent:
        person = index.person(str(person_id)) if person_id else None
        decision = Decision.recorded(
            str(event_id), str(verdict), str(reason), person.name if person else None
        )
        if offline:
            # As the upload desk remembers it: a repeat of an uploaded id opens nothing.
            decision = decision.as_late()
        # When it arrived, on this process's clock: a repeat is late by the same measure.
        assert isinstance(received_at, datetime)
        arrived = clock - (now - received_at).total_seconds()
        seen.remember((str(device_id), str(event_id)), decision, arrived)
