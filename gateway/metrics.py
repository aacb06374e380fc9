"""Process-local counters of what the gateway received, decided and rejected.

Plain attributes and a bisect histogram, bumped on the door path at the cost of an
addition; the Prometheus exposition reads them at scrape time
(gateway/pipeline/telemetry.py), so no metrics library sits on the per-event path.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

# Decision latency buckets, in seconds: the door budget is well under one second, and a
# decision waiting on a stalled database can take the whole late window (10 s).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class LatencyHistogram:
    """Cumulative-at-read histogram: `observe` is one bisect and two additions."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le = less or equal).
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound as text, observations at or below it), ending with +Inf."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


@dataclass
class Counters:
    """Event counters; one instance per gateway, read by logs, the API and the bench."""

    received: int = 0
    decided: int = 0
    rejected: int = 0
    duplicate: int = 0
    unknown_device: int = 0
    alerts: int = 0
    # Alerts not stored nor published: one of the same kind and subject was open already.
    alerts_deduplicated: int = 0
    logged: int = 0
    # Log rows left out of a write: their partition's lease was another worker's by then.
    fenced: int = 0
    device_time_refused: int = 0  # logged at receipt: the device's `ts` was implausible
    late: int = 0  # final decisions sent too late to unlock (see pipeline/publisher.py)
    redelivered: int = 0  # broker redeliveries of events already answered, acked only
    # Cards redelivered after a crash with their temperature window passed: denied at once.
    windows_passed_on_redelivery: int = 0
    rejected_by_cause: Counter[str] = field(default_factory=Counter)
    # Visitor QR tokens that did not verify, by cause (decided as unknown cards).
    qr_invalid: Counter[str] = field(default_factory=Counter)
    # Final decisions by (verdict, reason); a plain dict: Counter's lookup costs twice as much.
    decided_by_reason: dict[tuple[str, str], int] = field(default_factory=dict)
    # Card event receipt -> its final decision durable and published.
    decision_latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def reject(self, cause: str) -> None:
        self.rejected += 1
        self.rejected_by_cause[cause] += 1

    def decide(self, verdict: str, reason: str) -> None:
        self.decided += 1
        key = (verdict, reason)
        self.decided_by_reason[key] = self.decided_by_reason.get(key, 0) + 1

    def snapshot(self) -> dict[str, object]:
        return {
            "received": self.received,
            "decided": self.decided,
            "rejected": self.rejected,
            "duplicate": self.duplicate,
            "unknown_device": self.unknown_device,
            "alerts": self.alerts,
            "alerts_deduplicated": self.alerts_deduplicated,
            "logged": self.logged,
            "fenced": self.fenced,
            "device_time_refused": self.device_time_refused,
            "late": self.late,
            "redelivered": self.redelivered,
            "windows_passed_on_redelivery": self.windows_passed_on_redelivery,
            "rejected_by_cause": dict(self.rejected_by_cause),
            "qr_invalid": dict(self.qr_invalid),
        }
