from db_fixtures import (  # noqa: F401
    conn,
    fresh_db,
    fresh_db_module,
    new_database,
)
