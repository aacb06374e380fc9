"""Door decisions and their reasons (contract section 3)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Verdict(StrEnum):
    """The `decision` field of a decision command."""

    ADMIT = "admit"
    DENY = "deny"
    PENDING = "pending"


class Reason(StrEnum):
    """Why a card was admitted or denied, in the order the checks run."""

    OK = "ok"
    UNKNOWN_CARD = "unknown_card"
    CARD_REVOKED = "card_revoked"
    HEALTH_HOLD = "health_hold"
    CHECKIN_REQUIRED = "checkin_required"  # issue #15: the zone's level asks for today's check-in
    NOT_AUTHORIZED = "not_authorized"
    TEMPERATURE_REQUIRED = "temperature_required"
    TEMPERATURE_INVALID = "temperature_invalid"
    FEVER = "fever"
    ZONE_FULL = "zone_full"


# Terminal texts: short, and never a health detail (contract section 3).
MESSAGES: dict[Reason, str] = {
    Reason.OK: "Welcome",
    Reason.UNKNOWN_CARD: "Card not recognised, please see the guard",
    Reason.CARD_REVOKED: "Card not valid, please see the guard",
    Reason.HEALTH_HOLD: "Entry not possible, please see the guard",
    Reason.CHECKIN_REQUIRED: "Please do today's check-in on your phone",
    Reason.NOT_AUTHORIZED: "No access here at this time",
    Reason.TEMPERATURE_REQUIRED: "Please measure your temperature",
    Reason.TEMPERATURE_INVALID: "Measurement failed, please measure again",
    Reason.FEVER: "Entry not possible, please see the guard",
    Reason.ZONE_FULL: "Area is full, please wait",
}

DEFAULT_UNLOCK_MS = 3000


def terminal_message(verdict: Verdict, reason: Reason, person_name: str | None) -> str:
    """The terminal's text for a decision: a greeting by name on admit, never a health detail."""
    if verdict is Verdict.ADMIT and person_name:
        return f"Welcome, {person_name}"
    return MESSAGES[reason]


@dataclass(frozen=True, slots=True)
class Decision:
    """The command sent back for one card event."""

    event_id: str
    verdict: Verdict
    reason: Reason
    message: str
    unlock_ms: int = 0
    # Sent too long after its card event for anyone to be standing at the door: the
    # terminal shows the verdict but does not unlock (unlock_ms is 0).
    late: bool = False

    @classmethod
    def recorded(
        cls, event_id: str, verdict: str, reason: str, person_name: str | None = None
    ) -> Decision:
        """A decision rebuilt from the access log, to answer a duplicate after a restart."""
        v, r = Verdict(verdict), Reason(reason)
        message = terminal_message(v, r, person_name)
        return cls(event_id, v, r, message, DEFAULT_UNLOCK_MS if v is Verdict.ADMIT else 0)

    @property
    def is_final(self) -> bool:
        return self.verdict is not Verdict.PENDING

    def as_late(self) -> Decision:
        """This decision marked late: it unlocks nothing."""
        return replace(self, unlock_ms=0, late=True)

    def to_wire(self) -> dict[str, object]:
        """The JSON object of contract section 3."""
        return {
            "type": "decision",
            "event_id": self.event_id,
            "decision": self.verdict.value,
            "reason": self.reason.value,
            "message": self.message,
            "unlock_ms": self.unlock_ms,
            "late": self.late,
        }
