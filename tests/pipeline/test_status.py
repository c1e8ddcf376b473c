"""The rules of the one true status (include.pipeline.status.judge), one per case."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pendulum

from include.edefter.naming import Period
from include.edefter.status import BackupStatus
from include.pipeline.run_notes import month_note
from include.pipeline.status import RunInfo, judge, month_of_run

VERIFY_REASON = (
    "Yedeklenemedi: Nisan-2026 e-Defter dosyaları doğrulanamadı (1 sorun) / Backup failed (1 problems)\n"
    "- [crypto.signature.reference_digest] 1234567801-202604-Y-000000.xml: Belge özeti tutmuyor / digest mismatch\n"
    "- second problem"
)


def remote(status: BackupStatus, submission_id: int | None = 7, **kw: object) -> SimpleNamespace:
    base: dict[str, object] = dict(status=status, message_tr=f"entegratör: {status.value}", message_en="integrator",
                                   submission_id=submission_id, fixity=None, retention_until=dt.date(2036, 12, 31))
    base.update(kw)
    return SimpleNamespace(**base)


def test_verify_failure_is_yedeklenemedi_with_the_reason_in_both_languages() -> None:
    run = RunInfo("r1", "failed", failed_task="verify", reason=VERIFY_REASON)
    v = judge(run, remote(BackupStatus.GONDERILMEDI, None))
    assert v.backup_status == "Yedeklenemedi"
    assert v.message_tr == (
        "Doğrulama: Yedeklenemedi: Nisan-2026 e-Defter dosyaları doğrulanamadı (1 sorun) "
        "- [crypto.signature.reference_digest] 1234567801-202604-Y-000000.xml: Belge özeti tutmuyor"
    )
    assert v.message_en.startswith("verification: Backup failed (1 problems)") and "digest mismatch" in v.message_en
    # Also when the integrator cannot be asked: the pipeline's own failure is known.
    assert judge(run, None, "entegratör sorgulanamadı").backup_status == "Yedeklenemedi"


def test_failures_before_upload_without_a_stored_reason_name_the_step() -> None:
    for task, label in (("wait_for_approved_berats", "Onaylı berat bekleme"), ("upload", "Paketleme")):
        v = judge(RunInfo("r", "failed", failed_task=task), None)
        assert v.backup_status == "Yedeklenemedi" and v.message_tr.startswith(label) and task in v.message_tr


def test_pre_upload_failure_wins_over_an_older_archived_submission() -> None:
    guard = "Yedeklenemedi: yerel dosyalar arşivdekinden farklı / Backup refused: the local files differ"
    v = judge(RunInfo("r", "failed", failed_task="upload", reason=guard), remote(BackupStatus.YEDEKLENDI))
    assert v.backup_status == "Yedeklenemedi" and "arşivdekinden farklı" in v.message_tr
    assert "önceki gönderim Yedeklendi" in v.message_tr


def test_the_integrator_verdict_wins_for_the_latest_submission() -> None:
    # The confirmation sensor timed out, but the integrator has since decided on that submission.
    run = RunInfo("r", "failed", failed_task="wait_for_backup_confirmation", reason="timeout", submission_id=7)
    assert judge(run, remote(BackupStatus.YEDEKLENDI, 7)).backup_status == "Yedeklendi"
    assert judge(run, remote(BackupStatus.ISLENDI, 7)).backup_status == "Yedeklenemedi"
    ok = judge(RunInfo("r", "success", submission_id=7), remote(BackupStatus.YEDEKLENEMEDI, 7))
    assert ok.backup_status == "Yedeklenemedi" and ok.message_tr == "entegratör: Yedeklenemedi"


def test_fixity_findings_need_a_resend() -> None:
    fixity = {"status": "Bozuk/Eksik", "files": [{"name": "1234567801-202604-Y-000000.zip"}]}
    v = judge(RunInfo("r", "success", submission_id=7), remote(BackupStatus.YEDEKLENDI, fixity=fixity))
    assert v.backup_status == "Bozuk/Eksik" and "Bozuk/Eksik" in v.message_tr and "Y-000000.zip" in v.message_tr


def test_waiting_and_untouched_months() -> None:
    waiting = judge(RunInfo("r", "running", waiting_task="wait_for_approved_berats"), None, missing=("X-GIB-YB",))
    assert waiting.backup_status == "Entegratör'e Gönderilmedi"
    assert waiting.message_tr.startswith("Onaylı beratlar bekleniyor") and "X-GIB-YB" in waiting.message_tr
    assert judge(None, None) == judge(None, remote(BackupStatus.GONDERILMEDI, None))
    assert judge(None, None, "entegratör sorgulanamadı").backup_status == "?"


def test_month_of_a_run_and_its_note() -> None:
    # A backfill's run_id names the interval end; the month is the interval start in Istanbul.
    start = pendulum.datetime(2026, 3, 31, 21, tz="UTC")
    assert month_of_run({}, start) == Period(2026, 4) == month_of_run(None, "2026-03-31T21:00:00+00:00")
    assert month_of_run({"month": "2025-01"}, start) == Period(2025, 1)
    assert month_of_run({"month": "kötü"}, None) is None and month_of_run({}, None) is None
    run = SimpleNamespace(dag_id="edefter_yedekleme_1234567801", conf={}, data_interval_start=start)
    assert month_note(run) == "Nisan-2026"
    assert month_note(SimpleNamespace(dag_id="edefter_yedekleme_1", conf={"month": "2026-04"}, data_interval_start=None)) == "Nisan-2026"
    assert month_note(SimpleNamespace(dag_id="edefter_geri_yukleme_tatbikati", conf={}, data_interval_start=start)) is None
