"""A JSON body holding a lone surrogate escape ("\\ud800") is valid JSON but not UTF-8
text: the answer is a 422 naming the field, never a server error."""

from __future__ import annotations

import pytest

LONE = '"\\ud800"'


def _body(template: str) -> str:
    return template.replace("LONE", LONE)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/health/S001", _body('{"status": "suspected", "reason": LONE}')),
        ("PUT", "/api/levels", _body('{"level": "lockdown", "zones": [LONE]}')),
        ("POST", "/api/daily-reports/generate", _body('{"day": "2026-01-01", "org_unit": LONE}')),
        ("POST", "/api/travel/areas", _body('{"name": LONE, "effective_from": "2026-01-01"}')),
    ],
)
async def test_lone_surrogate_in_a_body_is_422(admin, method, path, body):
    response = await admin.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)
