"""The files under deploy/ agree with the code and with each other.

Settings named in deploy/ exist, the env file example covers every setting and its
values pass the settings' own checks, the compose file parses and wires the services
in order, the systemd units pass `systemd-analyze verify`, and the scripts parse.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.pipeline.serial_reader_pool import parse_osdp_keys
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "campusgate.env.example"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
UNITS = DEPLOY / "systemd"

# Settings and files deploy/ may name that are not in gateway/settings.py or the tree
# (none now: the branches that added them are merged).
PARALLEL_BRANCH_SETTINGS: set[str] = set()
PARALLEL_BRANCH_FILES: set[str] = set()
# Settings whose value is a file that must exist when the settings load: the example's
# paths are the operator's, so the test checks they are absolute and points at a file.
EXISTING_FILE_SETTINGS = {
    "CAMPUSGATE_MQTT_CA_FILE",
    "CAMPUSGATE_MQTT_CERT_FILE",
    "CAMPUSGATE_MQTT_KEY_FILE",
}
# What the operator makes beside compose.yaml (kept out of git by deploy/compose/.gitignore).
OPERATOR_FILES = (
    "deploy/compose/campusgate.env",
    "deploy/compose/.env",
    "deploy/compose/secrets",
    "deploy/compose/backups",
)

SETTING = re.compile(r"\bCAMPUSGATE_[A-Z0-9_]*[A-Z0-9]\b")


def known_settings() -> set[str]:
    return {f"CAMPUSGATE_{name.upper()}" for name in Settings.model_fields}


def deploy_texts() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8")
        for path in sorted(DEPLOY.rglob("*"))
        if path.is_file() and path.suffix not in (".pyc",)
    }


def env_lines(path: Path, *, commented: bool) -> dict[str, str]:
    """KEY=value lines of an env file (also the commented-out examples if asked)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line[1:] if commented and line.startswith("#CAMPUSGATE_") else line
        match = re.fullmatch(r"(CAMPUSGATE_[A-Z0-9_]+)=(.*)", text)
        if match:
            key, value = match.groups()
            if len(value) >= 2 and value[0] == value[-1] == "'":
                value = value[1:-1]
            values[key] = value
    return values


def test_every_setting_named_in_deploy_exists() -> None:
    allowed = known_settings() | PARALLEL_BRANCH_SETTINGS
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path, text in deploy_texts().items()
        for name in SETTING.findall(text)
        if name not in allowed
    }
    assert not unknown, f"settings that gateway/settings.py does not have: {sorted(unknown)}"


def test_the_env_example_names_every_setting() -> None:
    named = set(env_lines(ENV_EXAMPLE, commented=True))
    missing = (known_settings() | PARALLEL_BRANCH_SETTINGS) - named
    assert not missing, f"deploy/campusgate.env.example lacks {sorted(missing)}"


def test_the_env_example_values_pass_the_settings_checks(monkeypatch, tmp_path) -> None:
    values = env_lines(ENV_EXAMPLE, commented=True)  # the commented examples too
    for key in list(__import__("os").environ):
        if key.startswith("CAMPUSGATE_"):
            monkeypatch.delenv(key)
    for key, value in values.items():
        if key in EXISTING_FILE_SETTINGS:
            assert Path(value).is_absolute(), (key, value)
            value = str(tmp_path / Path(value).name)
            Path(value).write_text("stand-in for the operator's file\n")
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.mqtt_url and settings.mqtt_url.startswith("mqtts://")
    assert settings.database_url and settings.database_url.startswith("postgresql://")
    assert parse_osdp_keys(settings.osdp_keys)


def test_the_env_example_reads_the_same_in_bash() -> None:
    """`set -a; . FILE` (the backup scripts' way) gives what systemd and compose read."""
    out = subprocess.run(
        ["bash", "-c", f"set -a; . '{ENV_EXAMPLE}'; set +a; env -0"],
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.decode()
    from_bash = dict(
        item.split("=", 1) for item in out.split("\0") if item.startswith("CAMPUSGATE_")
    )
    assert from_bash == env_lines(ENV_EXAMPLE, commented=False)


def test_compose_file_wires_the_services_in_order() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"postgres", "mosquitto", "migrate", "gateway"} <= set(services)
    assert services["postgres"]["healthcheck"]["test"]
    gateway = services["gateway"]
    assert gateway["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert gateway["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("migrate", "gateway", "backup"):
        assert services[name]["env_file"] == "./campusgate.env", name
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "always", "no"), name
    broker_mounts = services["mosquitto"]["volumes"]
    assert all(m.endswith(":ro") for m in broker_mounts if "secrets" in m or ".conf" in m)
    assert any("mosquitto-secure.conf" in m for m in broker_mounts)
    for service in services.values():  # a literal secret never sits in the file
        for key, value in (service.get("environment") or {}).items():
            assert not re.search(r"PASSWORD$|SECRET|TOKEN", key), key
            assert "://" not in str(value) or "@" not in str(value), key


