"""The one true status per company/branch × month: the folder, the pipeline's runs and the integrator.

``month_rows(config, integrator_lookup, run_lookup=...)`` scans each configured folder once
(read-only), takes the latest DAG run of every month (``run_lookup``: Airflow's metadata inside
Airflow, the REST API in the demo) and asks ``integrator_lookup(unit, period)`` for the archive's
state of every month; ``judge`` combines the three with these rules:

- a run that failed before anything reached the integrator (berat sensor timed out, ``verify``,
  ``upload`` incl. the ransomware guard) is **Yedeklenemedi** with the failing step's reason;
- once the integrator has a verdict for the latest submission, the integrator's verdict wins
  (a run that failed after its upload — the confirmation sensor, ``record`` — defers to it);
- a fixity audit finding in the archive shows the month as "Bozuk/Eksik" (damaged or missing in the
  archive) naming the files: the archive's operator repairs the object (a re-send of the same bytes
  cannot, the name is committed);
- an archived month with no files left in the folder reads "Arşivde — klasörde yok" as its
  e-Defter statüsü.

``hook_lookup`` asks through the Airflow Connections (inside Airflow); scripts may pass any
callable returning an object with ``.status`` (BackupStatus) and ``.message_tr``, or None.
The failure reason is the one the pipeline's failure callback stores as the XCom
``edefter_reason`` of the failed task (``include.pipeline.notifiers.record_failure_reason``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.edefter.naming import Period
from include.edefter.status import BackupStatus
from include.pipeline.config import BackupUnit, PipelineConfig

__all__ = [
    "ARCHIVED_NOT_IN_FOLDER",
    "PRE_UPLOAD_TASKS",
    "REASON_XCOM_KEY",
    "TASK_LABELS",
    "RunInfo",
    "StatusRow",
    "Verdict",
    "airflow_run_lookup",
    "client_lookup",
    "hook_lookup",
    "judge",
    "month_of_run",
    "month_rows",
    "runs_by_month",
]

log = logging.getLogger(__name__)

IntegratorLookup = Callable[[BackupUnit, Period], Any]

# e-Defter statüsü of a month the archive holds but the folder no longer does.
ARCHIVED_NOT_IN_FOLDER = "Arşivde — klasörde yok"
ARCHIVED_NOT_IN_FOLDER_EN = "in the archive, not in the e-Defter folder"
REASON_XCOM_KEY = "edefter_reason"
TASK_IDS = ("wait_for_approved_berats", "verify", "upload", "wait_for_backup_confirmation", "record")
# Tasks that fail before the month's submission exists at the integrator.
PRE_UPLOAD_TASKS = frozenset({"wait_for_approved_berats", "verify", "upload"})
TASK_LABELS = {
    "wait_for_approved_berats": ("Onaylı berat bekleme", "waiting for approved berats"),
    "verify": ("Doğrulama", "verification"),
    "upload": ("Paketleme ve entegratöre yükleme", "packaging and upload to the integrator"),
    "wait_for_backup_confirmation": ("Entegratör onayı", "integrator confirmation"),
    "record": ("Kayıt bilgisi", "evidence"),
}
WAITING_TR = "Onaylı beratlar bekleniyor"
WAITING_EN = "waiting for GİB-approved berats"
TIMEZONE = "Europe/Istanbul"


@dataclass(frozen=True)
class StatusRow:
    company: str
    branch: str | None
    month: Period
    edefter_status: str  # e-Defter statüsü, "-" when the folder's set is incomplete or absent
    backup_status: str  # Yedekleme durumu ("?" when unknown: integrator unreachable)
    message: str = ""
    taxpayer_id: str = ""
    message_en: str = ""
    run_id: str = ""  # the latest DAG run of the month, if any
    failed_task: str = ""  # its failed task, if any
    files: int = 0  # files of the month in the folder
    missing: tuple[str, ...] = ()

    def key(self) -> tuple[str, str | None, Period]:
        return (self.taxpayer_id, self.branch, self.month)

    def as_tuple(self) -> tuple[str, str, str, str, str, str]:
        return (self.company, self.branch or "-", str(self.month), self.edefter_status, self.backup_status, self.message)


@dataclass(frozen=True)
class RunInfo:
    """The latest DAG run of one unit × month, as far as the status needs it."""

    run_id: str
    state: str  # "queued" | "running" | "success" | "failed"
    failed_task: str | None = None
    reason: str = ""  # the failed task's reason (XCom edefter_reason), bilingual "tr / en" lines
    waiting_task: str | None = None  # a task running, deferred or waiting for its reschedule
    submission_id: int | None = None  # from the upload task's return value


@dataclass(frozen=True)
class Verdict:
    backup_status: str
    message_tr: str
    message_en: str


def _halves(reason: str, lines: int = 2) -> tuple[str, str]:
    """The first ``lines`` lines of a bilingual reason ("tr / en" per line), as (tr, en)."""
    parts = [x.strip() for x in reason.splitlines() if x.strip()][:lines]
    tr = " ".join(p.split(" / ", 1)[0] for p in parts)
    en = " ".join(p.split(" / ", 1)[1] if " / " in p else p for p in parts)
    return tr, en


def failure_text(run: RunInfo) -> tuple[str, str]:
    task = run.failed_task or ""
    label_tr, label_en = TASK_LABELS.get(task, (task or "DAG", task or "DAG"))
    if run.reason.strip():
        tr, en = _halves(run.reason)
        return f"{label_tr}: {tr}", f"{label_en}: {en}"
    if task:
        return f"{label_tr} adımı başarısız ({task})", f"the {label_en} step failed ({task})"
    return f"Çalıştırma başarısız ({run.run_id})", f"DAG run {run.run_id} failed"


def _fixity_text(fixity: Mapping[str, Any]) -> tuple[str, str]:
    names = [str(f.get("name") or f.get("file") or "?") for f in fixity.get("files") or () if isinstance(f, Mapping)]
    listed = ", ".join(names[:5]) + (f" (+{len(names) - 5})" if len(names) > 5 else "")
    status = str(fixity.get("status") or "Bozuk/Eksik")
    return (
        f"Arşiv denetimi: {status} — {listed or 'dosya'}; entegratöre/arşiv yöneticisine bildirin",
        f"archive audit: {fixity.get('status_en') or 'damaged or missing'} — {listed or 'files'}; "
        "tell the integrator / archive operator",
    )


def judge(
    run: RunInfo | None,
    remote: Any | None,
    remote_error: str | None = None,
    *,
    missing: tuple[str, ...] = (),
) -> Verdict:
    """Yedekleme durumu and its reason from the latest run and the integrator's month status."""
    failed = Verdict("", "", "")
    if run is not None and run.state == "failed":
        tr, en = failure_text(run)
        failed = Verdict(BackupStatus.YEDEKLENEMEDI.value, tr, en)
        before_upload = run.failed_task in PRE_UPLOAD_TASKS or run.submission_id is None
        if before_upload or remote is None or not _status_of(remote).is_final:
            if remote is not None and _status_of(remote) is BackupStatus.YEDEKLENDI:
                failed = Verdict(
                    failed.backup_status,
                    f"{tr} (arşivde önceki gönderim Yedeklendi)",
                    f"{en} (an earlier submission is backed up in the archive)",
                )
            return failed
    if remote_error is not None:
        return Verdict("?", remote_error, "")
    if remote is None:
        return _pending(run, missing)
    status = _status_of(remote)
    fixity = getattr(remote, "fixity", None)
    if fixity:
        tr, en = _fixity_text(fixity)
        return Verdict(str(fixity.get("status") or "Bozuk/Eksik"), tr, en)
    if status is BackupStatus.GONDERILMEDI:
        return _pending(run, missing)
    return Verdict(status.value, getattr(remote, "message_tr", "") or "", getattr(remote, "message_en", "") or "")


