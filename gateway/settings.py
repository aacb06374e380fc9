"""Settings of contract section 1, built at start-up (never at import)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
