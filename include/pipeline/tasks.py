"""The work of each DAG task as plain functions (testable without Airflow).

Any task may run on any worker, and a retry may run on another one: tasks hand each other
only small XCom values (names, sizes, SHA-256, signature values, receipts — never a path).
Work files live in a private temporary directory inside one task and are removed on
success and failure.

Pinned bytes: ``verify`` records the SHA-256 and size of the XML bytes its checks actually
read; ``upload`` zips the files again (one read, hashed while compressing) and refuses,
before anything is uploaded, when those bytes differ from the pinned ones. The submitted
manifest carries the XML SHA-256 too, so the archive refuses a set whose stored XML differs.

Failures are typed: ``VerdictError`` is deterministic (a bad set, a rejection, wrong
credentials, the ransomware guard, bytes changed after verification) and the DAG turns it
into AirflowFailException (no retries of a verdict); anything else (network, 5xx, evidence
not yet complete) propagates and Airflow retries with exponential backoff. Nothing here
writes to the e-Defter folder. Secrets never reach a return value (XCom) or a log line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from include.edefter.naming import EDefterName, Period
from include.edefter.packaging import PackagedFile, package_file
from include.edefter.problems import Problem
from include.edefter.status import BackupStatus
from include.pipeline.config import BackupUnit, evidence_dir, work_dir
from include.pipeline.folder import FolderError, scan_month

__all__ = [
    "CHANGED_EN",
    "CHANGED_TR",
    "GUARD_EN",
    "GUARD_TR",
    "EvidenceIncompleteError",
    "VerdictError",
    "evidence_location",
    "file_checks",
    "record_month",
    "task_workspace",
    "upload_month",
    "verify_month",
]

log = logging.getLogger(__name__)

GUARD_TR = "Yedeklenemedi: yerel dosyalar arşivdekinden farklı"
GUARD_EN = "Backup refused: the local files differ from the archived copies"
CHANGED_TR = "Yedeklenemedi: dosya doğrulamadan sonra değişti"
CHANGED_EN = "Backup failed: the file changed after verification"
# Work dirs of a task killed with SIGKILL cannot remove themselves; the next task on that
# machine removes those older than this.
STALE_WORKSPACE_SECONDS = 24 * 3600
WORKSPACE_PREFIX = "edefter-task-"

ClientFactory = Callable[[], Any]
Opener = Callable[[], IO[bytes]]


class VerdictError(Exception):
    """A deterministic failure: retrying cannot help; the month is 'Yedeklenemedi' until fixed."""

    def __init__(self, message_tr: str, message_en: str, details: Sequence[str] = ()) -> None:
        self.message_tr = message_tr
        self.message_en = message_en
        self.details = tuple(details)
        body = "\n".join(f"- {d}" for d in self.details)
        super().__init__(f"{message_tr} / {message_en}" + (f"\n{body}" if body else ""))


class EvidenceIncompleteError(RuntimeError):
    """A piece of the month's evidence is missing: retried, never written as an empty field."""

    def __init__(self, what: str) -> None:
        super().__init__(f"kayıt bilgisi eksik: {what} / evidence incomplete: {what}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@contextmanager
def task_workspace() -> Generator[Path, None, None]:
    """A private temporary directory for one task's work files, removed on success and failure.

    Under $EDEFTER_WORK_DIR (default var/work) so operators can size and watch that disk.
    """
    root = work_dir()
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_workspaces(root)
    with tempfile.TemporaryDirectory(prefix=WORKSPACE_PREFIX, dir=root) as tmp:
        yield Path(tmp)


def _remove_stale_workspaces(root: Path) -> None:
    cutoff = time.time() - STALE_WORKSPACE_SECONDS
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.name.startswith(WORKSPACE_PREFIX) and entry.is_dir(follow_symlinks=False):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


def file_checks() -> list[Any]:
    """The cryptographic verifier (signatures, XAdES, certificate chains) as a per-file check.

    Trust anchors come from env (EDEFTER_TRUSTED_ROOTS, EDEFTER_GIB_CERTS; see
    include.edefter.verify.TrustSettings.from_env). Without anchors every signature is
    untrusted and the set fails: nothing unverified is archived as valid. A verifier that
    cannot be loaded or configured is a verdict, never a silently skipped check.
    """
    try:
        from include.edefter.verify import TrustSettings, crypto_check

        trust = TrustSettings.from_env()
    except Exception as exc:
        raise VerdictError(
            f"imza doğrulaması yapılandırılamadı: {exc}", f"cannot set up signature verification: {exc}"
        ) from exc
    return [crypto_check(trust)]


# -- pinning: hash exactly the bytes the checks read ----------------------------------------------


class _PinnedStream:
    """Wraps a file object opened for the checks; hashes what they read, in order.

    A read that reaches the end with no seek in between yields the SHA-256 and size of the
    bytes the checks saw. Anything else (a partial read, a seek) yields nothing.
    """

    def __init__(self, raw: IO[bytes], record: Callable[[str, int], None]) -> None:
        self._raw = raw
        self._record = record
        self._hash = hashlib.sha256()
        self._size = 0
        self._sequential = True
        self._eof = False
        self._done = False

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if self._sequential:
            if data:
                self._hash.update(data)
                self._size += len(data)
            elif n != 0:
                self._eof = True
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if not (offset == 0 and whence == 0 and self._size == 0):
            self._sequential = False
        return self._raw.seek(offset, whence)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self._done:
            self._done = True
            if self._sequential and self._eof:
                self._record(self._hash.hexdigest(), self._size)
        self._raw.close()

    def __enter__(self) -> _PinnedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, item: str) -> Any:  # tell(), name, ... of the underlying stream
        return getattr(self._raw, item)


