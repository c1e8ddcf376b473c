"""Geri yükleme (restore) and ibraz paketi: get a company's e-Defter files back from the archive.

Plain functions; the integrator client is passed in (``IntegratorClient`` or anything with the
same ``list_files``/``month_status``/``download``/``list_evidence``/``get_evidence`` methods), so
the CLI, the ``edefter_geri_yukleme`` DAG and the tests share one code path.

For each month of the range: list the archived files, download each zip (the client checks the
archive's SHA-256 and never leaves a half file), compare it with the listing's SHA-256, extract the
one XML (streaming, hashed) and compare it with the month status's ``xml_sha256``, put it into the
target tree (GİB layout ``<VKN>/<dd.mm.yyyy-dd.mm.yyyy>/<MM>/`` or flat) WITHOUT ever replacing an
existing file (identical bytes = already done; other bytes = refused), then run ``validate_month``
with the cryptographic check on the restored bytes.

Resume: ``<target>/.edefter-restore/state.json`` (written atomically after every file) lists the
files already in place with their SHA-256; a re-run skips them without downloading. The report
(``report.json`` + ``report.txt``) lands in the same directory.

CLI::

    python -m include.pipeline.restore --company ornek-ticaret --from 2025-01 --to 2025-12 \\
        --target /restore/ornek [--branch 0001] [--layout gib|flat] [--ibraz]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import hashlib
import html
import json
import logging
import os
import shutil
import sys
import zipfile
import zlib
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.edefter.naming import EDefterName, Period, parse_name
from include.pipeline.config import BackupUnit, ConfigError, PipelineConfig, load_config

__all__ = [
    "STATE_DIR",
    "RestoreConflict",
    "RestoreError",
    "RestoreInterrupted",
    "RestoreRequest",
    "build_ibraz",
    "check_target",
    "main",
    "parse_range",
    "resolve_unit",
    "restore",
]

log = logging.getLogger(__name__)

STATE_DIR = ".edefter-restore"
STATE_FORMAT = 1
_CHUNK = 1 << 20
LAYOUTS = ("gib", "flat")


# -- errors ---------------------------------------------------------------------------------------


class RestoreError(Exception):
    """A bad input or a refusal; the message is Turkish + English and names the thing."""

    resumable = False
    exit_code = 2

    def __init__(self, code: str, message_tr: str, message_en: str) -> None:
        self.code = code
        self.message_tr = message_tr
        self.message_en = message_en
        super().__init__(f"[{code}] {message_tr} / {message_en}")


class RestoreConflict(RestoreError):
    """The target already holds a file of that name with other bytes: refused, never overwritten."""

    exit_code = 4


class RestoreInterrupted(RestoreError):
    """The integrator failed midway (after the client's retries): run again, it resumes."""

    resumable = True
    exit_code = 3


# -- inputs ---------------------------------------------------------------------------------------


def _istanbul_today() -> dt.date:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).date()


def parse_month_arg(value: str, what: str) -> Period:
    from include.pipeline.months import parse_month

    try:
        return parse_month(value)
    except (ValueError, TypeError) as exc:
        raise RestoreError(
            "range.invalid",
            f"{what} ayı geçersiz: {value!r} (YYYY-AA bekleniyor)",
            f"invalid {what} month: {value!r} (expected YYYY-MM)",
        ) from exc


def parse_range(first: str, last: str, *, today: dt.date | None = None) -> tuple[Period, Period]:
    """``--from``/``--to`` -> periods; reversed ranges and months after the current one are refused."""
    a = parse_month_arg(first, "başlangıç / from")
    b = parse_month_arg(last, "bitiş / to")
    if b < a:
        raise RestoreError(
            "range.reversed",
            f"ay aralığı ters: başlangıç {a} bitişten ({b}) sonra",
            f"month range reversed: from {a} is after to {b}",
        )
    now = today or _istanbul_today()
    current = Period(now.year, now.month)
    if b > current:
        raise RestoreError(
            "range.future",
            f"{b} ayı gelecekte (bugün {now.isoformat()}); arşivde olamaz",
            f"month {b} is in the future (today is {now.isoformat()}); it cannot be archived",
        )
    return a, b


def months_between(first: Period, last: Period) -> list[Period]:
    out = [first]
    while out[-1] < last:
        out.append(out[-1].next())
    return out


def resolve_unit(config: PipelineConfig, company: str, branch: str | None = None) -> BackupUnit:
    """A configured unit by company id, taxpayer id or backup DAG id (+ branch)."""
    key = (company or "").strip()
    units = [u for u in config.units if key in (u.company_id, u.taxpayer_id, u.dag_id)]
    if not units:
        raise RestoreError(
            "company.unknown",
            f"firma bulunamadı: {key!r} (firma kimliği, VKN/TCKN veya DAG kimliği verin)",
            f"unknown company: {key!r} (give a company id, taxpayer id or DAG id)",
        )
    if any(u.dag_id == key for u in units):
        units = [u for u in units if u.dag_id == key]
    if branch:
        chosen = [u for u in units if u.branch == branch]
        if not chosen:
            have = ", ".join(u.branch for u in units if u.branch) or "yok / none"
            raise RestoreError(
                "branch.unknown",
                f"{key!r} firmasında {branch} şubesi tanımlı değil (şubeler: {have})",
                f"company {key!r} has no branch {branch} configured (branches: {have})",
            )
        units = chosen
    if len(units) > 1:
        have = ", ".join(u.branch or "-" for u in units)
        raise RestoreError(
            "branch.required",
            f"{key!r} şube bazında yedekleniyor: --branch ile şubeyi seçin ({have})",
            f"{key!r} is backed up per branch: choose one with --branch ({have})",
        )
    return units[0]


