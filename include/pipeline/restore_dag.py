"""The manually triggered ``edefter_geri_yukleme`` DAG: restore (and optionally an ibraz package) from a form.

One DAG for every configured company: the form names the company (id, taxpayer id or backup DAG
id), the branch, the month range, the target directory on the worker and the layout. Nothing is
read at parse time (the companies file is read when the task runs), so adding it costs the DAG
file almost nothing. The work is ``include.pipeline.restore.run``, the same as the CLI's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

__all__ = ["RESTORE_DAG_ID", "build_restore_dag", "run_restore"]

RESTORE_DAG_ID = "edefter_geri_yukleme"
_MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"

_DOC = """\
## e-Defter Geri Yükleme / Restore

Bir firmanın (veya şubenin) e-Defter dosyalarını arşivden, verilen ay aralığı için hedef klasöre geri
yükler (GİB düzeni `<VKN>/<gg.aa.yyyy-gg.aa.yyyy>/<AA>/` veya düz), her dosyanın SHA-256 değerini arşiv
kaydıyla karşılaştırır ve imzaları, zinciri ve GİB beratını yeniden doğrular. Var olan bir dosyanın
üzerine asla yazmaz; yarıda kalırsa yeniden çalıştırıldığında kaldığı yerden devam eder. Rapor:
`<hedef>/.edefter-restore/report.json` ve `report.txt`. "İbraz paketi" seçilirse dosyalar, her ayın
kayıt bilgisi ve yazdırılabilir `index.html` tek klasörde ve zip olarak hazırlanır.

**English.** Restores a company's (or branch's) e-Defter files for a month range from the archive into
the target directory on the worker, checks every SHA-256 against the archive's record and re-runs the
full verification. Never overwrites; resumes when run again. Optional ibraz package (files, evidence,
printable index.html, zip). CLI: `python -m include.pipeline.restore --help`.
"""


def run_restore(**context: Any) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    from include.pipeline.restore import RestoreError, run

    params = context.get("params") or {}
    try:
        report, package = run(
            company=str(params.get("company") or ""),
            branch=(params.get("branch") or None),
            first=str(params.get("from") or ""),
            last=str(params.get("to") or ""),
            target=str(params.get("target") or ""),
            layout=str(params.get("layout") or "gib"),
            ibraz=bool(params.get("ibraz")),
        )
    except RestoreError as exc:
        if exc.resumable:
            raise  # the integrator was down: Airflow retries, the restore resumes where it stopped
        raise AirflowFailException(str(exc)) from exc
    summary = {
        "ok": report.ok,
        "taxpayer_id": report.request.taxpayer_id,
        "branch": report.request.branch,
        "from": str(report.request.first),
        "to": str(report.request.last),
        "files": sum(len(m.files) for m in report.months),
        "downloads": report.downloads,
        "already_restored": report.skipped,
        "missing_months": report.missing,
        "ibraz": package[1].name if package else None,
    }
    if not report.ok:
        bad = [f"{m.period}: {f.name} {f.verdict}" for m in report.months for f in m.files if not f.ok]
        raise AirflowFailException(
            "geri yüklenen dosyalarda sorun var / problems in the restored files: " + "; ".join(bad[:20])
        )
    return summary


def build_restore_dag() -> DAG:
    with DAG(
        dag_id=RESTORE_DAG_ID,
        dag_display_name="e-Defter Geri Yükleme / Restore",
        description="e-Defter dosyalarını arşivden geri yükle, doğrula, ibraz paketi hazırla",
        schedule=None,
        start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=4,
        tags=["e-defter", "geri-yükleme", "restore"],
        doc_md=_DOC,
        default_args={"owner": "muhasebe", "retries": 2, "retry_delay": dt.timedelta(minutes=2),
                      "retry_exponential_backoff": True},
        params={
            "company": Param("", type="string", minLength=1, title="Firma / Company",
                             description="firma kimliği, VKN/TCKN veya DAG kimliği / company id, taxpayer id or DAG id"),
            "branch": Param(None, type=["null", "string"], title="Şube / Branch",
                            description="şube bazında firmalar için SSSS / SSSS for per-branch companies"),
            "from": Param("", type="string", pattern=_MONTH, title="Başlangıç ayı / From (YYYY-MM)"),
            "to": Param("", type="string", pattern=_MONTH, title="Bitiş ayı / To (YYYY-MM)"),
            "target": Param("", type="string", minLength=1, title="Hedef klasör / Target directory",
                            description="worker üzerindeki boş veya önceki geri yüklemenin klasörü / "
                                        "a directory on the worker: empty, or a previous restore's"),
            "layout": Param("gib", type="string", enum=["gib", "flat"], title="Klasör düzeni / Layout"),
            "ibraz": Param(False, type="boolean", title="İbraz paketi / Ibraz package"),
        },
    ) as dag:
        PythonOperator(task_id="geri_yukle", python_callable=run_restore)
    return dag
