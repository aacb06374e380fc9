"""Caretakers' follow-up rules, without a database: when a quiet case is flagged, and
which contacts can be recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.care import (
    CARE_GAP,
    CareContact,
    CareContactError,
    Channel,
    Feeling,
    FollowUp,
    follow_up,
)

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since_ago", "contact_ago", "expected"),
    [
        (timedelta(hours=5), None, None),  # a new case is not flagged in its first day
        (CARE_GAP, None, FollowUp.CARETAKER),
        (2 * CARE_GAP - timedelta(seconds=1), None, FollowUp.CARETAKER),
        (2 * CARE_GAP, None, FollowUp.HEALTH_OFFICER),
        (timedelta(days=5), timedelta(hours=3), None),  # a recent contact resets the clock
        (timedelta(days=5), CARE_GAP + timedelta(hours=1), FollowUp.CARETAKER),
        (timedelta(days=5), timedelta(days=3), FollowUp.HEALTH_OFFICER),
        # A contact from before this isolation does not count for it.
        (timedelta(days=3), timedelta(days=4), FollowUp.HEALTH_OFFICER),
    ],
)
def test_who_is_told_that_a_case_has_gone_quiet(
    since_ago: timedelta, contact_ago: timedelta | None, expected: FollowUp | None
) -> None:
    last = None if contact_ago is None else NOW - contact_ago
    assert follow_up(NOW - since_ago, last, NOW) is expected


def _contact(**changes: object) -> CareContact:
    fields: dict[str, object] = {
        "channel": Channel.PHONE,
        "at": NOW - timedelta(minutes=10),
        "feeling": Feeling.WELL,
        "temperature_c": 36.6,
        "note": "",
    }
    fields.update(changes)
    return CareContact(**fields)  # type: ignore[arg-type]


def test_a_plausible_contact_is_accepted() -> None:
    contact = _contact()
    assert contact.checked(NOW, NOW - timedelta(days=2)) is contact
    assert _contact(temperature_c=None).checked(NOW, NOW - timedelta(days=2))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"at": NOW + timedelta(hours=1)}, "in the future"),
        ({"at": NOW - timedelta(days=3)}, "predates this isolation"),
        ({"temperature_c": 45.0}, "measure again"),
        ({"temperature_c": 20.0}, "measure again"),
        ({"note": "x" * 501}, "longer than 500"),
    ],
)
def test_an_implausible_contact_is_refused_with_what_to_change(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(CareContactError, match=message):
        _contact(**changes).checked(NOW, NOW - timedelta(days=2))
