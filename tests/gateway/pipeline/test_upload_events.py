"""Uploaded offline events, checked field by field (pure logic)."""

import pytest

from gateway.pipeline.offline_uploads import UploadRejected, parse_event

EVENT = {
    "event_id": "e-1",
    "ts": "2026-12-03T22:15:02.120+08:00",
    "type": "card",
    "card_uid": "04A1B2C3",
    "direction": "in",
    "offline": True,
    "decision": "admit",
    "reason": "ok",
    "allowlist_version": 7,
}


def test_an_admit_without_an_allowlist_version_is_refused_a_deny_is_taken() -> None:
    assert parse_event(EVENT).allowlist_version == 7
    with pytest.raises(UploadRejected, match="without an allowlist_version"):
        parse_event({**EVENT, "allowlist_version": None})
    denied = {**EVENT, "allowlist_version": None, "decision": "deny", "reason": "offline_no_list"}
    assert parse_event(denied).allowlist_version is None
