"""End-to-end DAG runs with Airflow's dag.test() against a real integrator on 127.0.0.1.

Each run goes through the real sensors/triggers (inline under dag.test), the domain library's
checks including the cryptographic verifier, the deterministic packager, the HTTP client and the
integrator's asynchronous validation. Alerts go to a real SMTP sink and a webhook receiver.
"""

from __future__ import annotations

import threading
import time
from email.header import decode_header, make_header

from include.edefter.naming import Period
from include.edefter.sample import Stage
from include.edefter.sample.breakage import flip_byte_in_ledger_body
from include.pipeline.tasks import GUARD_EN, GUARD_TR
from tests.pipeline.conftest import PASSWORD, Env, Integrator, RunResult, evidence, free_port, tree_snapshot

TAX = "1234567801"
DAG = f"edefter_yedekleme_{TAX}"
ALL_OK = dict.fromkeys(
    ["wait_for_approved_berats", "verify", "upload", "wait_for_backup_confirmation", "record"], "success"
)


def test_ready_month_is_backed_up_and_a_rerun_uploads_nothing(env: Env, capfd) -> None:
    folder = env.company("ornek", TAX)
    env.month(folder, TAX, Period(2025, 1))
    before = tree_snapshot(folder)
    result = env.run(DAG, Period(2025, 1))
    result.assert_states(**ALL_OK)
    ev = evidence(env.tmp, TAX, Period(2025, 1))
    assert ev["backup_status"] == "Yedeklendi"
    assert ev["message"].startswith("Ocak-2025 ayına ait")
    assert ev["run_id"] == result.dag_run.run_id and ev["dag_id"] == DAG
    assert len(ev["files"]) == 7 and all(f["signature_value"] and f["receipt"] for f in ev["files"])
    assert [f["code"] for f in ev["files"]] == ["Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"]
    assert result.xcom("upload")["uploaded"] == 7
    assert env.work_leftovers() == []  # each task's workspace died with the task
    pins = {f["name"]: f for f in result.xcom("verify")["files"]}
    for f in ev["files"]:  # what was uploaded is what was verified
        assert f["xml_sha256"] == pins[f["name"]]["xml_sha256"] and f["signature_value"] == pins[f["name"]]["signature_value"]
    archived_evidence = env.integrator.evidence(TAX, Period(2025, 1))
    assert any(d["run_id"] == result.dag_run.run_id and d["files"] == ev["files"] for d in archived_evidence)
    archived = env.integrator.stored(TAX)
    assert {n for n, _ in archived} >= {f["zip_name"] for f in ev["files"]}
    assert tree_snapshot(folder) == before  # the e-Defter folder is never written

    again = env.run(DAG, Period(2025, 1))
    again.assert_states(**ALL_OK)
    up = again.xcom("upload")
    assert up["uploaded"] == 0 and up["skipped_month_already_backed_up"] is True
    assert env.integrator.stored(TAX) == archived
    assert evidence(env.tmp, TAX, Period(2025, 1))["backup_status"] == "Yedeklendi"
    assert not env.webhook.payloads and not env.smtp.messages

    # The status table: folder scan + the integrator's status query.
    env.month(folder, TAX, Period(2025, 2), stage=Stage.TAXPAYER_BERATS)
    from include.integrator.client import IntegratorClient
    from include.pipeline.config import load_config
    from include.pipeline.status import client_lookup, month_rows

    with IntegratorClient(env.integrator.url, env.integrator.account(TAX), PASSWORD) as client:
        rows = month_rows(load_config(env.config_path()), client_lookup({f"edefter_test_{TAX}": client}))
    assert [r.as_tuple()[:5] for r in rows] == [
        ("Ornek A.Ş.", "-", "2025-01", "Onaylı Berat İndirildi", "Yedeklendi"),
        ("Ornek A.Ş.", "-", "2025-02", "GİB'e Gönderildi", "Entegratör'e Gönderilmedi"),
    ]
    assert rows[0].message.startswith("Ocak-2025 ayına ait") and "GIB-" in rows[1].message

    # The integrator password never reaches the logs, the work files or the evidence.
    out, err = capfd.readouterr()
    assert "Yedeklendi" in out + err and PASSWORD not in out + err
    for path in env.tmp.rglob("*.json"):
        assert PASSWORD not in path.read_text(encoding="utf-8"), path


