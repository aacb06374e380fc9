"""Tracing against ground truth: a simulated campus week (5,000 people, 7 days) loaded
into PostgreSQL by COPY; sampled index people traced; recall and precision over all pairs."""

from __future__ import annotations

import random

from firmware_sim.presence import TruthIndex, score, simulate
from gateway.cli.trace_bench import load_week
from gateway.services.tracing import TraceRequest, trace
from gateway.settings import Settings

PEOPLE = 5000
DAYS = 7
SAMPLE = 25


async def test_recall_and_precision_on_a_campus_week(conn):
    week = simulate(people=PEOPLE, days=DAYS, seed=2020)
    visits, rows = await load_week(conn, week)
    assert rows > 300_000
    truth = TruthIndex(visits, week.window_start, week.window_end)
    index_people = random.Random(5).sample(truth.people(), SAMPLE)
    settings = Settings()
    traced = []
    overlap_used = proximity_used = False
    for person in index_people:
        request = TraceRequest(person, start=week.window_start, end=week.window_end)
        result = await trace(conn, request, settings, by="accuracy-test")
        traced.append((person, {c.person_id for c in result.contacts}))
        overlap_used |= any(c.overlap_s >= 60 for c in result.contacts)
        proximity_used |= any(c.proximity_encounters for c in result.contacts)
    recall, precision, true_pairs, traced_pairs = score(traced, truth)
    print(
        f"\n{PEOPLE} people, {DAYS} days, {rows} rows, {SAMPLE} index people: "
        f"recall {recall:.4f}, precision {precision:.4f} "
        f"({true_pairs} true pairs, {traced_pairs} traced)"
    )
    assert true_pairs > 10_000
    assert recall >= 0.99
    assert precision >= 0.9
    assert overlap_used and proximity_used  # both ways of finding contacts ran