def test_compose_file_refers_to_files_that_exist() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    base = COMPOSE.parent
    for service in compose["services"].values():
        build = service.get("build")
        if build:
            context = (base / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file()
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("../"):  # shipped files; ./secrets etc. are the operator's
                path = (base / source).resolve().relative_to(ROOT)
                assert path.exists() or str(path) in PARALLEL_BRANCH_FILES, path
    dockerfile = (base / "Dockerfile").read_text(encoding="utf-8")
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    assert "USER campusgate" in dockerfile
    assert "build-essential" not in dockerfile.split("\nFROM ")[-1], "no compilers in the image"


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}}; keys may repeat, unlike in configparser."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{number}: {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


SERVICES = sorted(UNITS.glob("*.service"))


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_units_run_hardened_as_campusgate(path: Path) -> None:
    unit = read_unit(path)
    service = unit["Service"]
    assert service["User"] == ["campusgate"]
    assert service["EnvironmentFile"][0] == "/etc/campusgate/campusgate.env"
    assert service["ExecStart"][0].startswith("/")
    for key, value in {
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service.get(key) == [value], f"{path.name}: {key}={value}"
    assert service.get("ReadWritePaths"), path.name


@pytest.mark.parametrize("name", ["campusgate-serve.service", "campusgate-worker@.service"])
def test_gateway_units_read_serial_ports_and_wait_for_migrations(name: str) -> None:
    unit = read_unit(UNITS / name)
    service = unit["Service"]
    assert service["SupplementaryGroups"] == ["dialout"]
    assert service["Restart"] == ["on-failure"]
    assert service["ReadWritePaths"] == ["/var/lib/campusgate"]
    assert "char-ttyUSB rw" in service["DeviceAllow"]
    assert "campusgate-migrate.service" in unit["Unit"]["Requires"][0]
    assert "campusgate-migrate.service" in unit["Unit"]["After"][0]
    migrate = read_unit(UNITS / "campusgate-migrate.service")["Service"]
    assert migrate["Type"] == ["oneshot"] and migrate["ExecStart"][0].endswith("campusgate migrate")


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed for this check: apt-get install systemd"
    campusgate = shutil.which("campusgate") or str(
        Path(__import__("sys").executable).parent / "campusgate"
    )
    # The binaries the units name do not exist on a test machine: point them at real ones.
    for unit in UNITS.iterdir():
        if unit.suffix in (".service", ".timer"):
            text = unit.read_text(encoding="utf-8")
            text = text.replace("/opt/campusgate/bin/campusgate", campusgate)
            text = text.replace(
                "/usr/local/sbin/campusgate-backup.sh",
                str(DEPLOY / "backup" / "campusgate-backup.sh"),
            )
            name = unit.name.replace("@.service", "@main.service")
            (tmp_path / name).write_text(text, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if str(tmp_path) in line  # warnings about our files, not the host's own units
    ]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


@pytest.mark.parametrize("script", sorted((DEPLOY / "backup").glob("*.sh")), ids=lambda p: p.name)
def test_scripts_parse_and_are_executable(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert script.stat().st_mode & stat.S_IXUSR
    assert "set -euo pipefail" in script.read_text(encoding="utf-8")


def test_prometheus_files_parse() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    assert {job["job_name"] for job in config["scrape_configs"]} >= {
        "campusgate-worker",
        "campusgate-api",
    }
    rules = yaml.safe_load(
        (DEPLOY / "prometheus" / "campusgate-rules.yml").read_text(encoding="utf-8")
    )
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert all(rule["alert"] and rule["expr"] and rule["labels"]["severity"] for rule in alerts)
    runbook = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for rule in alerts:  # every alert is explained where the on-call engineer looks
        assert f"`{rule['alert']}" in runbook, rule["alert"]


def test_the_runbook_refers_to_files_that_exist() -> None:
    texts = [
        (DEPLOY / "README.md").read_text(encoding="utf-8"),
        (ROOT / "README.md").read_text(encoding="utf-8"),
    ]
    referenced = {
        match.rstrip(".,)`")
        for text in texts
        for match in re.findall(r"deploy/[A-Za-z0-9_./@-]+", text)
    }
    missing = {
        ref
        for ref in referenced
        if not (ROOT / ref).exists()
        and ref not in PARALLEL_BRANCH_FILES
        and not ref.startswith(OPERATOR_FILES)
    }
    assert not missing, sorted(missing)
