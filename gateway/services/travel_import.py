"""Travel declarations from a CSV file (what universities collect with forms).

Header: person_id,destination,departure_date,return_date and optionally note; dates
are YYYY-MM-DD (campus-local). The whole file is checked before anything is written;
the first problem is raised as one line naming the file and the row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from datetime import date

import asyncpg

from gateway.services.travel import Evaluation, TravelRules, Trip, declare
from gateway.store.org_tree import people_in_scope

REQUIRED = ("person_id", "destination", "departure_date", "return_date")
OPTIONAL = ("note",)
MAX_ROWS = 200_000
MAX_DAYS_AWAY = 732
_MAX_FIELD = 500


class TravelImportError(ValueError):
    """A declarations file that cannot be imported; the message names the file and row."""


def parse_declarations(text: str, source: str) -> list[tuple[int, Trip]]:
    """The file's (row number, trip) pairs, checked against themselves (not the roster)."""
    if text.startswith("\ufeff"):
        text = text[1:]  # spreadsheet programs write a BOM
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise TravelImportError(f"{source}: empty file; expected a header row") from None
    except csv.Error as exc:
        raise TravelImportError(f"{source}: row 1: not valid CSV: {exc}") from None
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown or len(set(header)) != len(header):
        raise TravelImportError(
            f"{source}: row 1: header must be {','.join(REQUIRED)}[,note]; got {','.join(header)}"
        )
    trips: list[tuple[int, Trip]] = []
    try:
        for number, fields in enumerate(reader, start=2):
            if not any(f.strip() for f in fields):
                continue
            if len(trips) >= MAX_ROWS:
                raise TravelImportError(f"{source}: more than {MAX_ROWS} rows")
            row = dict(zip(header, fields, strict=False))
            trips.append((number, _trip(row, fields, header, source, number)))
    except csv.Error as exc:
        raise TravelImportError(f"{source}: row {reader.line_num}: not valid CSV: {exc}") from None
    if not trips:
        raise TravelImportError(f"{source}: no declarations after the header")
    return trips


def _trip(row: dict[str, str], fields: list[str], header: list[str], source: str, n: int) -> Trip:
    def fail(message: str) -> TravelImportError:
        person = row.get("person_id", "").strip()
        return TravelImportError(f"{source}: row {n}{f' ({person})' if person else ''}: {message}")

    if len(fields) != len(header):
        raise fail(f"expected {len(header)} fields, got {len(fields)}")
    for name, value in row.items():
        if len(value) > _MAX_FIELD:
            raise fail(f"{name} is longer than {_MAX_FIELD} characters")
        if any(ord(c) < 32 and c not in "\t" for c in value):
            raise fail(f"{name} holds a control character")
    person_id, destination = row["person_id"].strip(), row["destination"].strip()
    if not person_id:
        raise fail("person_id is empty")
    if not destination:
        raise fail("destination is empty")
    departure = _date(row["departure_date"], "departure_date", fail)
    returned = _date(row["return_date"], "return_date", fail)
    if returned < departure:
        raise fail(f"return_date {returned} lies before departure_date {departure}")
    if max(abs((d - date.today()).days) for d in (departure, returned)) > MAX_DAYS_AWAY:
        raise fail("dates more than two years away are refused (a typing mistake?)")
    return Trip(person_id, destination, departure, returned, row.get("note", "").strip())


def _date(value: str, name: str, fail) -> date:  # type: ignore[no-untyped-def]
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"{name} {value.strip()!r} is not a date (YYYY-MM-DD)") from None


def check_people(
    trips: list[tuple[int, Trip]],
    known: Collection[str],
    source: str,
    *,
    allowed: Collection[str] | None,
) -> None:
    """Every row must name a known person (and, for a liaison, one in their scope)."""
    for number, trip in trips:
        if trip.person_id not in known:
            raise TravelImportError(f"{source}: row {number}: unknown person {trip.person_id!r}")
        if allowed is not None and trip.person_id not in allowed:
            raise TravelImportError(
                f"{source}: row {number}: person {trip.person_id!r} is outside your org unit"
            )


async def import_declarations(
    conn: asyncpg.Connection,
    text: str,
    source: str,
    rules: TravelRules,
    *,
    by: str,
    org_scope: str | None = None,
) -> tuple[int, list[int], Evaluation]:
    """Check the whole file, then file every declaration and evaluate (one transaction).

    `org_scope`: a liaison's org unit; rows naming people outside it are refused.
    Returns (rows read, declaration ids, evaluation); raises TravelImportError.
    """
    trips = parse_declarations(text, source)
    people = sorted({t.person_id for _, t in trips})
    found = await people_in_scope(conn, people, org_scope)
    known = set(found)
    allowed = None if org_scope is None else {p for p, inside in found.items() if inside}
    check_people(trips, known, source, allowed=allowed)
    ids, evaluation = await declare(conn, [t for _, t in trips], rules, by=by, source="csv")
    return len(trips), ids, evaluation
