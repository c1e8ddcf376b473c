"""Asynchronous validation of a submitted month set.

A submission moves "Entegratör'e İşlendi" → "Yedeklendi" | "Yedeklenemedi". The
work runs in a background thread pool; submissions still "İşlendi" after a
restart are picked up again (the verdict is a pure function of stored bytes).
Transient failures (DB, storage) are retried, never turned into a verdict.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from include.edefter.naming import EDefterName, InvalidFileName, Period, parse_name
from include.edefter.problems import Problem, Severity
from include.edefter.status import BackupStatus
from include.integrator.context import ServiceContext
from include.integrator.metadata.models import (
    STORED_FILE_FIELDS,
    ArchivedFile,
    StagedFile,
    Submission,
    utcnow,
)
from include.integrator.storage.base import ObjectMissing, StorageError

__all__ = ["Validator", "month_messages", "load_extra_checks"]

log = logging.getLogger(__name__)


def month_messages(
    status: BackupStatus, period: Period, problems: Sequence[dict[str, Any]] = ()
) -> tuple[str, str]:
    label = period.label_tr
    if status is BackupStatus.YEDEKLENDI:
        return (
            f"{label} ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi.",
            f"The journal and general ledger files of {label} were backed up.",
        )
    if status is BackupStatus.YEDEKLENEMEDI:
        errs = [p for p in problems if p.get("severity", "error") == "error"]
        first_tr = f" İlk sorun: {errs[0]['message_tr']}" if errs else ""
        first_en = f" First problem: {errs[0]['message_en']}" if errs else ""
        return (
            f"{label} ayına ait Yevmiye ve Büyük Defter dosyaları yedeklenemedi ({len(errs)} sorun).{first_tr}",
            f"The journal and general ledger files of {label} could not be backed up ({len(errs)} problems).{first_en}",
        )
    if status is BackupStatus.ISLENDI:
        return (
            f"{label} ayına ait dosyalar entegratöre işlendi, kontrol ediliyor.",
            f"The files of {label} were received and are being checked.",
        )
    return (
        f"{label} ayı için entegratöre gönderim yok.",
        f"Nothing was submitted to the integrator for {label}.",
    )


def load_extra_checks(spec: str | None) -> Any:
    """'module:attr' → the object passed to validate_month(extra_file_checks=...)."""
    if not spec:
        return None
    mod, _, attr = spec.partition(":")
    obj = importlib.import_module(mod)
    obj = getattr(obj, attr) if attr else obj
    # validate_month takes a sequence of FileCheck callables; accept a single one too.
    return [obj] if callable(obj) else list(obj)


def _problem(code: str, files: tuple[str, ...], tr: str, en: str, **details: str) -> dict[str, Any]:
    return Problem(code, files, tr, en, Severity.ERROR, tuple(details.items())).to_dict()


def _committed(r: StagedFile) -> ArchivedFile:
    return ArchivedFile(**{f: getattr(r, f) for f in STORED_FILE_FIELDS})


class _ZipMemberOpener:
    """Opens the XML inside a stored zip, spooling non-seekable streams (S3) to a temp file."""

    def __init__(self, ctx: ServiceContext, row: ArchivedFile | StagedFile) -> None:
        self.ctx = ctx
        self.row = row

    def __call__(self) -> IO[bytes]:
        raw = self.ctx.storage.open(self.row.storage_key, self.row.version_id)
        seekable = getattr(raw, "seekable", lambda: False)()
        if not seekable:
            spool = tempfile.TemporaryFile(dir=self.ctx.settings.tmp_dir)
            with raw:
                shutil.copyfileobj(raw, spool, 1 << 20)
            spool.seek(0)
            raw = spool
        zf = zipfile.ZipFile(raw)
        member = zf.open(zf.infolist()[0])
        return _Closing(member, zf, raw)


class _Closing:
    """A member stream that also closes the zip and the underlying file."""

    def __init__(self, member: IO[bytes], *others: Any) -> None:
        self._m = member
        self._others = others

    def read(self, n: int = -1) -> bytes:
        return self._m.read(n)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._m.close()
        for o in self._others:
            o.close()

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Validator:
    def __init__(
        self, ctx: ServiceContext, workers: int = 1, retry_delay: float = 2.0, max_attempts: int = 5
    ) -> None:
        self.ctx = ctx
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="validate")
        self.retry_delay = retry_delay
        self.max_attempts = max_attempts
        self.extra_checks = load_extra_checks(ctx.settings.extra_file_checks)
        self._closed = False
        self._timers: set[threading.Timer] = set()
        self._inflight: set[int] = set()  # scheduled, running or waiting for a retry in this process
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def schedule(self, submission_id: int, attempt: int = 1) -> None:
        if self._closed:
            return
        with self._guard:
            if attempt == 1 and submission_id in self._inflight:
                return
            self._inflight.add(submission_id)
        self.pool.submit(self._run, submission_id, attempt)

    def _done(self, submission_id: int) -> None:
        with self._guard:
            self._inflight.discard(submission_id)

    def start_sweeper(self, interval_s: float) -> None:
        """Pick up "İşlendi" submissions nobody here is validating, every ``interval_s``.

        Without it a month stayed "İşlendi" until a restart when the DB was down longer than the
        retries, or when the replica validating it died. Validating a submission twice is
        harmless: the verdict is a function of stored bytes and only the first is recorded.
        """
        if interval_s <= 0 or self._sweeper is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    cutoff = utcnow() - dt.timedelta(seconds=interval_s)
                    with self.ctx.session() as s:
                        ids = list(
                            s.scalars(
                                select(Submission.id).where(
                                    Submission.status == BackupStatus.ISLENDI.value,
                                    Submission.submitted_at < cutoff,
                                )
                            )
                        )
                    for i in ids:
                        self.schedule(i)
                except SQLAlchemyError as exc:
                    log.warning("resume sweep: metadata DB unavailable (%s)", type(exc).__name__)

        self._sweeper = threading.Thread(target=loop, name="validate-sweeper", daemon=True)
        self._sweeper.start()

    def resume_pending(self) -> int:
        with self.ctx.session() as s:
            ids = list(
                s.scalars(select(Submission.id).where(Submission.status == BackupStatus.ISLENDI.value))
            )
        for i in ids:
            self.schedule(i)
        return len(ids)

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        for t in list(self._timers):
            t.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, submission_id: int, attempt: int) -> None:
        try:
            self.validate(submission_id)
            self._done(submission_id)
        except ObjectMissing as exc:  # a lost object is a finding, not a transient error
            log.error("validation of submission %s: stored object missing (%s)", submission_id, exc)
            self._finish_internal(submission_id, exc)
            self._done(submission_id)
        except (SQLAlchemyError, StorageError, OSError) as exc:
            if attempt >= self.max_attempts:
                # Not a verdict: the files may be fine and the DB only away for a while. The
                # month stays "İşlendi" and the sweeper tries again later.
                log.error(
                    "validation of submission %s failed %d times (%s); the sweeper retries later",
                    submission_id,
                    attempt,
                    exc,
                )
                self._done(submission_id)
                return
            log.warning(
                "validation of submission %s hit a transient error (%s); retrying", submission_id, exc
            )
            t = threading.Timer(self.retry_delay * attempt, self.schedule, (submission_id, attempt + 1))
            t.daemon = True
            self._timers.add(t)
            t.start()
        except Exception as exc:  # a bug must not leave the month "İşlendi" forever
            log.exception("validation of submission %s crashed", submission_id)
            self._finish_internal(submission_id, exc)
            self._done(submission_id)

    def _finish_internal(self, submission_id: int, exc: BaseException) -> None:
        try:
            with self.ctx.session() as s, s.begin():
                sub = s.get(Submission, submission_id)
                if sub is None or sub.status != BackupStatus.ISLENDI.value:
                    return
                probs = [
                    _problem(
                        "integrator.internal_error",
                        (),
                        "entegratör seti kontrol ederken bir iç hata oluştu; lütfen seti yeniden gönderin",
                        f"the integrator hit an internal error while checking the set ({type(exc).__name__}); please re-submit",
                    )
                ]
                self._store_verdict(sub, BackupStatus.YEDEKLENEMEDI, probs, [])
        except SQLAlchemyError:
            log.exception("could not record the failure of submission %s", submission_id)

    def _store_verdict(
        self,
        sub: Submission,
        status: BackupStatus,
        problems: list[dict[str, Any]],
        results: list[dict[str, Any]],
    ) -> None:
        sub.status = status.value
        sub.problems = problems
        sub.results = results
        sub.message_tr, sub.message_en = month_messages(status, Period.parse(sub.period), problems)
        sub.finished_at = utcnow()

    def validate(self, submission_id: int) -> BackupStatus:
        with self.ctx.session() as s:
            sub = s.get(Submission, submission_id)
            if sub is None or sub.status != BackupStatus.ISLENDI.value:
                return BackupStatus(sub.status) if sub else BackupStatus.GONDERILMEDI
            manifest = list(sub.manifest)
            tid, branch, period = sub.taxpayer_id, sub.branch, Period.parse(sub.period)

            def tenant(model: Any) -> list[Any]:
                return list(
                    s.scalars(
                        select(model).where(
                            model.taxpayer_id == tid,
                            model.branch.is_(None) if branch is None else model.branch == branch,
                            model.period == period.yyyymm,
                        )
                    )
                )

            committed: dict[str, ArchivedFile] = {r.filename: r for r in tenant(ArchivedFile)}
            staged: dict[tuple[str, str], StagedFile] = {
                (r.filename, r.sha256): r for r in tenant(StagedFile)
            }
        problems: list[dict[str, Any]] = []
        per_file: dict[str, list[dict[str, Any]]] = {}
        present: list[tuple[EDefterName, ArchivedFile | StagedFile]] = []
        chosen: dict[str, ArchivedFile | StagedFile] = {}
        seen: set[str] = set()
        for item in manifest:
            fname, sha = item["name"], item["sha256"].lower()
            xml_sha = (item.get("xml_sha256") or "").lower() or None
            pr: list[dict[str, Any]] = per_file.setdefault(fname, [])
            try:
                name = parse_name(fname)
            except InvalidFileName as exc:
                pr.append(_problem(f"name.{exc.field}", (fname,), exc.message_tr, exc.message_en))
                continue
            zname = name.with_ext("zip")
            if (name.taxpayer_id, name.branch, name.period) != (tid, branch, period):
                pr.append(
                    _problem(
                        "set.foreign_file",
                        (fname,),
                        "dosya bu ayın/mükellefin/şubenin setine ait değil",
                        "the file does not belong to this taxpayer/branch/month set",
                    )
                )
                continue
            if zname.filename in seen:
                pr.append(
                    _problem(
                        "set.duplicate", (fname,), "dosya listede iki kez var", "the file is listed twice"
                    )
                )
                continue
            seen.add(zname.filename)
            done = committed.get(zname.filename)
            row: ArchivedFile | StagedFile | None
            if done is not None and done.sha256 != sha:
                pr.append(
                    _problem(
                        "set.name_committed",
                        (fname,),
                        "bu adla farklı içerikte bir dosya zaten arşivde (yedeklenmiş); arşivdeki dosya değiştirilmez",
                        "a file with this name and different content is already archived (backed up); "
                        "the archived file is never replaced",
                        listed=sha,
                        archived=done.sha256,
                    )
                )
                continue
            row = done or staged.get((zname.filename, sha))
            if row is None:
                other = [k for k in staged if k[0] == zname.filename]
                if other:
                    pr.append(
                        _problem(
                            "set.sha256_mismatch",
                            (fname,),
                            "listedeki SHA-256 yüklenen dosyanınkiyle uyuşmuyor",
                            "the SHA-256 in the list differs from the uploaded file's",
                            listed=sha,
                            uploaded=",".join(k[1] for k in other),
                        )
                    )
                else:
                    pr.append(
                        _problem(
                            "set.file_not_uploaded",
                            (fname,),
                            "listedeki dosya entegratöre yüklenmemiş",
                            "the listed file was not uploaded to the integrator",
                        )
                    )
                continue
            chosen[zname.filename] = row
            if xml_sha is not None and row.xml_sha256 != xml_sha:
                pr.append(
                    _problem(
                        "manifest.xml_sha256_mismatch",
                        (fname,),
                        "zip içindeki XML'in SHA-256 değeri gönderenin doğruladığıyla uyuşmuyor "
                        "(dosya doğrulamadan sonra değişmiş)",
                        "the SHA-256 of the XML inside the zip differs from the one the sender verified "
                        "(the file changed after verification)",
                        listed=xml_sha,
                        stored=row.xml_sha256,
                    )
                )
                continue
            present.append((name.with_ext("xml"), row))
        for pr in per_file.values():
            problems.extend(pr)
        problems.extend(self._content_problems(tid, branch, period, present))
        ok = not any(p.get("severity") == "error" for p in problems)
        status = BackupStatus.YEDEKLENDI if ok else BackupStatus.YEDEKLENEMEDI
        results = []
        for item in manifest:
            fname = item["name"]
            stem = fname.rsplit(".", 1)[0]
            mine = [p for p in problems if any(f.rsplit(".", 1)[0] == stem for f in p.get("files", []))]
            got = chosen.get(stem + ".zip")
            results.append(
                {
                    "name": fname,
                    "sha256": got.sha256 if got else None,
                    "size": got.size if got else None,
                    "xml_sha256": got.xml_sha256 if got else None,
                    "status": (
                        BackupStatus.YEDEKLENEMEDI if any(p["severity"] == "error" for p in mine) else status
                    ).value,
                    "problems": mine,
                    "retention_until": got.retention_until.isoformat() if got else None,
                }
            )
        try:
            with self.ctx.session() as s, s.begin():
                sub = s.get(Submission, submission_id)
                assert sub is not None
                if sub.status != BackupStatus.ISLENDI.value:
                    return BackupStatus(sub.status)
                if status is BackupStatus.YEDEKLENDI:
                    # Commit the staged files under their names in the verdict's transaction:
                    # a name is taken only by bytes of a validated set.
                    for _, r in present:
                        if isinstance(r, StagedFile):
                            s.add(_committed(r))
                self._store_verdict(sub, status, problems, results)
                untils = [r.retention_until for _, r in present]
                sub.retention_until = max(untils) if untils else None
        except IntegrityError:
            # Another set committed one of these names meanwhile: validate again (retried as
            # transient); the next pass compares against what is now committed.
            log.warning("submission %s: a name was committed concurrently; validating again", submission_id)
            raise
        return status

    def _content_problems(
        self,
        tid: str,
        branch: str | None,
        period: Period,
        present: list[tuple[EDefterName, ArchivedFile | StagedFile]],
    ) -> list[dict[str, Any]]:
        from include.edefter.ledger_set import SetKey

        key = SetKey(tid, branch, period)
        files: list[tuple[EDefterName, Callable[[], IO[bytes]]]] = [
            (n, _ZipMemberOpener(self.ctx, r)) for n, r in present
        ]
        try:
            from include.edefter.checks import validate_month
        except ImportError:
            return self._completeness_only(key, [n for n, _ in present])
        kwargs: dict[str, Any] = {"expected": key, "require_approved": self.ctx.settings.require_approved}
        checks: list[Any] = list(self.extra_checks or [])
        if self.ctx.settings.verify_signatures:
            from include.edefter.verify import TrustSettings, crypto_check

            # A fresh check per month: crypto_check remembers the berats it has seen.
            checks.append(crypto_check(TrustSettings.from_env()))
        if checks:
            kwargs["extra_file_checks"] = checks
        report = validate_month(files, **kwargs)
        return [p.to_dict() for p in report.problems]

    def _completeness_only(self, key: Any, names: list[EDefterName]) -> list[dict[str, Any]]:
        """Used only while the domain library lacks checks.validate_month: completeness, not content."""
        from include.edefter.ledger_set import build_set

        ls = build_set(key, names)
        out = [p.to_dict() for p in ls.problems]
        for m in ls.missing:
            out.append(_problem("set.missing_file", (m,), f"eksik dosya: {m}", f"missing file: {m}"))
        return out
