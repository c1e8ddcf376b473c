"""Evidence ("Kayıt Bilgisi") kept with the month: small JSON documents, write-once.

The sender stores what it verified, uploaded and saw confirmed next to the archived files,
so the proof survives the loss of the sender's machines. Documents are content-addressed
(the URL names their SHA-256): a retry after a lost answer is a no-op, nothing is replaced.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from include.edefter.naming import Period
from include.edefter.retention import conservative_fiscal_year_end, retention_end
from include.integrator.context import ServiceContext
from include.integrator.deps import Principal, check_tenant, ctx_of, current_account
from include.integrator.errors import ApiError
from include.integrator.metadata.models import Evidence
from include.integrator.schemas import SHA256_PATTERN, ErrorBody
from include.integrator.spool import spool_name
from include.integrator.storage.base import ObjectMissing, StorageError, StorageFull

router = APIRouter(prefix="/v1", tags=["evidence"])

MAX_EVIDENCE_BYTES = 1 << 20  # a month's evidence is a few KB; a cap keeps hostile bodies small

_ERR: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 503)
}

_Tid = Annotated[str, Path(pattern=r"^[0-9]{10,11}$")]
_Yyyymm = Annotated[str, Path(pattern=r"^[0-9]{6}$", description="YYYYMM")]
_Sha = Annotated[str, Path(pattern=SHA256_PATTERN)]
_Branch = Annotated[str | None, Query(pattern=r"^[0-9]{4}$")]


class EvidenceOut(BaseModel):
    sha256: str
    size: int
    stored_at: dt.datetime
    created: bool


class EvidenceDoc(BaseModel):
    sha256: str
    size: int
    stored_at: dt.datetime


class EvidenceList(BaseModel):
    taxpayer_id: str
    branch: str | None
    period: str
    documents: list[EvidenceDoc]


def _scope(
    principal: Principal, taxpayer_id: str, period: str, branch: str | None
) -> tuple[Period, str | None]:
    if principal.branch is not None and branch is None:
        branch = principal.branch
    if branch == "0000":
        raise ApiError(400, "branch.invalid", "şube numaraları 0001'den başlar", "branch numbers start at 0001")
    check_tenant(principal, taxpayer_id, branch)
    try:
        p = Period.parse(period)
    except ValueError as exc:
        raise ApiError(
            400, "period.invalid", f"dönem YYYYAA olmalı: {period!r}", f"period must be YYYYMM: {period!r}"
        ) from exc
    return p, branch


def _find(ctx: ServiceContext, tid: str, branch: str | None, period: Period, sha: str) -> Evidence | None:
    with ctx.session() as s:
        return s.scalar(
            select(Evidence).where(
                Evidence.taxpayer_id == tid,
                Evidence.branch == (branch or ""),
                Evidence.period == period.yyyymm,
                Evidence.sha256 == sha,
            )
        )


def _store(
    ctx: ServiceContext, p: Principal, tid: str, branch: str | None, period: Period, sha: str, data: bytes
) -> tuple[Evidence, bool]:
    row = _find(ctx, tid, branch, period, sha)
    if row is not None:
        return row, False
    until = retention_end(conservative_fiscal_year_end(period), ctx.settings.retention_years)
    tmp = ctx.settings.tmp_dir / spool_name(".evidence")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            obj = ctx.storage.put(tmp, sha256=sha, size=len(data), md5_b64=md5, retain_until=until)
        except StorageError as exc:
            raise ApiError(
                507 if isinstance(exc, StorageFull) else 503,
                "storage.write_failed",
                "kayıt bilgisi depolamaya yazılamadı; lütfen tekrar gönderin",
                f"the evidence could not be written to storage ({exc}); please retry",
            ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    new = Evidence(
        taxpayer_id=tid,
        branch=branch or "",
        period=period.yyyymm,
        sha256=sha,
        size=len(data),
        storage=ctx.storage.name,
        storage_key=obj.key,
        version_id=obj.version_id,
        retention_until=until,
        stored_by=p.account_id,
    )
    try:
        with ctx.session() as s, s.begin():
            s.add(new)
    except IntegrityError:
        row = _find(ctx, tid, branch, period, sha)  # a concurrent identical PUT won the insert
        if row is None:
            raise
        return row, False
    return new, True


@router.put(
    "/months/{taxpayer_id}/{period}/evidence/{sha256}",
    status_code=201,
    response_model=EvidenceOut,
    responses={200: {"model": EvidenceOut, "description": "identical document already stored"}, **_ERR},
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    },
    summary="Store one evidence document (Kayıt Bilgisi) of the month; write-once",
)
async def put_evidence(
    request: Request,
    principal: Annotated[Principal, Depends(current_account)],
    taxpayer_id: _Tid,
    period: _Yyyymm,
    sha256: _Sha,
    branch: _Branch = None,
    x_content_sha256: Annotated[str | None, Header()] = None,
) -> Response:
    ctx = ctx_of(request)
    # Authenticated (dependency) and in scope before a byte of the body is read.
    p, branch = _scope(principal, taxpayer_id, period, branch)
    sha = sha256.lower()
    declared = request.headers.get("content-length")
    too_big = ApiError(
        413,
        "evidence.too_large",
        f"kayıt bilgisi en çok {MAX_EVIDENCE_BYTES} bayt olabilir",
        f"an evidence document may be at most {MAX_EVIDENCE_BYTES} bytes",
    )
    if declared is not None and declared.isdigit() and int(declared) > MAX_EVIDENCE_BYTES:
        raise too_big
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > MAX_EVIDENCE_BYTES:
            raise too_big
    data = bytes(buf)
    got = hashlib.sha256(data).hexdigest()
    if got != sha or (x_content_sha256 is not None and x_content_sha256.strip().lower() != sha):
        raise ApiError(
            400,
            "evidence.sha256_mismatch",
            "kayıt bilgisinin SHA-256 değeri adresteki değerle uyuşmuyor",
            "the SHA-256 of the evidence document differs from the one in the URL",
            details={"url": sha, "body": got},
        )
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(
            400,
            "evidence.not_json",
            "kayıt bilgisi geçerli bir JSON belgesi değil",
            f"the evidence is not valid JSON ({exc})",
        ) from exc
    if not isinstance(doc, dict):
        raise ApiError(
            400,
            "evidence.not_object",
            "kayıt bilgisi bir JSON nesnesi olmalı",
            "the evidence must be a JSON object",
        )
    row, created = await run_in_threadpool(_store, ctx, principal, taxpayer_id, branch, p, sha, data)
    out = EvidenceOut(sha256=row.sha256, size=row.size, stored_at=row.stored_at, created=created)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.get(
    "/months/{taxpayer_id}/{period}/evidence",
    response_model=EvidenceList,
    responses=_ERR,
    summary="The month's evidence documents, oldest first",
)
def list_evidence(
    request: Request,
    principal: Annotated[Principal, Depends(current_account)],
    taxpayer_id: _Tid,
    period: _Yyyymm,
    branch: _Branch = None,
) -> EvidenceList:
    ctx = ctx_of(request)
    p, branch = _scope(principal, taxpayer_id, period, branch)
    with ctx.session() as s:
        rows = list(
            s.scalars(
                select(Evidence)
                .where(
                    Evidence.taxpayer_id == taxpayer_id,
                    Evidence.branch == (branch or ""),
                    Evidence.period == p.yyyymm,
                )
                .order_by(Evidence.id)
            )
        )
    return EvidenceList(
        taxpayer_id=taxpayer_id,
        branch=branch,
        period=p.yyyymm,
        documents=[EvidenceDoc(sha256=r.sha256, size=r.size, stored_at=r.stored_at) for r in rows],
    )


@router.get(
    "/months/{taxpayer_id}/{period}/evidence/{sha256}",
    responses={200: {"content": {"application/json": {}}}, **_ERR},
    summary="One evidence document's bytes, with its SHA-256 in X-Content-SHA256",
)
def get_evidence(
    request: Request,
    principal: Annotated[Principal, Depends(current_account)],
    taxpayer_id: _Tid,
    period: _Yyyymm,
    sha256: _Sha,
    branch: _Branch = None,
) -> Response:
    ctx = ctx_of(request)
    p, branch = _scope(principal, taxpayer_id, period, branch)
    row = _find(ctx, taxpayer_id, branch, p, sha256.lower())
    if row is None:
        raise ApiError(
            404,
            "evidence.not_found",
            "bu ay için böyle bir kayıt bilgisi yok",
            "no such evidence document for this month",
        )
    try:
        with ctx.storage.open(row.storage_key, row.version_id) as fh:
            data = fh.read(MAX_EVIDENCE_BYTES + 1)
    except ObjectMissing as exc:
        raise ApiError(
            500,
            "storage.object_missing",
            "kayıt bilgisi kaydı var ama nesne depoda yok; yöneticiye bildirin (fixity denetimi)",
            "the evidence record exists but the stored object is missing; tell the operator (fixity audit)",
        ) from exc
    return Response(data, media_type="application/json", headers={"X-Content-SHA256": row.sha256})
