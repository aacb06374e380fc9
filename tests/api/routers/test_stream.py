"""WebSocket /api/alerts/stream against a uvicorn server and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
import websockets

from gateway.domain.alerts import Alert, AlertKind, AlertStatus, Severity
from gateway.services.operations import change_alert
from gateway.store.alerts import insert_alerts
from gateway.store.db import connect

TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
async def server(app) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.02)
    yield f"ws://127.0.0.1:{port}/api/alerts/stream"
    srv.should_exit = True
    await task


@pytest.fixture
async def db(api_world):
    conn = await connect(api_world.dsn)
    yield conn
    await conn.close()


def _alert(kind: AlertKind, *, person: str | None = None, detail: dict | None = None) -> Alert:
    return Alert(
        f"t-{kind.value}-{uuid.uuid4().hex[:8]}",
        kind,
        datetime.now(UTC),
        Severity.HIGH,
        "dorm-1-main",
        "dorm-1",
        "term-dorm-1",
        person,
        detail or {},
    )


async def _open(url: str, token: str, since: str | int | None = None):
    query = f"?token={token}" + (f"&since={since}" if since is not None else "")
    ws = await websockets.connect(url + query)
    return ws


async def _until_ready(ws) -> tuple[list[dict[str, Any]], int]:
    replayed = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if message["type"] == "ready":
            return replayed, message["cursor"]
        replayed.append(message)


async def _next_for(ws, alert_id: str, change: str | None = None) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if message["alert"]["id"] == alert_id and (change is None or message["change"] == change):
            return message


async def _nothing_for(ws, alert_ids: set[str], wait: float = 0.7) -> None:
    try:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), wait))
            assert message["alert"]["id"] not in alert_ids, message
    except TimeoutError:
        return


async def test_new_alert_and_its_changes_reach_a_connected_client(server, api_world, db):
    ws = await _open(server, api_world.tokens["guard"])
    try:
        await _until_ready(ws)
        alert = _alert(AlertKind.OUTSIDER)
        await insert_alerts(db, [alert])
        raised = await _next_for(ws, alert.id)
        assert raised["change"] == "open" and raised["alert"]["kind"] == "outsider"
        # Names beside the ids, for the console's rows (no door name in this roster).
        assert (raised["alert"]["zone_name"], raised["alert"]["door_name"]) == ("Dorm 1", None)
        await change_alert(db, alert.id, AlertStatus.ACKNOWLEDGED, by="guard", note="on it")
        step = await _next_for(ws, alert.id, "acknowledged")
        assert step["operator"] == "guard" and step["note"] == "on it"
        assert step["cursor"] > raised["cursor"]
        await change_alert(db, alert.id, AlertStatus.RESOLVED, by="guard", note="gone")
        assert (await _next_for(ws, alert.id, "resolved"))["alert"]["status"] == "resolved"
    finally:
        await ws.close()


async def test_roles_filter_the_stream(server, api_world, db):
    guard = await _open(server, api_world.tokens["guard"])
    officer = await _open(server, api_world.tokens["health_officer"])
    try:
        await _until_ready(guard)
        await _until_ready(officer)
        fever = _alert(
            AlertKind.FEVER, person="S001", detail={"card_uid": "04A1B2C3", "celsius": 38.6}
        )
        outsider = _alert(AlertKind.OUTSIDER)
        gathering = _alert(AlertKind.GATHERING, detail={"occupancy": 40, "threshold": 30})
        full = _alert(AlertKind.ZONE_FULL)
        await insert_alerts(db, [fever, gathering, full, outsider])  # in this order
        # A guard sees the fever alert, but not the temperature (no health details).
        seen = await _next_for(guard, fever.id)
        assert seen["alert"]["detail"] == {"card_uid": "04A1B2C3"}
        await _next_for(guard, outsider.id)
        # A health officer sees the detail, the health alerts and the crowd ones
        # (gathering, zone_full), as GET /api/alerts; not an outsider.
        seen = await _next_for(officer, fever.id)
        assert seen["alert"]["detail"]["celsius"] == 38.6
        assert (await _next_for(officer, gathering.id))["alert"]["kind"] == "gathering"
        assert (await _next_for(officer, full.id))["alert"]["kind"] == "zone_full"
        await _nothing_for(officer, {outsider.id})
    finally:
        await guard.close()
        await officer.close()


async def test_liaison_sees_only_non_health_alerts_about_own_org_unit(server, api_world, db):
    ws = await _open(server, api_world.tokens["liaison"])  # liaison of cs (and cs-1)
    try:
        await _until_ready(ws)
        theirs = _alert(AlertKind.UNAUTHORIZED, person="S001")  # cs-1
        other = _alert(AlertKind.UNAUTHORIZED, person="S002")  # math
        fever = _alert(AlertKind.FEVER, person="T001", detail={"celsius": 38.0})  # cs, health
        nobody = _alert(AlertKind.OUTSIDER)
        await insert_alerts(db, [theirs, other, fever, nobody])  # in this order on the feed
        assert (await _next_for(ws, theirs.id))["alert"]["person"] == "S001"
        await _nothing_for(ws, {other.id, fever.id, nobody.id})
    finally:
        await ws.close()


async def test_strangers_and_bad_since_are_refused(server, api_world):
    # Closed before the handshake completes, which the server answers with HTTP 403.
    for token, since in (("not-a-token", None), (api_world.tokens["guard"], "not-a-time")):
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await _open(server, token, since)
        assert refused.value.response.status_code == 403


async def test_reconnect_with_since_replays_what_was_missed(server, api_world, db):
    ws = await _open(server, api_world.tokens["admin"])
    first = _alert(AlertKind.DOOR_FORCED)
    try:
        await _until_ready(ws)
        await insert_alerts(db, [first])
        cursor = (await _next_for(ws, first.id))["cursor"]
    finally:
        await ws.close()
    missed = _alert(AlertKind.TAILGATING)
    await insert_alerts(db, [missed])
    await change_alert(db, first.id, AlertStatus.RESOLVED, by="admin", note="while away")
    ws = await _open(server, api_world.tokens["admin"], cursor)
    try:
        replayed, ready = await _until_ready(ws)
        got = [(m["alert"]["id"], m["change"]) for m in replayed]
        assert got == [(missed.id, "open"), (first.id, "resolved")]
        assert ready == replayed[-1]["cursor"]
        assert all(m["cursor"] > cursor for m in replayed)
    finally:
        await ws.close()


async def test_first_connection_from_the_rest_cursor_leaves_no_gap(server, api_world, db, admin):
    listed = await admin.get("/api/alerts", params={"limit": 5})
    cursor = int(listed.headers["X-Alert-Cursor"])
    # Raised after the page's list and before its stream connects: the stream replays it.
    between = _alert(AlertKind.DOOR_HELD_OPEN)
    await insert_alerts(db, [between])
    ws = await _open(server, api_world.tokens["guard"], cursor)
    try:
        replayed, _ = await _until_ready(ws)
        assert between.id in {m["alert"]["id"] for m in replayed}
    finally:
        await ws.close()


async def test_a_late_commit_with_a_lower_history_id_is_not_skipped(server, api_world, db):
    """Two transactions committing out of history-id order: the stream sees both, and a
    client that resumes from the later one's cursor has not skipped the other."""
    ws = await _open(server, api_world.tokens["admin"])
    slow_conn = await connect(api_world.dsn)
    try:
        await _until_ready(ws)
        slow, fast = _alert(AlertKind.DOOR_FORCED), _alert(AlertKind.DOOR_FORCED)
        tx = slow_conn.transaction()
        await tx.start()
        await insert_alerts(slow_conn, [slow])  # takes the lower alert_history id, uncommitted
        await insert_alerts(db, [fast])  # higher id, commits first
        fast_msg = await _next_for(ws, fast.id)
        await tx.commit()
        slow_msg = await _next_for(ws, slow.id)
        ids = await db.fetch(
            "SELECT alert_id, id FROM alert_history WHERE alert_id = ANY($1::text[])",
            [slow.id, fast.id],
        )
        history_ids = {r[0]: r[1] for r in ids}
        assert history_ids[slow.id] < history_ids[fast.id]  # committed out of id order
        assert slow_msg["cursor"] > fast_msg["cursor"]  # but the cursor follows commit order
    finally:
        await ws.close()
        await slow_conn.close()
    # Resuming from the fast one's cursor still replays the slow one.
    ws = await _open(server, api_world.tokens["admin"], fast_msg["cursor"])
    try:
        replayed, _ = await _until_ready(ws)
        assert slow.id in {m["alert"]["id"] for m in replayed}
    finally:
        await ws.close()
