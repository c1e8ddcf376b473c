"""Liveness/readiness: 200 when metadata DB and storage answer, else 503."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from include.integrator.deps import ctx_of
from include.integrator.errors import error_body
from include.integrator.metadata.db import SCHEMA_VERSION
from include.integrator.storage.base import StorageError

router = APIRouter(tags=["health"])


@router.get("/health", summary="Readiness of the metadata DB and the storage")
def health(request: Request) -> JSONResponse:
    ctx = ctx_of(request)
    with ctx.session() as s:  # DB errors become 503 through the app's handler
        s.execute(text("SELECT 1"))
    try:
        ctx.storage.check_ready()
    except StorageError as exc:
        return JSONResponse(
            error_body("storage.unavailable", "depolama kullanılamıyor", f"storage unavailable: {exc}"),
            status_code=503,
        )
    free = shutil.disk_usage(ctx.settings.data_dir).free
    floor = ctx.settings.min_free_bytes
    if floor and free < floor:
        return JSONResponse(
            error_body(
                "storage.low_space",
                f"veri dizininde boş alan az ({free} bayt; en az {floor} gerekli)",
                f"low free space in the data directory ({free} bytes; at least {floor} required)",
                details={"free_bytes": free, "min_free_bytes": floor},
            ),
            status_code=503,
        )
    return JSONResponse(
        {"status": "ok", "storage": ctx.storage.name, "schema_version": SCHEMA_VERSION, "free_bytes": free}
    )