def test_tampered_month_is_yedeklenemedi_and_alerts_fire(env: Env) -> None:
    folder = env.company("bozuk", "1111111111")
    mf = env.month(folder, "1111111111", Period(2025, 2))
    flip_byte_in_ledger_body(mf.path("Y"))
    result = env.run("edefter_yedekleme_1111111111", Period(2025, 2))
    result.assert_states(wait_for_approved_berats="success", verify="failed", upload="upstream_failed")
    assert result.tries["verify"] == 1  # a verdict is never retried
    assert env.integrator.stored("1111111111") == []  # nothing reached the archive
    (payload,) = env.webhook.payloads
    assert payload["status"] == "Yedeklenemedi" and payload["task_id"] == "verify"
    assert payload["month"] == "2025-02" and payload["company"] == "Bozuk A.Ş." and payload["taxpayer_id"] == "1111111111"
    assert "1111111111-202502-Y-000000.xml" in payload["reason"] and "Yedeklenemedi" in payload["text"]
    (mail,) = env.smtp.messages
    subject = str(make_header(decode_header(mail["Subject"])))
    assert subject == "[e-Defter] Yedeklenemedi: Bozuk A.Ş., Şubat-2025 (Doğrulama)"
    assert mail["To"] == "muhasebe@example.com.tr"
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "1111111111-202502-Y-000000.xml" in html and "verify" in html

    # One true status: the folder, this run (failed in verify) and the integrator (nothing there).
    from include.pipeline.config import load_config
    from include.pipeline.run_notes import month_note
    from include.pipeline.status import airflow_run_lookup, hook_lookup, month_rows
    from include.pipeline.ui import collect_rows, row_to_json

    unit = load_config(env.config_path()).unit("edefter_yedekleme_1111111111")
    runs = airflow_run_lookup(unit)
    run = runs[Period(2025, 2)]
    assert run.run_id == result.dag_run.run_id and run.state == "failed" and run.failed_task == "verify"
    assert "1111111111-202502-Y-000000.xml" in run.reason
    (row,) = month_rows(load_config(env.config_path()), hook_lookup, run_lookup=airflow_run_lookup)
    assert row.backup_status == "Yedeklenemedi" and row.failed_task == "verify"
    assert row.message.startswith("Doğrulama: Yedeklenemedi: Şubat-2025") and "1111111111-202502-Y-000000.xml" in row.message
    # The page's data says the same.
    (page_row,) = collect_rows(load_config(env.config_path()), run_lookup=airflow_run_lookup)
    data = row_to_json(page_row)
    assert data["backup_status"] == "Yedeklenemedi" and data["message"] == row.message
    # The run names its month.
    assert month_note(result.dag_run) == "Şubat-2025"
    assert _note_of(result) == "Şubat-2025"


def test_ransomware_guard_keeps_the_archive_and_uploads_nothing(env: Env) -> None:
    tax = "2222222222"
    folder = env.company("fidye", tax)
    mf = env.month(folder, tax, Period(2025, 3))
    env.run(f"edefter_yedekleme_{tax}", Period(2025, 3)).assert_states(**ALL_OK)
    archived = env.integrator.stored(tax)

    # 1) the local ledger is altered after the backup: verification fails -> guard message
    flip_byte_in_ledger_body(mf.path("Y"))
    result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 3))
    result.assert_states(verify="failed", upload="upstream_failed")
    assert GUARD_TR in env.alert_reasons()[-1]

    # 2) the whole set is replaced by another validly signed one: upload's guard refuses it
    for p in folder.iterdir():
        if p.is_file():
            p.unlink()
    env.month(folder, tax, Period(2025, 3), seed=7, entries_per_part=12)
    result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 3))
    result.assert_states(verify="success", upload="failed")
    assert result.tries["upload"] == 1
    reason = env.alert_reasons()[-1]
    assert GUARD_TR in reason and GUARD_EN in reason and "SHA-256" in reason
    assert env.integrator.stored(tax) == archived  # nothing overwritten, nothing added


