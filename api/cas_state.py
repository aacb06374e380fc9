"""Binds a CAS sign-in to the browser that started it (against login CSRF).

Without it, anyone could get a service ticket for their own account and make another
person's browser open the callback with it, signing that person in as them. So the start
of a sign-in sets a short-lived cookie holding `<issued unix seconds>.<random nonce>`, and
the SHA-256 of that value rides in the CAS service URL as `state`. CAS sends the browser
back to that exact URL and validates the ticket for it, so the callback accepts a ticket
only from the browser holding the cookie whose digest the ticket's service names.

The cookie is HttpOnly and SameSite=Lax (the return from CAS is a cross-site top-level
navigation, which Strict would strip); under TLS it is Secure and named with the
`__Host-` prefix, so a sibling subdomain cannot plant one of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

LIFETIME_S = 600  # long enough to type a password at CAS, short enough to go stale
COOKIE = "cg_person_cas"
_SKEW_S = 60  # a cookie "from the future" by more than this was not issued here


@dataclass(frozen=True, slots=True)
class LoginState:
    cookie: str  # the cookie's value: "<issued unix seconds>.<random nonce>"
    state: str  # what rides in the service URL: the cookie value's SHA-256, hex


class LoginStateRefused(ValueError):
    """The callback is not the end of a sign-in this browser started (or it went stale)."""


def cookie_name(secure: bool) -> str:
    """`__Host-` needs Secure (and Path=/, no Domain), so it is used only under TLS."""
    return f"__Host-{COOKIE}" if secure else COOKIE


def state_of(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def new_login_state(now: float | None = None) -> LoginState:
    issued = int(time.time() if now is None else now)
    cookie = f"{issued}.{secrets.token_urlsafe(32)}"
    return LoginState(cookie, state_of(cookie))


def check_login_state(cookie: str | None, state: str, now: float | None = None) -> None:
    """Raise LoginStateRefused unless `cookie` is fresh and `state` is its digest."""
    if not cookie:
        raise LoginStateRefused("no sign-in was started in this browser (no state cookie)")
    if not state:
        raise LoginStateRefused("the callback carries no state")
    # Compared before the age is read, so a wrong pair says "mismatch" whatever its age.
    if not hmac.compare_digest(state_of(cookie).encode(), state.encode()):
        raise LoginStateRefused("the state does not match this browser's sign-in")
    issued_text, _, _ = cookie.partition(".")
    if not issued_text.isdigit():
        raise LoginStateRefused("the state cookie is malformed")
    age = (time.time() if now is None else now) - int(issued_text)
    if age > LIFETIME_S or age < -_SKEW_S:
        raise LoginStateRefused(f"the sign-in was started {int(age)} s ago (limit {LIFETIME_S} s)")
