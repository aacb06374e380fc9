from db_fixtures import (  # noqa: F401
    conn,
    fresh_db,
    new_database,
)
