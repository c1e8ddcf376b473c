"""The "e-Defter Saklama" page: a FastAPI sub-app the AirflowPlugin mounts on the api-server.

One row per configured company/branch x month, from the shared status table
(include.pipeline.status.month_rows: e-Defter statüsü from the folder, names only, read-only;
Yedekleme durumu: the one true status of the folder, the month's latest DAG run — a failure before
upload reads Yedeklenemedi with its reason — and the integrator through the unit's Airflow
Connection), enriched with the
retention end and English message of the integrator's month status. Served as HTML (shown in the Airflow UI through an
external view) and as JSON.

Auth: every endpoint requires an Airflow user (the `_token` cookie the Airflow UI sets, or a
bearer token), and rows are filtered to the DAGs the user may read. The dependency
`page_access` is the single seam; tests override only that.

This module is imported by the plugin in every Airflow process (scheduler, workers, dag.test
runs), so its top level imports only FastAPI, the standard library and the light domain
modules; Airflow's security module, discovery and the integrator client load per request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from include.edefter.naming import Period
from include.edefter.status import BackupStatus, EDefterStatus

if TYPE_CHECKING:
    from include.pipeline.config import BackupUnit, PipelineConfig

__all__ = [
    "NOT_QUERIED",
    "Access",
    "PageRow",
    "backup_class",
    "collect_rows",
    "create_app",
    "edefter_class",
    "page_access",
    "redact",
    "render_page",
    "row_to_json",
]

log = logging.getLogger(__name__)

# Shown instead of a Yedekleme durumu when the integrator could not be asked (no Connection,
# unreachable, wrong password): we do not know the state, so we do not guess one.
NOT_QUERIED = "Sorgulanamadı"
NOT_QUERIED_EN = "integrator could not be queried"
NO_FILES = "Dosya yok"
NO_FILES_EN = "no files in the e-Defter folder for this month"
INCOMPLETE = "Eksik dosya"
INCOMPLETE_EN = "ledger files incomplete"

DEFAULT_MONTHS = 24
MAX_MONTHS = 120
# A page must answer while the integrator is down: short timeouts, no client retries.
QUERY_TIMEOUT_SECONDS = 10.0


# -- values -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRow:
    """One line of the page: one unit (company or branch) x one month."""

    company_id: str
    company_name: str
    taxpayer_id: str
    branch: str | None
    branch_name: str | None
    dag_id: str
    month: Period
    edefter_status: EDefterStatus | None  # None: no files for the month in the folder
    backup_status: BackupStatus | None  # None: the integrator could not be queried
    message_tr: str = ""
    message_en: str = ""
    retention_until: dt.date | None = None
    files: int = 0
    missing: tuple[str, ...] = ()
    archived_only: bool = False  # the archive holds the month, the folder no longer does
    run_id: str = ""  # the month's latest DAG run
    failed_task: str = ""  # the task that failed it, if it failed


@dataclass(frozen=True)
class Access:
    """Who is looking and which DAG ids (one per unit) they may read."""

    user: str
    can_read: Callable[[str], bool] = field(compare=False)


# -- secrets never reach the page ---------------------------------------------------------------------

_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@")
_SECRET_KV_RE = re.compile(r"(?i)\b(password|passwd|secret|token|authorization)\b(\s*[=:]\s*)(\S+)")


def redact(text: str) -> str:
    """Remove URL credentials and key=value secrets from an error text before it is shown."""
    text = _USERINFO_RE.sub(r"\1***@", text)
    return _SECRET_KV_RE.sub(r"\1\2***", text)


# -- data ---------------------------------------------------------------------------------------------


ClientFactory = Callable[["BackupUnit"], Any]


def _default_client(unit: BackupUnit) -> Any:
    """IntegratorClient for the unit's Connection, with page-friendly timeouts."""
    from include.integrator.client import IntegratorClient
    from include.pipeline.hook import EDefterIntegratorHook

    kw = EDefterIntegratorHook(integrator_conn_id=unit.integrator_conn_id).client_kwargs()
    return IntegratorClient(
        kw["base_url"],
        kw["username"],
        kw["password"],
        timeout=min(float(kw["timeout"]), QUERY_TIMEOUT_SECONDS),
        verify=kw["verify"],
        retries=0,
    )


