"""Settings of contract section 1, built at start-up (never at import)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.domain.reports import parse_recipients


class Settings(BaseSettings):
    """Everything an operator can set through `CAMPUSGATE_*` or a flag of the same name."""

    model_config = SettingsConfigDict(env_prefix="CAMPUSGATE_", extra="ignore")

    database_url: str | None = None
    mqtt_url: str | None = None
    topic_prefix: str = "campus"
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "campusgate")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    fever_threshold_c: float = Field(default=37.3, ge=35.0, le=42.0)
    timezone: str = "Asia/Shanghai"
    temperature_window_s: float = Field(default=15.0, gt=0, le=300)

    # Not in the contract table.
    # OSDP secure-channel keys per reader: a JSON object of device id to 32 hex digits
    # (or to {"scbk": ..., "address": N}); see gateway/pipeline/serial_readers.py.
    osdp_keys: str | None = None
    # Thermal camera calibrations: a JSON object of device id to
    # {"offset_c", "ambient_coeff", "ambient_ref_c"}; see gateway/pipeline/thermal.py.
    thermal_calibrations: str | None = None
    # Epidemic-prevention workflows (issue #5); not in the contract table.
    # Days of isolation after a return from an epidemic area or after a close contact.
    isolation_days: int = Field(default=14, ge=1, le=60)
    # Contact tracing: how far back by default, how close two entries must be to count
    # as a contact where no exit was logged, and the longest stay assumed without an exit.
    trace_window_days: int = Field(default=14, ge=1, le=60)
    trace_entry_gap_s: float = Field(default=900.0, gt=0, le=86_400)
    trace_max_stay_h: float = Field(default=12.0, gt=0, le=72)
    # Daily reports: when they are generated (campus time, HH:MM), where they go, how.
    report_time: str = "08:00"
    # JSON object: {"student": [addresses], "staff": [addresses]}; an address is
    # "mailto:office@example.edu" or an http(s):// webhook URL.
    report_recipients: str | None = None
    smtp_url: str | None = None  # smtp://[user:pass@]host:port (smtps:// for TLS)
    smtp_from: str = "campusgate@localhost"
    # Retention: access events and health history older than this are deleted
    # (or anonymized); reports older than retention_reports_days are deleted.
    retention_access_days: int = Field(default=90, ge=15, le=3650)
    retention_health_days: int = Field(default=180, ge=15, le=3650)
    retention_reports_days: int = Field(default=365, ge=1, le=3650)
    # Signed commands (docs/protocol.md): every command to a device carries an Ed25519
    # signature. The key file is made on first start; every worker of a campus must read
    # the same one (default: <data_dir>/keys/command-signing.pem).
    sign_commands: bool = True
    signing_key_file: Path | None = None
    # Tuning with safe defaults.
    worker_group: str = "campusgate-gateway"
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql://... DSN")
        return value or None

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must be mqtt://[user:pass@]host:port or mqtts://...")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "+#/") or value.startswith("$"):
            raise ValueError("must be one topic level without '/', '+', '#' or a leading '$'")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai"
            ) from None
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("report_time")
    @classmethod
    def _check_report_time(cls, value: str) -> str:
        hour, sep, minute = value.partition(":")
        if not (
            sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60
        ):
            raise ValueError("must be HH:MM in the campus time zone, e.g. 08:00")
        return f"{int(hour):02d}:{int(minute):02d}"

    @field_validator("report_recipients")
    @classmethod
    def _check_report_recipients(cls, value: str | None) -> str | None:
        try:
            parse_recipients(value)
        except ValueError as exc:
            raise ValueError(
                f'{exc}; expected {{"student": ["mailto:a@b.edu"], "staff": ["https://..."]}}'
            ) from None
        return value or None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