def check_target(target: Path) -> Path:
    """Create the target (and its state dir) and prove it is writable; clear errors otherwise."""
    target = Path(target).expanduser()
    if target.exists() and not target.is_dir():
        raise RestoreError(
            "target.not_dir",
            f"hedef bir klasör değil: {target}",
            f"the target is not a directory: {target}",
        )
    probe = target / STATE_DIR / f".probe-{os.getpid()}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        ro = exc.errno == errno.EROFS
        what_tr = "salt okunur bir dosya sisteminde" if ro else "yazılabilir değil"
        what_en = "on a read-only file system" if ro else "not writable"
        raise RestoreError(
            "target.read_only" if ro else "target.not_writable",
            f"hedef klasör {what_tr}: {target} ({exc.strerror or exc})",
            f"the target directory is {what_en}: {target} ({exc.strerror or exc})",
        ) from exc
    return target


# -- request, state, report ----------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreRequest:
    taxpayer_id: str
    branch: str | None
    first: Period
    last: Period
    target: Path
    layout: str = "gib"
    company_name: str = ""
    verify: bool = True

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise RestoreError(
                "layout.invalid",
                f"klasör düzeni 'gib' veya 'flat' olmalı, {self.layout!r} bulundu",
                f"layout must be 'gib' or 'flat', got {self.layout!r}",
            )

    @classmethod
    def for_unit(cls, unit: BackupUnit, first: Period, last: Period, target: Path, layout: str = "gib",
                 verify: bool = True) -> RestoreRequest:
        return cls(unit.taxpayer_id, unit.branch, first, last, Path(target), layout, unit.display_name, verify)

    @property
    def who(self) -> str:
        return self.taxpayer_id + (f"-{self.branch}" if self.branch else "")


class _State:
    """``.edefter-restore/state.json``: files already in place (relative path, SHA-256); atomic writes."""

    def __init__(self, target: Path, req: RestoreRequest) -> None:
        from include.edefter.packaging import atomic_write_bytes

        self._write = atomic_write_bytes
        self.path = target / STATE_DIR / "state.json"
        self.data: dict[str, Any] = {
            "format": STATE_FORMAT, "taxpayer_id": req.taxpayer_id, "branch": req.branch,
            "layout": req.layout, "files": {},
        }
        if self.path.exists():
            try:
                old = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RestoreError(
                    "state.unreadable",
                    f"devam dosyası okunamadı: {self.path} ({exc})",
                    f"cannot read the resume file: {self.path} ({exc})",
                ) from exc
            for k in ("taxpayer_id", "branch", "layout"):
                if old.get(k) != self.data[k]:
                    raise RestoreConflict(
                        "target.other_restore",
                        f"hedefte başka bir geri yükleme var ({k}: {old.get(k)!r} ≠ {self.data[k]!r}): {target}",
                        f"the target holds another restore ({k}: {old.get(k)!r} ≠ {self.data[k]!r}): {target}",
                    )
            self.data["files"] = dict(old.get("files") or {})

    def get(self, xml_name: str) -> dict[str, Any] | None:
        return self.data["files"].get(xml_name)

    def put(self, xml_name: str, entry: dict[str, Any]) -> None:
        self.data["files"][xml_name] = entry
        self._write(self.path, json.dumps(self.data, indent=1, sort_keys=True).encode())


@dataclass
class FileOutcome:
    name: str  # the XML name
    zip_name: str
    path: str | None = None  # relative to the target
    sha256: str | None = None  # of the restored XML
    size: int | None = None  # of the restored XML
    zip_sha256: str | None = None
    zip_size: int | None = None
    archive_xml_sha256: str | None = None
    downloaded: bool = False
    verdict: str = "?"
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


@dataclass
class MonthOutcome:
    period: Period
    files: list[FileOutcome] = field(default_factory=list)
    missing: bool = False
    archive_status: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    verified: bool | None = None

    @property
    def ok(self) -> bool:
        return self.missing or (not self.problems and all(f.ok for f in self.files))