def test_integrator_down_for_a_while_retries_then_backs_up_without_duplicates(env: Env, tmp_path) -> None:
    tax = "3333333333"
    srv = Integrator(data=tmp_path / "integrator-down", port=free_port())
    srv.data.mkdir()
    srv.account(tax)
    folder = env.company("kesinti", tax, connect=False, retries=4, retry_delay_seconds=1, max_retry_delay_seconds=2)
    env.connect(f"edefter_test_{tax}", srv.conn_uri(tax))
    env.month(folder, tax, Period(2025, 4))

    def start_later() -> None:
        time.sleep(4)
        srv.start()

    starter = threading.Thread(target=start_later)
    starter.start()
    try:
        result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 4))
    finally:
        starter.join()
    try:
        result.assert_states(**ALL_OK)
        assert result.tries["upload"] > 1  # it failed while the integrator was down, then retried
        stored = srv.stored(tax)
        assert len(stored) == 7 and len({n for n, _ in stored}) == 7  # no duplicate upload
        assert evidence(env.tmp, tax, Period(2025, 4))["backup_status"] == "Yedeklendi"
    finally:
        srv.stop()


def test_twelve_months_in_a_row(env: Env) -> None:
    tax = "4444444444"
    folder = env.company("yillik", tax, start_month="2024-01")
    uid, entry = 1, 1
    for month in range(1, 13):
        mf = env.month(folder, tax, Period(2024, month), entries_per_part=6,
                       unique_id_start=uid, entry_number_start=entry)
        uid, entry = mf.next_unique_id, mf.next_entry_number
    for month in range(1, 13):
        env.run(f"edefter_yedekleme_{tax}", Period(2024, month)).assert_states(**ALL_OK)
    statuses = [evidence(env.tmp, tax, Period(2024, m))["backup_status"] for m in range(1, 13)]
    assert statuses == ["Yedeklendi"] * 12
    assert len(env.integrator.stored(tax)) == 12 * 7


def test_branch_based_company_runs_one_dag_per_branch(env: Env) -> None:
    tax = "5555555555"
    folder = env.company("subeli", tax, branches=["0001", "0002"])
    env.month(folder, tax, Period(2025, 5), branch="0001")
    env.month(folder, tax, Period(2025, 5), branch="0002")
    for b in ("0001", "0002"):
        env.run(f"edefter_yedekleme_{tax}_{b}", Period(2025, 5)).assert_states(**ALL_OK)
        ev = evidence(env.tmp, tax, Period(2025, 5), branch=b)
        assert ev["branch"] == b and ev["backup_status"] == "Yedeklendi"
        assert all(f["name"].endswith(f"-{b}.xml") for f in ev["files"])
        assert {n for n, _ in env.integrator.stored(tax, b)} == {f["zip_name"] for f in ev["files"]}


def test_manual_company_runs_for_the_conf_month_only(env: Env) -> None:
    tax = "66666666666"  # TCKN: an income-tax payer
    folder = env.company("elle", tax, automatic=False)
    env.month(folder, tax, Period(2025, 2))
    dag = env.dag(f"edefter_yedekleme_{tax}")
    assert type(dag.timetable).__name__ == "NullTimetable"  # no schedule: runs only on demand
    env.run(f"edefter_yedekleme_{tax}", conf={"month": "2025-02"}).assert_states(**ALL_OK)
    assert evidence(env.tmp, tax, Period(2025, 2))["backup_status"] == "Yedeklendi"

    missing = env.run(f"edefter_yedekleme_{tax}")
    missing.assert_states(wait_for_approved_berats="failed")
    assert "ayı belirtin" in env.alert_reasons()[-1]


def test_wrong_integrator_password_fails_fast_without_retry_loop(env: Env) -> None:
    tax = "7777777777"
    folder = env.company("parola", tax, connect=False, retries=3, retry_delay_seconds=30)
    env.connect(f"edefter_test_{tax}", env.integrator.conn_uri(tax, password="yanlis-parola"))
    env.month(folder, tax, Period(2025, 6))
    result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 6))
    result.assert_states(verify="success", upload="failed")
    assert result.tries["upload"] == 1
    reason = env.alert_reasons()[-1]
    assert "kimlik doğrulaması" in reason and "yanlis-parola" not in reason


