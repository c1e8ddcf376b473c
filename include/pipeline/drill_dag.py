"""The scheduled ``edefter_geri_yukleme_tatbikati`` DAG: a monthly restore drill over every unit.

Nothing is read at parse time: the companies file is read when the task runs.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

__all__ = ["DRILL_DAG_ID", "build_drill_dag", "run_drill"]

DRILL_DAG_ID = "edefter_geri_yukleme_tatbikati"
SLICE_ENV = "EDEFTER_DRILL_SLICE_MONTHS"

_DOC = """\
## e-Defter Geri Yükleme Tatbikatı / Restore drill

Her ay, her firma/şube için arşivdeki ayların dönen bir dilimini geçici bir klasöre geri yükler, SHA-256
değerlerini arşiv kaydıyla karşılaştırır, imzaları ve zinciri yeniden doğrular, sonucu ayın kayıt bilgisi
olarak arşive yazar; bir sorun olursa firmanın uyarı kanallarına bildirir ve görev başarısız olur. Dilim en az
`ceil(ay sayısı / 12)` aydır: her arşivlenmiş ay yılda en az bir kez denenir (`EDEFTER_DRILL_SLICE_MONTHS`).

**English.** Monthly, per unit: restores a rotating slice of the archived months into a scratch directory,
checks hashes against the archive, re-verifies signatures and the chain, stores the result with the month
(evidence kind "Geri yükleme tatbikatı / restore drill"), alerts the unit's channels and fails on any problem.
Every archived month is drilled at least once a year.
"""


def run_drill(**context: Any) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    from include.pipeline.config import load_config
    from include.pipeline.dag_factory import unit_info
    from include.pipeline.drill import DEFAULT_SLICE, run_drills
    from include.pipeline.notifiers import EDefterAlertNotifier

    logical = context.get("logical_date") or dt.datetime.now(dt.UTC)
    slice_size = int(os.environ.get(SLICE_ENV, "") or DEFAULT_SLICE)
    cfg = load_config()
    results = run_drills(day=logical.date(), slice_size=slice_size, config=cfg)
    failed = [r for r in results if not r.ok]
    by_id = {u.dag_id: u for u in cfg.units}
    for r in failed:
        unit = by_id.get(r.unit)
        if unit is None or not unit.alerts.any:
            continue
        EDefterAlertNotifier(
            unit_info(unit),
            email=unit.alerts.email,
            smtp_conn_id=unit.alerts.smtp_conn_id,
            from_email=unit.alerts.from_email,
            webhook_conn_id=unit.alerts.webhook_conn_id,
        ).warn(context, "Geri yükleme tatbikatı başarısız / restore drill failed: " + "; ".join(r.failed[:10]))
    summary = {"units": [r.to_dict() for r in results], "failed": len(failed)}
    if failed:
        raise AirflowFailException(
            "geri yükleme tatbikatı başarısız / restore drill failed: "
            + "; ".join(f"{r.unit}: {x}" for r in failed for x in r.failed[:5])
        )
    return summary


def build_drill_dag() -> DAG:
    import pendulum

    from include.pipeline.dag_factory import TIMEZONE

    with DAG(
        dag_id=DRILL_DAG_ID,
        dag_display_name="e-Defter Geri Yükleme Tatbikatı / Restore drill",
        description="arşivdeki ayları her ay dönerek geri yükle ve doğrula",
        schedule="0 4 20 * *",  # 04:00 on the 20th: after the month's backups, before the next deadline
        start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
        catchup=False,
        max_active_runs=1,
        tags=["e-defter", "geri-yükleme", "tatbikat", "restore-drill"],
        doc_md=_DOC,
        default_args={"owner": "muhasebe", "retries": 1, "retry_delay": dt.timedelta(minutes=10)},
    ) as dag:
        PythonOperator(task_id="tatbikat", python_callable=run_drill)
    return dag
