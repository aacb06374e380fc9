"""What of an access event a role may see: temperatures and health reasons are health data.

Guards keep the decision reason (they must hold a person at the door and answer fever
alerts) but never see a temperature; liaisons, who see no health alerts at all, see
neither: a health reason reads `withheld`.
"""

from __future__ import annotations

from typing import Any

from api.permissions import HEALTH_ALERTS, sees_health_details, visible_alert_kinds
from gateway.domain.decisions import Reason
from gateway.domain.operators import OperatorRole

# Decision reasons that say something about a person's health.
HEALTH_REASONS = frozenset({Reason.FEVER, Reason.HEALTH_HOLD, Reason.TEMPERATURE_INVALID})
WITHHELD = "withheld"
_TEMPERATURE_KEYS = ("celsius",)


def present_event(event: dict[str, Any], role: OperatorRole) -> dict[str, Any]:
    """An access-log row as this role may see it (changed in place and returned)."""
    if sees_health_details(role):
        return event
    for key in _TEMPERATURE_KEYS:
        event.pop(key, None)
    if not sees_health_alerts(role) and event.get("reason") in HEALTH_REASONS:
        event["reason"] = WITHHELD
    return event


def sees_health_alerts(role: OperatorRole) -> bool:
    kinds = visible_alert_kinds(role)
    return kinds is None or bool(kinds & HEALTH_ALERTS)


def present_denied_counts(denied: dict[str, int], role: OperatorRole) -> dict[str, int]:
    """Denials by reason as this role may see them: a role that reads `withheld` for a
    person's health reason gets those counts folded into `withheld` too (a count of one
    `fever` in a small unit names the person as surely as the event would)."""
    if sees_health_details(role) or sees_health_alerts(role):
        return denied
    shown: dict[str, int] = {}
    for reason, count in denied.items():
        key = WITHHELD if reason in HEALTH_REASONS else reason
        shown[key] = shown.get(key, 0) + count
    return shown