@dataclass
class RestoreReport:
    request: RestoreRequest
    months: list[MonthOutcome]
    started_at: str
    finished_at: str = ""
    downloads: int = 0
    skipped: int = 0

    @property
    def missing(self) -> list[str]:
        return [str(m.period) for m in self.months if m.missing]

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.months)

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "kind": "e-Defter geri yükleme raporu / restore report",
            "format": 1,
            "company": r.company_name,
            "taxpayer_id": r.taxpayer_id,
            "branch": r.branch,
            "from": str(r.first),
            "to": str(r.last),
            "target": str(r.target),
            "layout": r.layout,
            "verified": r.verify,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "ok": self.ok,
            "downloads": self.downloads,
            "already_restored": self.skipped,
            "missing_months": self.missing,
            "months": [
                {
                    "month": str(m.period),
                    "label": m.period.label_tr,
                    "missing": m.missing,
                    "archive_status": m.archive_status,
                    "ok": m.ok,
                    "verified": m.verified,
                    "problems": m.problems,
                    "files": [
                        {
                            "name": f.name, "zip_name": f.zip_name, "path": f.path, "sha256": f.sha256,
                            "size": f.size, "zip_sha256": f.zip_sha256, "zip_size": f.zip_size,
                            "archive_xml_sha256": f.archive_xml_sha256, "downloaded": f.downloaded,
                            "verdict": f.verdict, "problems": f.problems,
                        }
                        for f in m.files
                    ],
                }
                for m in self.months
            ],
        }

    def to_text(self) -> str:
        r = self.request
        lines = [
            "e-Defter geri yükleme raporu / restore report",
            f"Firma / company: {r.company_name or '-'}  VKN/TCKN: {r.taxpayer_id}"
            + (f"  Şube / branch: {r.branch}" if r.branch else ""),
            f"Dönem / period: {r.first} .. {r.last}   Hedef / target: {r.target} ({r.layout})",
            f"İndirilen / downloaded: {self.downloads}   zaten vardı / already restored: {self.skipped}",
            "Sonuç / result: " + ("TAMAM / OK" if self.ok else "SORUNLU / PROBLEMS FOUND"),
            "",
        ]
        for m in self.months:
            if m.missing:
                lines.append(f"{m.period} {m.period.label_tr}: arşivde yok / missing in the archive")
                continue
            head = "doğrulandı / verified" if m.ok else "SORUNLU / PROBLEMS"
            lines.append(f"{m.period} {m.period.label_tr}: {len(m.files)} dosya / files, {head}")
            for f in m.files:
                lines.append(f"  {f.verdict:8} {f.name}  {f.size if f.size is not None else '-':>10}  {f.sha256 or '-'}")
                if not f.ok:
                    for p in f.problems:
                        lines.append(f"    ! {f.zip_name} [{p.get('code')}]: {p.get('message_tr')} / {p.get('message_en')}")
            for p in m.problems:
                lines.append(f"  ! [{p.get('code')}] {', '.join(p.get('files') or ())}: {p.get('message_tr')} / "
                             f"{p.get('message_en')}")
        if self.missing:
            lines += ["", "Arşivde olmayan aylar / months missing in the archive: " + ", ".join(self.missing)]
        return "\n".join(lines) + "\n"


# -- the work ------------------------------------------------------------------------------------


def _sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fy_dir(start: dt.date, end: dt.date) -> str:
    return f"{start:%d.%m.%Y}-{end:%d.%m.%Y}"


def _month_dir(req: RestoreRequest, period: Period, fiscal: tuple[dt.date, dt.date] | None) -> Path:
    if req.layout == "flat":
        return Path()
    if fiscal is None:
        fiscal = (dt.date(period.year, 1, 1), dt.date(period.year, 12, 31))
    return Path(req.taxpayer_id, _fy_dir(*fiscal), f"{period.month:02d}")


def _fiscal_year(xml_path: Path, name: str) -> tuple[dt.date, dt.date] | None:
    from include.edefter.xmlread import XmlReadError, read_facts

    try:
        facts = read_facts(xml_path, name=name)
    except XmlReadError:
        return None
    if facts.fiscal_year_start and facts.fiscal_year_end:
        return facts.fiscal_year_start, facts.fiscal_year_end
    return None


def _index_target(target: Path) -> dict[str, list[Path]]:
    """Existing files under the target by name (the restore's own state dir excluded)."""
    out: dict[str, list[Path]] = {}
    for root, dirs, files in os.walk(target):
        dirs[:] = [d for d in dirs if d != STATE_DIR]
        for f in files:
            out.setdefault(f, []).append(Path(root, f))
    return out


def _conflict(path: Path, target: Path, want: str, have: str) -> RestoreConflict:
    rel = path.relative_to(target).as_posix() if path.is_relative_to(target) else str(path)
    return RestoreConflict(
        "target.conflict",
        f"hedefte aynı adlı farklı bir dosya var, üzerine yazılmadı: {rel} (SHA-256 {have[:16]}…, "
        f"arşivdeki {want[:16]}…)",
        f"the target already holds a different file of that name, not overwritten: {rel} (SHA-256 {have[:16]}…, "
        f"archive {want[:16]}…)",
    )


def _transport(exc: Exception, what: str) -> RestoreInterrupted:
    return RestoreInterrupted(
        "integrator.unavailable",
        f"entegratöre ulaşılamadı ({what}): {exc}. Yeniden çalıştırın: tamamlanan dosyalar tekrar indirilmez",
        f"the integrator is unavailable ({what}): {exc}. Run again: files already restored are not downloaded again",
    )


def _disk(exc: BaseException, target: Path) -> RestoreInterrupted:
    full = getattr(exc, "errno", None) == errno.ENOSPC or "Errno 28" in str(exc)
    if full:
        return RestoreInterrupted(
            "target.full",
            f"hedef diskte yer kalmadı: {target}. Yer açıp yeniden çalıştırın: kaldığı yerden devam eder",
            f"the target's disk is full: {target}. Free space and run again: it resumes where it stopped",
        )
    return RestoreInterrupted(
        "target.write_failed",
        f"hedefe yazılamadı: {target} ({exc}). Sorunu giderip yeniden çalıştırın",
        f"cannot write to the target: {target} ({exc}). Fix it and run again",
    )


def _client_errors() -> tuple[type[Exception], ...]:
    from include.integrator.client import ServerError, TransportError

    return (ServerError, TransportError)


