from privacy_fixtures import client_for, privacy_app, privacy_world  # noqa: F401
