"""Bulk import: the same campus manifest (YAML/JSON) or people CSV as `campusgate import`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, UploadFile

from api.deps import Allowed, Conn
from api.permissions import Permission
from gateway.services.importer import ManifestError, describe, import_file

router = APIRouter(prefix="/api/import", tags=["import"])
Importer = Allowed(Permission.IMPORT)
MAX_BYTES = 64 * 1024 * 1024
_SUFFIXES = (".yaml", ".yml", ".json", ".csv")


@router.post("")
async def import_manifest(
    file: UploadFile, operator: Importer, request: Request, conn: Conn
) -> dict[str, Any]:
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
                conn, path, tz=request.app.state.settings.tz, operator=operator.name
            )
        except ManifestError as exc:
            raise HTTPException(
                422, [{"loc": ["body", "file"], "msg": str(exc), "type": "manifest"}]
            ) from None
    return {
        "source": name,
        "changed": report.changed,
        "sections": {
            s: {"inserted": i, "updated": u, "unchanged": n} for s, i, u, n in describe(report)
        },
    }
