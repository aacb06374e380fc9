"""How many uploaded offline events one device may have taken per window (issue 13).

A terminal's journal holds at most a day or so of real swipes; credentials that upload
far more are flooding the log. Past the quota an upload is left for the terminal's
resend (acknowledged to the broker, no `upload_ack`): nothing is lost, only slowed.
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 60.0
EVENTS_PER_WINDOW = 2000  # 20 full batches a minute: a 10,000-entry journal in 5 minutes


class UploadQuota:
    """Per device, the uploaded events taken in the last `window_s` seconds."""

    def __init__(self, per_window: int = EVENTS_PER_WINDOW, window_s: float = WINDOW_S) -> None:
        self._per_window = per_window
        self._window_s = window_s
        self._taken: dict[str, deque[tuple[float, int]]] = {}

    def take(self, device_id: str, events: int, now: float) -> bool:
        """Count `events` for `device_id` at `now` (monotonic seconds) if they fit."""
        taken = self._taken.setdefault(device_id, deque())
        while taken and now - taken[0][0] >= self._window_s:
            taken.popleft()
        if sum(n for _, n in taken) + events > self._per_window:
            return False
        taken.append((now, events))
        return True
