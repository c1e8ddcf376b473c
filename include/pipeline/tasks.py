"""The work of each DAG task as plain functions (testable without Airflow).

Failures are typed: ``VerdictError`` is deterministic (a bad set, a rejection, wrong
credentials, the ransomware guard) and the DAG turns it into AirflowFailException (no
retries of a verdict); anything else (network, 5xx) propagates and Airflow retries with
exponential backoff. Nothing here writes to the e-Defter folder; work files go to
$EDEFTER_WORK_DIR, evidence to $EDEFTER_EVIDENCE_DIR. Secrets never reach a return value
(which becomes XCom) or a log line: the client is built from a Connection and only its
results are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.edefter.naming import Period
from include.edefter.packaging import Manifest, PackagedFile, atomic_write_bytes, package_file
from include.edefter.problems import Problem
from include.edefter.status import BackupStatus
from include.pipeline.config import BackupUnit, evidence_dir, work_dir
from include.pipeline.folder import FolderError, scan_month

__all__ = [
    "GUARD_EN",
    "GUARD_TR",
    "UPLOAD_ORDER",
    "VerdictError",
    "evidence_path",
    "month_work_dir",
    "package_month",
    "record_month",
    "upload_month",
    "verify_month",
]

log = logging.getLogger(__name__)

GUARD_TR = "Yedeklenemedi: yerel dosyalar arşivdekinden farklı"
GUARD_EN = "Backup refused: the local files differ from the archived copies"
UPLOAD_ORDER = ("Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR")

ClientFactory = Callable[[], Any]


class VerdictError(Exception):
    """A deterministic failure: retrying cannot help; the month is 'Yedeklenemedi' until fixed."""

    def __init__(self, message_tr: str, message_en: str, details: Sequence[str] = ()) -> None:
        self.message_tr = message_tr
        self.message_en = message_en
        self.details = tuple(details)
        body = "\n".join(f"- {d}" for d in self.details)
        super().__init__(f"{message_tr} / {message_en}" + (f"\n{body}" if body else ""))


@dataclass(frozen=True)
class MonthRef:
    unit: BackupUnit
    period: Period


def month_work_dir(unit: BackupUnit, period: Period) -> Path:
    return work_dir() / unit.relative_dir / str(period)


def evidence_path(unit: BackupUnit, period: Period) -> Path:
    return evidence_dir() / unit.relative_dir / f"{period}.json"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    atomic_write_bytes(path, text.encode("utf-8"))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _extra_file_checks() -> list[Any]:
    """The cryptographic verifier (signatures, XAdES, certificate chains) of the domain library.

    Trust anchors come from env (EDEFTER_TRUSTED_ROOTS, EDEFTER_GIB_CERTS, ...; see
    include.edefter.verify.TrustSettings.from_env). Without anchors the certificate-trust
    findings make every set fail: production must configure them (Kamu SM roots, GİB's seal).
    """
    try:
        from include.edefter.verify import TrustSettings, crypto_check
    except ImportError:  # the verifier is optional in older checkouts of the domain library
        return []
    try:
        trust = TrustSettings.from_env()
    except Exception as exc:  # a misconfigured trust store must not silently pass files
        raise VerdictError(
            f"imza doğrulaması yapılandırılamadı: {exc}", f"cannot set up signature verification: {exc}"
        ) from exc
    return [crypto_check(trust)]


# -- ransomware guard ---------------------------------------------------------------------------


def _archived_confirmed(client: Any, unit: BackupUnit, period: Period) -> Any | None:
    status = client.month_status(unit.taxpayer_id, unit.branch, period)
    return status if status.status is BackupStatus.YEDEKLENDI else None


def _archived_xml_sha256(client: Any, zip_name: str) -> str | None:
    """SHA-256 of the XML inside the archived zip (downloaded to a temp dir), or None if unreadable."""
    import hashlib
    import zipfile

    with tempfile.TemporaryDirectory(prefix="edefter-guard-") as tmp:
        target = Path(tmp) / zip_name
        try:
            client.download(zip_name, target)
            with zipfile.ZipFile(target) as zf:
                (info,) = [i for i in zf.infolist() if not i.is_dir()]
                h = hashlib.sha256()
                with zf.open(info) as member:
                    while block := member.read(1 << 20):
                        h.update(block)
                return h.hexdigest()
        except Exception as exc:  # unreadable archive copy: report it as a difference
            log.warning("arşiv kopyası okunamadı / archived copy unreadable %s: %s", zip_name, exc)
            return None


def _guard_differences(status: Any, local: Sequence[PackagedFile], client: Any = None) -> list[str]:
    """Local files that differ from the confirmed archive (or are new/missing there).

    Zips are compared first (our zips are deterministic); a zip mismatch is confirmed on the
    XML bytes inside the archived copy, so a changed packer version never raises a false alarm.
    """
    archived = {f.name: (f.sha256 or "").lower() for f in status.files}
    by_name = {f.zip_name: f for f in local}
    diffs: list[str] = []
    for name in sorted(set(archived) | set(by_name)):
        a, mine = archived.get(name), by_name.get(name)
        if a is None:
            diffs.append(f"{name}: arşivde yok, yerelde var / not in the archive, present locally")
        elif mine is None:
            diffs.append(f"{name}: arşivde var, yerelde yok / archived, missing locally")
        elif a != mine.zip_sha256:
            archived_xml = _archived_xml_sha256(client, name) if client is not None else None
            if archived_xml is not None and archived_xml == mine.xml_sha256:
                continue  # same XML bytes, zipped differently (another packer version)
            diffs.append(
                f"{name}: SHA-256 yerel {mine.xml_sha256[:16]}… ≠ arşiv {(archived_xml or a)[:16]}… / "
                "local bytes differ from the archived copy"
            )
    return diffs


def _raise_guard(unit: BackupUnit, period: Period, diffs: list[str]) -> None:
    raise VerdictError(
        f"{GUARD_TR} ({unit.display_name}, {period.label_tr}); arşivdeki onaylı kopya korunuyor, hiçbir dosya "
        "yüklenmedi",
        f"{GUARD_EN} ({unit.display_name}, {period}); the confirmed archive copy is kept, nothing was uploaded",
        diffs,
    )


# -- verify -------------------------------------------------------------------------------------


def verify_month(unit: BackupUnit, period: Period, client_factory: ClientFactory | None = None) -> dict[str, Any]:
    """Completeness and consistency (and the cryptographic check when available) of the month.

    On a failed check the archive is asked whether this month is already Yedeklendi: if so,
    the local set was changed after the backup and the ransomware-guard message is raised.
    """
    from include.edefter.checks import validate_month

    try:
        scan, disc, ledger_set = scan_month(unit.folder, unit.taxpayer_id, unit.branch, period)
    except FolderError as exc:
        raise VerdictError(exc.message_tr, exc.message_en) from exc
    if ledger_set is None:
        raise VerdictError(
            f"{period.label_tr} ayına ait dosya bulunamadı ({unit.folder})",
            f"no files of {period} found in {unit.folder}",
        )
    report = validate_month(
        disc.month_inputs(ledger_set),
        expected=ledger_set.key,
        require_approved=True,
        extra_file_checks=_extra_file_checks(),
    )
    problems: list[Problem] = list(report.errors) + [
        p for p in disc.problems_for(ledger_set) if p.severity.value == "error"
    ]
    out_dir = month_work_dir(unit, period)
    facts = {n.filename: f.to_dict() for n, f in report.facts.items()}
    _write_json(
        out_dir / "verify.json",
        {
            "checked_at": _now(),
            "report": report.to_dict(),
            "facts": facts,
            "files": [
                {"name": n.filename, "rel_path": disc.found(n).rel_path, "size": disc.found(n).size}
                for n in ledger_set.ordered_files()
            ],
        },
    )
    if problems:
        if client_factory is not None:
            try:
                client = client_factory()
                confirmed = _archived_confirmed(client, unit, period)
            except Exception as exc:  # the guard is best effort here; the set is bad either way
                log.warning("arşiv durumu sorgulanamadı / archive status unavailable: %s", exc)
                confirmed = None
            if confirmed is not None:
                with tempfile.TemporaryDirectory(prefix="edefter-guard-", dir=_ensure(work_dir())) as tmp:
                    local = [
                        package_file(disc.found(n).path, Path(tmp), forbidden_root=unit.folder)
                        for n in ledger_set.ordered_files()
                    ]
                    diffs = _guard_differences(confirmed, local, client)
                if diffs:
                    # Confirmed in the archive, different and broken locally: changed after the backup.
                    _raise_guard(unit, period, diffs + [str(p) for p in problems])
        raise VerdictError(
            f"Yedeklenemedi: {period.label_tr} e-Defter dosyaları doğrulanamadı ({len(problems)} sorun)",
            f"Backup failed: the e-Defter files of {period} did not pass verification ({len(problems)} problems)",
            [str(p) for p in problems],
        )
    for w in report.problems:
        if w not in report.errors:
            log.warning("%s", w)
    return {
        "month": str(period),
        "edefter_status": report.status.value if report.status else None,
        "files": len(ledger_set.ordered_files()),
        "parts": len(ledger_set.parts),
        "warnings": len(report.problems) - len(report.errors),
        "verified_at": _now(),
        "scan_missing": list(scan.missing),
    }


# -- package ------------------------------------------------------------------------------------


def package_month(unit: BackupUnit, period: Period) -> dict[str, Any]:
    """One deterministic zip per file in upload order, plus manifest.json, in the work dir."""
    try:
        _scan, disc, ledger_set = scan_month(unit.folder, unit.taxpayer_id, unit.branch, period)
    except FolderError as exc:
        raise VerdictError(exc.message_tr, exc.message_en) from exc
    if ledger_set is None or not ledger_set.is_approved:
        raise VerdictError(
            f"{period.label_tr}: set paketleme sırasında eksik", f"{period}: the set became incomplete before packaging"
        )
    out_dir = month_work_dir(unit, period)
    zips = out_dir / "zips"
    files: list[PackagedFile] = []
    for name in ledger_set.ordered_files():
        found = disc.found(name)
        files.append(package_file(found.path, zips, forbidden_root=unit.folder))
    manifest = Manifest(tuple(files))
    manifest_path = out_dir / "manifest.json"
    manifest.write(manifest_path)
    return {
        "month": str(period),
        "manifest_path": str(manifest_path),
        "files": len(files),
        "xml_bytes": sum(f.xml_size for f in files),
        "zip_bytes": sum(f.zip_size for f in files),
        "packer": manifest.packer,
    }


# -- upload -------------------------------------------------------------------------------------


def upload_month(unit: BackupUnit, period: Period, manifest_path: Path | str, client: Any) -> dict[str, Any]:
    """Upload in the order Y, K, YB, KB, GIB-YB, GIB-KB, DR per part, then submit the set.

    Idempotent: a month already Yedeklendi with the same bytes uploads nothing; files
    already in the archive with the same SHA-256 are not sent again (resume after a failure).
    """
    from include.integrator.client import AuthError, ConflictError, RejectedError

    manifest = Manifest.read(Path(manifest_path))
    try:
        status = client.month_status(unit.taxpayer_id, unit.branch, period)
    except AuthError as exc:
        raise _auth_verdict(unit, exc) from exc
    if status.status is BackupStatus.YEDEKLENDI:
        diffs = _guard_differences(status, manifest.files, client)
        if diffs:
            _raise_guard(unit, period, diffs)
        log.info("%s zaten yedeklendi, aynı dosyalar: yükleme yok / already backed up, identical: nothing to upload", period)
        result = {
            "month": str(period),
            "uploaded": 0,
            "already_archived": len(manifest.files),
            "submission_id": status.submission_id,
            "skipped_month_already_backed_up": True,
            "receipts": [],
        }
        _write_json(month_work_dir(unit, period) / "upload.json", result)
        return {k: v for k, v in result.items() if k != "receipts"}

    try:
        archived = {
            a.name: a.sha256.lower()
            for a in client.list_files(unit.taxpayer_id, unit.branch, year=period.year, month=period.month)
        }
    except AuthError as exc:
        raise _auth_verdict(unit, exc) from exc
    receipts: list[dict[str, Any]] = []
    uploaded = 0
    for f in manifest.files:
        if archived.get(f.zip_name) == f.zip_sha256:
            receipts.append({"name": f.zip_name, "sha256": f.zip_sha256, "created": False, "skipped": True})
            continue
        try:
            r = client.upload_file(f.zip_path, f.zip_name, sha256=f.zip_sha256)
        except AuthError as exc:
            raise _auth_verdict(unit, exc) from exc
        except ConflictError as exc:
            raise VerdictError(
                f"Yedeklenemedi: {f.zip_name} arşivde farklı içerikle zaten var (üzerine yazılmaz)",
                f"Backup failed: {f.zip_name} is already archived with different bytes (never overwritten)",
                [str(exc)],
            ) from exc
        except RejectedError as exc:
            raise VerdictError(
                f"Yedeklenemedi: entegratör {f.zip_name} dosyasını reddetti",
                f"Backup failed: the integrator rejected {f.zip_name}",
                [str(exc)],
            ) from exc
        uploaded += int(r.created)
        receipts.append(
            {
                "name": r.name,
                "sha256": r.sha256,
                "size": r.size,
                "created": r.created,
                "uploaded_at": r.uploaded_at,
                "retention_until": r.retention_until.isoformat(),
                "storage": r.storage,
            }
        )
    try:
        sub = client.submit_month(
            unit.taxpayer_id,
            unit.branch,
            period,
            [(f.zip_name, f.zip_sha256) for f in manifest.files],
            source="Airflow",
        )
    except AuthError as exc:
        raise _auth_verdict(unit, exc) from exc
    except (RejectedError, ConflictError) as exc:
        raise VerdictError(
            f"Yedeklenemedi: entegratör {period.label_tr} setini reddetti",
            f"Backup failed: the integrator rejected the set of {period}",
            [str(exc)],
        ) from exc
    result = {
        "month": str(period),
        "uploaded": uploaded,
        "already_archived": len(manifest.files) - uploaded,
        "submission_id": sub.submission_id,
        "submission_status": sub.status.value,
        "submitted_at": _now(),
        "receipts": receipts,
    }
    _write_json(month_work_dir(unit, period) / "upload.json", result)
    log.info("%s: %d dosya yüklendi, %d zaten arşivde; %s", period, uploaded, result["already_archived"], sub.status.value)
    return {k: v for k, v in result.items() if k != "receipts"}


def _auth_verdict(unit: BackupUnit, exc: Exception) -> VerdictError:
    return VerdictError(
        f"Entegratör kimlik doğrulaması başarısız (Connection {unit.integrator_conn_id}): kullanıcı/parolayı kontrol edin",
        f"Integrator authentication failed (Connection {unit.integrator_conn_id}): check the login/password",
        [str(exc)],
    )


# -- record -------------------------------------------------------------------------------------


def record_month(
    unit: BackupUnit,
    period: Period,
    *,
    dag_id: str,
    run_id: str,
    berats: dict[str, Any] | None,
    verify: dict[str, Any] | None,
    package: dict[str, Any] | None,
    upload: dict[str, Any] | None,
    confirmation: dict[str, Any] | None,
) -> dict[str, Any]:
    """Write the month's evidence ("Kayıt Bilgisi") and return the small XCom summary."""
    work = month_work_dir(unit, period)
    verify_doc = _read_json(work / "verify.json")
    upload_doc = _read_json(work / "upload.json")
    manifest = Manifest.read(Path(package["manifest_path"])) if package else None
    facts = (verify_doc or {}).get("facts", {})
    receipts = {r["name"]: r for r in (upload_doc or {}).get("receipts", [])}
    files = []
    for f in manifest.files if manifest else ():
        fact = facts.get(f.name, {})
        files.append(
            {
                "name": f.name,
                "code": f.code,
                "part": f.part,
                "xml_size": f.xml_size,
                "xml_sha256": f.xml_sha256,
                "zip_name": f.zip_name,
                "zip_size": f.zip_size,
                "zip_sha256": f.zip_sha256,
                "signature_value": fact.get("signature_value"),
                "unique_id": fact.get("unique_id"),
                "receipt": receipts.get(f.zip_name),
            }
        )
    backup_status = (confirmation or {}).get("backup_status", BackupStatus.ISLENDI.value)
    message = (confirmation or {}).get("message") or ""
    evidence = {
        "kind": "Kayıt Bilgisi / e-Defter backup evidence",
        "company": unit.company_name,
        "company_id": unit.company_id,
        "taxpayer_id": unit.taxpayer_id,
        "branch": unit.branch,
        "branch_name": unit.branch_name,
        "month": str(period),
        "month_label": period.label_tr,
        "dag_id": dag_id,
        "run_id": run_id,
        "integrator_conn_id": unit.integrator_conn_id,
        "edefter_status": (verify or berats or {}).get("edefter_status"),
        "backup_status": backup_status,
        "message": message,
        "message_en": (confirmation or {}).get("message_en"),
        "retention_until": (confirmation or {}).get("retention_until"),
        "secondary_copy_deadline": (berats or {}).get("secondary_copy_deadline"),
        "statuses": [
            {"status": "Onaylı Berat İndirildi", "at": (berats or {}).get("ready_at")},
            {"status": "doğrulandı / verified", "at": (verify or {}).get("verified_at")},
            {"status": BackupStatus.ISLENDI.value, "at": (upload or {}).get("submitted_at")},
            {"status": backup_status, "at": (confirmation or {}).get("confirmed_at")},
        ],
        "upload": {k: v for k, v in (upload_doc or {}).items() if k != "receipts"},
        "packer": manifest.packer if manifest else None,
        "files": files,
        "recorded_at": _now(),
    }
    path = evidence_path(unit, period)
    _write_json(path, evidence)
    if backup_status == BackupStatus.YEDEKLENDI.value:
        # The archive holds the zips now; the work copy would only double the disk use. The
        # manifest, verify and upload records stay beside the evidence for inspection.
        import shutil

        shutil.rmtree(work / "zips", ignore_errors=True)
    return {
        "company": unit.company_name,
        "taxpayer_id": unit.taxpayer_id,
        "branch": unit.branch,
        "month": str(period),
        "edefter_status": evidence["edefter_status"],
        "backup_status": backup_status,
        "message": message,
        "files": len(files),
        "evidence_path": str(path),
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