class _PageLookup:
    """The ``integrator_lookup`` handed to status.month_rows.

    One page-friendly client per unit (short timeout, no retries, closed afterwards) instead of
    one per month; it keeps each full MonthStatus (retention end, English message) that
    StatusRow does not carry, and the redacted reason when the integrator could not be asked.
    """

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory
        self.clients: dict[str, Any] = {}
        self.failed: dict[str, tuple[str, str]] = {}
        self.statuses: dict[tuple[str, Period], Any] = {}

    def __call__(self, unit: BackupUnit, period: Period) -> Any:
        if unit.dag_id in self.failed:
            # Known dead for this page load: fail fast instead of one timeout per month.
            raise RuntimeError(self.failed[unit.dag_id][1])
        try:
            client = self.clients.get(unit.dag_id)
            if client is None:
                try:
                    client = self.clients[unit.dag_id] = self.factory(unit)
                except Exception as exc:
                    raise _ConnectionProblem(unit, exc) from exc
            status = client.month_status(unit.taxpayer_id, unit.branch, period)
        except _ConnectionProblem as exc:
            self.failed[unit.dag_id] = (exc.message_tr, exc.message_en)
            raise
        except Exception as exc:  # unreachable, 5xx, wrong password: reason shown, no state guessed
            self.failed[unit.dag_id] = (
                redact(f"Entegratör sorgulanamadı: {exc}"),
                redact(f"integrator query failed: {exc}"),
            )
            raise
        self.statuses[(unit.dag_id, period)] = status
        return status

    def close(self) -> None:
        for client in self.clients.values():
            close = getattr(client, "close", None)
            if close is not None:
                close()


class _ConnectionProblem(Exception):
    def __init__(self, unit: BackupUnit, exc: Exception) -> None:
        self.message_tr = redact(f"Entegratör bağlantısı ({unit.integrator_conn_id}) kurulamadı: {exc}")
        self.message_en = redact(f"cannot build the integrator client for connection {unit.integrator_conn_id}: {exc}")
        super().__init__(self.message_en)


def collect_rows(
    config: PipelineConfig,
    *,
    months: int = DEFAULT_MONTHS,
    client_factory: ClientFactory | None = None,
    include_unit: Callable[[BackupUnit], bool] | None = None,
    today: dt.date | None = None,
    run_lookup: Callable[[BackupUnit], Any] | None = None,
) -> list[PageRow]:
    """Page rows from ``include.pipeline.status.month_rows`` (the shared status table), wrapped.

    Only units ``include_unit`` accepts are scanned or queried (the auth filter). Months are
    month_rows' choice (every month of the unit found in its folder from start_month on); the
    page shows the newest ``months`` per unit, newest first. A unit without any month (no
    files yet, or a missing folder) gets one row for the last completed month saying so.
    ``run_lookup``: the month's latest DAG run (status.airflow_run_lookup inside the api-server),
    so a month that failed before reaching the integrator reads Yedeklenemedi with its reason.
    """
    from include.pipeline.status import month_rows

    units = tuple(u for u in config.units if include_unit is None or include_unit(u))
    by_key = {(u.taxpayer_id, u.branch): u for u in units}
    lookup = _PageLookup(client_factory or _default_client)
    try:
        table = month_rows(dataclasses.replace(config, units=units), lookup, run_lookup=run_lookup)
        per_unit: dict[str, list[PageRow]] = {u.dag_id: [] for u in units}
        for status_row in table:
            unit = by_key[(status_row.taxpayer_id, status_row.branch)]
            per_unit[unit.dag_id].append(_page_row(unit, status_row, lookup))
        for unit in units:
            if not per_unit[unit.dag_id]:
                # month_rows lists only months with files: a unit with none (or a missing folder)
                # would vanish from the page, so it gets one row saying why.
                per_unit[unit.dag_id].append(_empty_unit_row(unit, lookup, today or dt.date.today()))
    finally:
        lookup.close()
    rows: list[PageRow] = []
    for unit in units:
        rows.extend(sorted(per_unit[unit.dag_id], key=lambda r: r.month, reverse=True)[:months])
    return rows


