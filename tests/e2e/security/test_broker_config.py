"""The shipped secure broker configuration keeps the tuning of mosquitto.conf."""

from __future__ import annotations

from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "mosquitto"


def _settings(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition(" ")
            pairs.append((name, value.strip()))
    return pairs


def _listeners(pairs: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    current = None
    for name, value in pairs:
        if name == "listener":
            current = found.setdefault(value, {})
        elif current is not None:
            current[name] = value
    return found


def test_every_tuning_setting_of_mosquitto_conf_is_in_the_secure_file() -> None:
    plain = _settings(DEPLOY / "mosquitto.conf")
    secure = dict(_settings(DEPLOY / "mosquitto-secure.conf"))
    tuning = [(n, v) for n, v in plain if n not in ("listener", "allow_anonymous")]
    assert tuning, "mosquitto.conf has no tuning left to compare"
    missing = [(n, v) for n, v in tuning if secure.get(n) != v]
    assert missing == [], f"copy these from mosquitto.conf into mosquitto-secure.conf: {missing}"


def test_the_secure_file_admits_nobody_anonymous_and_only_over_tls() -> None:
    pairs = _settings(DEPLOY / "mosquitto-secure.conf")
    assert dict(pairs)["per_listener_settings"] == "true"
    listeners = _listeners(pairs)
    assert set(listeners) == {"8883", "8884", "8885"}
    for options in listeners.values():
        assert options["allow_anonymous"] == "false"
        assert options["acl_file"].endswith("/acl")
        assert {"cafile", "certfile", "keyfile"} <= set(options)
    # Services: only their own accounts; devices: the client id is the username.
    assert listeners["8883"]["password_file"].endswith("/passwd-services")
    assert "use_username_as_clientid" not in listeners["8883"]
    assert listeners["8885"]["password_file"].endswith("/passwd")
    assert listeners["8884"]["require_certificate"] == "true"
    assert listeners["8884"]["use_identity_as_username"] == "true"
    for device_listener in ("8884", "8885"):
        assert listeners[device_listener]["use_username_as_clientid"] == "true"