def test_integrator_rejection_reasons_reach_log_and_alert(env: Env, tmp_path) -> None:
    tax = "8888888888"
    srv = Integrator(
        data=tmp_path / "integrator-strict",
        port=free_port(),
        extra_env={"INTEGRATOR_EXTRA_FILE_CHECKS": "tests.pipeline.reject_checks:reject_dr"},
    )
    srv.data.mkdir()
    srv.account(tax)
    srv.start()
    try:
        folder = env.company("red", tax, connect=False)
        env.connect(f"edefter_test_{tax}", srv.conn_uri(tax))
        env.month(folder, tax, Period(2025, 7))
        result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 7))
        result.assert_states(upload="success", wait_for_backup_confirmation="failed", record="upstream_failed")
        assert result.tries["wait_for_backup_confirmation"] == 1
        (payload,) = env.webhook.payloads
        assert payload["task_id"] == "wait_for_backup_confirmation"
        assert "Defter Raporu kabul edilmiyor" in payload["reason"] and "8888888888-202507-DR-000000" in payload["reason"]
    finally:
        srv.stop()


def test_parts_still_missing_at_the_timeout_are_reported(env: Env) -> None:
    tax = "9999999991"
    folder = env.company("bekleyen", tax, berat_timeout_seconds=2)
    env.month(folder, tax, Period(2025, 8), stage=Stage.TAXPAYER_BERATS)
    result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 8))
    result.assert_states(wait_for_approved_berats="failed", verify="upstream_failed")
    reason = env.alert_reasons()[-1]
    assert "GIB-9999999991-202508-YB-000000" in reason or "GIB-YB" in reason
    assert env.webhook.payloads[-1]["status"] == "Onaylı beratlar gelmedi"


def test_unreadable_folder_fails_with_a_clear_error(env: Env) -> None:
    tax = "9999999992"
    folder = env.company("kayip", tax)
    folder.rmdir()
    result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 8))
    result.assert_states(wait_for_approved_berats="failed")
    reason = env.alert_reasons()[-1]
    assert str(folder) in reason and "bulunamadı" in reason and "does not exist" in reason


def test_a_run_with_the_airflow_metadata_db_on_postgresql(env: Env, tmp_path) -> None:
    """Airflow reads its DB URL at import: a fresh process with a fresh PostgreSQL database."""
    import json
    import os
    import subprocess
    import sys
    import uuid

    from tests.conftest import require_or_skip

    try:
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server here"
        require_or_skip(False, f"PostgreSQL on 127.0.0.1:5432 not reachable: {exc}")
        return
    admin.autocommit = True
    db = f"edefter_airflow_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    try:
        tax = "1212121212"
        folder = env.company("postgres", tax)
        env.month(folder, tax, Period(2025, 9))
        env.config_path()
        home = tmp_path / "airflow-pg"
        home.mkdir()
        penv = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
        }
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=penv, capture_output=True,
                                 text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        proc = subprocess.run(
            [sys.executable, "-m", "tests.pipeline.dagtest_runner", f"edefter_yedekleme_{tax}", "2025-10-01T00:00:00+03:00"],
            env=penv, capture_output=True, text=True, timeout=300,
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        assert line is not None, (proc.stdout[-2000:], proc.stderr[-3000:])
        result = json.loads(line[len("RESULT "):])
        assert result["db"] == "postgresql"
        assert result["state"] == "success" and set(result["states"].values()) == {"success"}, result
        assert evidence(env.tmp, tax, Period(2025, 9))["backup_status"] == "Yedeklendi"
        with psycopg2.connect(host="127.0.0.1", user="postgres", dbname=db) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM task_instance WHERE dag_id = %s AND state = 'success'",
                        (f"edefter_yedekleme_{tax}",))
            assert cur.fetchone()[0] == 5  # the run really lives in PostgreSQL
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def test_sensor_waits_deferred_until_gib_berats_arrive(env: Env, tmp_path) -> None:
    import shutil

    tax = "1313131313"
    folder = env.company("bekle", tax, berat_timeout_seconds=120, deadline_warning_days=0)
    full = env.month(tmp_path / "full-set", tax, Period(2025, 10))
    gib = [full.path(code) for code in ("GIB-YB", "GIB-KB")]
    for src in full.paths.values():
        if src not in gib:
            shutil.copy2(src, folder / src.name)  # the folder is at "GİB'e Gönderildi"

    # GİB's berats land only after the sensor has deferred and its trigger polled the incomplete
    # folder twice (the trigger's own scan, wrapped: the real code still runs).
    from include.pipeline.triggers import ApprovedBeratsTrigger

    trigger_scans: list[dict] = []
    real_scan = ApprovedBeratsTrigger._scan

    def scan_then_deliver(self):  # type: ignore[no-untyped-def]
        if len(trigger_scans) == 2:
            for src in gib:
                shutil.copy2(src, folder / src.name)
        result = real_scan(self)
        trigger_scans.append(result)
        return result

    env.monkeypatch.setattr(ApprovedBeratsTrigger, "_scan", scan_then_deliver)
    result = env.run(f"edefter_yedekleme_{tax}", Period(2025, 10))
    assert [r["status"] for r in trigger_scans] == ["waiting", "waiting", "ready"]
    assert trigger_scans[0]["edefter_status"] == "GİB'e Gönderildi"
    result.assert_states(**ALL_OK)
    ev = evidence(env.tmp, tax, Period(2025, 10))
    assert ev["backup_status"] == "Yedeklendi" and ev["secondary_copy_deadline"]["rule"] == "EDGT-3+EDGT-5"
    assert ev["secondary_copy_deadline"]["date"] == "2026-03-01"  # 14 Feb 2026 + 15 days (corporate)


