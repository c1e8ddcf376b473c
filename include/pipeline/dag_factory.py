"""Build one backup DAG per configured company (firma bazında) or branch (şube bazında).

Parse-time cost matters (hundreds of companies, re-parsed every few seconds): only the
config, the sensors and the notifiers are imported here; the task bodies import the
domain library (lxml, zlib-ng, requests) when they run.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from include.pipeline.config import BackupUnit, PipelineConfig, load_config
from include.pipeline.notifiers import EDefterAlertNotifier, record_failure_reason
from include.pipeline.sensors import WaitForApprovedBeratsSensor, WaitForBackupConfirmationSensor

__all__ = ["TASK_IDS", "build_dag", "build_dags", "unit_info"]

TASK_IDS = (
    "wait_for_approved_berats",
    "verify",
    "upload",
    "wait_for_backup_confirmation",
    "record",
)
TIMEZONE = "Europe/Istanbul"


def unit_info(unit: BackupUnit) -> dict[str, Any]:
    """What alerts and logs may say about a unit (no secrets: only the Connection id)."""
    return {
        "company": unit.company_name,
        "company_id": unit.company_id,
        "taxpayer_id": unit.taxpayer_id,
        "branch": unit.branch,
        "automatic": unit.automatic,
        "dag_id": unit.dag_id,
    }


def _doc_md(unit: BackupUnit) -> str:
    branch_tr = f"\n- **Şube:** {unit.branch} — {unit.branch_name}" if unit.branch else ""
    branch_en = f"\n- **Branch:** {unit.branch} — {unit.branch_name}" if unit.branch else ""
    mode_tr = (
        "Otomatik Yedekleme: **Evet** — her ayın 1'inde (Europe/Istanbul) bir önceki ay yedeklenir."
        if unit.automatic
        else "Otomatik Yedekleme: **Hayır** — ay seçilerek elle çalıştırılır (Gönder)."
    )
    mode_en = (
        "Automatic backup: **yes** — on the 1st of each month (Europe/Istanbul) the previous month is backed up."
        if unit.automatic
        else "Automatic backup: **no** — run on demand for one month."
    )
    return f"""\
## e-Defter Yedekleme — {unit.display_name}

- **VKN/TCKN:** {unit.taxpayer_id}{branch_tr}
- **e-Defter klasörü:** `{unit.folder}` (yalnızca okunur)
- **Entegratör bağlantısı (Connection):** `{unit.integrator_conn_id}`
- {mode_tr}

Adımlar: onaylı beratları bekle → doğrula (SHA-256 sabitlenir) → paketle ve entegratöre yükle
→ entegratör onayını bekle ("Yedeklendi" / "Yedeklenemedi") → kayıt bilgisini yaz.

Her çalıştırmanın notu yedeklediği ayı gösterir (örn. "Nisan-2026"); başarısız bir adım, nedenini
"e-Defter Saklama" sayfasında "Yedeklenemedi" olarak gösterir.

Tek ay için: `airflow dags trigger {unit.dag_id} --conf '{{"month": "2025-03"}}'`
Geçmiş aylar: `airflow backfill create --dag-id {unit.dag_id} --from-date 2025-01-01 --to-date 2025-06-30`

---

