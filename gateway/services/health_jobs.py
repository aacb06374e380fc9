"""Scheduled health jobs: status expiry, travel re-evaluation and caretaker reassignment
(once a minute)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from gateway.services.caretaking import REASSIGN_ACTOR, reassign_cases
from gateway.services.health import EXPIRY_ACTOR, expire_statuses
from gateway.services.scheduler import Job
from gateway.services.travel import TRAVEL_ACTOR, TravelRules, evaluate
from gateway.settings import Settings

EVERY_S = 60.0


def health_jobs(pool: asyncpg.Pool, settings: Settings) -> list[Job]:
    rules = TravelRules(settings.isolation_days, settings.tz)

    async def expire(now: datetime) -> dict[str, int]:
        async with pool.acquire() as conn:
            return {"cleared": len(await expire_statuses(conn, now))}

    async def travel(now: datetime) -> dict[str, int]:
        # Expiry first, so a status that just ended no longer holds a trip waiting.
        async with pool.acquire() as conn:
            await expire_statuses(conn, now)
            result = await evaluate(conn, rules, by=TRAVEL_ACTOR, now=now)
        return {k: len(v) for k, v in result.as_dict().items()}

    async def reassign(now: datetime) -> dict[str, int]:
        # A hold the operators' routes did not set (a fever at a door puts the person on
        # fever_watch from the gateway's journal) still hands the person's cases on.
        async with pool.acquire() as conn:
            moved = await reassign_cases(conn, by=REASSIGN_ACTOR, now=now)
        return {
            "reassigned": sum(1 for r in moved if r.caretaker_id is not None),
            "without_caretaker": sum(1 for r in moved if r.caretaker_id is None),
        }

    return [
        Job(f"health-{EXPIRY_ACTOR}", expire, every_s=EVERY_S),
        Job("travel-evaluation", travel, every_s=EVERY_S),
        Job("caretaker-reassignment", reassign, every_s=EVERY_S),
    ]
