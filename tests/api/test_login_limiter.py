"""The per-process login rate limit: blocks after the limit, forgets, and stays small."""

from __future__ import annotations

import api.routers.auth as auth
from api.routers.auth import LoginLimiter


def test_blocks_after_limit_and_success_resets():
    limiter = LoginLimiter(limit=3, window_s=60)
    key = ("guard", "10.0.0.1")
    for _ in range(3):
        assert not limiter.blocked(key)
        limiter.fail(key)
    assert limiter.blocked(key)
    assert not limiter.blocked(("guard", "10.0.0.2"))  # per name and address
    limiter.succeed(key)
    assert not limiter.blocked(key)


def test_window_passes_and_checks_do_not_grow_the_table(monkeypatch):
    limiter = LoginLimiter(limit=1, window_s=0.0)
    for i in range(1000):
        assert not limiter.blocked((f"name-{i}", "10.0.0.1"))
    assert len(limiter._failures) == 0
    monkeypatch.setattr(auth, "MAX_TRACKED", 10)
    for i in range(50):
        limiter.fail((f"name-{i}", "10.0.0.1"))  # each expires at once (window 0)
    assert len(limiter._failures) <= 11
