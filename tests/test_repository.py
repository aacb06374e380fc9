"""The repository looks adoptable (issue 16, point 8): licence, lockfile, CI from the lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_license_file_is_the_one_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert "Copyright 2026 The CampusGate Authors" in text


def test_the_lockfile_pins_every_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    lock = (ROOT / "requirements-lock.txt").read_text()
    pinned = {
        m.group(1).lower().replace("_", "-")
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+", lock, flags=re.MULTILINE)
    }
    assert wanted <= pinned, sorted(wanted - pinned)
    assert lock.count("--hash=sha256:") >= len(pinned)


def test_ci_installs_from_the_lockfile_and_fails_without_a_browser() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -r requirements-lock.txt" in ci
    assert "pip install -q --no-deps -e ." in ci
    assert "export CI=true" in ci
    readme = (ROOT / "README.md").read_text()
    # The README's system packages are the ones .ci/run makes sure of.
    packages = "mosquitto chromium fonts-wqy-microhei nats-server postgresql"
    assert f"apt-get install -y {packages}" in readme
    assert "nats-server" in ci


def test_ci_checks_types_strictly_where_the_rules_live() -> None:
    """Issue 11, point 7: mypy strict on the domain, the policy and the codecs, in CI's lint
    step; and ruff's complexity rule on for the whole repository."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mypy = pyproject["tool"]["mypy"]
    assert mypy["strict"] is True
    assert {"gateway/domain", "gateway/policy", "devices/codecs"} <= set(mypy["files"])
    lint = pyproject["tool"]["ruff"]["lint"]
    assert "C901" in lint["select"] and lint["mccabe"]["max-complexity"] <= 15
    ci = (ROOT / ".ci" / "run").read_text()
    lint_step = ci.split('step "lint"', 1)[1].split("step ", 1)[0]
    assert ".venv/bin/mypy" in lint_step
