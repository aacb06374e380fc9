"""Bad input that reached the database (a 500, or a row that can never apply) is a 422."""

from __future__ import annotations

from datetime import date, timedelta

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


async def test_moving_an_area_onto_another_listing_of_it_is_409(admin) -> None:
    today = date.today()
    name = "Zzyzx review area"
    first = await admin.post(
        "/api/travel/areas",
        json={
            "name": name,
            "effective_from": str(today - timedelta(days=20)),
            "effective_until": str(today - timedelta(days=10)),
        },
    )
    second = await admin.post(
        "/api/travel/areas", json={"name": name, "effective_from": str(today - timedelta(days=5))}
    )
    assert first.status_code == second.status_code == 201, second.text
    ids = [first.json()["area"]["id"], second.json()["area"]["id"]]
    try:
        moved = await admin.patch(
            f"/api/travel/areas/{ids[1]}", json={"effective_from": str(today - timedelta(days=15))}
        )
        assert moved.status_code == 409, moved.text
        assert "already listed" in moved.json()["detail"]
        far = await admin.patch(
            f"/api/travel/areas/{ids[1]}", json={"effective_until": "2999-01-01"}
        )
        assert far.status_code == 422
    finally:
        for area_id in ids:
            await admin.delete(f"/api/travel/areas/{area_id}")


@pytest.mark.parametrize("name", ["\x1c", "\x1f\x1e", " \x1d ", "Wuhan\x00", "\u3000"])
async def test_place_names_of_separators_or_controls_are_422_not_500(admin, name) -> None:
    # Found by the schema fuzz: "\x1c" passed `\S` (the regex's \s does not include the C0
    # separators) but Python's strip() emptied it and the database refused the empty name.
    for path, body in (
        ("/api/travel/areas", {"name": name}),
        ("/api/travel/areas/preview", {"name": "Wuhan", "match": name}),
        (
            "/api/travel/declarations",
            {
                "person_id": "S001",
                "destination": name,
                "departure_date": str(date.today() - timedelta(days=3)),
                "return_date": str(date.today() - timedelta(days=1)),
            },
        ),
    ):
        response = await admin.post(path, json=body)
        assert response.status_code == 422, (path, response.text)
