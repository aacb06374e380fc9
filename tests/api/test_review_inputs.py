"""Bad input that reached the database (a 500, or a row that can never apply) is a 422."""

from __future__ import annotations

import pytest

# Parses as a time, but its UTC form lies past the year 9999 (and before the year 1).
LATE = "9999-12-31T23:59:59-14:00"
EARLY = "0001-01-01T00:00:00+14:00"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/people", {"id": "RV1", "kind": "student", "name": "x", "valid_until": LATE}),
        ("PATCH", "/api/people/S001", {"valid_until": LATE}),
        ("PATCH", "/api/people/S001", {"valid_until": EARLY}),
        ("POST", "/api/people/S001/cards", {"uid": "0A0B0C0D", "valid_until": LATE}),
    ],
)
async def test_times_out_of_range_are_422_naming_the_field(admin, method, path, body) -> None:
    response = await admin.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == "valid_until"
    assert (await admin.get("/api/people/RV1")).status_code == 404


async def test_a_grant_that_ends_before_it_begins_is_422(admin) -> None:
    body = {
        "subject_kind": "visitor",
        "zone_id": "lab-1",
        "valid_from": "2030-01-01T00:00:00Z",
        "valid_until": "2020-01-01T00:00:00Z",
    }
    response = await admin.post("/api/grants", json=body)
    assert response.status_code == 422, response.text
    assert "valid_until must lie after valid_from" in response.text
    assert not [
        g for g in (await admin.get("/api/grants")).json() if g["subject_kind"] == "visitor"
    ]
    body["valid_from"] = "2030-01-01T00:00:00"  # naive beside an aware valid_until
    assert (await admin.post("/api/grants", json=body)).status_code == 422
    body["valid_until"] = LATE
    response = await admin.post("/api/grants", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "valid_until"]
