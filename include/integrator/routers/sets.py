"""Submit a month set (asynchronous validation) and query a month's status."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from include.edefter.naming import Period
from include.edefter.status import BackupStatus
from include.integrator.deps import Principal, check_tenant, ctx_of, current_account
from include.integrator.errors import ApiError
from include.integrator.metadata.models import AuditRun, FixityFinding, Submission, SubmissionKey
from include.integrator.schemas import (
    ErrorBody,
    FixityFileOut,
    FixityOut,
    MonthStatusOut,
    SubmitIn,
    SubmitOut,
)
from include.integrator.validation import month_messages

router = APIRouter(prefix="/v1", tags=["sets"])

_ERR: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422, 503)
}


def _period(s: str) -> Period:
    try:
        return Period.parse(s)
    except ValueError as exc:
        raise ApiError(
            400, "period.invalid", f"dönem YYYYAA olmalı: {s!r}", f"period must be YYYYMM: {s!r}"
        ) from exc


_STATUS_COLS = (
    Submission.id,
    Submission.status,
    Submission.message_tr,
    Submission.message_en,
    Submission.source,
    Submission.submitted_at,
    Submission.finished_at,
    Submission.retention_until,
    Submission.results,
    Submission.problems,
)


def _branch_filter(branch: str | None) -> Any:
    return Submission.branch.is_(None) if branch is None else Submission.branch == branch


@router.post(
    "/submissions",
    status_code=202,
    response_model=SubmitOut,
    responses={200: {"model": SubmitOut, "description": "identical submission already accepted"}, **_ERR},
    summary="Submit a month's set for validation (asynchronous)",
)
def submit_month(
    body: SubmitIn, request: Request, principal: Annotated[Principal, Depends(current_account)]
) -> JSONResponse:
    ctx = ctx_of(request)
    check_tenant(principal, body.taxpayer_id, body.branch)
    period = _period(body.period)
    manifest = [
        {
            "name": f.name,
            "sha256": f.sha256.lower(),
            "xml_sha256": f.xml_sha256.lower() if f.xml_sha256 else None,
        }
        for f in body.files
    ]
    digest = hashlib.sha256(
        json.dumps(
            [body.source, sorted((m["name"], m["sha256"], m["xml_sha256"] or "") for m in manifest)]
        ).encode()
    ).hexdigest()
    tenant = (
        Submission.taxpayer_id == body.taxpayer_id,
        _branch_filter(body.branch),
        Submission.period == period.yyyymm,
    )

    def existing(latest: Submission) -> JSONResponse:
        out = SubmitOut(
            submission_id=latest.id,
            status=latest.status,
            status_en=BackupStatus(latest.status).english,
            created=False,
        )
        return JSONResponse(out.model_dump(), status_code=200)

    try:
        with ctx.session() as s, s.begin():
            latest = s.scalar(select(Submission).where(*tenant).order_by(Submission.id.desc()).limit(1))
            # Idempotent retry: the same manifest, still in progress or backed up, is the same submission.
            if (
                latest is not None
                and latest.manifest_sha256 == digest
                and latest.status != BackupStatus.YEDEKLENEMEDI.value
            ):
                return existing(latest)
            tr, en = month_messages(BackupStatus.ISLENDI, period)
            sub = Submission(
                taxpayer_id=body.taxpayer_id,
                branch=body.branch,
                period=period.yyyymm,
                source=body.source,
                manifest=manifest,
                manifest_sha256=digest,
                status=BackupStatus.ISLENDI.value,
                message_tr=tr,
                message_en=en,
                results=[],
                problems=[],
                submitted_by=principal.account_id,
            )
            s.add(sub)
            s.flush()
            # Concurrent identical requests see the same latest submission, so they compute the
            # same key: exactly one insert wins, the others answer with the winner.
            key = hashlib.sha256(
                f"{body.taxpayer_id}|{body.branch or ''}|{period.yyyymm}|{digest}|{latest.id if latest else 0}".encode()
            ).hexdigest()
            s.add(SubmissionKey(key=key, submission_id=sub.id))
            s.flush()
            sub_id = sub.id
    except IntegrityError:
        with ctx.session() as s:
            won = s.scalar(
                select(Submission)
                .where(*tenant, Submission.manifest_sha256 == digest)
                .order_by(Submission.id.desc())
                .limit(1)
            )
        if won is None:
            raise
        return existing(won)
    request.app.state.validator.schedule(sub_id)
    out = SubmitOut(
        submission_id=sub_id,
        status=BackupStatus.ISLENDI.value,
        status_en=BackupStatus.ISLENDI.english,
        created=True,
    )
    return JSONResponse(out.model_dump(), status_code=202)


_FIXITY_TTL_S = 5.0
_fixity_cache: dict[int, tuple[float, int | None, Any, frozenset[tuple[str, str | None, str]]]] = {}
_fixity_lock = threading.Lock()


def _fixity_index(ctx: Any) -> tuple[int | None, Any, frozenset[tuple[str, str | None, str]]]:
    """(latest audit run id, its end, the months with findings in it), refreshed every few seconds:
    a status query then costs no extra query for the (usual) month without findings."""
    now = time.monotonic()
    key = id(ctx)
    hit = _fixity_cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2], hit[3]
    with _fixity_lock, ctx.read_connection() as conn:
        run = conn.execute(
            select(AuditRun.id, AuditRun.finished_at).order_by(AuditRun.id.desc()).limit(1)
        ).first()
        months: frozenset[tuple[str, str | None, str]] = frozenset()
        if run is not None:
            months = frozenset(
                (r.taxpayer_id, r.branch, r.period)
                for r in conn.execute(
                    select(FixityFinding.taxpayer_id, FixityFinding.branch, FixityFinding.period)
                    .where(FixityFinding.audit_run_id == run.id)
                    .distinct()
                )
            )
    entry = (now + _FIXITY_TTL_S, run.id if run else None, run.finished_at if run else None, months)
    _fixity_cache[key] = entry
    return entry[1], entry[2], entry[3]


def _fixity(ctx: Any, taxpayer_id: str, branch: str | None, p: Period) -> FixityOut | None:
    """Findings of the latest audit run in this month (None when it found nothing there)."""
    run_id, finished_at, months = _fixity_index(ctx)
    if run_id is None or (taxpayer_id, branch, p.yyyymm) not in months:
        return None
    with ctx.read_connection() as conn:
        rows = conn.execute(
            select(
                FixityFinding.filename,
                FixityFinding.kind,
                FixityFinding.committed,
                FixityFinding.message_tr,
                FixityFinding.message_en,
            ).where(
                FixityFinding.audit_run_id == run_id,
                FixityFinding.taxpayer_id == taxpayer_id,
                FixityFinding.branch.is_(None) if branch is None else FixityFinding.branch == branch,
                FixityFinding.period == p.yyyymm,
            )
        ).all()
    if not rows:
        return None
    return FixityOut(
        audit_run_id=run_id,
        checked_at=finished_at,
        files=[
            FixityFileOut(
                name=r.filename,
                kind=r.kind,
                committed=r.committed,
                message_tr=r.message_tr,
                message_en=r.message_en,
            )
            for r in rows
        ],
    )


@router.get(
    "/months/{taxpayer_id}/{period}",
    response_model=MonthStatusOut,
    responses=_ERR,
    summary="Backup status of one month (durum sorgulama)",
)
def month_status(
    request: Request,
    principal: Annotated[Principal, Depends(current_account)],
    taxpayer_id: Annotated[str, Path(pattern=r"^[0-9]{10,11}$")],
    period: Annotated[str, Path(pattern=r"^[0-9]{6}$", description="YYYYMM")],
    branch: Annotated[str | None, Query(pattern=r"^[0-9]{4}$")] = None,
) -> Response:
    ctx = ctx_of(request)
    if principal.branch is not None and branch is None:
        branch = principal.branch
    check_tenant(principal, taxpayer_id, branch)
    p = _period(period)
    # Only the columns the answer needs (not the manifest), one indexed lookup, no ORM identity map.
    with ctx.read_connection() as conn:
        sub = conn.execute(
            select(*_STATUS_COLS)
            .where(
                Submission.taxpayer_id == taxpayer_id, _branch_filter(branch), Submission.period == p.yyyymm
            )
            .order_by(Submission.id.desc())
            .limit(1)
        ).first()
    if sub is None:
        st = BackupStatus.GONDERILMEDI
        tr, en = month_messages(st, p)
        out = MonthStatusOut(
            taxpayer_id=taxpayer_id, branch=branch, period=p.yyyymm, label_tr=p.label_tr,
            status=st.value, status_en=st.english, message_tr=tr, message_en=en,
        )  # fmt: skip
    else:
        st = BackupStatus(sub.status)
        out = MonthStatusOut(
            taxpayer_id=taxpayer_id,
            branch=branch,
            period=p.yyyymm,
            label_tr=p.label_tr,
            status=st.value,
            status_en=st.english,
            message_tr=sub.message_tr,
            message_en=sub.message_en,
            description=f"{sub.source} sisteminden aktarılmıştır",
            source=sub.source,
            submission_id=sub.id,
            submitted_at=sub.submitted_at,
            finished_at=sub.finished_at,
            retention_until=sub.retention_until,
            files=sub.results or [],
            problems=sub.problems or [],
        )
    out.fixity = _fixity(ctx, taxpayer_id, branch, p)
    # Validated once above; serialized by pydantic-core directly (FastAPI would validate it again).
    return Response(out.model_dump_json(), media_type="application/json")
