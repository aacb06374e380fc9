"""Schemathesis cases from the OpenAPI schema, sent with an admin token: never a server error."""

from __future__ import annotations

import warnings

import schemathesis
from hypothesis.errors import NonInteractiveExampleWarning
from schemathesis.core import NotSet

EXAMPLES_PER_OPERATION = 12


async def test_no_server_error_for_any_input(app, admin):
    schema = schemathesis.openapi.from_dict(app.openapi())  # no second lifespan
    failures: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/import":
            continue  # multipart uploads are covered by test_api
        strategy = operation.as_strategy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonInteractiveExampleWarning)
            cases = [strategy.example() for _ in range(EXAMPLES_PER_OPERATION)]
        for case in cases:
            response = await admin.request(
                case.method,
                case.formatted_path,
                params=case.query or None,
                json=None if isinstance(case.body, NotSet) else case.body,
            )
            sent += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} {case.body!r}"
                    f" -> {response.status_code}"
                )
    assert sent > 100
    assert not failures, "\n".join(failures[:20])
