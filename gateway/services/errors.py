"""The domain's refusals, shared by the API (one handler per kind) and the CLI.

Each kind says what went wrong in the domain's terms; the API maps a kind to one HTTP
status and body shape (`api/errors.py`), so services never speak HTTP and routers never
catch them one by one.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "InvalidReferenceError",
    "InvalidValueError",
    "NotAllowedError",
    "NotFoundError",
    "OutOfRangeError",
]


class NotFoundError(LookupError):
    """The thing named does not exist."""


class NotAllowedError(PermissionError):
    """The one asking may not do this (e.g. a deactivated person checking in)."""


class ConflictError(Exception):
    """The change does not fit the current state (a duplicate, a wrong status, a busy job)."""


class InvalidReferenceError(ValueError):
    """A field names something that does not exist or does not fit (e.g. a caretaker)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidValueError(ValueError):
    """Values that do not fit together; `field` names the one at fault when there is one."""

    field: str | None = None

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field


class OutOfRangeError(ValueError):
    """A question the data cannot answer (e.g. a report on a day that has not begun)."""


class TooManyError(Exception):
    """The one asking has done this too often for now (answered 429)."""