class _Pins:
    """Per file, every complete read of the checks: (sha256, size). Thread-safe (parallel checks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reads: dict[str, list[tuple[str, int]]] = {}

    def wrap(self, name: EDefterName, opener: Opener) -> Opener:
        def record(digest: str, size: int) -> None:
            with self._lock:
                self.reads.setdefault(name.filename, []).append((digest, size))

        def open_pinned() -> IO[bytes]:
            return _PinnedStream(opener(), record)  # type: ignore[return-value]

        return open_pinned

    def pin(self, filename: str) -> tuple[str, int] | None:
        """The one (sha256, size) every complete read agreed on; None if unread; raises if they differ."""
        seen = set(self.reads.get(filename, ()))
        if len(seen) > 1:
            raise VerdictError(
                f"{CHANGED_TR}: {filename} doğrulama sırasında değişti (farklı içerik okundu)",
                f"{CHANGED_EN}: {filename} changed while it was being verified (different bytes were read)",
            )
        return next(iter(seen)) if seen else None


# -- ransomware guard ---------------------------------------------------------------------------


def _archived_confirmed(client: Any, unit: BackupUnit, period: Period) -> Any | None:
    status = client.month_status(unit.taxpayer_id, unit.branch, period)
    return status if status.status is BackupStatus.YEDEKLENDI else None


def _archived_xml_sha256(client: Any, zip_name: str, workspace: Path) -> str | None:
    """SHA-256 of the XML inside the archived zip (downloaded into the task's workspace), or None."""
    import zipfile

    target = workspace / "guard" / zip_name
    target.parent.mkdir(parents=True, exist_ok=True)
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
    finally:
        target.unlink(missing_ok=True)


def _guard_differences(status: Any, local: Sequence[PackagedFile], client: Any, workspace: Path) -> list[str]:
    """Local files that differ from the confirmed archive (or are new/missing there).

    Zips are compared first (ours are deterministic); a zip mismatch is confirmed on the
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
            archived_xml = _archived_xml_sha256(client, name, workspace)
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


def _scan(unit: BackupUnit, period: Period) -> tuple[Any, Any, Any]:
    try:
        scan, disc, ledger_set = scan_month(unit.folder, unit.taxpayer_id, unit.branch, period)
    except FolderError as exc:
        raise VerdictError(exc.message_tr, exc.message_en) from exc
    if ledger_set is None:
        raise VerdictError(
            f"{period.label_tr} ayına ait dosya bulunamadı ({unit.folder})",
            f"no files of {period} found in {unit.folder}",
        )
    return scan, disc, ledger_set


# -- verify -------------------------------------------------------------------------------------


def verify_month(unit: BackupUnit, period: Period, client_factory: ClientFactory | None = None) -> dict[str, Any]:
    """Check the month (completeness, name ↔ content, signature chain, cryptography) and pin its bytes.

    Returns the XCom value ``upload`` and ``record`` need: per file its name, size, the
    SHA-256 of the XML bytes the checks read, and its signature value. On a failed check
    the archive is asked whether this month is already Yedeklendi: if so, the local set was
    changed after the backup and the ransomware-guard message is raised.
    """
    from include.edefter.checks import validate_month

    scan, disc, ledger_set = _scan(unit, period)
    pins = _Pins()
    inputs = [(n, pins.wrap(n, op)) for n, op in disc.month_inputs(ledger_set)]
    report = validate_month(inputs, expected=ledger_set.key, require_approved=True, extra_file_checks=file_checks(),
                            schema="require" if unit.tuning.require_schema else "auto")
    problems: list[Problem] = list(report.errors) + [
        p for p in disc.problems_for(ledger_set) if p.severity.value == "error"
    ]
    if problems:
        _refuse_verified_set(unit, period, disc, ledger_set, problems, client_factory)
    facts = {n.filename: f for n, f in report.facts.items()}
    files: list[dict[str, Any]] = []
    for name in ledger_set.ordered_files():
        pin = pins.pin(name.filename)
        fact = facts.get(name.filename)
        if pin is None or fact is None or not fact.signature_value:
            # The checks passed without reading the whole file: a gap in the verifier, never a pass.
            raise VerdictError(
                f"Yedeklenemedi: {name.filename} tam olarak doğrulanamadı (içerik sabitlenemedi)",
                f"Backup failed: {name.filename} was not verified in full (its bytes could not be pinned)",
            )
        files.append(
            {
                "name": name.filename,
                "code": name.code,
                "part": name.part,
                "xml_size": pin[1],
                "xml_sha256": pin[0],
                "signature_value": fact.signature_value,
                "unique_id": fact.unique_id,
            }
        )
    warnings = [w for w in report.problems if w not in report.errors]
    for w in warnings:
        log.warning("%s", w)
    log.info("%s: %d dosya doğrulandı ve sabitlendi / %d files verified and pinned", period, len(files), len(files))
    return {
        "month": str(period),
        "edefter_status": report.status.value if report.status else None,
        "parts": len(ledger_set.parts),
        "warnings": [str(w) for w in warnings],
        "verified_at": _now(),
        "scan_missing": list(scan.missing),
        "files": files,
    }


def _refuse_verified_set(
    unit: BackupUnit,
    period: Period,
    disc: Any,
    ledger_set: Any,
    problems: list[Problem],
    client_factory: ClientFactory | None,
) -> None:
    if client_factory is not None:
        try:
            client = client_factory()
            confirmed = _archived_confirmed(client, unit, period)
        except Exception as exc:  # the guard is best effort here; the set is bad either way
            log.warning("arşiv durumu sorgulanamadı / archive status unavailable: %s", exc)
            confirmed = None
        if confirmed is not None:
            with task_workspace() as ws:
                local = [
                    package_file(disc.found(n).path, ws / "zips", forbidden_root=unit.folder)
                    for n in ledger_set.ordered_files()
                ]
                diffs = _guard_differences(confirmed, local, client, ws)
            if diffs:
                # Confirmed in the archive, different and broken locally: changed after the backup.
                _raise_guard(unit, period, diffs + [str(p) for p in problems])
    raise VerdictError(
        f"Yedeklenemedi: {period.label_tr} e-Defter dosyaları doğrulanamadı ({len(problems)} sorun)",
        f"Backup failed: the e-Defter files of {period} did not pass verification ({len(problems)} problems)",
        [str(p) for p in problems],
    )


# -- upload (zip + re-hash + upload, in one task) -------------------------------------------------


def _pinned_files(verified: Mapping[str, Any] | None, period: Period) -> dict[str, Mapping[str, Any]]:
    files = (verified or {}).get("files")
    if not files or (verified or {}).get("month") != str(period):
        # The verify XCom is how upload knows what was verified: without it nothing may go out.
        raise EvidenceIncompleteError(f"{period}: verify sonucu (XCom) yok / no verify result (XCom)")
    pins: dict[str, Mapping[str, Any]] = {}
    for f in files:
        if not f.get("xml_sha256") or f.get("xml_size") is None:
            raise EvidenceIncompleteError(f"{f.get('name')}: sabitlenmiş SHA-256 yok / no pinned SHA-256")
        pins[f["name"]] = f
    return pins


def package_pinned(
    unit: BackupUnit, period: Period, verified: Mapping[str, Any] | None, dest: Path
) -> list[PackagedFile]:
    """Zip the month's files into ``dest``, refusing any whose bytes differ from the pinned ones.

    Each file is read once: compressed and hashed in the same pass, so what is zipped (and
    uploaded) is exactly what was hashed. Every file is checked before any upload starts.
    """
    pins = _pinned_files(verified, period)
    _scan_result, disc, ledger_set = _scan(unit, period)
    names = ledger_set.ordered_files()
    now = {n.filename for n in names}
    changed: list[str] = []
    for extra in sorted(now - set(pins)):
        changed.append(f"{extra}: doğrulamadan sonra klasöre eklendi / appeared in the folder after verification")
    for gone in sorted(set(pins) - now):
        changed.append(f"{gone}: doğrulamadan sonra klasörden kalktı / disappeared from the folder after verification")
    packaged: list[PackagedFile] = []
    for name in names:
        pin = pins.get(name.filename)
        if pin is None:
            continue
        pf = package_file(disc.found(name).path, dest, forbidden_root=unit.folder)
        if pf.xml_sha256 != pin["xml_sha256"] or pf.xml_size != pin["xml_size"]:
            changed.append(
                f"{name.filename}: doğrulanan SHA-256 {pin['xml_sha256'][:16]}… ({pin['xml_size']} bayt), "
                f"şimdi {pf.xml_sha256[:16]}… ({pf.xml_size} bayt) / verified bytes differ from the bytes read now"
            )
        packaged.append(pf)
    if changed:
        raise VerdictError(
            f"{CHANGED_TR} ({unit.display_name}, {period.label_tr}); hiçbir dosya yüklenmedi: "
            + ", ".join(sorted({c.split(':', 1)[0] for c in changed})),
            f"{CHANGED_EN} ({unit.display_name}, {period}); nothing was uploaded",
            changed,
        )
    return packaged


def upload_month(unit: BackupUnit, period: Period, verified: Mapping[str, Any] | None, client: Any) -> dict[str, Any]:
    """Zip the pinned files in a private workspace, then upload Y, K, YB, KB, GIB-YB, GIB-KB, DR per part and submit.

    Idempotent and machine-independent: zips are deterministic, so a retry on another worker
    produces the same bytes; files the archive already holds with the same SHA-256 are not
    sent again, and a month already Yedeklendi with the same bytes uploads nothing.
    """
    from include.integrator.client import AuthError, ConflictError, RejectedError

    with task_workspace() as ws:
        packaged = package_pinned(unit, period, verified, ws / "zips")
        try:
            status = client.month_status(unit.taxpayer_id, unit.branch, period)
        except AuthError as exc:
            raise _auth_verdict(unit, exc) from exc
        files = [_file_entry(f) for f in packaged]
        if status.status is BackupStatus.YEDEKLENDI:
            diffs = _guard_differences(status, packaged, client, ws)
            if diffs:
                _raise_guard(unit, period, diffs)
            log.info("%s zaten yedeklendi, aynı dosyalar: yükleme yok / already backed up, identical: nothing to upload", period)
            return {
                "month": str(period),
                "uploaded": 0,
                "already_archived": len(packaged),
                "submission_id": status.submission_id,
                "skipped_month_already_backed_up": True,
                "submitted_at": _iso(getattr(status, "submitted_at", None)),
                "files": files,
                "receipts": [_archived_receipt(f) for f in status.files],
            }
        try:
            archived = {
                a.name: a.sha256.lower()
                for a in client.list_files(unit.taxpayer_id, unit.branch, year=period.year, month=period.month)
            }
        except AuthError as exc:
            raise _auth_verdict(unit, exc) from exc
        receipts: list[dict[str, Any]] = []
        uploaded = 0
        for f in packaged:
            if archived.get(f.zip_name) == f.zip_sha256:
                receipts.append({"name": f.zip_name, "sha256": f.zip_sha256, "size": f.zip_size, "created": False,
                                 "already_archived": True})
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
                    "uploaded_at": _iso(r.uploaded_at),
                    "retention_until": _iso(r.retention_until),
                    "storage": r.storage,
                }
            )
        try:
            sub = client.submit_month(
                unit.taxpayer_id,
                unit.branch,
                period,
                [(f.zip_name, f.zip_sha256, f.xml_sha256) for f in packaged],
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
    log.info("%s: %d dosya yüklendi, %d zaten arşivde; %s", period, uploaded, len(packaged) - uploaded, sub.status.value)
    return {
        "month": str(period),
        "uploaded": uploaded,
        "already_archived": len(packaged) - uploaded,
        "submission_id": sub.submission_id,
        "submission_status": sub.status.value,
        "submitted_at": _now(),
        "files": files,
        "receipts": receipts,
    }


def _file_entry(f: PackagedFile) -> dict[str, Any]:
    return {
        "name": f.name,
        "code": f.code,
        "part": f.part,
        "xml_size": f.xml_size,
        "xml_sha256": f.xml_sha256,
        "zip_name": f.zip_name,
        "zip_size": f.zip_size,
        "zip_sha256": f.zip_sha256,
    }


def _archived_receipt(f: Any) -> dict[str, Any]:
    return {
        "name": f.name,
        "sha256": f.sha256,
        "size": getattr(f, "size", None),
        "created": False,
        "already_archived": True,
        "retention_until": _iso(getattr(f, "retention_until", None)),
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _auth_verdict(unit: BackupUnit, exc: Exception) -> VerdictError:
    return VerdictError(
        f"Entegratör kimlik doğrulaması başarısız (Connection {unit.integrator_conn_id}): kullanıcı/parolayı kontrol edin",
        f"Integrator authentication failed (Connection {unit.integrator_conn_id}): check the login/password",
        [str(exc)],
    )


# -- record -------------------------------------------------------------------------------------


def build_evidence(
    unit: BackupUnit,
    period: Period,
    *,
    dag_id: str,
    run_id: str,
    berats: Mapping[str, Any] | None,
    verify: Mapping[str, Any] | None,
    upload: Mapping[str, Any] | None,
    confirmation: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The month's evidence ("Kayıt Bilgisi") from the XCom values of this run only.

    Every field comes from a task of this run; a missing piece raises EvidenceIncompleteError
    (retried) instead of leaving the field empty.
    """
    if not confirmation or not confirmation.get("backup_status"):
        raise EvidenceIncompleteError("entegratör onayı / the integrator's confirmation")
    pins = _pinned_files(verify, period)
    if not upload or upload.get("month") != str(period) or not upload.get("files"):
        raise EvidenceIncompleteError("yükleme sonucu / the upload result")
    receipts = {r["name"]: r for r in upload.get("receipts") or []}
    files: list[dict[str, Any]] = []
    for f in upload["files"]:
        pin = pins.get(f["name"])
        if pin is None or not pin.get("signature_value"):
            raise EvidenceIncompleteError(f"{f['name']}: imza değeri / signature value")
        receipt = receipts.get(f["zip_name"])
        if receipt is None:
            raise EvidenceIncompleteError(f"{f['zip_name']}: entegratör alındısı / integrator receipt")
        files.append(
            {
                **f,
                "signature_value": pin["signature_value"],
                "unique_id": pin.get("unique_id"),
                "receipt": receipt,
            }
        )
    backup_status = confirmation["backup_status"]
    return {
        "kind": "Kayıt Bilgisi / e-Defter backup evidence",
        "format": 2,
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
        "edefter_status": (verify or {}).get("edefter_status") or (berats or {}).get("edefter_status"),
        "backup_status": backup_status,
        "message": confirmation.get("message") or "",
        "message_en": confirmation.get("message_en"),
        "retention_until": confirmation.get("retention_until"),
        "secondary_copy_deadline": (berats or {}).get("secondary_copy_deadline"),
        "submission_id": upload.get("submission_id"),
        "statuses": [
            {"status": "Onaylı Berat İndirildi", "at": (berats or {}).get("ready_at")},
            {"status": "doğrulandı / verified", "at": (verify or {}).get("verified_at")},
            {"status": BackupStatus.ISLENDI.value, "at": upload.get("submitted_at")},
            {"status": backup_status, "at": confirmation.get("confirmed_at")},
        ],
        "upload": {k: v for k, v in upload.items() if k not in ("receipts", "files")},
        "files": files,
        "recorded_at": _now(),
    }


def evidence_location(unit: BackupUnit, period: Period) -> str:
    """Where the platform team's copy of the evidence goes (an ObjectStoragePath URL).

    $EDEFTER_EVIDENCE_URL (``file:///…``, ``s3://conn_id@bucket/prefix``…) or, by default,
    ``file://`` + $EDEFTER_EVIDENCE_DIR (var/evidence). The archive keeps its own copy.
    """
    base = os.environ.get("EDEFTER_EVIDENCE_URL", "").strip().rstrip("/")
    if not base:
        base = evidence_dir().resolve().as_uri()
    return f"{base}/{unit.relative_dir.as_posix()}/{period}.json"


def _write_platform_copy(url: str, data: bytes) -> None:
    if url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        from include.edefter.packaging import atomic_write_bytes

        atomic_write_bytes(Path(unquote(urlparse(url).path)), data)
        return
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def record_month(
    unit: BackupUnit,
    period: Period,
    *,
    dag_id: str,
    run_id: str,
    berats: Mapping[str, Any] | None,
    verify: Mapping[str, Any] | None,
    upload: Mapping[str, Any] | None,
    confirmation: Mapping[str, Any] | None,
    client: Any,
) -> dict[str, Any]:
    """Store the month's evidence with the month in the archive (and the platform copy); return a summary."""
    evidence = build_evidence(
        unit, period, dag_id=dag_id, run_id=run_id, berats=berats, verify=verify, upload=upload,
        confirmation=confirmation,
    )
    data = json.dumps(evidence, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    receipt = client.put_evidence(unit.taxpayer_id, unit.branch, period, data)
    location = evidence_location(unit, period)
    _write_platform_copy(location, data)
    log.info("kayıt bilgisi arşivde / evidence archived: sha256 %s; copy at %s", receipt.sha256, location)
    return {
        "company": unit.company_name,
        "taxpayer_id": unit.taxpayer_id,
        "branch": unit.branch,
        "month": str(period),
        "edefter_status": evidence["edefter_status"],
        "backup_status": evidence["backup_status"],
        "message": evidence["message"],
        "files": len(evidence["files"]),
        "evidence_sha256": receipt.sha256,
        "evidence_location": location,
        "signature_values": sum(1 for f in evidence["files"] if f["signature_value"]),
        "receipts": sum(1 for f in evidence["files"] if f["receipt"]),
    }
