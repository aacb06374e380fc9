"""Process-local counters of what the gateway received, decided and rejected."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counters:
    """Event counters; one instance per gateway, read by logs, the API and the bench."""

    received: int = 0
    decided: int = 0
    rejected: int = 0
    duplicate: int = 0
    unknown_device: int = 0
    alerts: int = 0
    logged: int = 0
    device_time_refused: int = 0  # logged at receipt: the device's `ts` was implausible
    late: int = 0  # final decisions sent too late to unlock (see pipeline/publisher.py)
    redelivered: int = 0  # broker redeliveries of events already answered, acked only
    rejected_by_cause: Counter[str] = field(default_factory=Counter)

    def reject(self, cause: str) -> None:
        self.rejected += 1
        self.rejected_by_cause[cause] += 1

    def snapshot(self) -> dict[str, object]:
        return {
            "received": self.received,
            "decided": self.decided,
            "rejected": self.rejected,
            "duplicate": self.duplicate,
            "unknown_device": self.unknown_device,
            "alerts": self.alerts,
            "logged": self.logged,
            "device_time_refused": self.device_time_refused,
            "late": self.late,
            "redelivered": self.redelivered,
            "rejected_by_cause": dict(self.rejected_by_cause),
        }