def _extract(zip_path: Path, zip_name: EDefterName, out: Path) -> tuple[str, int] | list[dict[str, Any]]:
    """Extract the one XML of an archived zip to ``out`` (hashing); problems as dicts on failure."""
    from include.edefter.discovery import inspect_zip

    member, problems = inspect_zip(zip_path, zip_name.filename, zip_name)
    errors = [p.to_dict() for p in problems]
    if member is None or errors:
        return errors or [{"code": "zip.no_member", "files": [zip_name.filename],
                           "message_tr": "zip içinde XML yok", "message_en": "no XML in the zip"}]
    h = hashlib.sha256()
    n = 0
    try:
        with zipfile.ZipFile(zip_path) as zf, zf.open(member) as src, open(out, "wb") as dst:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                dst.write(chunk)
                n += len(chunk)
            dst.flush()
            os.fsync(dst.fileno())
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # a corrupt member (CRC, truncated deflate)
        out.unlink(missing_ok=True)
        return [{"code": "zip.invalid", "files": [zip_name.filename],
                 "message_tr": f"zip açılamadı: {exc}", "message_en": f"cannot extract the zip: {exc}"}]
    except BaseException:  # a full or failing local disk is not the archive's fault: propagate
        out.unlink(missing_ok=True)
        raise
    return h.hexdigest(), n


_NO_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, getattr(errno, "ENOTSUP", -1), getattr(errno, "EOPNOTSUPP", -1)}


