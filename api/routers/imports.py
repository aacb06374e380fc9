"""Bulk import: the same campus manifest (YAML/JSON) or people CSV as `campusgate import`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, UploadFile

from api.deps import Allowed, Conn
from api.permissions import Permission
from gateway.services.importer import (
    DEFAULT_MAX_DEACTIVATE_SHARE,
    ManifestError,
    SyncOptions,
    describe,
    import_file,
    refused_share,
)

router = APIRouter(prefix="/api/import", tags=["import"])
Importer = Allowed(Permission.IMPORT)
MAX_BYTES = 64 * 1024 * 1024
_SUFFIXES = (".yaml", ".yml", ".json", ".csv", ".xlsx")


@router.post("")
async def import_manifest(
    file: UploadFile,
    operator: Importer,
    request: Request,
    conn: Conn,
    sync: bool = False,
    dry_run: bool = False,
    max_deactivate_share: Annotated[float, Query(ge=0, le=1)] = DEFAULT_MAX_DEACTIVATE_SHARE,
) -> dict[str, Any]:
    """Import a manifest or a people file (.csv in UTF-8 or GBK/GB18030, or .xlsx).

    `sync=true` treats a people file as the full export: the active people of the kinds
    it holds that it leaves out are deactivated (audited), unless that is more than
    `max_deactivate_share` of them (422). `dry_run=true` (with sync) writes nothing and
    lists who would be deactivated.
    """
    if dry_run and not sync:
        raise HTTPException(
            422,
            [{"loc": ["query", "dry_run"], "msg": "dry_run goes with sync", "type": "value_error"}],
        )
    name = file.filename or "upload.yaml"
    suffix = Path(name).suffix.lower()
    if suffix not in _SUFFIXES:
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "file"],
                    "msg": f"file name must end in {', '.join(_SUFFIXES)}",
                    "type": "value_error",
                }
            ],
        )
    body = await file.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise HTTPException(413, "file too large")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(name).name
        path.write_bytes(body)
        try:
            report = await import_file(
                conn,
                path,
                tz=request.app.state.settings.tz,
                operator=operator.name,
                sync=SyncOptions(dry_run, max_deactivate_share) if sync else None,
            )
        except ManifestError as exc:
            raise HTTPException(
                422, [{"loc": ["body", "file"], "msg": str(exc), "type": "manifest"}]
            ) from None
    body: dict[str, Any] = {
        "source": name,
        "changed": report.changed,
        "dry_run": report.dry_run,
        "sections": {
            s: {"inserted": i, "updated": u, "unchanged": n} for s, i, u, n in describe(report)
        },
    }
    if report.sync is not None:
        body["sync"] = {
            "kinds": list(report.sync.kinds),
            "active": report.sync.active,
            "deactivated": list(report.sync.deactivated),
            "would_be_refused": report.dry_run and refused_share(report.sync, max_deactivate_share),
        }
    return body
