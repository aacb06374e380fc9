"""How long an entry without an exit still counts as "inside" (occupancy and muster).

Exits are missed (a door held for someone, a reader that is down), so a person whose
last admitted passage into a zone was `in` counts as inside only for a while: in a
dormitory, where people sleep and spend weekends, three days; anywhere else the
longest stay contact tracing assumes (CAMPUSGATE_TRACE_MAX_STAY_H, 12 h by default).
"""

from __future__ import annotations

from datetime import timedelta

from gateway.domain.roster import ZoneKind

DORMITORY_STAY = timedelta(hours=72)


def presence_horizon(kind: ZoneKind, max_stay_h: float) -> timedelta:
    """How long after an entry, with no exit since, the person still counts as inside."""
    if kind is ZoneKind.DORMITORY:
        return max(DORMITORY_STAY, timedelta(hours=max_stay_h))
    return timedelta(hours=max_stay_h)
