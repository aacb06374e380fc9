"""The CAS login state on its own: the cookie, its digest in the service URL, its age.
The routes using it run against a real CAS server in tests/api/test_person_accounts.py."""

from __future__ import annotations

import hashlib

import pytest

from api.cas_state import (
    LIFETIME_S,
    LoginStateRefused,
    check_login_state,
    cookie_name,
    new_login_state,
)

NOW = 1_800_000_000.0


def test_a_fresh_state_is_accepted_and_every_nonce_differs() -> None:
    states = [new_login_state(NOW) for _ in range(50)]
    assert len({s.cookie for s in states}) == 50
    first = states[0]
    assert first.state == hashlib.sha256(first.cookie.encode()).hexdigest()
    assert first.cookie.startswith(f"{int(NOW)}.") and len(first.cookie.split(".", 1)[1]) >= 40
    check_login_state(first.cookie, first.state, NOW + LIFETIME_S)  # the last second still


@pytest.mark.parametrize(
    ("cookie", "state", "reason"),
    [
        (None, "x", "no sign-in was started"),
        ("", "x", "no sign-in was started"),
        ("1800000000.abc", "", "carries no state"),
        ("1800000000.abc", "0" * 64, "does not match"),
        ("1800000000.abc", hashlib.sha256(b"1800000000.abd").hexdigest(), "does not match"),
        ("1800000000.abc", "é" * 64, "does not match"),
        ("soon.abc", hashlib.sha256(b"soon.abc").hexdigest(), "malformed"),
    ],
)
def test_missing_wrong_and_malformed_states_are_refused(
    cookie: str | None, state: str, reason: str
) -> None:
    with pytest.raises(LoginStateRefused, match=reason):
        check_login_state(cookie, state, NOW)


def test_a_stale_or_future_state_is_refused() -> None:
    login = new_login_state(NOW)
    with pytest.raises(LoginStateRefused, match="started 601 s ago"):
        check_login_state(login.cookie, login.state, NOW + LIFETIME_S + 1)
    with pytest.raises(LoginStateRefused, match="started -3600 s ago"):
        check_login_state(login.cookie, login.state, NOW - 3600)


def test_the_cookie_is_host_only_under_tls() -> None:
    assert cookie_name(secure=True) == "__Host-cg_person_cas"
    assert cookie_name(secure=False) == "cg_person_cas"
