"""The permission matrix: what each operator role may do (contract section 2 roles)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from gateway.domain.alerts import AlertKind
from gateway.domain.operators import OperatorRole


class Permission(StrEnum):
    READ_CAMPUS = "read_campus"  # org units, zones
    READ_DOORS = "read_doors"  # doors, devices, occupancy
    READ_ALERTS = "read_alerts"
    ACT_ON_ALERTS = "act_on_alerts"
    READ_COUNTS = "read_counts"
    READ_PEOPLE = "read_people"
    READ_HEALTH = "read_health"  # reasons, history
    WRITE_HEALTH = "write_health"
    READ_EVENTS = "read_events"
    READ_GRANTS = "read_grants"
    WRITE_GRANTS = "write_grants"
    IMPORT = "import"
    READ_AUDIT = "read_audit"
    WRITE_ROSTER = "write_roster"  # org units, zones, doors, devices, people, cards
    # Epidemic-prevention workflows (issue #5).
    RECORD_READING = "record_reading"  # a guard's manual re-measurement of a fever_watch person
    READ_CARETAKING = "read_caretaking"  # caretakers and the people in their care
    DECLARE_TRAVEL = "declare_travel"  # travel declarations, for oneself's org unit scope
    MANAGE_AREAS = "manage_areas"  # the list of epidemic areas
    TRACE_CONTACTS = "trace_contacts"  # contact tracing and marking close contacts
    READ_MUSTER = "read_muster"  # who is inside a zone now
    SET_RESPONSE_LEVEL = "set_response_level"
    READ_REPORTS = "read_reports"  # daily reports (lists behind numbers need READ_HEALTH)
    SEND_REPORTS = "send_reports"  # generate and deliver on demand
    EXPORT_PERSON = "export_person"  # everything held about one person
    UNMASK = "unmask"  # see full ID and phone numbers (each use is audited)
    RUN_RETENTION = "run_retention"
    # Visitor passes (issue #15): approve, refuse or revoke (liaisons: their org unit's).
    DECIDE_VISITOR_PASSES = "decide_visitor_passes"


_P = Permission
MATRIX: dict[OperatorRole, frozenset[Permission]] = {
    OperatorRole.ADMIN: frozenset(Permission),
    OperatorRole.GUARD: frozenset(
        {
            _P.READ_CAMPUS,
            _P.READ_DOORS,
            _P.READ_ALERTS,
            _P.ACT_ON_ALERTS,
            _P.READ_COUNTS,
            _P.READ_PEOPLE,
            _P.READ_EVENTS,
            _P.RECORD_READING,
            _P.READ_MUSTER,
        }
    ),
    OperatorRole.HEALTH_OFFICER: frozenset(
        {
            _P.READ_CAMPUS,
            _P.READ_ALERTS,
            _P.READ_COUNTS,
            _P.READ_PEOPLE,
            _P.READ_HEALTH,
            _P.WRITE_HEALTH,
            _P.RECORD_READING,
            _P.READ_CARETAKING,
            _P.DECLARE_TRAVEL,
            _P.MANAGE_AREAS,
            _P.TRACE_CONTACTS,
            _P.READ_MUSTER,
            _P.SET_RESPONSE_LEVEL,
            _P.READ_REPORTS,
            _P.SEND_REPORTS,
            _P.EXPORT_PERSON,
            _P.UNMASK,
        }
    ),
    OperatorRole.LIAISON: frozenset(
        {
            _P.READ_CAMPUS,
            _P.READ_COUNTS,
            _P.READ_PEOPLE,
            _P.READ_EVENTS,
            _P.READ_ALERTS,
            _P.READ_CARETAKING,
            _P.DECLARE_TRAVEL,
            _P.READ_REPORTS,
            _P.SEND_REPORTS,
            _P.DECIDE_VISITOR_PASSES,
        }
    ),
}

# Alerts a role sees (REST and stream): health officers the health ones and those that
# bear on an epidemic (a gathering, a zone at capacity); liaisons the non-health ones,
# and only those about people of their org unit and below (org_scoped).
HEALTH_ALERTS = frozenset(
    {AlertKind.FEVER, AlertKind.ISOLATION_BREACH, AlertKind.TEMPERATURE_INVALID}
)
NON_HEALTH_ALERTS = frozenset(AlertKind) - HEALTH_ALERTS
CROWD_ALERTS = frozenset({AlertKind.GATHERING, AlertKind.ZONE_FULL})
HEALTH_OFFICER_ALERTS = HEALTH_ALERTS | CROWD_ALERTS


def allowed(role: OperatorRole, permission: Permission) -> bool:
    return permission in MATRIX[role]


def permissions_of(role: OperatorRole) -> list[str]:
    """The role's permissions, sorted (what the console may offer)."""
    return sorted(p.value for p in MATRIX[role])


def visible_alert_kinds(role: OperatorRole) -> frozenset[AlertKind] | None:
    """None: every kind."""
    if role is OperatorRole.HEALTH_OFFICER:
        return HEALTH_OFFICER_ALERTS
    if role is OperatorRole.LIAISON:
        return NON_HEALTH_ALERTS
    if allowed(role, Permission.READ_ALERTS):
        return None
    return frozenset()


def sees_health_details(role: OperatorRole) -> bool:
    return allowed(role, Permission.READ_HEALTH)


# What of a health alert's detail a role without READ_HEALTH may see (no temperature).
_PUBLIC_HEALTH_DETAIL = frozenset({"card_uid", "reason"})


def present_alert(alert: dict[str, Any], role: OperatorRole) -> dict[str, Any]:
    """An alert as this role may see it: health alerts lose their health detail for guards."""
    if alert.get("kind") in HEALTH_ALERTS and not sees_health_details(role):
        detail = alert.get("detail") or {}
        alert["detail"] = {k: v for k, v in detail.items() if k in _PUBLIC_HEALTH_DETAIL}
    return alert


def org_scoped(role: OperatorRole) -> bool:
    """Liaisons see only their own org unit and what is under it."""
    return role is OperatorRole.LIAISON