def _empty_unit_row(unit: BackupUnit, lookup: _PageLookup, today: dt.date) -> PageRow:
    from include.pipeline.folder import FolderError, check_folder

    month = max(Period(today.year, today.month).previous(), unit.start_month)
    try:
        check_folder(unit.folder)
    except FolderError as exc:
        folder_tr, folder_en = f"e-Defter klasörü {unit.folder} {exc.message_tr}", f"e-Defter folder {unit.folder} {exc.message_en}"
    else:
        folder_tr, folder_en = "Klasörde bu firma/şube için e-Defter dosyası yok", "no e-Defter files for this unit in the folder"
    backup: BackupStatus | None = None
    retention = None
    try:
        remote = lookup(unit, month)
    except Exception:
        integ_tr, integ_en = lookup.failed.get(unit.dag_id, ("", ""))
    else:
        backup, retention = remote.status, remote.retention_until
        integ_tr, integ_en = remote.message_tr or "", remote.message_en or ""
    return PageRow(
        company_id=unit.company_id,
        company_name=unit.company_name,
        taxpayer_id=unit.taxpayer_id,
        branch=unit.branch,
        branch_name=unit.branch_name,
        dag_id=unit.dag_id,
        month=month,
        edefter_status=None,
        backup_status=backup,
        message_tr=" · ".join(t for t in (folder_tr, integ_tr) if t),
        message_en=" · ".join(t for t in (folder_en, integ_en) if t),
        retention_until=retention,
        files=0,
    )


def _page_row(unit: BackupUnit, status_row: Any, lookup: _PageLookup) -> PageRow:
    """A page row from the shared status row (the true status); the integrator's answer adds only the
    retention end, and the redacted page-friendly reason when it could not be asked."""
    from include.pipeline.status import ARCHIVED_NOT_IN_FOLDER

    remote = lookup.statuses.get((unit.dag_id, status_row.month))
    try:
        edefter: EDefterStatus | None = EDefterStatus(status_row.edefter_status)
    except ValueError:  # "-": incomplete or absent; ARCHIVED_NOT_IN_FOLDER: only in the archive
        edefter = None
    try:
        backup: BackupStatus | None = BackupStatus(status_row.backup_status)
    except ValueError:  # "?": the integrator could not be asked
        backup = None
    message_tr, message_en = status_row.message, status_row.message_en
    if status_row.missing and message_tr.startswith("eksik / missing: "):
        message_tr, message_en = "", ""  # the missing files are shown in the e-Defter statüsü cell
    if backup is None and unit.dag_id in lookup.failed:
        message_tr, message_en = lookup.failed[unit.dag_id]
    return PageRow(
        company_id=unit.company_id,
        company_name=unit.company_name,
        taxpayer_id=unit.taxpayer_id,
        branch=unit.branch,
        branch_name=unit.branch_name,
        dag_id=unit.dag_id,
        month=status_row.month,
        edefter_status=edefter,
        backup_status=backup,
        message_tr=redact(message_tr),
        message_en=redact(message_en),
        retention_until=remote.retention_until if remote is not None else None,
        files=status_row.files,
        missing=tuple(status_row.missing),
        archived_only=status_row.edefter_status == ARCHIVED_NOT_IN_FOLDER,
        run_id=status_row.run_id,
        failed_task=status_row.failed_task,
    )


# -- rendering (plain functions: rows in, text out) -------------------------------------------------


_BACKUP_CLASS = {
    BackupStatus.GONDERILMEDI: "st-pending",
    BackupStatus.ISLENDI: "st-processing",
    BackupStatus.YEDEKLENDI: "st-ok",
    BackupStatus.YEDEKLENEMEDI: "st-failed",
}
_EDEFTER_CLASS = {
    EDefterStatus.DOSYA_OLUSTURULDU: "ed-created",
    EDefterStatus.GIBE_GONDERILDI: "ed-sent",
    EDefterStatus.ONAYLI_BERAT_INDIRILDI: "ed-approved",
}


def backup_class(status: BackupStatus | None) -> str:
    return _BACKUP_CLASS.get(status, "st-unknown") if status is not None else "st-unknown"