def _pending(run: RunInfo | None, missing: tuple[str, ...]) -> Verdict:
    tr = en = ""
    if missing:
        tr = "eksik / missing: " + ", ".join(missing)
        en = "missing: " + ", ".join(missing)
    if run is not None and run.state in ("running", "queued") and run.waiting_task == "wait_for_approved_berats":
        tr, en = (f"{WAITING_TR}; {tr}" if tr else WAITING_TR), (f"{WAITING_EN}; {en}" if en else WAITING_EN)
    return Verdict(BackupStatus.GONDERILMEDI.value, tr, en)


def _status_of(remote: Any) -> BackupStatus:
    return remote.status if isinstance(remote.status, BackupStatus) else BackupStatus(remote.status)


# -- which month a run backs up ------------------------------------------------------------------------


def month_of_run(conf: Any, data_interval_start: Any) -> Period | None:
    """conf["month"] when given (manual runs), else the data interval start read in Istanbul."""
    month = conf.get("month") if isinstance(conf, Mapping) else None
    if isinstance(month, str) and month:
        from include.pipeline.months import parse_month

        try:
            return parse_month(month)
        except ValueError:
            return None
    if not data_interval_start:
        return None
    import pendulum

    start = pendulum.parse(data_interval_start) if isinstance(data_interval_start, str) else pendulum.instance(data_interval_start)
    local = start.in_timezone(TIMEZONE)
    return Period(local.year, local.month)


