"""A 5,000-person campus day: every scheduled report is generated in seconds (SQL does
the aggregating; one pass over the access log for all units)."""

from __future__ import annotations

import random
import time
from datetime import UTC, timedelta

import pytest

from firmware_sim.campus import dump_manifest, generate_campus
from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Reason, Verdict
from gateway.domain.events import Direction, EventType
from gateway.services.importer import import_file
from gateway.services.reports import generate_reports
from gateway.settings import Settings
from gateway.store.access_log import write_access_records

from .conftest import TZ, at, today

DAYS = 7
PASSAGES_PER_PERSON = 6


@pytest.mark.slow
async def test_all_reports_of_a_big_campus_day_take_seconds(conn, tmp_path):
    campus = generate_campus(seed=9, people=5000)
    path = tmp_path / "campus.yaml"
    dump_manifest(campus.manifest, path)
    await import_file(conn, path, tz=TZ, operator="test")
    facts = campus.facts
    doors = sorted(facts.door_zones)
    rng = random.Random(1)
    people = [p for p in facts.people if p.active]
    day = today() - timedelta(days=1)
    records = []
    for back in range(DAYS):
        d = day - timedelta(days=back)
        for n, person in enumerate(people):
            if rng.random() < 0.1:
                continue  # absent that day
            for k in range(PASSAGES_PER_PERSON):
                door = rng.choice(doors)
                when = at(d, rng.randrange(86_400)).astimezone(UTC)
                # Readings only at temperature doors: most people pass a gate unmeasured.
                measured = door in facts.temperature_doors
                fever = measured and rng.random() < 0.01
                records.append(
                    AccessRecord(
                        f"term-{door}", f"{d}-{n}-{k}", EventType.CARD, when, when,
                        door, facts.door_zones[door], person.id, person.cards[0],
                        Direction.IN, (38.0 if fever else 36.5) if measured else None,
                        Verdict.DENY if fever else Verdict.ADMIT,
                        Reason.FEVER if fever else Reason.OK, when,
                    )
                )  # fmt: skip
    await write_access_records(conn, records)
    await conn.execute("ANALYZE access_events")
    started = time.perf_counter()
    reports = await generate_reports(conn, day=day, settings=Settings(data_dir=tmp_path), by="t")
    elapsed = time.perf_counter() - started
    print(f"{len(reports)} reports over {len(records)} events in {elapsed:.2f} s")
    campus_students = next(r for r in reports if r.org_unit_id is None and r.audience == "student")
    assert campus_students.summary["people"] == sum(1 for p in people if p.kind == "student")
    assert campus_students.summary["trend"][0]["present"] > 0
    everyone = [r for r in reports if r.org_unit_id is None]
    audience = {p.id for p in people if p.kind != "visitor"}  # reports are of students, staff
    admitted = sum(
        1
        for r in records
        if r.received_at >= at(day, 0) and r.verdict == "admit" and r.person_id in audience
    )
    assert sum(r.summary["passages"]["total"] for r in everyone) == admitted
    unscreened = campus_students.lists["never_screened"]
    assert len(unscreened) == campus_students.summary["never_screened"] > 0
    assert all(row["first_passage_door"] for row in unscreened)