**English.** Backs up the e-Defter files of {unit.display_name} (taxpayer {unit.taxpayer_id}){branch_en}
from `{unit.folder}` (read-only) to the integrator account of Connection `{unit.integrator_conn_id}`.
{mode_en} Steps: wait for GİB-approved berats → verify (and pin each file's SHA-256) → upload (one
deterministic zip per file, re-hashed against the pins, then the set with its manifest) → wait for the
integrator's verdict → record the evidence in the archive. Each run's note names the month it backs
up ("Nisan-2026"); a failed step shows as "Yedeklenemedi" with its reason on the e-Defter Saklama page. One month on demand:
trigger with conf `{{"month": "YYYY-MM"}}`; past months: `airflow backfill create`.
"""


def _month_params() -> dict[str, Any]:
    """The trigger form's "Ay / Month" field, for manual (Gönder) DAGs.

    Automatic DAGs take {"month": ...} through trigger-with-config JSON instead: Airflow checks
    every Param's JSON schema at parse time (~0.5 ms per DAG), which adds up over 1,000 companies.
    The value is validated when the run starts (months.parse_month, a clear error).
    """
    return {
        "month": Param(
            None,
            type=["null", "string"],
            title="Ay / Month",
            description="Yedeklenecek ay (YYYY-AA) / month to back up (YYYY-MM)",
        )
    }


@dataclass(frozen=True)
class _ParseShared:
    """Values every DAG of one parse shares, computed once instead of once per DAG or task.

    Each is what Airflow would compute itself for an omitted argument: the DAG fields below
    default to an Airflow config lookup (``conf.get*`` walks env vars and config sections,
    ~0.1 ms each, five per DAG before this), and ``CronDataIntervalTimetable`` parses and
    validates its cron expression on construction. Timetables are stateless (every method
    takes the run's intervals as arguments), so one instance serves every automatic DAG;
    Airflow serializes each DAG's timetable on its own.
    """

    monthly: CronDataIntervalTimetable
    dag_kwargs: dict[str, Any]
    sensor_timeout: float

    @classmethod
    def compute(cls) -> _ParseShared:
        from airflow.sdk.configuration import conf

        return cls(
            monthly=CronDataIntervalTimetable("@monthly", timezone=TIMEZONE),
            dag_kwargs={
                "max_active_tasks": conf.getint("core", "max_active_tasks_per_dag"),
                "max_consecutive_failed_dag_runs": conf.getint("core", "max_consecutive_failed_dag_runs_per_dag"),
                "disable_bundle_versioning": conf.getboolean("dag_processor", "disable_bundle_versioning"),
            },
            # BaseSensorOperator's default when no timeout is given (our sensors enforce their own deadlines).
            sensor_timeout=conf.getfloat("sensors", "default_timeout"),
        )


def build_dag(unit: BackupUnit, shared: _ParseShared | None = None) -> DAG:
    """The backup DAG of one unit. ``shared``: per-parse values (build_dags passes one for all units)."""
    shared = shared if shared is not None else _ParseShared.compute()
    tuning = unit.tuning
    info = unit_info(unit)
    notifier = EDefterAlertNotifier(
        info,
        email=unit.alerts.email,
        smtp_conn_id=unit.alerts.smtp_conn_id,
        from_email=unit.alerts.from_email,
        webhook_conn_id=unit.alerts.webhook_conn_id,
    )
    default_args: dict[str, Any] = {
        "owner": tuning.owner,
        "retries": tuning.retries,
        "retry_delay": dt.timedelta(seconds=tuning.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(seconds=tuning.max_retry_delay_seconds),
    }
    if unit.queue:
        # Pins every task to the workers that mount this unit's e-Defter folder.
        default_args["queue"] = unit.queue
    # Task-level, not DAG-level: DAG-level notifiers crash under dag.test (apache/airflow#64649).
    # Passed per operator rather than in default_args, which Airflow deep-copies for every task.
    # record_failure_reason first: the status table reads the reason from the XCom it pushes.
    cb: dict[str, Any] = {"on_failure_callback": [record_failure_reason, notifier]}
    schedule: Any = shared.monthly if unit.automatic else None
    start = pendulum.datetime(unit.start_month.year, unit.start_month.month, 1, tz=TIMEZONE)
    tags = ["e-defter", "yedekleme", unit.company_id, "otomatik" if unit.automatic else "elle"]
    if unit.branch:
        tags.append("şube")
    with DAG(
        dag_id=unit.dag_id,
        dag_display_name=f"e-Defter Yedekleme — {unit.display_name}"
        + (f" ({unit.taxpayer_id}-{unit.branch})" if unit.branch else f" ({unit.taxpayer_id})"),
        description=f"e-Defter otomatik yedekleme: {unit.display_name}",
        schedule=schedule,
        start_date=start,
        catchup=False,
        max_active_runs=tuning.max_active_runs,
        default_args=default_args,
        tags=tags,
        doc_md=_doc_md(unit),
        params=_month_params() if not unit.automatic else None,
        render_template_as_native_obj=False,
        **shared.dag_kwargs,
    ) as dag:
        wait = WaitForApprovedBeratsSensor(
            task_id="wait_for_approved_berats",
            folder=str(unit.folder),
            taxpayer_id=unit.taxpayer_id,
            branch=unit.branch,
            automatic=unit.automatic,
            taxpayer_kind=unit.taxpayer_type.value,
            poll_interval_seconds=tuning.poll_interval_seconds,
            timeout_seconds=tuning.berat_timeout_seconds,
            deadline_warning_days=tuning.deadline_warning_days,
            deadline_notifier=notifier if unit.alerts.any else None,
            deferrable=True,
            integrator_conn_id=unit.integrator_conn_id,
            timeout=shared.sensor_timeout,
            **cb,
        )

        verify = PythonOperator(task_id="verify", python_callable=partial(run_verify, unit), **cb)
        # package + upload in one task: the zips live and die in that task's private workspace,
        # so any worker can run it (or its retry); only XCom values cross task boundaries.
        upload = PythonOperator(
            task_id="upload", python_callable=partial(run_upload, unit), op_kwargs={"verified": verify.output}, **cb
        )
        confirm = WaitForBackupConfirmationSensor(
            task_id="wait_for_backup_confirmation",
            integrator_conn_id=unit.integrator_conn_id,
            taxpayer_id=unit.taxpayer_id,
            branch=unit.branch,
            automatic=unit.automatic,
            poll_interval_seconds=tuning.status_poll_interval_seconds,
            timeout_seconds=tuning.status_timeout_seconds,
            deferrable=True,
            timeout=shared.sensor_timeout,
            **cb,
        )
        PythonOperator(  # record: its upstreams all come from the XComArgs in op_kwargs
            task_id="record",
            python_callable=partial(run_record, unit),
            op_kwargs={
                "berats": wait.output,
                "verify": verify.output,
                "upload": upload.output,
                "confirmation": confirm.output,
            },
            **cb,
        )
        # Order: wait >> verify >> upload >> confirm >> record. verify >> upload and the
        # record's upstreams already come from the XComArgs above.
        wait >> verify
        upload >> confirm
    return dag


# -- task callables (module level, bound to a unit with functools.partial: no closures, no
#    late binding, and far cheaper to build than @task wrappers when parsing 1,000 companies)


def run_verify(unit: BackupUnit, **context: Any) -> dict[str, Any]:
    from include.pipeline import tasks as t

    period = _period(context, unit)
    return _verdicts(lambda: t.verify_month(unit, period, client_factory=lambda: _client(unit)))


def run_upload(unit: BackupUnit, verified: dict[str, Any], **context: Any) -> dict[str, Any]:
    from include.pipeline import tasks as t

    period = _period(context, unit)
    with _client(unit) as client:
        return _verdicts(lambda: t.upload_month(unit, period, verified, client))


def run_record(
    unit: BackupUnit,
    berats: dict[str, Any] | None,
    verify: dict[str, Any] | None,
    upload: dict[str, Any] | None,
    confirmation: dict[str, Any] | None,
    **context: Any,
) -> dict[str, Any]:
    from include.pipeline import tasks as t

    period = _period(context, unit)
    dag_run = context["dag_run"]
    with _client(unit) as client:
        return t.record_month(
            unit,
            period,
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            berats=berats,
            verify=verify,
            upload=upload,
            confirmation=confirmation,
            client=client,
        )


def _period(context: Any, unit: BackupUnit):  # -> Period
    from airflow.sdk.exceptions import AirflowFailException

    from include.pipeline.months import MonthNotGiven, resolve_month

    try:
        return resolve_month(context, unit.automatic)
    except (MonthNotGiven, ValueError) as exc:
        raise AirflowFailException(str(exc)) from exc


def _client(unit: BackupUnit):  # -> IntegratorClient
    from include.pipeline.hook import EDefterIntegratorHook

    return EDefterIntegratorHook(unit.integrator_conn_id).get_conn()


def _verdicts(fn):  # type: ignore[no-untyped-def]
    """Deterministic failures fail the task at once (no retries); others propagate for retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.pipeline.tasks import VerdictError

    try:
        return fn()
    except VerdictError as exc:
        raise AirflowFailException(str(exc)) from exc


def build_dags(config: PipelineConfig | None = None) -> Iterator[DAG]:
    """All DAGs of the config, in a stable order (sorted by dag_id)."""
    # Loaded and built eagerly with the cyclic GC paused: 1,000s of companies and operators
    # allocate ~10^6 container objects, nearly all of which stay alive in the DAGs, so the
    # collections they keep triggering find little to free (~15 % of the parse). Paused only
    # while our code runs: the consumer's code between yields runs with the GC as it found it.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        cfg = config if config is not None else load_config()
        shared = _ParseShared.compute()
        dags = [build_dag(unit, shared) for unit in cfg.units]
    finally:
        if was_enabled:
            gc.enable()
    yield from dags
