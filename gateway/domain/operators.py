"""Who operates the console and API: the roles (what each may do: api/permissions.py)."""

from __future__ import annotations

from enum import StrEnum


class OperatorRole(StrEnum):
    ADMIN = "admin"
    GUARD = "guard"
    HEALTH_OFFICER = "health_officer"
    LIAISON = "liaison"