def _link_no_replace(src: Path, dest: Path) -> None:
    """Give ``src``'s bytes the name ``dest``; FileExistsError if ``dest`` exists (never replaced).

    A hard link where the file system has them; otherwise an exclusive create ("x") and a copy.
    """
    try:
        os.link(src, dest)  # fails if dest exists: no overwrite, even against a racing writer
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
    try:
        with open(src, "rb") as fin, open(dest, "xb") as fout:
            shutil.copyfileobj(fin, fout, _CHUNK)
            fout.flush()
            os.fsync(fout.fileno())
    except FileExistsError:
        raise
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _place(tmp: Path, final: Path, target: Path, sha: str) -> bool:
    """Move ``tmp`` to ``final`` without ever replacing a file. True: placed; False: identical already there."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        _link_no_replace(tmp, final)
    except FileExistsError:
        have = _sha256_path(final)
        tmp.unlink(missing_ok=True)
        if have != sha:
            raise _conflict(final, target, sha, have) from None
        return False
    tmp.unlink(missing_ok=True)
    return True


def _problem(code: str, file: str, tr: str, en: str) -> dict[str, Any]:
    return {"code": code, "files": [file], "message_tr": tr, "message_en": en, "severity": "error"}


def restore(
    client: Any,
    req: RestoreRequest,
    *,
    trust: Any = None,
    progress: Callable[[str], None] | None = None,
    today: dt.date | None = None,
) -> RestoreReport:
    """Restore ``req``'s months into ``req.target``; return (and write) the report.

    Raises RestoreError for bad inputs and refusals (conflicting files), RestoreInterrupted when
    the integrator stays unavailable (state is kept: a re-run resumes).
    """
    from include.integrator.client import AuthError, IntegrityError, RejectedError

    say = progress or (lambda m: log.info("%s", m))
    if req.last < req.first:
        parse_range(str(req.first), str(req.last), today=today)  # raises the reversed-range error
    target = check_target(req.target)
    with _target_lock(target):
        return _restore(client, req, target, trust, say, (AuthError, IntegrityError, RejectedError))


@contextlib.contextmanager
def _target_lock(target: Path) -> Generator[None, None, None]:
    """One restore at a time per target (an advisory lock on ``.edefter-restore/lock``)."""
    import fcntl

    with open(target / STATE_DIR / "lock", "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RestoreError(
                "target.busy",
                f"bu hedefte başka bir geri yükleme çalışıyor: {target}",
                f"another restore is running into this target: {target}",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _restore(client: Any, req: RestoreRequest, target: Path, trust: Any, say: Callable[[str], None],
             errors: tuple[type[Exception], ...]) -> RestoreReport:
    AuthError, IntegrityError, RejectedError = errors  # noqa: N806 - the client's exception classes
    state = _State(target, req)
    work = target / STATE_DIR / "work"
    work.mkdir(parents=True, exist_ok=True)
    existing = _index_target(target)
    report = RestoreReport(req, [], started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    months = months_between(req.first, req.last)
    transient = _client_errors()

    # 1. What the archive holds (listing + status) for every month, before anything is written.
    plan: list[tuple[Period, list[Any], dict[str, str]]] = []
    for i, period in enumerate(months, 1):
        try:
            listed = client.list_files(req.taxpayer_id, req.branch, year=period.year, month=period.month)
            listed = [f for f in listed if f.branch == req.branch and f.period == period]
            xml_shas: dict[str, str] = {}
            status_text = None
            if listed:
                st = client.month_status(req.taxpayer_id, req.branch, period)
                status_text = st.status.value
                for fr in st.files:
                    if fr.xml_sha256:
                        xml_shas[fr.name.rsplit(".", 1)[0]] = fr.xml_sha256.lower()
        except AuthError as exc:
            raise RestoreError(
                "integrator.forbidden",
                f"entegratör erişimi reddetti ({req.who} {period}): {exc.message_tr}",
                f"the integrator refused access ({req.who} {period}): {exc.message_en}",
            ) from exc
        except transient as exc:
            raise _transport(exc, f"liste / list {period}") from exc
        say(f"[{i}/{len(months)}] {period}: arşivde {len(listed)} dosya / {len(listed)} files in the archive"
            + (f" ({status_text})" if status_text else ""))
        plan.append((period, listed, xml_shas))
        if status_text is not None:
            xml_shas["__status__"] = status_text

    # 2. Conflicts known before downloading: a file of the same name with other bytes anywhere in the target.
    for _period, listed, xml_shas in plan:
        for f in listed:
            stem = f.name.rsplit(".", 1)[0]
            want = xml_shas.get(stem)
            done = state.get(f"{stem}.xml")
            for path in existing.get(f"{stem}.xml", []):
                have = _sha256_path(path)
                ref = want or (done or {}).get("sha256")
                if ref and have != ref:
                    raise _conflict(path, target, ref, have)

    # 3. Download, extract, place, then verify month by month.
    total = sum(len(listed) for _, listed, _ in plan)
    n = 0
    for period, listed, xml_shas in plan:
        mo = MonthOutcome(period, archive_status=xml_shas.pop("__status__", None))
        report.months.append(mo)
        if not listed:
            mo.missing = True
            continue
        fiscal: tuple[dt.date, dt.date] | None = None
        for f in sorted(listed, key=lambda x: _upload_order(x.name)):
            n += 1
            zname = parse_name(f.name)
            xml_name = zname.with_ext("xml").filename
            out = FileOutcome(xml_name, f.name, zip_sha256=f.sha256, zip_size=f.size,
                              archive_xml_sha256=xml_shas.get(zname.stem))
            mo.files.append(out)
            done = state.get(xml_name)
            if done and (target / done["path"]).is_file() and _sha256_path(target / done["path"]) == done["sha256"]:
                out.path, out.sha256, out.size = done["path"], done["sha256"], done["size"]
                if fiscal is None and done.get("fiscal"):
                    fiscal = (dt.date.fromisoformat(done["fiscal"][0]), dt.date.fromisoformat(done["fiscal"][1]))
                report.skipped += 1
                say(f"  [{n}/{total}] {xml_name}: zaten geri yüklendi / already restored")
                continue
            zpath = work / f.name
            try:
                got = client.download(f.name, zpath)
            except IntegrityError as exc:
                out.verdict = "BOZUK"
                out.problems.append(_problem("archive.hash_mismatch", f.name, exc.message_tr, exc.message_en))
                say(f"  [{n}/{total}] {f.name}: BOZUK / CORRUPT — {exc.message_en}")
                continue
            except AuthError as exc:
                raise RestoreError(
                    "integrator.forbidden",
                    f"entegratör erişimi reddetti ({f.name}): {exc.message_tr}",
                    f"the integrator refused access ({f.name}): {exc.message_en}",
                ) from exc
            except RejectedError as exc:  # e.g. listed a moment ago, not found now: a finding about this file
                out.verdict = "EKSIK"
                out.problems.append(_problem(exc.code or "archive.download_refused", f.name, exc.message_tr,
                                             exc.message_en))
                say(f"  [{n}/{total}] {f.name}: EKSIK / MISSING — {exc.message_en}")
                continue
            except transient as exc:
                if "Errno 28" in str(exc):  # the client reports a full local disk as an interrupted download
                    raise _disk(exc, target) from exc
                raise _transport(exc, f"indirme / download {f.name}") from exc
            except OSError as exc:
                raise _disk(exc, target) from exc
            report.downloads += 1
            out.downloaded = True
            if got.lower() != f.sha256.lower():
                zpath.unlink(missing_ok=True)
                out.verdict = "BOZUK"
                out.problems.append(_problem(
                    "archive.hash_mismatch", f.name,
                    f"indirilen zip'in SHA-256 değeri ({got}) arşiv kaydıyla ({f.sha256}) uyuşmuyor",
                    f"the downloaded zip's SHA-256 ({got}) differs from the archive's record ({f.sha256})"))
                continue
            tmp = work / f"{xml_name}.part"
            try:
                extracted = _extract(zpath, zname, tmp)
            except OSError as exc:
                zpath.unlink(missing_ok=True)
                raise _disk(exc, target) from exc
            zpath.unlink(missing_ok=True)
            if isinstance(extracted, list):
                out.verdict = "BOZUK"
                out.problems.extend(extracted)
                continue
            sha, size = extracted
            if out.archive_xml_sha256 and sha != out.archive_xml_sha256:
                tmp.unlink(missing_ok=True)
                out.verdict = "BOZUK"
                out.problems.append(_problem(
                    "archive.xml_hash_mismatch", xml_name,
                    f"XML'in SHA-256 değeri ({sha}) arşivin ay kaydındakiyle ({out.archive_xml_sha256}) uyuşmuyor",
                    f"the XML's SHA-256 ({sha}) differs from the month status's record ({out.archive_xml_sha256})"))
                continue
            if fiscal is None and req.layout == "gib":
                fiscal = _fiscal_year(tmp, xml_name)
            rel = _month_dir(req, period, fiscal) / xml_name
            try:
                placed = _place(tmp, target / rel, target, sha)
            except RestoreError:
                raise
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise _disk(exc, target) from exc
            out.path, out.sha256, out.size = rel.as_posix(), sha, size
            state.put(xml_name, {"path": out.path, "sha256": sha, "size": size, "zip_sha256": f.sha256,
                                 "fiscal": [fiscal[0].isoformat(), fiscal[1].isoformat()] if fiscal else None})
            say(f"  [{n}/{total}] {xml_name}: "
                + ("geri yüklendi / restored" if placed else "zaten vardı (aynı) / already there (identical)")
                + f" ({size} B, SHA-256 {sha[:16]}…)")
        _verify_month(req, target, mo, trust)
        say(f"  {period}: " + ("doğrulandı / verified" if mo.ok else f"SORUNLU / problems: {len(mo.problems)}"))

    report.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_report(target, report)
    shutil.rmtree(work, ignore_errors=True)
    return report


_ORDER = {"Y": 0, "K": 1, "YB": 2, "KB": 3, "GIB-YB": 4, "GIB-KB": 5, "DR": 6}


def _upload_order(name: str) -> tuple[int, int, str]:
    n = parse_name(name)
    return (n.part, _ORDER.get(n.code, 9), name)


def _verify_month(req: RestoreRequest, target: Path, mo: MonthOutcome, trust: Any) -> None:
    """validate_month (+ the cryptographic check) on the restored bytes; verdicts per file."""
    from include.edefter.checks import validate_month
    from include.edefter.ledger_set import SetKey

    placed = [f for f in mo.files if f.path and not f.problems]
    if not placed:
        mo.verified = False
        for f in mo.files:
            if f.verdict == "?":
                f.verdict = "BOZUK"
        return
    checks: list[Any] = []
    if req.verify:
        from include.edefter.verify import TrustSettings, crypto_check

        checks.append(crypto_check(trust if trust is not None else TrustSettings.from_env()))

    def opener(p: Path) -> Callable[[], Any]:
        return lambda: open(p, "rb")  # noqa: SIM115 - closed by validate_month

    files = [(parse_name(f.name), opener(target / f.path)) for f in placed]  # type: ignore[operator]
    rep = validate_month(files, expected=SetKey(req.taxpayer_id, req.branch, mo.period), require_approved=True,
                         extra_file_checks=checks)
    mo.verified = True
    by_file: dict[str, list[dict[str, Any]]] = {}
    for p in rep.errors:
        d = p.to_dict()
        mo.problems.append(d)
        for fname in p.files:
            by_file.setdefault(Path(fname).name, []).append(d)
    for f in mo.files:
        if f.problems:  # already judged while restoring (BOZUK / EKSIK)
            f.verdict = f.verdict if f.verdict != "?" else "BOZUK"
        elif by_file.get(f.name):
            f.verdict = "HATALI"
            f.problems.extend(by_file[f.name])
        else:
            f.verdict = "ok"


def write_report(target: Path, report: RestoreReport) -> tuple[Path, Path]:
    from include.edefter.packaging import atomic_write_bytes

    jpath = target / STATE_DIR / "report.json"
    tpath = target / STATE_DIR / "report.txt"
    atomic_write_bytes(jpath, json.dumps(report.to_dict(), ensure_ascii=False, indent=2).encode("utf-8"))
    atomic_write_bytes(tpath, report.to_text().encode("utf-8"))
    return jpath, tpath


# -- ibraz paketi --------------------------------------------------------------------------------


def ibraz_name(req: RestoreRequest) -> str:
    return f"ibraz-{req.who}-{req.first.yyyymm}-{req.last.yyyymm}"


def build_ibraz(client: Any, report: RestoreReport, *, progress: Callable[[str], None] | None = None) -> tuple[Path, Path]:
    """One folder (restored files + each month's evidence JSON + index.html) and a zip of it.

    Built in a temporary directory and renamed into place; an existing package is never replaced.
    """
    say = progress or (lambda m: log.info("%s", m))
    req = report.request
    target = Path(req.target)
    final = target / ibraz_name(req)
    final_zip = final.with_name(final.name + ".zip")
    for p in (final, final_zip):
        if p.exists():
            raise RestoreConflict(
                "ibraz.exists",
                f"ibraz paketi zaten var, üzerine yazılmadı: {p}",
                f"the ibraz package already exists, not overwritten: {p}",
            )
    tmp = target / STATE_DIR / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "defterler").mkdir(parents=True)
    (tmp / "kayit-bilgisi").mkdir()
    transient = _client_errors()
    evidence: dict[str, list[tuple[str, dict[str, Any] | None]]] = {}
    for mo in report.months:
        for f in mo.files:
            if f.path:
                dest = tmp / "defterler" / f.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(target / f.path, dest)
        if mo.missing:
            continue
        try:
            docs = client.list_evidence(req.taxpayer_id, req.branch, mo.period)
            got: list[tuple[str, dict[str, Any] | None]] = []
            for i, d in enumerate(docs, 1):
                data = client.get_evidence(req.taxpayer_id, req.branch, mo.period, d.sha256)
                fname = f"{mo.period}-{i:02d}-{d.sha256[:12]}.json"
                (tmp / "kayit-bilgisi" / fname).write_bytes(data)
                try:
                    parsed = json.loads(data)
                except ValueError:
                    parsed = None
                got.append((fname, parsed if isinstance(parsed, dict) else None))
        except transient as exc:
            raise _transport(exc, f"kayıt bilgisi / evidence {mo.period}") from exc
        evidence[str(mo.period)] = got
        say(f"  {mo.period}: {len(got)} kayıt bilgisi belgesi / evidence documents")
    (tmp / "rapor.json").write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    (tmp / "index.html").write_text(render_index(report, evidence), encoding="utf-8")
    os.rename(tmp, final)
    zip_tmp = target / STATE_DIR / (final_zip.name + ".part")
    with zipfile.ZipFile(zip_tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(final.rglob("*")):
            if p.is_file():
                zf.write(p, Path(final.name, p.relative_to(final)).as_posix())
    _link_no_replace(zip_tmp, final_zip)
    zip_tmp.unlink()
    say(f"ibraz paketi / package: {final} (+ {final_zip.name})")
    return final, final_zip


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:11pt;margin:1.5cm;color:#111}
h1{font-size:16pt}h2{font-size:13pt;margin-top:1.2em;border-bottom:1px solid #999;page-break-after:avoid}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #bbb;padding:3px 5px;
text-align:left;vertical-align:top}th{background:#eee}code,.h{font-family:"DejaVu Sans Mono",monospace;
font-size:8.5pt;word-break:break-all}.en{color:#555;font-style:italic}.bad{color:#a00;font-weight:bold}
section{page-break-inside:avoid}@media print{body{margin:1cm}a{color:#000}}
"""


def render_index(report: RestoreReport, evidence: dict[str, list[tuple[str, dict[str, Any] | None]]]) -> str:
    """The printable index (Turkish with English alongside). Everything inserted is escaped."""
    req = report.request
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out = [
        "<!DOCTYPE html>",
        '<html lang="tr"><head><meta charset="utf-8">',
        f"<title>e-Defter İbraz Paketi — {_e(req.company_name or req.taxpayer_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>e-Defter İbraz Paketi <span class='en'>/ e-Defter production package (ibraz)</span></h1>",
        "<table>",
        f"<tr><th>Firma <span class='en'>/ company</span></th><td>{_e(req.company_name or '-')}</td></tr>",
        f"<tr><th>VKN/TCKN <span class='en'>/ taxpayer id</span></th><td>{_e(req.taxpayer_id)}</td></tr>",
    ]
    if req.branch:
        out.append(f"<tr><th>Şube <span class='en'>/ branch</span></th><td>{_e(req.branch)}</td></tr>")
    out += [
        f"<tr><th>Dönem <span class='en'>/ period</span></th><td>{_e(req.first.label_tr)} – {_e(req.last.label_tr)}"
        f" ({_e(req.first)} .. {_e(req.last)})</td></tr>",
        f"<tr><th>Hazırlanma <span class='en'>/ prepared at</span></th><td>{_e(now)}</td></tr>",
        "<tr><th>Geri yükleme doğrulaması <span class='en'>/ restore verification</span></th><td>"
        + ("Geri yüklenen tüm dosyalar doğrulandı <span class='en'>/ all restored files verified</span>" if report.ok
           else "<span class='bad'>Sorun bulundu / problems found</span>") + "</td></tr>",
        "</table>",
        "<p>Dosyalar <code>defterler/</code>, her ayın kayıt bilgisi belgeleri <code>kayit-bilgisi/</code> klasöründedir. "
        "<span class='en'>The files are in <code>defterler/</code>, each month's evidence documents in "
        "<code>kayit-bilgisi/</code>.</span></p>",
    ]
    if report.missing:
        out.append("<p class='bad'>Arşivde olmayan aylar <span class='en'>/ months missing in the archive</span>: "
                   + _e(", ".join(report.missing)) + "</p>")
    for mo in report.months:
        out.append(f"<section><h2>{_e(mo.period.label_tr)} ({_e(mo.period)})</h2>")
        if mo.missing:
            out.append("<p class='bad'>Arşivde dosya yok <span class='en'>/ nothing in the archive</span></p></section>")
            continue
        docs = evidence.get(str(mo.period)) or []
        latest = next((d for _, d in reversed(docs) if d), None) or {}
        ev_files = {str(f.get("name")): f for f in latest.get("files") or [] if isinstance(f, dict)}
        out.append(f"<p>Arşiv durumu <span class='en'>/ archive status</span>: {_e(mo.archive_status or '-')}"
                   + (f" — {_e(latest.get('message'))}" if latest.get("message") else "") + "</p>")
        if latest:
            out.append("<table><tr><th>Aşama <span class='en'>/ step</span></th><th>Zaman <span class='en'>/ time"
                       "</span></th></tr>")
            for s in latest.get("statuses") or []:
                if isinstance(s, dict):
                    out.append(f"<tr><td>{_e(s.get('status'))}</td><td>{_e(s.get('at'))}</td></tr>")
            out.append(f"<tr><td>Kayıt <span class='en'>/ recorded</span></td><td>{_e(latest.get('recorded_at'))}"
                       "</td></tr>")
            out.append(f"<tr><td>Saklama sonu <span class='en'>/ retention until</span></td>"
                       f"<td>{_e(latest.get('retention_until'))}</td></tr></table>")
        else:
            out.append("<p class='bad'>Kayıt bilgisi bulunamadı <span class='en'>/ no evidence document</span></p>")
        out.append("<table><tr><th>Dosya <span class='en'>/ file</span></th><th>Boyut <span class='en'>/ size "
                   "(bayt/bytes)</span></th><th>SHA-256 (XML)</th><th>Doğrulama <span class='en'>/ verification"
                   "</span></th><th>Yükleme <span class='en'>/ uploaded</span></th><th>İmza değeri <span class='en'>"
                   "/ signature value</span></th></tr>")
        for f in mo.files:
            ev = ev_files.get(f.name, {})
            receipt = ev.get("receipt") if isinstance(ev.get("receipt"), dict) else {}
            verdict = "doğrulandı / verified" if f.ok else f"{f.verdict}: " + "; ".join(
                str(p.get("message_tr") or p.get("code")) for p in f.problems)
            out.append(
                f"<tr><td><code>{_e(f.path or f.name)}</code><br><span class='en'>zip: {_e(f.zip_name)}, "
                f"SHA-256 <span class='h'>{_e(f.zip_sha256)}</span></span></td>"
                f"<td>{_e(f.size)}</td><td class='h'>{_e(f.sha256)}</td>"
                f"<td{'' if f.ok else ' class=bad'}>{_e(verdict)}</td>"
                f"<td>{_e(receipt.get('uploaded_at'))}</td>"
                f"<td class='h'>{_e(ev.get('signature_value') or '-')}</td></tr>"
            )
        out.append("</table>")
        if docs:
            out.append("<p>Kayıt bilgisi belgeleri <span class='en'>/ evidence documents</span>: "
                       + ", ".join(f"<a href='kayit-bilgisi/{_e(n)}'>{_e(n)}</a>" for n, _ in docs) + "</p>")
        out.append("</section>")
    out.append("<p class='en'>Bu paket e-Defter Yedekleme tarafından arşivden geri yüklenen dosyalardan hazırlanmıştır. "
               "/ Prepared by e-Defter Yedekleme from files restored from the archive.</p></body></html>")
    return "\n".join(out) + "\n"


# -- entry points (CLI and DAG) ------------------------------------------------------------------


def client_for(unit: BackupUnit) -> Any:
    """The unit's integrator client from its Airflow Connection (env AIRFLOW_CONN_* or the metadata DB)."""
    from include.pipeline.hook import EDefterIntegratorHook

    try:
        return EDefterIntegratorHook(unit.integrator_conn_id).get_conn()
    except Exception as exc:  # the hook's own errors name the connection, never the secret
        raise RestoreError(
            "connection.unavailable",
            f"entegratör bağlantısı {unit.integrator_conn_id!r} okunamadı: {exc}",
            f"cannot read integrator Connection {unit.integrator_conn_id!r}: {exc}",
        ) from exc


def run(
    *,
    company: str,
    branch: str | None,
    first: str,
    last: str,
    target: str | Path,
    layout: str = "gib",
    ibraz: bool = False,
    config: PipelineConfig | None = None,
    client_factory: Callable[[BackupUnit], Any] | None = None,
    progress: Callable[[str], None] | None = None,
    today: dt.date | None = None,
) -> tuple[RestoreReport, tuple[Path, Path] | None]:
    """Everything the CLI and the DAG do: resolve, check inputs, restore (+ ibraz)."""
    try:
        cfg = config if config is not None else load_config()
    except ConfigError as exc:
        raise RestoreError("config.invalid", exc.message_tr, exc.message_en) from exc
    unit = resolve_unit(cfg, company, branch or None)
    a, b = parse_range(first, last, today=today)
    if not str(target or "").strip():
        raise RestoreError("target.missing", "hedef klasör verilmedi", "no target directory given")
    req = RestoreRequest.for_unit(unit, a, b, Path(target), layout)
    check_target(req.target)
    with (client_factory or client_for)(unit) as client:
        report = restore(client, req, progress=progress, today=today)
        package = build_ibraz(client, report, progress=progress) if ibraz else None
    return report, package


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m include.pipeline.restore",
        description="e-Defter geri yükleme ve ibraz paketi / restore e-Defter files from the archive",
    )
    ap.add_argument("--company", required=True, help="firma kimliği, VKN/TCKN veya DAG kimliği / company id, taxpayer id or DAG id")
    ap.add_argument("--branch", help="şube (SSSS) / branch")
    ap.add_argument("--from", dest="first", required=True, help="YYYY-MM")
    ap.add_argument("--to", dest="last", required=True, help="YYYY-MM")
    ap.add_argument("--target", required=True, help="hedef klasör / target directory")
    ap.add_argument("--layout", choices=LAYOUTS, default="gib")
    ap.add_argument("--ibraz", action="store_true", help="ibraz paketi de hazırla / also build the ibraz package")
    ap.add_argument("--config", help="companies.yaml (varsayılan / default: $EDEFTER_COMPANIES_FILE)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        cfg = load_config(args.config) if args.config else None
        report, package = run(
            company=args.company, branch=args.branch, first=args.first, last=args.last, target=args.target,
            layout=args.layout, ibraz=args.ibraz, config=cfg, progress=lambda m: print(m, flush=True),
        )
    except ConfigError as exc:
        print(f"hata / error: {exc}", file=sys.stderr)
        return 2
    except RestoreError as exc:
        print(f"hata / error: {exc}", file=sys.stderr)
        return exc.exit_code
    print()
    print(report.to_text(), end="")
    print(f"rapor / report: {Path(args.target) / STATE_DIR / 'report.json'}")
    if package:
        print(f"ibraz: {package[0]}  {package[1]}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
