"""The import use case: check a whole manifest, then upsert it in one transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from gateway.domain.health import HealthStatus
from gateway.services.caretaking import reassign_cases
from gateway.services.manifest import Manifest, ManifestError, read_manifest
from gateway.services.manifest_references import check_references
from gateway.store import roster_write
from gateway.store.audit import record_audit
from gateway.store.caretaking import held_caretaker_problem
from gateway.store.health import set_health_many
from gateway.store.locks import LockKey, lock_for_transaction
from gateway.store.readings import latest_watch_reading
from gateway.store.roster import load_health
from gateway.store.roster_write import UpsertCounts

__all__ = [
    "ImportReport",
    "ManifestError",
    "Progress",
    "SyncOptions",
    "SyncReport",
    "import_file",
    "import_manifest",
]

_LOGGER = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


DEFAULT_MAX_DEACTIVATE_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """Treat a people file as the full export: deactivate the people of its kinds it leaves out.

    Only the kinds of person the file holds are synced (a student export does not
    deactivate staff). More than `max_share` of the active people of those kinds is
    refused: a truncated file must not empty a campus. `dry_run` writes nothing.
    """

    dry_run: bool = False
    max_share: float = DEFAULT_MAX_DEACTIVATE_SHARE


@dataclass(frozen=True, slots=True)
class SyncReport:
    kinds: tuple[str, ...]
    active: int  # active people of those kinds before the import
    deactivated: tuple[str, ...]  # ids (to be) marked inactive
    dry_run: bool


class _DryRun(Exception):
    """Rolls a dry run's transaction back once its report is known."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Rows inserted, updated and unchanged per section, in write order."""

    source: str
    sections: dict[str, UpsertCounts] = field(default_factory=dict)
    seconds: float = 0.0
    sync: SyncReport | None = None
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return any(c.inserted or c.updated for c in self.sections.values())


async def import_file(
    conn: asyncpg.Connection,
    path: Path,
    *,
    tz: ZoneInfo,
    operator: str | None = None,
    progress: Progress | None = None,
    sync: SyncOptions | None = None,
) -> ImportReport:
    """Read, check and import a manifest or people file; raises ManifestError, writing nothing."""
    report = progress or _no_progress
    report("read", 0, 1)
    manifest = await asyncio.to_thread(read_manifest, path, tz)
    report("read", 1, 1)
    return await import_manifest(conn, manifest, operator=operator, progress=progress, sync=sync)


async def import_manifest(
    conn: asyncpg.Connection,
    manifest: Manifest,
    *,
    operator: str | None = None,
    progress: Progress | None = None,
    sync: SyncOptions | None = None,
) -> ImportReport:
    """Check the manifest against itself and the database, then upsert it all in one transaction.

    With `sync`, the people of the file's kinds that it leaves out are deactivated in
    the same transaction (see SyncOptions); a dry run rolls everything back and
    reports what it would have done.
    """
    if sync is not None:
        if not manifest.identity_only:
            raise ManifestError(
                f"{manifest.source}: a sync needs a people file (.csv or .xlsx), "
                "the full export of the student information system"
            )
        if not manifest.people:
            raise ManifestError(f"{manifest.source}: a sync needs at least one person in the file")
        if not 0 <= sync.max_share <= 1:
            raise ManifestError("the share of people a sync may deactivate must be 0-1")
    try:
        return await _import(conn, manifest, operator, progress or _no_progress, sync)
    except _DryRun as done:
        return done.args[0]