RunLookup = Callable[[BackupUnit], Mapping[Period, RunInfo]]


def runs_by_month(runs: Mapping[tuple[str, Period], RunInfo]) -> RunLookup:
    """A run lookup over ready-made RunInfos keyed by (dag_id, month) (the demo, tests)."""

    def lookup(unit: BackupUnit) -> Mapping[Period, RunInfo]:
        return {month: run for (dag_id, month), run in runs.items() if dag_id == unit.dag_id}

    return lookup


def airflow_run_lookup(unit: BackupUnit) -> dict[Period, RunInfo]:
    """The latest run of every month of the unit's DAG, from Airflow's metadata DB (3 queries).

    Only for processes with metadata DB access (api-server, scheduler, dag.test); tasks must not call it.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        latest: dict[Period, Any] = {}
        rows = session.execute(
            select(DagRun.id, DagRun.run_id, DagRun.state, DagRun.conf, DagRun.data_interval_start).where(
                DagRun.dag_id == unit.dag_id
            )
        ).all()
        for row in rows:
            month = month_of_run(row.conf, row.data_interval_start)
            if month is not None and (month not in latest or row.id > latest[month].id):
                latest[month] = row
        if not latest:
            return {}
        run_ids = [r.run_id for r in latest.values()]
        tis: dict[str, dict[str, str]] = {}
        for ti in session.execute(
            select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == unit.dag_id, TaskInstance.run_id.in_(run_ids)
            )
        ).all():
            tis.setdefault(ti.run_id, {})[ti.task_id] = str(ti.state) if ti.state is not None else ""
        xcoms: dict[tuple[str, str, str], Any] = {}
        for x in session.scalars(
            select(XComModel).where(
                XComModel.dag_id == unit.dag_id,
                XComModel.run_id.in_(run_ids),
                XComModel.key.in_((REASON_XCOM_KEY, "return_value")),
                XComModel.task_id.in_(TASK_IDS),
                XComModel.map_index == -1,
            )
        ):
            if x.key == REASON_XCOM_KEY or x.task_id == "upload":
                try:
                    xcoms[(x.run_id, x.task_id, x.key)] = XComModel.deserialize_value(x)
                except Exception:  # an unreadable value must not break the table
                    log.warning("%s %s: unreadable XCom %s", unit.dag_id, x.run_id, x.key)
    out: dict[Period, RunInfo] = {}
    for month, row in latest.items():
        states = tis.get(row.run_id, {})
        failed = next((t for t in TASK_IDS if states.get(t) == "failed"), None)
        waiting = next(
            (t for t in TASK_IDS if states.get(t) in ("running", "deferred", "up_for_reschedule", "queued", "scheduled")),
            None,
        )
        upload = xcoms.get((row.run_id, "upload", "return_value"))
        submission = upload.get("submission_id") if isinstance(upload, Mapping) else None
        reason = xcoms.get((row.run_id, failed, REASON_XCOM_KEY), "") if failed else ""
        out[month] = RunInfo(
            run_id=row.run_id,
            state=str(row.state),
            failed_task=failed,
            reason=str(reason or ""),
            waiting_task=waiting,
            submission_id=int(submission) if isinstance(submission, int) else None,
        )
    return out


# -- the integrator --------------------------------------------------------------------------------------


def hook_lookup(unit: BackupUnit, period: Period) -> Any:
    """The integrator's month status through the unit's Airflow Connection."""
    from include.pipeline.hook import EDefterIntegratorHook

    with EDefterIntegratorHook(unit.integrator_conn_id).get_conn() as client:
        return client.month_status(unit.taxpayer_id, unit.branch, period)


def client_lookup(clients: dict[str, Any]) -> IntegratorLookup:
    """A lookup over ready-made IntegratorClients keyed by Connection id (scripts, the demo)."""

    def lookup(unit: BackupUnit, period: Period) -> Any:
        client = clients.get(unit.integrator_conn_id)
        return None if client is None else client.month_status(unit.taxpayer_id, unit.branch, period)

    return lookup


# -- the table -------------------------------------------------------------------------------------------


def month_rows(
    config: PipelineConfig,
    integrator_lookup: IntegratorLookup | None = hook_lookup,
    *,
    months: Iterable[Period] | None = None,
    run_lookup: RunLookup | None = None,
) -> list[StatusRow]:
    """Rows (company, branch, month, e-Defter statüsü, Yedekleme durumu, message), sorted.

    Months: those given, else every month of the unit from start_month on that its folder holds
    or that has a DAG run. An unreachable integrator gives the row "?" with the error (unless the
    run's own failure already decides it), never an exception: the table is for reading, and one
    bad Connection or database hiccup must not hide the other companies.
    """
    from include.edefter.discovery import discover

    scans: dict[Path, Any] = {}
    rows: list[StatusRow] = []
    wanted = sorted(set(months)) if months is not None else None
    for unit in config.units:
        if unit.folder not in scans:
            try:
                scans[unit.folder] = discover(unit.folder)
            except OSError as exc:
                scans[unit.folder] = exc
        disc = scans[unit.folder]
        sets = {}
        if not isinstance(disc, Exception):
            sets = {
                s.key.period: s
                for s in disc.sets
                if s.key.taxpayer_id == unit.taxpayer_id and s.key.branch == unit.branch
            }
        runs: Mapping[Period, RunInfo] = {}
        if run_lookup is not None:
            try:
                runs = run_lookup(unit)
            except Exception as exc:
                log.warning("%s: runs unavailable: %s", unit.dag_id, exc)
        periods = wanted if wanted is not None else sorted(p for p in set(sets) | set(runs) if p >= unit.start_month)
        for period in periods:
            rows.append(_row(unit, period, sets.get(period), runs.get(period), integrator_lookup))
    rows.sort(key=lambda r: (r.company, r.branch or "", r.month))
    return rows


def _row(unit: BackupUnit, period: Period, ls: Any, run: RunInfo | None, integrator_lookup: IntegratorLookup | None) -> StatusRow:
    edefter = ls.status.value if ls is not None and ls.status is not None else "-"
    missing = tuple(ls.missing) if ls is not None and ls.missing else ()
    remote, remote_error = None, None
    if integrator_lookup is not None:
        try:
            remote = integrator_lookup(unit, period)
        except Exception as exc:
            remote_error = f"entegratör sorgulanamadı / integrator unavailable: {type(exc).__name__}"
            log.warning("%s %s: %s", unit.dag_id, period, exc)
    verdict = judge(run, remote, remote_error, missing=missing)
    if ls is None and remote is not None and _status_of(remote) is not BackupStatus.GONDERILMEDI:
        edefter = ARCHIVED_NOT_IN_FOLDER
    return StatusRow(
        company=unit.display_name,
        branch=unit.branch,
        month=period,
        edefter_status=edefter,
        backup_status=verdict.backup_status,
        message=verdict.message_tr,
        taxpayer_id=unit.taxpayer_id,
        message_en=verdict.message_en,
        run_id=run.run_id if run is not None else "",
        failed_task=(run.failed_task or "") if run is not None and run.state == "failed" else "",
        files=len(ls.files) if ls is not None else 0,
        missing=missing,
    )
