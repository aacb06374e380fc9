"""Under CI=true a missing chromium fails the browser tests; it does not skip them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _run(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env.update(env_extra)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/e2e/console/test_console_shell.py",
            "tests/e2e/console/test_tracing_link.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_missing_browser_fails_under_ci() -> None:
    run = _run({"CI": "true", "CAMPUSGATE_TEST_CHROMIUM": "/nonexistent/chromium"})
    assert run.returncode == 1, run.stdout[-2000:]
    assert "CI=true and /nonexistent/chromium is missing" in run.stdout
    assert " skipped" not in run.stdout
    assert "2 errors" in run.stdout  # a failure in setup: counted, never green
