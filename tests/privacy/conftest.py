from db_fixtures import (  # noqa: F401
    conn,
    fresh_db,
    new_database,
)
from privacy_fixtures import client_for, privacy_app, privacy_world  # noqa: F401
