"""Fixity audit: re-read and re-hash every archived object, report mismatches and missing objects.

Each run is recorded in the audit_runs table (when it ran, what it found), so
the archive keeps its own evidence of periodic checks.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from include.integrator.context import ServiceContext
from include.integrator.metadata.models import (
    ArchivedFile,
    AuditRun,
    Evidence,
    FixityFinding,
    StagedFile,
    utcnow,
)
from include.integrator.storage.base import ObjectMissing, StorageError

__all__ = ["AuditFinding", "AuditReport", "run_audit"]


@dataclass(frozen=True)
class AuditFinding:
    file: str
    kind: str  # "mismatch" | "missing" | "unreadable" | "lock"
    message_tr: str
    message_en: str
    expected_sha256: str | None = None
    actual_sha256: str | None = None


@dataclass
class AuditReport:
    checked: int = 0
    ok: int = 0
    bytes_read: int = 0
    findings: list[AuditFinding] = field(default_factory=list)
    run_id: int | None = None
    orphans: list[str] = field(default_factory=list)  # stored objects no record points at

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "checked": self.checked,
            "ok": self.ok,
            "bytes_read": self.bytes_read,
            "clean": self.clean,
            "findings": [asdict(f) for f in self.findings],
            "orphans": self.orphans,
        }


@dataclass(frozen=True)
class _Obj:
    """One stored object to check, whatever record points at it."""

    filename: str
    storage_key: str
    version_id: str | None
    sha256: str
    size: int
    retention_until: Any
    taxpayer_id: str
    branch: str | None
    period: str
    committed: bool


def _objects(ctx: ServiceContext) -> list[_Obj]:
    """Committed files, staged uploads (also those of rejected sets: they are immutable objects
    too) and evidence documents; each stored object once."""
    out: list[_Obj] = []
    seen: set[tuple[str, str | None]] = set()
    with ctx.session() as s:
        for model in (ArchivedFile, StagedFile):
            for r in s.scalars(select(model).order_by(model.id)):
                if (r.storage_key, r.version_id) in seen:
                    continue
                seen.add((r.storage_key, r.version_id))
                out.append(
                    _Obj(
                        r.filename, r.storage_key, r.version_id, r.sha256, r.size, r.retention_until,
                        r.taxpayer_id, r.branch, r.period, model is ArchivedFile,
                    )
                )  # fmt: skip
        for e in s.scalars(select(Evidence).order_by(Evidence.id)):
            if (e.storage_key, e.version_id) in seen:
                continue
            seen.add((e.storage_key, e.version_id))
            label = f"evidence:{e.taxpayer_id}{'/' + e.branch if e.branch else ''}/{e.period}/{e.sha256[:12]}"
            out.append(
                _Obj(
                    label, e.storage_key, e.version_id, e.sha256, e.size, e.retention_until,
                    e.taxpayer_id, e.branch or None, e.period, True,
                )
            )  # fmt: skip
    return out


def run_audit(ctx: ServiceContext, *, check_locks: bool = True) -> AuditReport:
    report = AuditReport()
    started = utcnow()
    rows = _objects(ctx)
    by_label: dict[str, _Obj] = {r.filename: r for r in rows}
    for row in rows:
        report.checked += 1
        h = hashlib.sha256()
        size = 0
        try:
            with ctx.storage.open(row.storage_key, row.version_id) as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
        except ObjectMissing:
            report.findings.append(
                AuditFinding(
                    row.filename, "missing", "nesne depoda yok", "the stored object is missing", row.sha256
                )
            )
            continue
        except (StorageError, OSError) as exc:
            report.findings.append(
                AuditFinding(
                    row.filename,
                    "unreadable",
                    f"nesne okunamadı: {exc}",
                    f"object unreadable: {exc}",
                    row.sha256,
                )
            )
            continue
        report.bytes_read += size
        got = h.hexdigest()
        if got != row.sha256 or size != row.size:
            report.findings.append(
                AuditFinding(
                    row.filename,
                    "mismatch",
                    "saklanan nesnenin SHA-256 değeri kayıtla uyuşmuyor (bozulma)",
                    f"the stored object's SHA-256/size differs from the record (corruption; {size} vs {row.size} bytes)",
                    row.sha256,
                    got,
                )
            )
            continue
        if check_locks:
            lp = ctx.storage.lock_problem(row.storage_key, row.version_id, row.retention_until)
            if lp:
                report.findings.append(
                    AuditFinding(row.filename, "lock", f"değişmezlik kilidi sorunu: {lp}", lp, row.sha256)
                )
                continue
        report.ok += 1
    known = {r.storage_key for r in rows}
    lister = getattr(ctx.storage, "iter_keys", None)
    if lister is not None:
        try:
            report.orphans = sorted(k for k in lister() if k not in known)
        except (StorageError, OSError) as exc:
            report.orphans = [f"? listing failed: {exc}"]
    with ctx.session() as s, s.begin():
        run = AuditRun(
            started_at=started, finished_at=utcnow(), checked=report.checked, ok=report.ok, report={}
        )
        s.add(run)
        s.flush()
        report.run_id = run.id
        run.report = report.to_dict()
        for f in report.findings:
            o = by_label.get(f.file)
            if o is None:
                continue
            s.add(
                FixityFinding(
                    audit_run_id=run.id, filename=f.file, taxpayer_id=o.taxpayer_id, branch=o.branch,
                    period=o.period, kind=f.kind, message_tr=f.message_tr, message_en=f.message_en,
                    committed=o.committed,
                )
            )  # fmt: skip
    return report


def notify(url: str, report: AuditReport, *, timeout: float = 10.0) -> None:
    """POST the report (JSON) to an alert webhook; the URL (it may hold a token) is never logged."""
    import json
    import urllib.request

    body = json.dumps(
        {
            "text": f"e-Defter Saklama fixity audit: {len(report.findings)} bulgu / findings",
            **report.to_dict(),
        },
        ensure_ascii=False,
    ).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - operator-configured URL
        resp.read()
