"""A small campus for the check-in tests, and an API client that signs a person in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
from person_sign_in import person_bearer

from api.app import create_app
from gateway.settings import Settings

CARD = "04C0FFEE01"
ORG_UNITS = [("cs", "Computer Science", None), ("cs-1", "Class 1", "cs"), ("math", "Maths", None)]
PEOPLE = [
    ("S1", "student", "Li Hua", "cs-1", True),
    ("S2", "student", "Wang Fang", "cs-1", True),
    ("S3", "student", "Zhao Lei", "math", True),
    ("T1", "staff", "Zhang Wei", "cs", True),
    ("T2", "staff", "Huang Min", "math", True),
    ("X1", "student", "Gone Away", "cs-1", False),
]


async def seed(db: asyncpg.Connection) -> None:
    await db.executemany(
        "INSERT INTO org_units (id, name, parent_id) VALUES ($1, $2, $3)", ORG_UNITS
    )
    await db.executemany(
        "INSERT INTO people (id, kind, name, org_unit_id, active) VALUES ($1, $2, $3, $4, $5)",
        PEOPLE,
    )


async def add_door(db: asyncpg.Connection) -> None:
    """Dormitory 'dorm' with door 'dorm-main' and terminal 'term-dorm'; S1 holds CARD."""
    await db.execute(
        f"""
        INSERT INTO zones (id, name, kind) VALUES ('dorm', 'Dorm', 'dormitory');
        INSERT INTO doors (id, zone_id, direction) VALUES ('dorm-main', 'dorm', 'both');
        INSERT INTO devices (id, door_id, kind) VALUES ('term-dorm', 'dorm-main', 'terminal');
        INSERT INTO cards (uid, person_id) VALUES ('{CARD}', 'S1');
        INSERT INTO grants (subject_org_unit, zone_id) VALUES ('cs', 'dorm');
        """
    )


@contextlib.asynccontextmanager
async def api(dsn: str, settings: Settings | None = None) -> AsyncIterator[PersonApi]:
    """The app on `dsn`; `as_person(id)` gives a client signed in as that person."""
    app = create_app(settings or Settings(database_url=dsn), dsn)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield PersonApi(app, client)


class PersonApi:
    def __init__(self, app, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.client = client

    async def sign_in(self, person_id: str) -> None:
        """The client now carries a real session of the person (tests/person_sign_in.py)."""
        token = await person_bearer(self.app.state.settings.database_url, person_id)
        self.client.headers["Authorization"] = f"Bearer {token}"

    async def check_in(self, person_id: str, **body: object) -> httpx.Response:
        await self.sign_in(person_id)
        return await self.submit(**body)

    async def submit(self, **body: object) -> httpx.Response:
        """A check-in as whoever is signed in."""
        payload: dict[str, object] = {
            "location": "on_campus",
            "dormitory": "Dorm 10",
            "temperature_c": 36.5,
            "symptoms": [],
            "case_contact": False,
            "travel_plans": None,
        }
        payload.update(body)
        return await self.client.post("/api/me/checkin", json=payload)

    def operator(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://t",
            headers={"Authorization": f"Bearer {token}"},
        )
