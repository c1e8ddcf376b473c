"""Client of the Saklama API (requests). Free of Airflow: the pipeline's hook wraps it.

* one requests.Session, per-call timeouts, TLS verification on by default;
* retries with exponential backoff only for idempotent calls (GET, the
  content-addressed upload, submit — the server deduplicates both) and only on
  connection errors and 5xx; a 4xx is a verdict and raises a typed error at once;
* uploads stream from disk; downloads stream to disk and are checked against
  the server's SHA-256 before the file appears under its final name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from include.edefter.naming import EDefterName, Period
from include.edefter.packaging import sha256_file  # re-exported: the client's callers hash with it
from include.edefter.status import BackupStatus

__all__ = [
    "ArchivedFileInfo",
    "AuthError",
    "ConflictError",
    "EvidenceReceipt",
    "FileResult",
    "IntegratorClient",
    "IntegratorError",
    "IntegrityError",
    "MonthStatus",
    "RejectedError",
    "ServerError",
    "ThrottledError",
    "SubmitReceipt",
    "TransportError",
    "UploadReceipt",
    "sha256_file",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class IntegratorError(Exception):
    """Base of every client error; carries the server's Turkish and English message when there is one."""

    def __init__(
        self,
        message_en: str,
        message_tr: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        file: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message_en = message_en
        self.message_tr = message_tr or message_en
        self.status = status
        self.code = code
        self.file = file
        self.details = details or {}
        where = f" [{file}]" if file else ""
        super().__init__(f"{status or '-'} {code or ''}{where}: {self.message_tr} / {self.message_en}")


class AuthError(IntegratorError):
    """401/403: wrong credentials or another company's files."""


class ConflictError(IntegratorError):
    """409: a different file with the same name is already archived (never overwritten)."""


class RejectedError(IntegratorError):
    """Any other 4xx: bad name, bad zip, content ≠ name, too large, ... — do not retry."""


class ServerError(IntegratorError):
    """5xx still failing after the retries."""


class ThrottledError(IntegratorError):
    """429 still answered after the retries (too many failed logins: auth.throttled)."""


class TransportError(IntegratorError):
    """Connection errors/timeouts still failing after the retries."""


class IntegrityError(IntegratorError):
    """A downloaded file's SHA-256 differs from what the server says it archived."""


@dataclass(frozen=True)
class UploadReceipt:
    name: str
    sha256: str
    size: int
    created: bool  # False: identical bytes were already archived
    uploaded_at: str
    retention_until: dt.date
    storage: str
    version_id: str | None = None


@dataclass(frozen=True)
class SubmitReceipt:
    submission_id: int
    status: BackupStatus
    created: bool


@dataclass(frozen=True)
class FileResult:
    name: str
    status: BackupStatus
    sha256: str | None = None  # zip SHA-256 of the committed (or, when rejected, the submitted) file
    size: int | None = None
    retention_until: dt.date | None = None
    problems: tuple[dict[str, Any], ...] = ()
    xml_sha256: str | None = None


@dataclass(frozen=True)
class EvidenceReceipt:
    """One stored evidence ("Kayıt Bilgisi") document of a month; content-addressed, immutable."""

    sha256: str
    size: int
    stored_at: str
    created: bool  # False: identical bytes were already stored (idempotent retry)


@dataclass(frozen=True)
class MonthStatus:
    taxpayer_id: str
    branch: str | None
    period: Period
    status: BackupStatus
    message_tr: str
    message_en: str
    description: str | None = None
    source: str | None = None
    submission_id: int | None = None
    retention_until: dt.date | None = None
    files: tuple[FileResult, ...] = ()
    problems: tuple[dict[str, Any], ...] = field(default=())
    # The latest fixity audit's findings in this month ("Bozuk/Eksik"), or None when clean.
    fixity: dict[str, Any] | None = None

    @property
    def is_final(self) -> bool:
        return self.status.is_final


@dataclass(frozen=True)
class ArchivedFileInfo:
    name: str
    period: Period
    code: str
    part: int
    branch: str | None
    sha256: str
    size: int
    uploaded_at: str
    retention_until: dt.date
    committed: bool = True  # False: staged upload, not (yet) part of a Yedeklendi set


def _date(v: str | None) -> dt.date | None:
    return dt.date.fromisoformat(v) if v else None


def _period(period: Period | str) -> Period:
    return period if isinstance(period, Period) else Period.parse(str(period).replace("-", ""))


class _Retryable(Exception):
    def __init__(self, err: IntegratorError, retry_after: float | None = None) -> None:
        super().__init__(str(err))
        self.err = err
        self.retry_after = retry_after


class IntegratorClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float | tuple[float, float] = (10.0, 300.0),
        verify: bool | str = True,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self.session = requests.Session()
        self.session.auth = (username, password)
        # Passed on every call: requests lets REQUESTS_CA_BUNDLE override session.verify otherwise.
        self.verify = verify
        self.session.verify = verify
        self.session.headers["User-Agent"] = "edefter-yedekleme-client/1"

    def __repr__(self) -> str:  # never show the password
        return f"IntegratorClient({self.base_url!r}, user={self.session.auth[0]!r})"  # type: ignore[index]

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> IntegratorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @staticmethod
    def _error(resp: requests.Response) -> IntegratorError:
        try:
            err = resp.json().get("error", {})
        except ValueError:
            err = {}
        kw: dict[str, Any] = {
            "status": resp.status_code,
            "code": err.get("code"),
            "file": err.get("file"),
            "details": err.get("details") or {},
        }
        en = err.get("message_en") or f"HTTP {resp.status_code} {resp.reason}"
        tr = err.get("message_tr") or en
        if resp.status_code in (401, 403):
            return AuthError(en, tr, **kw)
        if resp.status_code == 409:
            return ConflictError(en, tr, **kw)
        if resp.status_code == 429:
            return ThrottledError(en, tr, **kw)
        if 400 <= resp.status_code < 500:
            return RejectedError(en, tr, **kw)
        return ServerError(en, tr, **kw)

    def _call(self, attempt_fn: Callable[[], requests.Response], *, idempotent: bool, what: str) -> requests.Response:
        """Run one request with retries on connection errors and 5xx (idempotent only), and on
        429 (any request: the server refused it before doing anything, e.g. auth.throttled).

        A Retry-After header (seconds) on 503/429 sets the wait, capped at ``max_backoff``;
        at most ``retries`` retries in all.
        """
        attempts = self.retries + 1
        last: IntegratorError | None = None
        for i in range(attempts):
            if i:
                delay = min(self.max_backoff, self.backoff * 2 ** (i - 1))
                if last is not None and last.details.get("_retry_after"):
                    delay = min(self.max_backoff, max(delay, float(last.details["_retry_after"])))
                log.warning("%s failed (%s); retry %d/%d in %.1fs", what, last, i, attempts - 1, delay)
                self._sleep(delay)
            try:
                resp = attempt_fn()
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = TransportError(f"{what}: {type(exc).__name__}: {exc}", f"{what}: bağlantı hatası")
                if not idempotent:
                    raise last from exc
                continue
            if resp.status_code >= 500 or resp.status_code == 429:
                last = self._error(resp)
                ra = resp.headers.get("Retry-After")
                if ra and ra.strip().isdigit():
                    last.details["_retry_after"] = ra.strip()
                resp.close()
                if resp.status_code == 429 or idempotent:
                    continue
                raise last
            if resp.status_code >= 400:
                err = self._error(resp)
                resp.close()
                raise err
            return resp
        assert last is not None
        raise last

    # -- API ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        resp = self._call(
            lambda: self.session.get(self._url("/health"), timeout=self.timeout, verify=self.verify), idempotent=True, what="health"
        )
        return resp.json()  # type: ignore[no-any-return]

    def upload_file(
        self, zip_path: str | os.PathLike[str], zip_name: EDefterName | str, *, sha256: str | None = None
    ) -> UploadReceipt:
        """Stream one zip (staged until its set is validated).

        The same bytes again → created=False; other bytes under a name already committed → ConflictError.
        """
        fname = zip_name.with_ext("zip").filename if isinstance(zip_name, EDefterName) else str(zip_name)
        path = Path(zip_path)
        sha = (sha256 or sha256_file(path)).lower()
        size = path.stat().st_size

        def attempt() -> requests.Response:
            with open(path, "rb") as body:  # reopened per attempt: a retry re-sends from the start
                return self.session.put(
                    self._url(f"/v1/files/{quote(fname)}"),
                    data=body,
                    headers={
                        "X-Content-SHA256": sha,
                        "Content-Type": "application/zip",
                        "Content-Length": str(size),
                    },
                    timeout=self.timeout, verify=self.verify,
                )

        d = self._call(attempt, idempotent=True, what=f"upload {fname}").json()
        return UploadReceipt(
            name=d["name"],
            sha256=d["sha256"],
            size=d["size"],
            created=d["created"],
            uploaded_at=d["uploaded_at"],
            retention_until=dt.date.fromisoformat(d["retention_until"]),
            storage=d["storage"],
            version_id=d.get("version_id"),
        )

    def submit_month(
        self,
        taxpayer_id: str,
        branch: str | None,
        period: Period | str,
        files: Iterable[tuple[EDefterName | str, str, str]],
        *,
        source: str = "Airflow",
    ) -> SubmitReceipt:
        """Submit the month's set: ``files`` are ``(zip_name, zip_sha256, xml_sha256)`` triples.

        A pair without the XML hash is accepted for other senders' sake (the server then cannot
        tell that the XML changed after the sender verified it); the pipeline always sends triples.

        The server validates asynchronously and commits the staged files under their names only
        when the set is Yedeklendi.
        """
        p = _period(period)
        items = []
        for f in files:
            if len(f) not in (2, 3):
                raise ValueError("files must be (zip_name, zip_sha256, xml_sha256) triples")
            n, zs = f[0], f[1]
            item = {"name": n.with_ext("zip").filename if isinstance(n, EDefterName) else str(n), "sha256": zs.lower()}
            if len(f) == 3:
                item["xml_sha256"] = str(f[2]).lower()
            items.append(item)
        body = {"taxpayer_id": taxpayer_id, "branch": branch, "period": p.yyyymm, "source": source, "files": items}
        d = self._call(
            lambda: self.session.post(self._url("/v1/submissions"), json=body, timeout=self.timeout, verify=self.verify),
            idempotent=True,  # the server returns the existing submission for an identical manifest
            what=f"submit {taxpayer_id} {p}",
        ).json()
        return SubmitReceipt(d["submission_id"], BackupStatus(d["status"]), d["created"])

    def month_status(self, taxpayer_id: str, branch: str | None, period: Period | str) -> MonthStatus:
        p = _period(period)
        params = {"branch": branch} if branch else None
        d = self._call(
            lambda: self.session.get(
                self._url(f"/v1/months/{quote(taxpayer_id)}/{p.yyyymm}"), params=params, timeout=self.timeout, verify=self.verify
            ),
            idempotent=True,
            what=f"status {taxpayer_id} {p}",
        ).json()
        return MonthStatus(
            taxpayer_id=d["taxpayer_id"],
            branch=d.get("branch"),
            period=Period.parse(d["period"]),
            status=BackupStatus(d["status"]),
            message_tr=d["message_tr"],
            message_en=d["message_en"],
            description=d.get("description"),
            source=d.get("source"),
            submission_id=d.get("submission_id"),
            retention_until=_date(d.get("retention_until")),
            files=tuple(
                FileResult(
                    name=f["name"],
                    status=BackupStatus(f["status"]),
                    sha256=f.get("sha256"),
                    size=f.get("size"),
                    retention_until=_date(f.get("retention_until")),
                    problems=tuple(f.get("problems") or ()),
                    xml_sha256=f.get("xml_sha256"),
                )
                for f in d.get("files") or ()
            ),
            problems=tuple(d.get("problems") or ()),
            fixity=d.get("fixity"),
        )

    def wait_for_final(
        self, taxpayer_id: str, branch: str | None, period: Period | str, *, timeout: float = 60.0, poll: float = 0.2
    ) -> MonthStatus:
        """Poll until Yedeklendi/Yedeklenemedi (for scripts and tests; Airflow uses a deferrable sensor)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.month_status(taxpayer_id, branch, period)
            if st.is_final or time.monotonic() > deadline:
                return st
            self._sleep(poll)

    def list_files(
        self,
        taxpayer_id: str,
        branch: str | None = None,
        *,
        year: int | None = None,
        month: int | None = None,
        include_staged: bool = False,
    ) -> list[ArchivedFileInfo]:
        """Archived (committed) files; with ``include_staged`` also uploads not yet part of a Yedeklendi set."""
        params: dict[str, Any] = {"taxpayer_id": taxpayer_id}
        if include_staged:
            params["include_staged"] = "true"
        if branch:
            params["branch"] = branch
        if year is not None:
            params["year"] = year
        if month is not None:
            params["month"] = month
        d = self._call(
            lambda: self.session.get(self._url("/v1/files"), params=params, timeout=self.timeout, verify=self.verify),
            idempotent=True,
            what=f"list {taxpayer_id}",
        ).json()
        out: list[ArchivedFileInfo] = []
        for y in d["years"]:
            for m in y["months"]:
                for f in m["files"]:
                    out.append(
                        ArchivedFileInfo(
                            name=f["name"],
                            period=Period.parse(m["period"]),
                            code=f["code"],
                            part=f["part"],
                            branch=f.get("branch"),
                            sha256=f["sha256"],
                            size=f["size"],
                            uploaded_at=f["uploaded_at"],
                            retention_until=dt.date.fromisoformat(f["retention_until"]),
                            committed=f.get("committed", True),
                        )
                    )
        return out

    def download(self, name: EDefterName | str, dest_path: str | os.PathLike[str]) -> str:
        """Stream an archived file to dest_path (restore / ibraz); return its verified SHA-256."""
        fname = name.with_ext("zip").filename if isinstance(name, EDefterName) else str(name)
        dest = Path(dest_path)
        part = dest.with_name(dest.name + ".part")

        def attempt() -> requests.Response:
            return self.session.get(self._url(f"/v1/files/{quote(fname)}"), stream=True, timeout=self.timeout, verify=self.verify)

        def fetch() -> str:
            resp = self._call(attempt, idempotent=True, what=f"download {fname}")
            expected = (resp.headers.get("X-Content-SHA256") or "").lower()
            h = hashlib.sha256()
            n = 0
            try:
                with resp, open(part, "wb") as fh:
                    for chunk in resp.iter_content(1 << 20):
                        h.update(chunk)
                        fh.write(chunk)
                        n += len(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
            except (requests.RequestException, OSError) as exc:
                # A truncated body (ChunkedEncodingError/ProtocolError) or a full local disk:
                # never leave a half file behind.
                part.unlink(missing_ok=True)
                raise _Retryable(TransportError(f"download {fname} interrupted: {exc}")) from exc
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) != n:
                part.unlink(missing_ok=True)
                raise _Retryable(TransportError(f"download {fname} truncated: {n} of {declared} bytes"))
            got = h.hexdigest()
            if not expected or got != expected:
                part.unlink(missing_ok=True)
                raise IntegrityError(
                    f"downloaded SHA-256 {got} differs from the archive's {expected or '(none)'}",
                    f"indirilen dosyanın SHA-256 değeri ({got}) arşivdekiyle ({expected or '-'}) uyuşmuyor",
                    file=fname,
                )
            os.replace(part, dest)
            return got

        for i in range(self.retries + 1):
            try:
                return fetch()
            except _Retryable as r:
                if i == self.retries:
                    raise r.err from None
                self._sleep(min(self.max_backoff, self.backoff * 2**i))
        raise AssertionError("unreachable")

    # -- evidence ("Kayıt Bilgisi") kept with the month --------------------------------------

    def _evidence_url(self, taxpayer_id: str, period: Period | str, sha256: str | None = None) -> str:
        base = f"/v1/months/{quote(taxpayer_id)}/{_period(period).yyyymm}/evidence"
        return self._url(base + (f"/{sha256}" if sha256 else ""))

    @staticmethod
    def _evidence(d: dict[str, Any]) -> EvidenceReceipt:
        return EvidenceReceipt(sha256=d["sha256"], size=d["size"], stored_at=d["stored_at"], created=d["created"])

    def put_evidence(self, taxpayer_id: str, branch: str | None, period: Period | str, document: bytes) -> EvidenceReceipt:
        """Store one JSON evidence document for the month (immutable, content-addressed).

        Retry-safe: the URL names the document's SHA-256, so a retry after a lost answer finds
        the same document and gets created=False.
        """
        sha = hashlib.sha256(document).hexdigest()
        params = {"branch": branch} if branch else None
        d = self._call(
            lambda: self.session.put(
                self._evidence_url(taxpayer_id, period, sha),
                data=document,
                params=params,
                headers={"Content-Type": "application/json", "X-Content-SHA256": sha},
                timeout=self.timeout,
                verify=self.verify,
            ),
            idempotent=True,
            what=f"evidence {taxpayer_id} {period}",
        ).json()
        return self._evidence(d)

    def list_evidence(self, taxpayer_id: str, branch: str | None, period: Period | str) -> list[EvidenceReceipt]:
        """Every evidence document of the month, oldest first (created is False on listed items)."""
        params = {"branch": branch} if branch else None
        d = self._call(
            lambda: self.session.get(
                self._evidence_url(taxpayer_id, period), params=params, timeout=self.timeout, verify=self.verify
            ),
            idempotent=True,
            what=f"list evidence {taxpayer_id} {period}",
        ).json()
        return [self._evidence({**e, "created": False}) for e in d["documents"]]

    def get_evidence(self, taxpayer_id: str, branch: str | None, period: Period | str, sha256: str) -> bytes:
        """The stored document's bytes, checked against its SHA-256."""
        params = {"branch": branch} if branch else None
        resp = self._call(
            lambda: self.session.get(
                self._evidence_url(taxpayer_id, period, sha256.lower()),
                params=params,
                timeout=self.timeout,
                verify=self.verify,
            ),
            idempotent=True,
            what=f"get evidence {taxpayer_id} {period}",
        )
        data = resp.content
        got = hashlib.sha256(data).hexdigest()
        if got != sha256.lower():
            raise IntegrityError(
                f"evidence SHA-256 {got} differs from the requested {sha256}",
                f"kayıt bilgisi belgesinin SHA-256 değeri ({got}) istenenle ({sha256}) uyuşmuyor",
            )
        return data
