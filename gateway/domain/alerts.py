"""Alerts for the guard console (contract section 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class AlertKind(StrEnum):
    OUTSIDER = "outsider"
    UNAUTHORIZED = "unauthorized"
    ISOLATION_BREACH = "isolation_breach"
    FEVER = "fever"
    TEMPERATURE_INVALID = "temperature_invalid"
    ZONE_FULL = "zone_full"
    TAILGATING = "tailgating"
    DOOR_FORCED = "door_forced"
    DOOR_HELD_OPEN = "door_held_open"
    DEVICE_OFFLINE = "device_offline"
    UNKNOWN_DEVICE = "unknown_device"
    CARD_REVOKED = "card_revoked"
    # Not in contract section 5 (issue #5): a zone above its gathering threshold too long.
    GATHERING = "gathering"
    # Not in contract section 5 (issue #10): the gateway's database stopped answering, so
    # every door waits; resolved by the gateway when its writes go through again.
    DATABASE_STALL = "database_stall"
    # Not in contract section 5 (issue #10): a device's clock is hours or years off.
    CLOCK_SKEW = "clock_skew"
    # Not in contract section 5 (issue #13): a terminal admitted offline whom the gateway
    # would have denied (its allowlist was stale).
    OFFLINE_MISMATCH = "offline_mismatch"
    # Not in contract section 5 (issue #15): a visitor still inside after their pass ended.
    VISITOR_OVERSTAY = "visitor_overstay"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


# Detail keys that are health data (a person's temperature): kept out of published alerts.
HEALTH_DETAIL = frozenset({"celsius", "faces_c"})


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


SEVERITY: dict[AlertKind, Severity] = {
    AlertKind.OUTSIDER: Severity.HIGH,
    AlertKind.UNAUTHORIZED: Severity.MEDIUM,
    AlertKind.ISOLATION_BREACH: Severity.CRITICAL,
    AlertKind.FEVER: Severity.CRITICAL,
    AlertKind.TEMPERATURE_INVALID: Severity.LOW,
    AlertKind.ZONE_FULL: Severity.MEDIUM,
    AlertKind.TAILGATING: Severity.HIGH,
    AlertKind.DOOR_FORCED: Severity.CRITICAL,
    AlertKind.DOOR_HELD_OPEN: Severity.MEDIUM,
    AlertKind.DEVICE_OFFLINE: Severity.HIGH,
    AlertKind.UNKNOWN_DEVICE: Severity.MEDIUM,
    AlertKind.CARD_REVOKED: Severity.MEDIUM,
    AlertKind.GATHERING: Severity.HIGH,
    AlertKind.DATABASE_STALL: Severity.CRITICAL,
    AlertKind.CLOCK_SKEW: Severity.LOW,
    AlertKind.OFFLINE_MISMATCH: Severity.HIGH,
    AlertKind.VISITOR_OVERSTAY: Severity.MEDIUM,
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as raised; its lifecycle lives in the store."""

    id: str
    kind: AlertKind
    ts: datetime
    severity: Severity
    door: str | None = None
    zone: str | None = None
    device: str | None = None
    person: str | None = None
    detail: dict[str, object] = field(default_factory=dict)
    status: AlertStatus = AlertStatus.OPEN

    def to_wire(self) -> dict[str, object]:
        """The JSON published on P/alerts/{kind}; no health details.

        Every subscriber of the broker sees it, so readings stay in the store, where the
        API shows them only to roles that may see health data.
        """
        return {
            "id": self.id,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "ts": self.ts.isoformat(),
            "door": self.door,
            "zone": self.zone,
            "device": self.device,
            "person": self.person,
            "status": self.status.value,
            "detail": {k: v for k, v in self.detail.items() if k not in HEALTH_DETAIL},
        }
