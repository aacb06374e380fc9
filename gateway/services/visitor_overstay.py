"""The overstay watch: a visitor still inside after their pass ended raises
`visitor_overstay`, once per pass (issue 15, point 5).

Inside means: their last admitted passage in one of the pass's zones since the pass
began was `in`, with no `out` after (the access log, as occupancy reads it). Several
servers may run the job: the pass is claimed in the same transaction as the alert. The
job runs where no MQTT client is: the alert is stored pending publication, and a gateway
publishes it on `P/alerts/visitor_overstay` (gateway/pipeline/alert_relay.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from gateway.domain.alerts import SEVERITY, Alert, AlertKind
from gateway.services.scheduler import Job
from gateway.store import visitor_passes as store
from gateway.store.alerts import insert_alerts

EVERY_S = 60.0
# Passes that ended longer ago than this are not watched (a server down for days does not
# flood the console with stale overstays when it returns).
LOOKBACK = timedelta(days=2)


def _alert(pass_id: int, rows: Iterable[dict[str, Any]], now: datetime) -> Alert:
    first = next(iter(rows))
    zones = sorted({r["zone_id"] for r in rows})
    return Alert(
        id=uuid.uuid4().hex,
        kind=AlertKind.VISITOR_OVERSTAY,
        ts=now,
        severity=SEVERITY[AlertKind.VISITOR_OVERSTAY],
        door=first["door_id"],
        zone=first["zone_id"],
        person=first["visitor_person_id"],
        detail={
            "pass_id": pass_id,
            "pass_ended": first["ends_at"].isoformat(),
            "entered_at": first["received_at"].isoformat(),
            "zones": zones,
        },
    )


async def raise_overstays(conn: asyncpg.Connection, now: datetime) -> list[Alert]:
    """Alerts for every ended pass whose visitor is still inside; each pass once."""
    by_pass: dict[int, list[dict[str, Any]]] = {}
    for row in await store.overstays(conn, now, LOOKBACK):
        by_pass.setdefault(row["id"], []).append(row)
    raised = []
    for pass_id, rows in by_pass.items():
        async with conn.transaction():
            if await store.claim_overstay(conn, pass_id, now):
                alert = _alert(pass_id, rows, now)
                await insert_alerts(conn, [alert], publish_pending=True)
                raised.append(alert)
    return raised


def overstay_job(pool: asyncpg.Pool) -> Job:
    async def run(now: datetime) -> dict[str, int]:
        async with pool.acquire() as conn:
            return {"raised": len(await raise_overstays(conn, now))}

    return Job("visitor_overstay", run, every_s=EVERY_S)
