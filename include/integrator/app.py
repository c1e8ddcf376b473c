"""The Saklama API application factory."""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.integrator.context import ServiceContext
from include.integrator.errors import ApiError, error_body
from include.integrator.limits import GuardMiddleware
from include.integrator.routers import evidence, files, health, sets
from include.integrator.settings import Settings
from include.integrator.storage.base import Storage, StorageError, StorageFull
from include.integrator.validation import Validator

__all__ = ["create_app"]

log = logging.getLogger("include.integrator")

DESCRIPTION = """\
Reference e-Defter archive ("Saklama API"): upload zipped e-Defter files, submit a month set for
validation, query the month's backup status, list and download archived files. Files are never
overwritten or deleted before the retention end (31 December of fiscal-year-end + 10 years).

A self-hosted archive is an extra copy: the legal secondary copy ("ikincil kopya") must be kept at a
GİB-licensed integrator (özel entegratör) or at GİB.
"""


def create_app(settings: Settings, *, storage: Storage | None = None) -> FastAPI:
    ctx = ServiceContext(settings, storage=storage)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None]:
        ctx.clean_incoming()
        validator = Validator(ctx, workers=settings.validation_workers)
        app.state.validator = validator
        try:
            ctx.ensure_schema()
            n = validator.resume_pending()
            if n:
                log.info("resumed %d pending submission(s)", n)
        except SQLAlchemyError as exc:
            # Start anyway: requests answer 503 until the metadata DB is reachable.
            log.error("metadata DB unavailable at start: %s", exc.__class__.__name__)
        validator.start_sweeper(settings.resume_interval_s)
        try:
            yield
        finally:
            validator.close()
            ctx.close()

    app = FastAPI(title="e-Defter Saklama API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.ctx = ctx

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()[:20]
        ]
        return JSONResponse(
            error_body(
                "request.invalid",
                "istek geçersiz: " + "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errs[:3]),
                "invalid request: " + "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errs[:3]),
                details={"errors": errs},
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        tr = {404: "bulunamadı", 405: "bu yöntem desteklenmiyor"}.get(exc.status_code, "istek reddedildi")
        return JSONResponse(
            error_body(f"http.{exc.status_code}", tr, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    def _db_down(exc: Exception) -> JSONResponse:
        log.error("metadata DB unavailable: %s", exc.__class__.__name__)
        ctx.auth_cache.entries.clear()
        return JSONResponse(
            error_body(
                "metadata.unavailable",
                "meta veri veritabanına şu an ulaşılamıyor; lütfen daha sonra tekrar deneyin",
                "the metadata database is unavailable; please retry later",
            ),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(OperationalError)
    async def _op(request: Request, exc: OperationalError) -> JSONResponse:
        return _db_down(exc)

    @app.exception_handler(PoolTimeout)
    async def _pool(request: Request, exc: PoolTimeout) -> JSONResponse:
        return _db_down(exc)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated or isinstance(exc, OperationalError) or "connect" in str(exc.orig).lower():
            return _db_down(exc)
        log.exception("database error")
        return JSONResponse(
            error_body("internal.database", "veritabanı hatası", "database error"), status_code=500
        )

    @app.exception_handler(OSError)
    async def _os(request: Request, exc: OSError) -> JSONResponse:
        # A full disk while spooling or storing: the documented JSON 507, never a plain-text 500.
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            log.error("disk full while handling %s %s", request.method, request.url.path)
            return JSONResponse(
                error_body(
                    "storage.disk_full",
                    "entegratörün diski dolu; hiçbir şey kaydedilmedi, lütfen daha sonra tekrar gönderin",
                    "the integrator's disk is full; nothing was recorded, please retry later",
                ),
                status_code=507,
                headers={"Retry-After": "60"},
            )
        log.exception("I/O error")
        return JSONResponse(error_body("internal.io", "giriş/çıkış hatası", "I/O error"), status_code=500)

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        if isinstance(exc, StorageFull):
            return JSONResponse(
                error_body("storage.disk_full", "entegratörün diski dolu; hiçbir şey kaydedilmedi", f"storage full: {exc}"),
                status_code=507,
                headers={"Retry-After": "60"},
            )
        return JSONResponse(
            error_body("storage.unavailable", "depolama şu an kullanılamıyor", f"storage unavailable: {exc}"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    # Authentication, throttling and the body cap before any route reads a byte of the body.
    app.add_middleware(GuardMiddleware, ctx=ctx)
    app.include_router(health.router)
    app.include_router(files.router)
    app.include_router(sets.router)
    app.include_router(evidence.router)
    return app
