"""The demo's live terminal view: decisions and alerts as they cross the broker."""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Sequence
from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text

from devices.transports.mqtt import BrokerAddress, Message, MqttClient

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
}
VERDICT_STYLE = {"admit": "green", "deny": "red", "pending": "yellow"}


class LiveView:
    """Listens to `P/devices/+/commands` and `P/alerts/#` like a console would."""

    def __init__(self, broker: BrokerAddress, prefix: str, *, rows: int = 12) -> None:
        self._prefix = prefix
        self.decisions: deque[tuple[str, str, dict]] = deque(maxlen=rows)
        self.alerts: deque[tuple[str, dict]] = deque(maxlen=rows)
        self.verdicts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.alert_kinds: Counter[str] = Counter()
        self.client = MqttClient(
            broker,
            client_id="campusgate-demo-view",
            on_messages=self._on_messages,
            subscriptions=[(f"{prefix}/devices/+/commands", 1), (f"{prefix}/alerts/#", 1)],
        )

    def _on_messages(self, batch: Sequence[Message]) -> None:
        now = datetime.now().strftime("%H:%M:%S")
        for message in batch:
            try:
                body = json.loads(message.payload)
            except ValueError:
                continue
            if not isinstance(body, dict):
                continue
            parts = message.topic.split("/")
            if parts[1] == "alerts":
                self.alerts.appendleft((now, body))
                if body.get("status", "open") == "open":
                    self.alert_kinds[str(body.get("kind"))] += 1
            elif body.get("type") == "decision":
                self.decisions.appendleft((now, parts[2], body))
                self.verdicts[str(body.get("decision"))] += 1
                if body.get("decision") != "pending":
                    self.reasons[str(body.get("reason"))] += 1

    def render(self, header: str) -> Group:
        decisions = Table(title="Door decisions", expand=True, title_justify="left")
        for column in ("time", "device", "decision", "reason", "message"):
            decisions.add_column(column)
        for ts, device, body in self.decisions:
            verdict = str(body.get("decision"))
            decisions.add_row(
                ts,
                device,
                Text(verdict, style=VERDICT_STYLE.get(verdict, "")),
                str(body.get("reason")),
                str(body.get("message")),
            )
        alerts = Table(title="Alerts", expand=True, title_justify="left")
        for column in ("time", "kind", "severity", "status", "door", "person"):
            alerts.add_column(column)
        for ts, body in self.alerts:
            severity = str(body.get("severity"))
            alerts.add_row(
                ts,
                str(body.get("kind")),
                Text(severity, style=SEVERITY_STYLE.get(severity, "")),
                str(body.get("status", "open")),
                str(body.get("door") or "-"),
                str(body.get("person") or "-"),
            )
        totals = ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items()))
        reasons = ", ".join(f"{k} {v}" for k, v in self.reasons.most_common())
        kinds = ", ".join(f"{k} {v}" for k, v in self.alert_kinds.most_common())
        summary = Text(
            f"{header}\ndecisions: {totals or '-'}\nreasons: {reasons or '-'}\nalerts: {kinds or '-'}"
        )
        return Group(summary, decisions, alerts)
