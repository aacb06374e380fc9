from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.domain.alerts import SEVERITY, Alert, AlertKind, AlertStatus
from gateway.domain.operators import OperatorRole
from gateway.store.alerts import (
    AlertNotFound,
    AlertTransitionError,
    alert_history,
    get_alert,
    insert_alerts,
    open_alert_for,
    open_alerts,
    set_alert_status,
)
from gateway.store.operators import (
    OperatorExistsError,
    add_operator,
    hash_token,
    operator_for_token,
)

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def alert(n: int, kind: AlertKind = AlertKind.DEVICE_OFFLINE, device: str = "term-1") -> Alert:
    return Alert(
        f"a{n}",
        kind,
        T0,
        SEVERITY[kind],
        "dorm-in",
        "dorm",
        device,
        detail={"last_seen": "2026-11-02T07:59:00+00:00"},
    )


async def test_alert_lifecycle_with_history(conn) -> None:
    await insert_alerts(conn, [alert(1), alert(2, AlertKind.OUTSIDER)])
    await insert_alerts(conn, [alert(1)])  # stored once only
    assert await get_alert(conn, "a1") == alert(1)
    assert await open_alert_for(conn, AlertKind.DEVICE_OFFLINE, "term-1") == alert(1)
    assert await open_alert_for(conn, "device_offline", "term-2") is None
    assert await open_alerts(conn, AlertKind.OUTSIDER) == [alert(2, AlertKind.OUTSIDER)]

    acked = await set_alert_status(conn, "a1", AlertStatus.ACKNOWLEDGED, "guard1", "on my way")
    assert acked.status is AlertStatus.ACKNOWLEDGED
    await set_alert_status(conn, "a1", "resolved", "guard1", "power restored")
    assert await open_alert_for(conn, AlertKind.DEVICE_OFFLINE, "term-1") is None
    steps = await alert_history(conn, "a1")
    assert [(s.status, s.operator, s.note) for s in steps] == [
        (AlertStatus.OPEN, None, "raised"),
        (AlertStatus.ACKNOWLEDGED, "guard1", "on my way"),
        (AlertStatus.RESOLVED, "guard1", "power restored"),
    ]
    assert [s.id for s in steps] == sorted(s.id for s in steps)
    with pytest.raises(AlertTransitionError):
        await set_alert_status(conn, "a1", AlertStatus.OPEN, "guard1", "")
    with pytest.raises(AlertNotFound):
        await set_alert_status(conn, "nope", AlertStatus.RESOLVED, "guard1", "")


async def test_operator_token_is_stored_only_as_hash(conn) -> None:
    token = await add_operator(conn, "alice", "guard")
    assert len(token) >= 40
    stored = await conn.fetchval("SELECT token_hash FROM operators WHERE name = 'alice'")
    assert stored == hash_token(token) and token not in stored
    found = await operator_for_token(conn, token)
    assert found is not None and (found.name, found.role) == ("alice", OperatorRole.GUARD)
    assert await operator_for_token(conn, token + "x") is None
    with pytest.raises(OperatorExistsError, match="alice"):
        await add_operator(conn, "alice", "admin")
    with pytest.raises(ValueError, match="unknown role"):
        await add_operator(conn, "bob", "janitor")
