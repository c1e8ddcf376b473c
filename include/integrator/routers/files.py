"""Upload (Yükle), download (İndir), list (Listele); delete is refused."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.requests import ClientDisconnect

from include.edefter.naming import EDefterName, InvalidFileName, Period, parse_name
from include.edefter.retention import retention_end
from include.integrator.context import ServiceContext
from include.integrator.deps import Principal, check_tenant, ctx_of, current_account, name_tenant
from include.integrator.errors import ApiError
from include.integrator.ingest import check_zip
from include.integrator.metadata.models import ArchivedFile, StagedFile
from include.integrator.schemas import (
    SHA256_PATTERN,
    ErrorBody,
    FileEntry,
    MonthListing,
    Tree,
    UploadOut,
    YearListing,
)
from include.integrator.spool import spool_name
from include.integrator.storage.base import ObjectMissing, StorageError, StorageFull

router = APIRouter(prefix="/v1", tags=["files"])

_ERR: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}
_SHA_RE = re.compile(SHA256_PATTERN)


_BATCH = 1 << 20


class _Spool:
    """The upload's temp file, hashed as it is written."""

    def __init__(self, path: Path, *, md5: bool) -> None:
        self.path = path
        self.fh = open(path, "xb")  # noqa: SIM115 - closed in finish()/discard()
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        if self.md5 is not None:
            self.md5.update(data)
        self.fh.write(data)

    def write_all(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def finish(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())  # the spool may become the stored object (hard link)
        self.fh.close()

    def discard(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.path.unlink(missing_ok=True)


def parse_zip_name(filename: str) -> EDefterName:
    try:
        name = parse_name(filename)
    except InvalidFileName as exc:
        raise ApiError(
            400,
            f"name.{exc.field}",
            f"geçersiz e-Defter dosya adı: {exc.message_tr}",
            f"invalid e-Defter file name: {exc.message_en}",
            file=filename,
        ) from exc
    if name.ext != "zip" or not filename.endswith(".zip"):
        raise ApiError(
            400,
            "name.extension",
            "yüklenen dosya .zip uzantılı olmalı (içinde aynı adlı tek XML)",
            "the uploaded file must be a .zip (holding one XML with the same stem)",
            file=filename,
        )
    return name


def _receipt(row: ArchivedFile | StagedFile, created: bool) -> dict[str, Any]:
    return UploadOut(
        name=row.filename,
        sha256=row.sha256,
        size=row.size,
        created=created,
        uploaded_at=row.uploaded_at,
        retention_until=row.retention_until,
        storage=row.storage,
        version_id=row.version_id,
        committed=isinstance(row, ArchivedFile),
    ).model_dump(mode="json")


def _conflict(row: ArchivedFile, sha: str) -> ApiError:
    return ApiError(
        409,
        "file.conflict",
        "bu adla farklı içerikte bir dosya zaten arşivde; arşivdeki dosya değiştirilmez",
        "a file with this name and different content is already archived; the archived file is never replaced",
        file=row.filename,
        details={"archived_sha256": row.sha256, "sent_sha256": sha},
    )


def _existing(ctx: ServiceContext, filename: str) -> ArchivedFile | None:
    """The file committed under this name (a set listing it was Yedeklendi), if any."""
    with ctx.session() as s:
        return s.scalar(select(ArchivedFile).where(ArchivedFile.filename == filename))


def _staged(ctx: ServiceContext, filename: str, sha: str) -> StagedFile | None:
    with ctx.session() as s:
        return s.scalar(select(StagedFile).where(StagedFile.filename == filename, StagedFile.sha256 == sha))


def _ingest(
    ctx: ServiceContext, p: Principal, name: EDefterName, spool: Path, sha: str, md5_b64: str, size: int
) -> tuple[dict[str, Any], bool]:
    """Check, store, stage — serialised per name; DB uniqueness guards other processes.

    The file is staged, not committed: it takes its name only when a set listing it is
    validated (Yedeklendi), so a tampered upload can never block the genuine file.
    """
    st = ctx.settings
    with ctx.name_lock(name.filename):
        row = _existing(ctx, name.filename)
        if row is not None:
            if row.sha256 == sha:
                return _receipt(row, False), False
            raise _conflict(row, sha)
        staged = _staged(ctx, name.filename, sha)
        if staged is not None:
            return _receipt(staged, False), False
        xml = check_zip(
            spool,
            name,
            max_uncompressed=st.max_uncompressed_bytes,
            max_ratio=st.max_ratio,
            header_only_over=st.header_check_over_bytes,
        )
        # Never shorter than 31 December of (the period's year + 10), whatever fiscalYearEnd the XML claims.
        floor = dt.date(name.period.year, 12, 31)
        until = retention_end(max(xml.fiscal_year_end, floor), st.retention_years)
        try:
            obj = ctx.storage.put(spool, sha256=sha, size=size, md5_b64=md5_b64, retain_until=until)
        except StorageError as exc:
            raise ApiError(
                507 if isinstance(exc, StorageFull) else 503,
                "storage.write_failed",
                "dosya depolamaya yazılamadı; hiçbir şey kaydedilmedi, lütfen tekrar gönderin",
                f"the file could not be written to storage ({exc}); nothing was recorded, please retry",
                file=name.filename,
            ) from exc
        new = StagedFile(
            filename=name.filename,
            taxpayer_id=name.taxpayer_id,
            branch=name.branch,
            period=name.period.yyyymm,
            code=name.code,
            part=name.part,
            sha256=sha,
            size=size,
            xml_sha256=xml.xml_sha256,
            xml_size=xml.xml_size,
            storage=ctx.storage.name,
            storage_key=obj.key,
            version_id=obj.version_id,
            fiscal_year_end=xml.fiscal_year_end,
            retention_until=until,
            uploaded_by=p.account_id,
        )
        try:
            with ctx.session() as s, s.begin():
                s.add(new)
        except IntegrityError:
            # Another process staged the same bytes under this name between our check and insert.
            staged = _staged(ctx, name.filename, sha)
            if staged is not None:
                return _receipt(staged, False), False
            raise
        return _receipt(new, True), True


@router.put(
    "/files/{filename}",
    status_code=201,
    response_model=UploadOut,
    responses={200: {"model": UploadOut, "description": "identical file already archived"}, **_ERR},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    summary="Upload one zipped e-Defter file (Yükle)",
)
async def upload_file(
    filename: str,
    request: Request,
    principal: Annotated[Principal, Depends(current_account)],
    x_content_sha256: Annotated[str, Header(description="SHA-256 (hex) of the zip bytes")],
) -> Response:
    ctx = ctx_of(request)
    st = ctx.settings
    name = parse_zip_name(filename)
    name_tenant(principal, name)
    sha = x_content_sha256.strip().lower()
    if not _SHA_RE.match(sha):
        raise ApiError(
            400,
            "upload.sha256_header",
            "X-Content-SHA256 başlığı 64 haneli onaltılık SHA-256 olmalı",
            "the X-Content-SHA256 header must be a 64-hex-digit SHA-256",
            file=filename,
        )
    too_big = ApiError(
        413,
        "upload.too_large",
        f"dosya en çok {st.max_upload_bytes} bayt olabilir",
        f"the upload exceeds the limit of {st.max_upload_bytes} bytes",
        file=filename,
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > st.max_upload_bytes:
        raise too_big
    # Spool to disk while hashing: a 200 MB body never sits in memory. Chunks are batched and
    # hashed/written in a worker thread (hashlib and file writes release the GIL), so the event
    # loop only receives bytes and several uploads use both cores.
    spool = _Spool(st.tmp_dir / spool_name(".upload"), md5=ctx.storage.needs_md5)
    size = 0
    pending: list[bytes] = []
    pending_n = 0
    try:
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > st.max_upload_bytes:
                    raise too_big
                pending.append(chunk)
                pending_n += len(chunk)
                if pending_n >= _BATCH:
                    # join in the worker thread: one copy, off the event loop
                    batch, pending, pending_n = pending, [], 0
                    await run_in_threadpool(spool.write_all, batch)
        except ClientDisconnect:
            raise ApiError(
                400,
                "upload.incomplete",
                "yükleme yarıda kesildi",
                "the upload was interrupted",
                file=filename,
            ) from None
        if pending:
            await run_in_threadpool(spool.write_all, pending)
        await run_in_threadpool(spool.finish)
        if size == 0:
            raise ApiError(400, "upload.empty", "gövde boş", "the request body is empty", file=filename)
        got = spool.sha256.hexdigest()
        if got != sha:
            raise ApiError(
                400,
                "upload.sha256_mismatch",
                "gönderilen içeriğin SHA-256 değeri başlıktakiyle uyuşmuyor",
                "the SHA-256 of the body does not match the X-Content-SHA256 header",
                file=filename,
                details={"header": sha, "body": got},
            )
        md5_b64 = base64.b64encode(spool.md5.digest()).decode() if spool.md5 else ""
        body, created = await run_in_threadpool(_ingest, ctx, principal, name, spool.path, sha, md5_b64, size)
    finally:
        spool.discard()
    return JSONResponse(body, status_code=201 if created else 200, headers={"X-Content-SHA256": sha})


def _lookup(ctx: ServiceContext, p: Principal, filename: str) -> ArchivedFile:
    name = parse_zip_name(filename)
    name_tenant(p, name)
    row = _existing(ctx, name.filename)
    if row is None:
        raise ApiError(
            404, "file.not_found", "dosya arşivde yok", "the file is not in the archive", file=filename
        )
    return row


@router.get(
    "/files/{filename}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, **_ERR},
    summary="Download an archived file (İndir) with its SHA-256 in X-Content-SHA256",
)
def download_file(
    filename: str, request: Request, principal: Annotated[Principal, Depends(current_account)]
) -> Response:
    ctx = ctx_of(request)
    row = _lookup(ctx, principal, filename)
    try:
        stream = ctx.storage.open(row.storage_key, row.version_id)
    except ObjectMissing as exc:
        raise ApiError(
            500,
            "storage.object_missing",
            "arşiv kaydı var ama nesne depoda bulunamadı; yöneticiye bildirin (fixity denetimi)",
            "the archive record exists but the stored object is missing; tell the operator (fixity audit)",
            file=filename,
        ) from exc
    except StorageError as exc:
        raise ApiError(
            503, "storage.unavailable", "depolama şu an erişilemez", f"storage unavailable: {exc}"
        ) from exc

    def chunks() -> Any:
        with stream:
            while True:
                data = stream.read(1 << 20)
                if not data:
                    return
                yield data

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={
            "X-Content-SHA256": row.sha256,
            "Content-Length": str(row.size),
            "ETag": f'"{row.sha256}"',
            "Content-Disposition": f'attachment; filename="{row.filename}"',
            "X-Retention-Until": row.retention_until.isoformat(),
        },
    )


@router.delete(
    "/files/{filename}",
    status_code=405,
    responses={405: {"model": ErrorBody}, **_ERR},
    summary="Refused: archived files are never deleted before the retention end",
)
def delete_file(
    filename: str, request: Request, principal: Annotated[Principal, Depends(current_account)]
) -> Response:
    ctx = ctx_of(request)
    row = _lookup(ctx, principal, filename)
    raise ApiError(
        405,
        "file.delete_refused",
        f"arşivdeki dosyalar saklama süresi ({row.retention_until.isoformat()}) bitmeden silinemez",
        f"archived files cannot be deleted before the retention end ({row.retention_until.isoformat()})",
        file=filename,
        details={"retention_until": row.retention_until.isoformat()},
        headers={"Allow": "GET"},
    )


@router.get(
    "/files",
    response_model=Tree,
    responses=_ERR,
    summary="List archived files: year → month → files (Listele)",
)
def list_files(
    request: Request,
    principal: Annotated[Principal, Depends(current_account)],
    taxpayer_id: Annotated[str, Query(pattern=r"^[0-9]{10,11}$")],
    branch: Annotated[str | None, Query(pattern=r"^[0-9]{4}$")] = None,
    year: Annotated[int | None, Query(ge=2000, le=9999)] = None,
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
    include_staged: Annotated[
        bool, Query(description="also list uploads not (yet) committed by a Yedeklendi set (committed=false)")
    ] = False,
) -> Tree:
    ctx = ctx_of(request)
    if principal.branch is not None and branch is None:
        branch = principal.branch
    check_tenant(principal, taxpayer_id, branch)

    def query(model: Any) -> Any:
        q = select(model).where(model.taxpayer_id == taxpayer_id)
        if branch is not None:
            q = q.where(model.branch == branch)
        if year is not None:
            q = q.where(model.period.startswith(f"{year:04d}"))
        if month is not None:
            q = q.where(model.period.endswith(f"{month:02d}"))
        return q.order_by(model.period, model.filename, model.id)

    with ctx.session() as s:
        rows: list[ArchivedFile | StagedFile] = list(s.scalars(query(ArchivedFile)))
        if include_staged:
            done = {(r.filename, r.sha256) for r in rows}
            rows += [r for r in s.scalars(query(StagedFile)) if (r.filename, r.sha256) not in done]
    rows.sort(key=lambda r: (r.period, r.filename, r.uploaded_at))
    years: dict[int, dict[str, list[FileEntry]]] = {}
    for r in rows:
        years.setdefault(int(r.period[:4]), {}).setdefault(r.period, []).append(
            FileEntry(
                name=r.filename,
                code=r.code,
                part=r.part,
                branch=r.branch,
                sha256=r.sha256,
                size=r.size,
                uploaded_at=r.uploaded_at,
                retention_until=r.retention_until,
                committed=isinstance(r, ArchivedFile),
            )
        )
    return Tree(
        taxpayer_id=taxpayer_id,
        years=[
            YearListing(
                year=y,
                months=[
                    MonthListing(period=p, label_tr=Period.parse(p).label_tr, files=fs)
                    for p, fs in sorted(ms.items())
                ],
            )
            for y, ms in sorted(years.items())
        ],
    )