def test_a_month_near_its_secondary_copy_deadline_alerts_once_then_keeps_waiting(env: Env) -> None:
    import datetime as dt

    from include.edefter.deadlines import TaxpayerKind, secondary_copy_deadline

    # The next month whose secondary-copy deadline is still ahead (deadlines are monthly, so a
    # 45-day warning window always contains one, whatever today's date is).
    today = dt.date.today()
    period = Period(today.year, today.month)
    for _ in range(8):
        period = period.previous()
        if secondary_copy_deadline(period, TaxpayerKind.KURUMLAR).date >= today:
            upcoming = period
    tax = "1616161616"
    folder = env.company("yaklasan", tax, start_month=str(upcoming), berat_timeout_seconds=4,
                         deadline_warning_days=45)
    env.month(folder, tax, upcoming, stage=Stage.TAXPAYER_BERATS)
    result = env.run(f"edefter_yedekleme_{tax}", upcoming)
    result.assert_states(wait_for_approved_berats="failed")
    statuses = [p["status"] for p in env.webhook.payloads]
    assert statuses == ["İkincil kopya süresi yaklaşıyor", "Onaylı beratlar gelmedi"]
    warning = env.webhook.payloads[0]
    deadline = secondary_copy_deadline(upcoming, TaxpayerKind.KURUMLAR)
    assert deadline.date.isoformat() in warning["reason"] and "GIB-" in warning["reason"]
    assert warning["month"] == str(upcoming)


def test_archive_first_a_backed_up_month_whose_files_are_gone_is_not_waited_for(env: Env) -> None:
    """Ransomware took the folder after the backup: the sensor asks the archive, skips the month as
    "Arşivde — klasörde yok" instead of waiting weeks for berats, and nothing is uploaded again."""
    import shutil

    folder = env.company("ornek", TAX)
    env.month(folder, TAX, Period(2025, 3))
    env.run(DAG, Period(2025, 3)).assert_states(**ALL_OK)
    archived = env.integrator.stored(TAX)
    for p in sorted(folder.rglob("*202503*"), reverse=True):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    again = env.run(DAG, Period(2025, 3))
    again.assert_states(**dict.fromkeys(ALL_OK, "skipped"))
    assert env.integrator.stored(TAX) == archived
    # The status table still lists the month (it has runs) and says where its files are.
    from include.pipeline.config import load_config
    from include.pipeline.status import ARCHIVED_NOT_IN_FOLDER, airflow_run_lookup, hook_lookup, month_rows
    from include.pipeline.ui import collect_rows, row_to_json

    # (The metadata DB is shared by this module's tests: other months of the DAG have runs too.)
    rows = month_rows(load_config(env.config_path()), hook_lookup, run_lookup=airflow_run_lookup)
    (row,) = [r for r in rows if r.month == Period(2025, 3)]
    assert (row.month, row.edefter_status, row.backup_status) == (Period(2025, 3), ARCHIVED_NOT_IN_FOLDER, "Yedeklendi")
    assert row.run_id == again.dag_run.run_id and row.files == 0
    (page_row,) = [
        r for r in collect_rows(load_config(env.config_path()), run_lookup=airflow_run_lookup) if r.month == Period(2025, 3)
    ]
    assert row_to_json(page_row)["edefter_status_text"] == "Arşivde — klasörde yok"
    assert _note_of(again) == "Mart-2025"


def _note_of(result: RunResult) -> str | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        dr = session.query(DagRun).filter_by(dag_id=result.dag_run.dag_id, run_id=result.dag_run.run_id).one()
        return dr.note
