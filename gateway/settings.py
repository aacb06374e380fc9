"""Settings of contract section 1, built at start-up (never at import)."""

from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.domain.reports import parse_recipients


class Settings(BaseSettings):
    """Everything an operator can set through `CAMPUSGATE_*` or a flag of the same name."""

    model_config = SettingsConfigDict(env_prefix="CAMPUSGATE_", extra="ignore")

    database_url: str | None = None
    # One broker URL, or the comma-separated URLs of a clustered broker's nodes (same
    # scheme), tried in turn: the gateway moves to the next when one fails.
    mqtt_url: str | None = None
    # MQTT protocol: "5" or "3.1.1" (NATS speaks 3.1.1 only); None: the URL's
    # `?protocol=`, else 5.
    mqtt_protocol: str | None = None
    topic_prefix: str = "campus"
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "campusgate")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    fever_threshold_c: float = Field(default=37.3, ge=35.0, le=42.0)
    timezone: str = "Asia/Shanghai"
    temperature_window_s: float = Field(default=15.0, gt=0, le=300)

    # Not in the contract table.
    # OSDP secure-channel keys per reader: a JSON object of device id to 32 hex digits
    # (or to {"scbk": ..., "address": N}); see gateway/pipeline/serial_reader_pool.py.
    osdp_keys: str | None = None
    # Thermal camera calibrations: a JSON object of device id to
    # {"offset_c", "ambient_coeff", "ambient_ref_c"}; see gateway/pipeline/thermal_frames.py.
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
    # Daily check-in (issue #15): who has not checked in by the cut-off (campus time,
    # HH:MM) is on the liaisons' missing list; reminders go this many minutes before it
    # to the webhook (http(s) URL; unset: no reminders).
    checkin_cutoff: str = "10:00"
    checkin_reminder_minutes: int = Field(default=60, ge=0, le=24 * 60)
    checkin_reminder_webhook: str | None = None
    # Retention: access events and health history older than this are deleted
    # (or anonymized); reports older than retention_reports_days are deleted.
    retention_access_days: int = Field(default=90, ge=15, le=3650)
    retention_health_days: int = Field(default=180, ge=15, le=3650)
    retention_reports_days: int = Field(default=365, ge=1, le=3650)
    # A person's own sign-in account (and its sessions, invitations) is deleted this many
    # days after the person was deactivated or passed their valid_until.
    retention_person_account_days: int = Field(default=30, ge=1, le=3650)
    # Visitor passes (issue #15, point 5): the longest window a pass may span.
    visitor_pass_max_days: int = Field(default=7, ge=1, le=90)
    # Operator security (issue #12, point 6); not in the contract table.
    # A console session unused this long ends (it also ends 12 h after login).
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Failed logins allowed per 5 minutes for one name (from anywhere) and from one address.
    login_failures_per_name: int = Field(default=5, ge=1, le=1000)
    login_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    # Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: str = ""
    # Comma-separated extra origins (scheme://host[:port]) allowed to open the live stream.
    allowed_origins: str = ""
    # Request bodies: at most this many bytes before logging in, and once logged in.
    max_body_anonymous: int = Field(default=16 * 1024, ge=1024)
    max_body: int = Field(default=20 * 1024 * 1024, ge=1024)
    # Database-heavy API requests (traces, event pages, exports, imports) served at once
    # per API process; more wait their turn (the doors' journal shares the database).
    api_heavy_requests: int = Field(default=1, ge=1, le=64)
    # How many more may wait their turn; one more is refused with 503 and Retry-After.
    api_heavy_queue: int = Field(default=8, ge=0, le=1000)
    # The API process's CPU priority under `serve`: `idle` (SCHED_IDLE, it gets only CPU
    # time nothing else wants) or a niceness 0-19 (gateway/cli/cpu_priority.py).
    api_cpu_priority: str = "idle"
    # CPUs the API process may run on (Linux affinity, e.g. "1" or "2-3,6"); empty: any.
    # Keeps API work off the cores the door loop and broker use (gateway/cli/cpu_priority.py).
    api_cpus: str = ""
    # OSDP readers without a secure-channel key run only when this is true (a test bench).
    osdp_allow_insecure: bool = False
    # TLS to the broker (mqtts:// only): the CA that signed the broker's certificate
    # (default: the system's trust store), and a client certificate and key for a listener
    # that requires one (`campusgate certs`); the key may sit in the certificate file.
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    # Signed commands (docs/protocol.md): every command to a device carries an Ed25519
    # signature. The key file is made on first start; every worker of a campus must read
    # the same one (default: <data_dir>/keys/command-signing.pem).
    sign_commands: bool = True
    signing_key_file: Path | None = None
    # Offline decisions (issue 13): how long a door's allowlist is valid (schedules are
    # expanded that far ahead), and the org units whose people an expired list still admits.
    # Several workers (`campusgate worker`) elect one publisher through PostgreSQL
    # (gateway/pipeline/allowlist_election.py); false keeps this process out of it.
    publish_allowlists: bool = True
    allowlist_days: float = Field(default=3.0, gt=0, le=31)
    offline_emergency_units: str = ""
    # The local spool (issue 13, point 4): while PostgreSQL is away, decisions are
    # journaled to <data_dir>/spool/<client id>.sqlite3 and drained when it is back; at
    # most this many items (log rows, alerts, states) are held, then doors wait. 0: no spool.
    spool_max_items: int = Field(default=500_000, ge=0, le=50_000_000)
    # People's own sign-in to the mobile page /me/ (issue #15, point 1); not in the contract.
    # The address people reach the API at (https://gate.example.edu): invitation links and
    # the CAS service URL are built from it; empty: from each request's own URL.
    public_url: str = ""
    # The university's CAS server (https://cas.example.edu/cas); empty turns CAS sign-in off.
    cas_url: str = ""
    cas_version: int = Field(default=3, ge=2, le=3)
    # The CAS attribute that names the person (CAS 3 answers carry attributes); empty:
    # the CAS user itself. Matched against the roster column `cas_person_field`.
    cas_user_attribute: str = ""
    cas_person_field: str = "id"
    # A person's session unused this long ends (every one ends 12 h after sign-in).
    person_session_idle_minutes: int = Field(default=60, ge=1, le=24 * 60)
    person_invitation_days: int = Field(default=7, ge=1, le=90)
    # Tuning with safe defaults.
    # Scale-out (issue 14, README "Scale-out"): doors are hashed into this many partitions,
    # a property of the campus recorded in the database by the first worker (every worker
    # must use the same); a worker owns a partition while it holds its lease, renewed
    # every lease/5 s; a dead worker's partitions are taken once its leases expire.
    partitions: int = Field(default=64, ge=1, le=4096)
    partition_lease_s: float = Field(default=5.0, ge=1.0, le=300.0)
    # MQTT client id of partition n's persistent session: `<prefix><n>`.
    partition_client_prefix: str = "campusgate-p"
    log_level: str = "INFO"
    # Observability (README "Observability"): `json` writes one JSON object per log line.
    log_format: str = "text"
    # The worker's /metrics, /healthz and /readyz; 0 turns that server off. Several workers
    # on one host need a port each.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    # When set, /metrics (workers and API) wants `Authorization: Bearer <token>`.
    metrics_token: str | None = None

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
        # The whole check is BrokerAddress.parse's (devices/transports/mqtt.py), at start;
        # this one catches the common mistakes at once.
        schemes = set()
        for item in value.split(","):
            if not item.strip():
                raise ValueError("an empty entry between commas in the list of broker URLs")
            parts = urlsplit(item.strip())
            if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
                shown = re.sub(r"(://[^:@/,]*):[^@/,]*@", r"\1:***@", item.strip())
                what = f"{shown!r} in the list" if "," in value else "it"
                raise ValueError(
                    f"must be mqtt://[user:pass@]host:port or mqtts://..., or several such"
                    f" URLs separated by commas for a clustered broker; {what} is not"
                )
            schemes.add(parts.scheme)
        if len(schemes) > 1:
            raise ValueError("the URLs of one clustered broker must share one scheme")
        return value

    @field_validator("mqtt_protocol")
    @classmethod
    def _check_mqtt_protocol(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip()
        if text not in ("5", "3.1.1"):
            raise ValueError("must be 5 or 3.1.1 (NATS speaks 3.1.1 only)")
        return text

    @field_validator("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file")
    @classmethod
    def _check_tls_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file {value}; make it with `campusgate certs`")
        return value

    @model_validator(mode="after")
    def _check_tls_settings(self) -> Settings:
        tls_files = self.mqtt_ca_file or self.mqtt_cert_file or self.mqtt_key_file
        if tls_files and not (self.mqtt_url or "").startswith("mqtts://"):
            raise ValueError(
                "CAMPUSGATE_MQTT_CA_FILE/_CERT_FILE/_KEY_FILE need an mqtts:// CAMPUSGATE_MQTT_URL"
            )
        if self.mqtt_key_file and not self.mqtt_cert_file:
            raise ValueError("CAMPUSGATE_MQTT_KEY_FILE needs CAMPUSGATE_MQTT_CERT_FILE too")
        return self

    @model_validator(mode="after")
    def _check_cas_service(self) -> Settings:
        # The CAS `service` (where tickets are sent back, and what they are validated
        # for) must not come from the request's Host header, which a client chooses.
        if self.cas_url and not self.public_url:
            raise ValueError(
                "CAMPUSGATE_CAS_URL needs CAMPUSGATE_PUBLIC_URL (the address people reach "
                "the gateway at, e.g. https://campusgate.example.edu): CAS tickets are "
                "issued and validated for it"
            )
        return self

    def mqtt_options(self) -> dict[str, str | None]:
        """The protocol and the TLS files as keyword arguments of `BrokerAddress.parse`."""
        return {"protocol": self.mqtt_protocol, **self.mqtt_tls_files()}

    def mqtt_tls_files(self) -> dict[str, str | None]:
        """The TLS files as keyword arguments of `BrokerAddress.parse`."""
        return {
            "ca_file": str(self.mqtt_ca_file) if self.mqtt_ca_file else None,
            "cert_file": str(self.mqtt_cert_file) if self.mqtt_cert_file else None,
            "key_file": str(self.mqtt_key_file) if self.mqtt_key_file else None,
        }

    @field_validator("api_cpu_priority")
    @classmethod
    def _api_cpu_priority(cls, value: str) -> str:
        text = value.strip().lower()
        if text == "idle":
            return text
        try:
            niceness = int(text)
        except ValueError:
            niceness = -1
        if not 0 <= niceness <= 19:
            raise ValueError(f"{value!r} is neither `idle` nor a niceness from 0 to 19")
        return str(niceness)

    @field_validator("api_cpus")
    @classmethod
    def _api_cpus(cls, value: str) -> str:
        text = value.strip()
        ranges = [part.strip().partition("-") for part in text.split(",")] if text else []
        for low, _, high in ranges:
            if not (re.fullmatch(r"\d+", low) and re.fullmatch(r"\d*", high)):
                raise ValueError(f"{value!r} is not a CPU list like 1 or 0,2 or 2-3,6")
            if high and int(high) < int(low):
                raise ValueError(f"{value!r} is not a CPU list: {low}-{high} runs backwards")
        return text

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

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        fmt = value.strip().lower()
        if fmt not in ("text", "json"):
            raise ValueError("must be text or json")
        return fmt

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: str | None) -> str | None:
        if value and (len(value) < 16 or not value.isprintable() or " " in value):
            raise ValueError("must be at least 16 printable characters without spaces")
        return value or None

    @field_validator("report_time", "checkin_cutoff")
    @classmethod
    def _check_report_time(cls, value: str) -> str:
        hour, sep, minute = value.partition(":")
        if not (
            sep and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60
        ):
            raise ValueError("must be HH:MM in the campus time zone, e.g. 08:00")
        return f"{int(hour):02d}:{int(minute):02d}"

    @field_validator("checkin_reminder_webhook")
    @classmethod
    def _check_reminder_webhook(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

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

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        for item in _items(value):
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an address or CIDR; e.g. 10.0.0.1,192.168.0.0/24"
                ) from None
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_allowed_origins(cls, value: str) -> str:
        for item in _items(value):
            parts = urlsplit(item)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(f"{item!r} is not an origin such as https://console.example.edu")
        return value

    @field_validator("public_url", "cas_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc or parts.query):
            raise ValueError(f"{value!r} is not a URL such as https://cas.example.edu/cas")
        return value.rstrip("/")

    @field_validator("cas_person_field")
    @classmethod
    def _check_person_field(cls, value: str) -> str:
        if value not in ("id", "id_number"):
            raise ValueError("cas_person_field is `id` (person id) or `id_number` (ID number)")
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(ip_network(item, strict=False) for item in _items(self.trusted_proxies))

    @property
    def allowed_origin_set(self) -> frozenset[str]:
        return frozenset(item.rstrip("/").lower() for item in _items(self.allowed_origins))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]