def edefter_class(status: EDefterStatus | None) -> str:
    return _EDEFTER_CLASS.get(status, "ed-none") if status is not None else "ed-none"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


MAX_SHOWN_MESSAGE = 240


def _short(text: str, limit: int = MAX_SHOWN_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(tr: str, en: str, css: str = "") -> str:
    # Long texts (an integrator error) are cut in the cell; the tooltip keeps the full text.
    cls = f' class="{_e(css)}"' if css else ""
    full = f"{tr}\n{en}" if len(tr) > MAX_SHOWN_MESSAGE or len(en) > MAX_SHOWN_MESSAGE else en
    return f'<td{cls} title="{_e(full)}">{_e(_short(tr))}<small>{_e(_short(en))}</small></td>'


def _branch_text(row: PageRow) -> str:
    if not row.branch:
        return "—"
    return f"{row.branch} {row.branch_name}" if row.branch_name else row.branch


def row_to_json(row: PageRow) -> dict[str, Any]:
    return {
        "company_id": row.company_id,
        "company": row.company_name,
        "taxpayer_id": row.taxpayer_id,
        "branch": row.branch,
        "branch_name": row.branch_name,
        "dag_id": row.dag_id,
        "month": str(row.month),
        "month_label": row.month.label_tr,
        "edefter_status": row.edefter_status.value if row.edefter_status else None,
        "edefter_status_text": _edefter_words(row)[0],
        "edefter_status_en": _edefter_words(row)[1],
        "backup_status": row.backup_status.value if row.backup_status else NOT_QUERIED,
        "backup_status_en": row.backup_status.english if row.backup_status else NOT_QUERIED_EN,
        "queried": row.backup_status is not None,
        "message": row.message_tr,
        "message_en": row.message_en,
        "retention_until": row.retention_until.isoformat() if row.retention_until else None,
        "files": row.files,
        "missing": list(row.missing),
        "run_id": row.run_id or None,
        "failed_task": row.failed_task or None,
    }


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1a202c;background:#fff}
h1{font-size:1.3rem;margin:0 0 4px}
p.sub{margin:0 0 12px;color:#4a5568;font-size:.85rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid #e2e8f0;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc;position:sticky;top:0}
th small,td small{display:block;color:#718096;font-size:.72rem;font-weight:normal}
td.st-ok,span.st-ok{background:#c6f6d5}td.st-failed,span.st-failed{background:#fed7d7}
td.st-processing,span.st-processing{background:#bee3f8}td.st-pending,span.st-pending{background:#edf2f7}
td.st-unknown,span.st-unknown{background:#feebc8}
td.ed-approved{color:#22543d}td.ed-sent{color:#2c5282}td.ed-created{color:#744210}td.ed-none{color:#a0aec0}
tr.row-failed td.msg{color:#9b2c2c;font-weight:600}
.legend span{display:inline-block;padding:2px 6px;margin-right:6px;border-radius:3px;font-size:.78rem}
.err{background:#fed7d7;padding:8px;border-radius:4px}
@media (prefers-color-scheme: dark){body{background:#1a202c;color:#e2e8f0}th{background:#2d3748}
th,td{border-color:#4a5568}.st-ok{background:#22543d!important}.st-failed{background:#742a2a!important}
.st-processing{background:#2a4365!important}.st-pending{background:#2d3748!important}
.st-unknown{background:#744210!important}
td.ed-approved{color:#9ae6b4}td.ed-sent{color:#90cdf4}td.ed-created{color:#f6e05e}
th small,td small,p.sub{color:#a0aec0}}
"""

_HEADERS: tuple[tuple[str, str], ...] = (
    ("Firma", "Company"),
    ("Şube", "Branch"),
    ("Dönem", "Period"),
    ("e-Defter statüsü", "e-Defter status (from the folder)"),
    ("Yedekleme durumu", "Backup status (pipeline runs and the integrator)"),
    ("Mesaj", "Message / reason"),
    ("Saklama bitiş tarihi", "Retention end date"),
)


def _edefter_words(row: PageRow) -> tuple[str, str]:
    if row.edefter_status is not None:
        return row.edefter_status.value, row.edefter_status.english
    if row.archived_only:
        from include.pipeline.status import ARCHIVED_NOT_IN_FOLDER, ARCHIVED_NOT_IN_FOLDER_EN

        return ARCHIVED_NOT_IN_FOLDER, ARCHIVED_NOT_IN_FOLDER_EN
    return (INCOMPLETE, INCOMPLETE_EN) if row.files else (NO_FILES, NO_FILES_EN)


def _render_row(row: PageRow) -> str:
    ed_tr, ed_en = _edefter_words(row)
    if row.missing:
        ed_en = f"{ed_en}; missing: {', '.join(row.missing)}"
    bk_tr = row.backup_status.value if row.backup_status else NOT_QUERIED
    bk_en = row.backup_status.english if row.backup_status else NOT_QUERIED_EN
    retention = row.retention_until.strftime("%d.%m.%Y") if row.retention_until else "—"
    row_cls = "row-failed" if row.backup_status is BackupStatus.YEDEKLENEMEDI else ""
    cells = [
        _cell(row.company_name, f"{row.taxpayer_id} ({row.company_id})"),
        _cell(_branch_text(row), "branch (işyeri)" if row.branch else "whole company (firma bazında)"),
        _cell(row.month.label_tr, str(row.month)),
        _cell(ed_tr, ed_en, edefter_class(row.edefter_status)),
        _cell(bk_tr, bk_en, backup_class(row.backup_status)),
        _cell(row.message_tr or "—", row.message_en or "", "msg"),
        _cell(retention, row.retention_until.isoformat() if row.retention_until else "unknown"),
    ]
    return (
        f'<tr class="{row_cls}" data-dag-id="{_e(row.dag_id)}" data-month="{_e(row.month)}">' + "".join(cells) + "</tr>"
    )


def render_page(
    rows: Sequence[PageRow],
    *,
    user: str = "",
    generated_at: dt.datetime | None = None,
    error: str | None = None,
    json_href: str = "api/rows",
) -> str:
    """The whole HTML document. Every dynamic text goes through html.escape."""
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    head = "".join(f'<th title="{_e(en)}">{_e(tr)}<small>{_e(en)}</small></th>' for tr, en in _HEADERS)
    if rows:
        body = "\n".join(_render_row(r) for r in rows)
    else:
        body = (
            f'<tr><td colspan="{len(_HEADERS)}">Gösterilecek firma yok '
            "<small>no configured company/branch you may read</small></td></tr>"
        )
    legend = "".join(
        f'<span class="{backup_class(s)}" title="{_e(s.english)}">{_e(s.value)}</span>' for s in BackupStatus
    ) + f'<span class="st-unknown" title="{_e(NOT_QUERIED_EN)}">{_e(NOT_QUERIED)}</span>'
    error_html = f'<p class="err" role="alert">{_e(error)}</p>' if error else ""
    return (
        "<!doctype html>\n"
        '<html lang="tr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>e-Defter Saklama</title>"
        f"<style>{_CSS}</style></head><body>"
        '<h1>e-Defter Saklama <small style="font-size:.7em;color:#718096">e-Defter archive status</small></h1>'
        f'<p class="sub">Oluşturulma: {_e(generated_at.strftime("%d.%m.%Y %H:%M:%S UTC"))}'
        f" · Kullanıcı: {_e(user or '-')}"
        f' · <a href="{_e(json_href)}">JSON</a></p>'
        f'<p class="legend">{legend}</p>'
        f"{error_html}"
        f'<table id="edefter-saklama"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'
        "</body></html>"
    )


def render_message_page(title_tr: str, text_tr: str, text_en: str, link: str | None = None) -> str:
    link_html = f'<p><a href="{_e(link)}">Oturum aç / Log in</a></p>' if link else ""
    return (
        '<!doctype html>\n<html lang="tr"><head><meta charset="utf-8"><title>e-Defter Saklama</title>'
        f"<style>{_CSS}</style></head><body><h1>{_e(title_tr)}</h1>"
        f'<p class="err">{_e(text_tr)}<small>{_e(text_en)}</small></p>{link_html}</body></html>'
    )


# -- auth ---------------------------------------------------------------------------------------------


async def page_access(request: Request) -> Access:
    """Resolve the Airflow user (bearer token, else the UI's `_token` cookie) and their DAG rights.

    Raises 401 without a valid token. Loaded lazily: Airflow's security module pulls in the ORM.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    user = await get_user(request, None, credentials)
    manager = get_auth_manager()

    def can_read(dag_id: str) -> bool:
        return bool(manager.is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user))

    return Access(user=str(user.get_name()), can_read=can_read)


# -- the app ------------------------------------------------------------------------------------------


RowSource = Callable[[Access, int, "str | None"], list[PageRow]]


def _default_rows(access: Access, months: int, company: str | None) -> list[PageRow]:
    from include.pipeline.config import load_config

    config = load_config()

    def include_unit(unit: BackupUnit) -> bool:
        return (company is None or unit.company_id == company) and access.can_read(unit.dag_id)

    from include.pipeline.status import airflow_run_lookup

    return collect_rows(config, months=months, include_unit=include_unit, run_lookup=airflow_run_lookup)


def _login_url(request: Request) -> str:
    page = f"{request.scope.get('root_path', '')}/"
    try:
        from airflow.api_fastapi.app import get_auth_manager

        base = get_auth_manager().get_url_login()
    except Exception:  # no auth manager configured: fall back to Airflow's default route
        base = "/auth/login"
    sep = "&" if "?" in base else "?"
    from urllib.parse import quote

    return f"{base}{sep}next={quote(page, safe='/')}"


def create_app(row_source: RowSource | None = None) -> FastAPI:
    """The sub-app; ``row_source`` is for tests (default: companies config + integrator)."""
    source: RowSource = row_source or _default_rows
    app = FastAPI(
        title="e-Defter Saklama",
        description="e-Defter backup status per company/branch and month (Airflow plugin).",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def rows_or_error(access: Access, months: int, company: str | None) -> tuple[list[PageRow], str | None]:
        try:
            return source(access, months, company), None
        except Exception as exc:  # e.g. a broken companies.yaml: say so on the page
            log.exception("e-Defter Saklama: rows could not be built")
            return [], redact(f"Durum tablosu oluşturulamadı / status table failed: {exc}")

    months_q = Query(DEFAULT_MONTHS, ge=1, le=MAX_MONTHS, description="months per company/branch")
    company_q = Query(None, max_length=100, description="company id filter")

    @app.get("/", response_class=HTMLResponse)
    def page(
        request: Request,
        access: Access = Depends(page_access),  # noqa: B008 - FastAPI idiom
        months: int = months_q,
        company: str | None = company_q,
    ) -> HTMLResponse:
        rows, error = rows_or_error(access, months, company)
        return HTMLResponse(
            render_page(rows, user=access.user, error=error),
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/api/rows")
    def rows_json(
        access: Access = Depends(page_access),  # noqa: B008 - FastAPI idiom
        months: int = months_q,
        company: str | None = company_q,
    ) -> JSONResponse:
        rows, error = rows_or_error(access, months, company)
        payload = {
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "user": access.user,
            "error": error,
            "rows": [row_to_json(r) for r in rows],
        }
        return JSONResponse(payload, status_code=500 if error else 200, headers={"Cache-Control": "no-store"})

    @app.exception_handler(HTTPException)
    async def auth_errors(request: Request, exc: HTTPException) -> Response:
        # The browser (HTML page in the UI iframe) gets a readable page with a login link;
        # API callers get FastAPI's usual JSON.
        wants_html = not request.url.path.rstrip("/").endswith("/api/rows") and "text/html" in request.headers.get(
            "accept", ""
        )
        if wants_html and exc.status_code in (401, 403):
            text_tr = "Bu sayfayı görmek için Airflow'a giriş yapın." if exc.status_code == 401 else "Yetkiniz yok."
            text_en = "Log in to Airflow to see this page." if exc.status_code == 401 else "Not authorized."
            return HTMLResponse(
                render_message_page("e-Defter Saklama", text_tr, text_en, _login_url(request)),
                status_code=exc.status_code,
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return app
