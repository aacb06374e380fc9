"""Log output: the usual text lines, or one JSON object per line (CAMPUSGATE_LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# LogRecord attributes that are not `extra=` fields.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """ts (UTC, ISO 8601), level, logger, message; exception and stack text when present;
    any `extra=` fields as they are (or their repr when JSON cannot hold them)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        # ensure_ascii: a lone surrogate from a device's payload must not break the line.
        return json.dumps(entry, default=repr, ensure_ascii=True)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for CAMPUSGATE_LOG_FORMAT (`text` or `json`)."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: str, handler: logging.Handler) -> None:
    """Send the root logger's records at `level` and up to `handler`, formatted as asked.

    As `logging.basicConfig`: a root logger that has handlers already (an embedding
    program's, pytest's) is left as it is.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level.upper())


def announce(message: str, log_format: str) -> None:
    """A status line for the operator on stderr ("running", where the API is), whatever the
    log level; in JSON mode a JSON line like the logs, so stderr stays machine-readable."""
    if log_format == "json":
        record = logging.LogRecord("campusgate", logging.INFO, "", 0, message, None, None)
        message = JsonFormatter().format(record)
    print(message, file=sys.stderr, flush=True)
