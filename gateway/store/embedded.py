"""Where the database is: the configured DSN, or an embedded PostgreSQL under the data dir."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import Protocol

_LOGGER = logging.getLogger(__name__)


class _HasDatabase(Protocol):
    database_url: str | None
    data_dir: Path


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL could not be started."""


def resolve_database_url(settings: _HasDatabase) -> str:
    """The configured DSN, else the URI of the embedded server (started if not running).

    The embedded server runs while some campusgate process uses it: pgserver counts
    the processes using a data dir and the last one to exit (also on Ctrl-C or
    SIGTERM) stops it (cleanup_mode="stop"), so nothing is left running behind a demo.
    """
    if settings.database_url:
        return settings.database_url
    path = Path(settings.data_dir).expanduser() / "pg"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedDatabaseError(
            f"cannot create the embedded database folder {path}: {exc.strerror}; "
            "set CAMPUSGATE_DATA_DIR to a writable folder or CAMPUSGATE_DATABASE_URL"
        ) from None
    # pgserver logs each start and exit at INFO, and platformdirs warns without
    # XDG_RUNTIME_DIR; neither tells the operator anything.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            _forget_dead_users(path)
            server = pgserver.get_server(path, cleanup_mode="stop")
            uri = server.get_uri()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise EmbeddedDatabaseError(
            f"cannot start the embedded PostgreSQL under {path}: {exc}; "
            "set CAMPUSGATE_DATABASE_URL to use a PostgreSQL server instead"
        ) from exc
    _LOGGER.debug("using the embedded PostgreSQL under %s", path)
    return uri


def _forget_dead_users(path: Path) -> None:
    """Drop processes that died without exiting (SIGKILL, power loss) from pgserver's list
    of users of the server, so the last live user still stops it when it exits."""
    from pgserver.postgres_server import PostgresServer

    users = path / ".handle_pids.json"
    with PostgresServer._lock:
        try:
            pids = json.loads(users.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(pids, list):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
        if alive != pids:
            users.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
