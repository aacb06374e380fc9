"""Raising alerts: build them, journal them, publish them once durable."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from gateway.domain.alerts import SEVERITY, Alert, AlertKind, AlertStatus
from gateway.metrics import Counters
from gateway.pipeline.journal import AlertChange, Journal
from gateway.pipeline.publisher import Publisher


class Alerter:
    def __init__(self, journal: Journal, publisher: Publisher, counters: Counters) -> None:
        self._journal = journal
        self._publisher = publisher
        self._counters = counters
        self._stall: Alert | None = None

    def raise_alert(
        self,
        kind: AlertKind,
        ts: datetime,
        *,
        door: str | None = None,
        zone: str | None = None,
        device: str | None = None,
        person: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> Alert:
        """Add an alert to the open journal batch; it is published after the batch commits."""
        alert = Alert(
            id=uuid.uuid4().hex,
            kind=kind,
            ts=ts,
            severity=SEVERITY[kind],
            door=door,
            zone=zone,
            device=device,
            person=person,
            detail=detail or {},
        )
        batch = self._journal.current()
        batch.alerts.append(alert)
        # Published once stored: not if an open one of its kind and subject was there already.
        batch.follow(lambda: self._publisher.alert(alert), needs=(alert,))
        self._counters.alerts += 1
        self._journal.kick()
        return alert

    def resolve(self, alert: Alert, *, note: str, operator: str = "gateway") -> None:
        batch = self._journal.current()
        batch.alert_changes.append(AlertChange(alert.id, AlertStatus.RESOLVED, operator, note))
        resolved = replace(alert, status=AlertStatus.RESOLVED)
        batch.after.append(lambda: self._publisher.alert(resolved))
        self._journal.kick()

    def database_stall(self, stalled: bool, detail: str) -> None:
        """The journal's report of a database stall (begun or over): raise or resolve
        `database_stall`.

        Raised alerts are otherwise published once stored; this one is published at once,
        since the store it would wait for is what hangs. It is journaled all the same and
        stored when the database answers again, with its resolution.
        """
        if stalled:
            if self._stall is not None:
                return
            alert = Alert(
                id=uuid.uuid4().hex,
                kind=AlertKind.DATABASE_STALL,
                ts=datetime.now(UTC),
                severity=SEVERITY[AlertKind.DATABASE_STALL],
                detail={"error": detail[:500]},
            )
            self._stall = alert
            self._counters.alerts += 1
            self._publisher.alert(alert)
            self._journal.current().alerts.append(alert)
            self._journal.kick()
        elif self._stall is not None:
            alert, self._stall = self._stall, None
            self.resolve(alert, note=detail)
