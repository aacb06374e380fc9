"""A small campus for the workflow tests (a module of its own: conftest is not importable)."""

from __future__ import annotations

import asyncpg

# cs > cs-1 > cs-1-a; math has its own staff; bio has no staff anywhere above it.
ORG_UNITS = [
    ("cs", "Computer Science", None),
    ("cs-1", "Class 1", "cs"),
    ("cs-1-a", "Group A", "cs-1"),
    ("math", "Mathematics", None),
    ("bio", "Biology", None),
]
PEOPLE = [
    # id, kind, name, org unit, active
    ("S1", "student", "Li Hua", "cs-1-a", True),
    ("S2", "student", "Wang Fang", "cs-1-a", True),
    ("S3", "student", "Chen Jie", "cs-1", True),
    ("S4", "student", "Zhao Lei", "math", True),
    ("S5", "student", "Sun Li", "bio", True),
    ("T1", "staff", "Zhang Wei", "cs", True),
    ("T2", "staff", "Liu Yang", "cs", True),
    ("T3", "staff", "Huang Min", "math", True),
    ("T4", "staff", "Old Staff", "cs-1", False),
]


async def seed_campus(db: asyncpg.Connection) -> None:
    await db.executemany(
        "INSERT INTO org_units (id, name, parent_id) VALUES ($1, $2, $3)", ORG_UNITS
    )
    await db.executemany(
        "INSERT INTO people (id, kind, name, org_unit_id, active) VALUES ($1, $2, $3, $4, $5)",
        PEOPLE,
    )
