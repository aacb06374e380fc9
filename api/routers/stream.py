"""WebSocket /api/alerts/stream: new alerts and lifecycle steps, filtered by role.

Authenticated by the session cookie (console) or `?token=` (integrations). A client
that connects with `?since=<cursor or RFC 3339 time>` first receives what it missed. The
cursor is the alert feed's commit-ordered sequence number (migration 0007): every message
carries one, `GET /api/alerts` returns the current one in its `X-Alert-Cursor` header, and
since a cursor is taken only after every lower one has committed, resuming from the last
one seen never skips a change that committed late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder

from api.deps import SESSION_COOKIE, authenticate, idle_timeout
from api.permissions import org_scoped, present_alert, visible_alert_kinds
from gateway.domain.alerts import AlertKind
from gateway.domain.operators import OperatorRole
from gateway.store.alert_feed import AlertChange, alert_changes_after, alert_cursor
from gateway.store.db import DATABASE_ERRORS
from gateway.store.org_tree import org_subtree

router = APIRouter()
_LOGGER = logging.getLogger(__name__)
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_BAD_REQUEST = 4400


REPLAY_PAGE = 1000
RECHECK_S = 60.0


def _message(change: AlertChange, role: OperatorRole) -> dict[str, Any]:
    return jsonable_encoder(
        {
            "type": "alert",
            "cursor": change.cursor,
            "change": change.change,
            "operator": change.operator,
            "note": change.note,
            "changed_at": change.changed_at,
            "alert": present_alert(asdict(change.alert), role),
        }
    )


def _parse_since(since: str | None) -> tuple[int | None, datetime | None]:
    if not since:
        return None, None
    if since.isdigit():
        return int(since), None
    return None, datetime.fromisoformat(since.replace("Z", "+00:00"))


def origin_allowed(websocket: WebSocket) -> bool:
    """A browser's stream must come from this host's own page or a configured origin;
    clients that send no Origin (integrations with a token) are not browsers."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    host = websocket.headers.get("host", "").lower()
    if origin in (f"http://{host}", f"https://{host}"):
        return True
    return origin in websocket.app.state.settings.allowed_origin_set


@dataclass(frozen=True)
class _Viewer:
    """Who is on the stream and what they may see of it."""

    operator_id: str
    role: OperatorRole
    kinds: frozenset[AlertKind] | None  # None: every kind
    units: frozenset[str] | None  # a liaison's org unit and those under it
    still_valid: Callable[[], Awaitable[bool]]

    def sees(self, change: AlertChange) -> bool:
        if self.units is not None and change.person_org_unit not in self.units:
            return False
        return self.kinds is None or change.alert.kind in self.kinds


@router.websocket("/api/alerts/stream")
async def alert_stream(websocket: WebSocket) -> None:
    admitted = await _admit(websocket)
    if admitted is None:
        return
    viewer, cursor, since = admitted
    await websocket.accept()
    pool = websocket.app.state.pool
    hub = websocket.app.state.alert_hub
    queue = hub.subscribe()  # before the catch-up, so nothing falls between them
    operator_changed = hub.watch_operator(viewer.operator_id)
    try:
        async with pool.acquire() as conn:
            # Read after subscribing: what committed later comes through the queue too.
            head = await alert_cursor(conn)
        last = await _replay(websocket, pool, viewer, cursor, since)
        last = max(last, head)  # without `since`: from now on
        await websocket.send_json({"type": "ready", "cursor": last})
        await _follow(websocket, queue, operator_changed, viewer, last)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(queue)
        hub.unwatch_operator(viewer.operator_id, operator_changed)


async def _admit(websocket: WebSocket) -> tuple[_Viewer, int | None, datetime | None] | None:
    """The handshake: the viewer and where to resume, or None once the socket is closed
    with the reason (foreign origin, no credential, no kinds to see, a bad `since`)."""
    app = websocket.app
    if not origin_allowed(websocket):
        await websocket.close(CLOSE_FORBIDDEN)
        return None
    token = websocket.query_params.get("token")
    cookie = websocket.cookies.get(SESSION_COOKIE)
    idle = idle_timeout(app)
    async with app.state.pool.acquire() as conn:
        found = await authenticate(conn, token, cookie, idle)
    if found is None:
        await websocket.close(CLOSE_UNAUTHORIZED)
        return None

    async def still_valid() -> bool:
        async with app.state.pool.acquire() as conn:
            return await authenticate(conn, token, cookie, idle, touch=False) is not None

    account = found[0]
    kinds = visible_alert_kinds(account.role)
    if kinds is not None and not kinds:
        await websocket.close(CLOSE_FORBIDDEN)
        return None
    try:
        cursor, since = _parse_since(websocket.query_params.get("since"))
    except ValueError:
        await websocket.close(CLOSE_BAD_REQUEST)
        return None
    units: frozenset[str] | None = None
    if org_scoped(account.role):
        scope = account.org_unit_id
        async with app.state.pool.acquire() as conn:
            units = frozenset(await org_subtree(conn, scope) if scope else ())
    viewer = _Viewer(account.id, account.role, kinds, units, still_valid)
    return viewer, cursor, since


async def _replay(
    websocket: WebSocket,
    pool: asyncpg.Pool,
    viewer: _Viewer,
    cursor: int | None,
    since: datetime | None,
) -> int:
    """Send what the viewer missed since `cursor` or `since`, a page at a time; return the
    last cursor read (seen or not), 0 when nothing was asked for."""
    last = cursor or 0
    while cursor is not None or since is not None:
        async with pool.acquire() as conn:
            missed = await alert_changes_after(conn, cursor=cursor, since=since, limit=REPLAY_PAGE)
        for change in missed:
            last = max(last, change.cursor)
            if viewer.sees(change):
                await websocket.send_json(_message(change, viewer.role))
        if len(missed) < REPLAY_PAGE:
            break
        cursor, since = last, None
    return last


async def _follow(
    websocket: WebSocket,
    queue: asyncio.Queue[AlertChange | None],
    operator_changed: asyncio.Event,
    viewer: _Viewer,
    last: int,
) -> None:
    """Forward live changes past `last` until the client leaves, the credential lapses
    or the hub shuts down."""
    receiver = asyncio.create_task(_drain(websocket))
    recheck = asyncio.create_task(_recheck(operator_changed, viewer.still_valid))
    try:
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait(
                {getter, receiver, recheck}, return_when=asyncio.FIRST_COMPLETED
            )
            if receiver in done:
                getter.cancel()
                return
            if recheck in done:
                # Disabled, removed, token revoked or expired, password changed,
                # logged out or idle: the stream ends with the credential.
                getter.cancel()
                await websocket.close(CLOSE_UNAUTHORIZED)
                return
            change = getter.result()
            if change is None:
                await websocket.close(1012)
                return
            if change.cursor <= last or not viewer.sees(change):
                continue
            last = change.cursor
            await websocket.send_json(_message(change, viewer.role))
    finally:
        receiver.cancel()
        recheck.cancel()


async def _recheck(changed: asyncio.Event, still_valid: Callable[[], Awaitable[bool]]) -> None:
    """Return once the stream's credential no longer holds: checked at once when its
    operator changes (NOTIFY), and every RECHECK_S for expiry and idle time."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), RECHECK_S)
        changed.clear()
        try:
            if not await still_valid():
                return
        except DATABASE_ERRORS:
            # The database is away: keep the stream (no reconnect storm), check again later.
            _LOGGER.warning("cannot re-check a live stream's credential", exc_info=True)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        return