async def _import(
    conn: asyncpg.Connection,
    manifest: Manifest,
    operator: str | None,
    report: Progress,
    sync: SyncOptions | None,
) -> ImportReport:
    loop = asyncio.get_running_loop()
    started = loop.time()
    sections: dict[str, UpsertCounts] = {}
    synced: SyncReport | None = None
    async with conn.transaction():
        await lock_for_transaction(conn, LockKey.IMPORT)
        report("check", 0, 1)
        check_references(manifest, await roster_write.load_roster_keys(conn))
        await check_health(conn, manifest)
        report("check", 1, 1)
        if sync is not None:  # before the upserts: the share is of those active before
            synced = await _sync(conn, manifest, operator or "import", sync)
        steps = (
            ("org_units", roster_write.upsert_org_units),
            ("zones", roster_write.upsert_zones),
            ("doors", roster_write.upsert_doors),
            ("devices", roster_write.upsert_devices),
            ("people", roster_write.upsert_people),
            ("cards", roster_write.upsert_cards),
            ("grants", roster_write.upsert_grants),
        )
        for name, upsert in steps:
            rows = [r.item for r in getattr(manifest, name)]
            if not rows:
                continue
            report(name, 0, len(rows))
            if name in ("people", "cards"):
                sections[name] = await upsert(conn, rows, identity_only=manifest.identity_only)
            else:
                sections[name] = await upsert(conn, rows)
            report(name, len(rows), len(rows))
        if manifest.contacts:
            contacts = [r.item for r in manifest.contacts]
            sections["contacts"] = await roster_write.upsert_contacts(conn, contacts)
        if manifest.health:
            set_by = operator or "import"
            records = [replace(r.item, set_by=set_by) for r in manifest.health]
            report("health", 0, len(records))
            sections["health"] = await set_health_many(conn, records, changed_by=set_by)
            held = [r.person_id for r in records if r.holds(manifest.now)]
            await reassign_cases(conn, by=set_by, caretakers=held, now=manifest.now)
            report("health", len(records), len(records))
        if any(c.inserted or c.updated for c in sections.values()) or (
            synced and synced.deactivated
        ):
            counts: dict[str, object] = {
                name: [c.inserted, c.updated, c.unchanged] for name, c in sections.items()
            }
            if synced is not None:
                counts["deactivated"] = len(synced.deactivated)
            await record_audit(
                conn, operator or "import", "import", "manifest", manifest.source, after=counts
            )
        seconds = loop.time() - started
        if sync is not None and sync.dry_run:
            raise _DryRun(ImportReport(manifest.source, sections, seconds, synced, dry_run=True))
    _LOGGER.debug("imported %s in %.2f s: %s", manifest.source, seconds, sections)
    return ImportReport(manifest.source, sections, seconds, synced)


async def _sync(
    conn: asyncpg.Connection, manifest: Manifest, by: str, options: SyncOptions
) -> SyncReport:
    """Deactivate the active people of the file's kinds that the file leaves out."""
    kinds = tuple(sorted({r.item.kind.value for r in manifest.people}))
    listed = {r.item.id for r in manifest.people}
    active = await roster_write.active_people_of_kinds(conn, kinds)
    absent = tuple(p for p in active if p not in listed)
    result = SyncReport(kinds, len(active), absent, options.dry_run)
    if options.dry_run:
        return result
    if absent and len(absent) > options.max_share * len(active):
        raise ManifestError(
            f"{manifest.source}: the sync would deactivate {len(absent)} of {len(active)} active "
            f"{'/'.join(kinds)} ({len(absent) / len(active):.0%}), more than the "
            f"{options.max_share:.0%} allowed; is the export complete? See who with a dry run, "
            "and allow a larger share (--max-deactivate-share) only if it is right"
        )
    await roster_write.deactivate_people(conn, absent)
    for person in absent:
        await record_audit(
            conn,
            by,
            "deactivate",
            "person",
            person,
            before={"active": True},
            after={"active": False, "why": f"absent from the full export {manifest.source}"},
        )
    return result


def refused_share(report: SyncReport, max_share: float) -> bool:
    """Whether a real run of this (dry-run) sync would be refused for deactivating too many."""
    return bool(report.deactivated) and len(report.deactivated) > max_share * report.active


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


async def check_health(conn: asyncpg.Connection, m: Manifest) -> None:
    """Raise ManifestError for the first health row naming a caretaker who is held (by
    the stored status, or by the file's own row for them), or lifting a fever_watch
    without a normal re-measurement since the fever (as every other route refuses)."""
    if not m.health:
        return
    stored = {r.person_id: r for r in await load_health(conn)}
    statuses = dict(stored)
    statuses.update((r.item.person_id, r.item) for r in m.health)
    for row in m.health:
        record = row.item
        carer = statuses.get(record.caretaker_id or "")
        if carer is not None:
            problem = held_caretaker_problem(
                carer.person_id, carer.status.value, carer.until, m.now
            )
            if problem:
                raise ManifestError(f"{m.source}: {row.label}: {problem}")
        before = stored.get(record.person_id)
        lifting = before is not None and not record.status.blocks_entry
        if lifting and before.effective_status(m.now) is HealthStatus.FEVER_WATCH:
            latest = await latest_watch_reading(conn, record.person_id)
            if latest is None or latest["fever"]:
                raise ManifestError(
                    f"{m.source}: {row.label}: {record.person_id} is on fever_watch with no "
                    "normal re-measurement since the fever: record one before clearing"
                )


def describe(report: ImportReport) -> list[tuple[str, int, int, int]]:
    """(section, inserted, updated, unchanged) rows for display."""
    return [(s, c.inserted, c.updated, c.unchanged) for s, c in report.sections.items()]
