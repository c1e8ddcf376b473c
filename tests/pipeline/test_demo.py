"""Unit tests of the pure helpers behind `make run` / `make demo` (include/pipeline/demo.py).

The end-to-end behaviour (real scheduler, real integrator) is in test_smoke_scheduler.py.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pendulum
import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.edefter.naming import Period
from include.edefter.status import BackupStatus, EDefterStatus
from include.pipeline import demo
from include.pipeline.demo import (
    Expectation,
    ProcessGroup,
    RunState,
    StatusRow,
    backfill_window,
    check_outcome,
    connection_env_name,
    connection_uri,
    demo_months,
    format_table,
    make_scenario,
    month_of_run,
    scenario_config,
    settle_progress,
    stop_process_tree,
)

TODAY = dt.date(2026, 11, 26)


# ---------------------------------------------------------------- scenario


def test_demo_months_are_the_twelve_before_this_month() -> None:
    months = demo_months(TODAY)
    assert len(months) == 12
    assert months[0] == Period(2025, 11)
    assert months[-1] == Period(2026, 10)
    assert all(b == a.next() for a, b in zip(months, months[1:], strict=False))


def test_demo_months_across_january() -> None:
    assert demo_months(dt.date(2026, 1, 3), 3) == (Period(2025, 10), Period(2025, 11), Period(2025, 12))


def test_demo_scenario_covers_the_required_cases() -> None:
    scenario = make_scenario("demo", TODAY)
    assert len(scenario.companies) >= 3
    assert len(scenario.months) >= 12
    branch_based = [c for c in scenario.companies if c.branches]
    assert branch_based and len(branch_based[0].branches) == 2
    assert any(not c.automatic for c in scenario.companies)
    values = list(scenario.expectations().values())
    assert values.count(Expectation.TAMPERED) == 1
    assert values.count(Expectation.WAITING) >= 3
    assert values.count(Expectation.READY) >= 30
    # Waiting months are the most recent ones (GİB berats come months later), never older months.
    for company in scenario.companies:
        flags = [scenario.expectation(company, i) is Expectation.WAITING for i in range(len(scenario.months))]
        assert flags == sorted(flags)


def test_smoke_scenario_is_one_company_three_ready_months() -> None:
    scenario = make_scenario("smoke", TODAY)
    assert len(scenario.companies) == 1 and len(scenario.months) == 3
    assert set(scenario.expectations().values()) == {Expectation.READY}


def test_unknown_scenario_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        make_scenario("nope", TODAY)


def test_scenario_config_passes_the_pipeline_validator(tmp_path: Path) -> None:
    from include.pipeline.config import parse_config

    scenario = make_scenario("demo", TODAY)
    data = scenario_config(scenario, tmp_path)
    config = parse_config(data)
    expected = {c.dag_id(b) for c in scenario.companies for b in c.units()}
    assert {u.dag_id for u in config.units} == expected
    manual = [u for u in config.units if not u.automatic]
    assert [u.company_id for u in manual] == ["deniz-danismanlik"]
    assert config.units[0].tuning.poll_interval_seconds == scenario.poll_interval_seconds
    # No credentials in the YAML: only Connection ids.
    assert "password" not in repr(data).lower()


# ---------------------------------------------------------------- connections


def test_connection_env_name() -> None:
    assert connection_env_name("edefter_integrator_yildiz_gida_0001") == "AIRFLOW_CONN_EDEFTER_INTEGRATOR_YILDIZ_GIDA_0001"


@settings(deadline=None, max_examples=60)  # the first call imports Airflow's models
@given(
    user=st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True),
    password=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x17F), min_size=1, max_size=40),
    port=st.integers(min_value=1024, max_value=65535),
)
def test_connection_uri_round_trips_through_airflow(user: str, password: str, port: int) -> None:
    from airflow.models.connection import Connection

    conn = Connection(conn_id="x", uri=connection_uri(user, password, "127.0.0.1", port))
    assert (conn.conn_type, conn.host, conn.port, conn.login, conn.password) == ("http", "127.0.0.1", port, user, password)


def test_secrets_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "connections.env"
    demo.write_secrets_file(path, {"AIRFLOW_CONN_X": "http://u:p@127.0.0.1:1"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "export AIRFLOW_CONN_X='http://u:p@127.0.0.1:1'" in path.read_text()


# ---------------------------------------------------------------- backfill window and run months


@pytest.mark.parametrize(("first", "last"), [(Period(2025, 11), Period(2026, 10)), (Period(2026, 1), Period(2026, 3))])
def test_backfill_window_selects_exactly_the_interval_starts(first: Period, last: Period) -> None:
    from_date, to_date = (pendulum.parse(x) for x in backfill_window(first, last))
    month = first.previous()
    inside = []
    for _ in range(20):
        start = pendulum.datetime(month.year, month.month, 1, tz="Europe/Istanbul")
        if from_date <= start <= to_date:
            inside.append(month)
        month = month.next()
    expected = [first]
    while expected[-1] != last:
        expected.append(expected[-1].next())
    assert inside == expected


def test_month_of_run_uses_istanbul_interval_start_or_conf() -> None:
    # The August interval starts at midnight Istanbul, 21:00 UTC on 31 July.
    assert month_of_run({"data_interval_start": "2026-07-31T21:00:00Z", "conf": {}}) == Period(2026, 8)
    assert month_of_run({"data_interval_start": None, "conf": {"month": "2026-03"}}) == Period(2026, 3)
    assert month_of_run({"data_interval_start": None, "logical_date": None, "conf": None}) is None


# ---------------------------------------------------------------- table and outcome


def _rows(scenario: demo.Scenario, override: dict | None = None) -> list[StatusRow]:
    rows = []
    for company in scenario.companies:
        for branch in company.units():
            for i, month in enumerate(scenario.months):
                exp = scenario.expectation(company, i)
                if exp is Expectation.READY:
                    values = (EDefterStatus.ONAYLI_BERAT_INDIRILDI.value, BackupStatus.YEDEKLENDI.value, "yedeklendi")
                elif exp is Expectation.TAMPERED:
                    values = (EDefterStatus.ONAYLI_BERAT_INDIRILDI.value, BackupStatus.YEDEKLENEMEDI.value, "imza bozuk")
                else:
                    values = (EDefterStatus.GIBE_GONDERILDI.value, BackupStatus.GONDERILMEDI.value, "bekleniyor")
                key = (company.taxpayer_id, branch, month)
                if override and key in override:
                    values = override[key]
                rows.append(StatusRow(company.name, branch, month, *values, taxpayer_id=company.taxpayer_id))
    return rows


def test_check_outcome_accepts_the_promised_outcome() -> None:
    scenario = make_scenario("demo", TODAY)
    assert check_outcome(_rows(scenario), scenario.expectations()) == []


def test_check_outcome_names_every_deviation() -> None:
    scenario = make_scenario("demo", TODAY)
    exp = scenario.expectations()
    ready = next(k for k, v in exp.items() if v is Expectation.READY)
    tampered = next(k for k, v in exp.items() if v is Expectation.TAMPERED)
    waiting = next(k for k, v in exp.items() if v is Expectation.WAITING)
    override = {
        ready: (EDefterStatus.ONAYLI_BERAT_INDIRILDI.value, BackupStatus.ISLENDI.value, ""),
        tampered: (EDefterStatus.ONAYLI_BERAT_INDIRILDI.value, BackupStatus.YEDEKLENEMEDI.value, "  "),
        waiting: (EDefterStatus.ONAYLI_BERAT_INDIRILDI.value, BackupStatus.YEDEKLENDI.value, ""),
    }
    problems = check_outcome(_rows(scenario, override), exp)
    text = "\n".join(problems)
    assert "expected Yedeklendi, got Entegratör'e İşlendi" in text
    assert "Yedeklenemedi without a reason" in text
    assert "expected still waiting" in text and "expected GİB berats missing" in text
    missing = check_outcome(_rows(scenario)[1:], exp)
    assert len(missing) == 1 and "no status row" in missing[0]


def test_format_table_aligns_turkish_text() -> None:
    rows = [
        StatusRow("Yıldız Gıda Ltd. Şti.", "0002", Period(2026, 9), "Onaylı Berat İndirildi", "Yedeklendi", "x" * 200),
        StatusRow("Örnek", None, Period(2026, 10), "GİB'e Gönderildi", "Entegratör'e Gönderilmedi", "bekliyor"),
    ]
    lines = format_table(rows, max_message=30).splitlines()
    assert lines[0].split()[:2] == ["Firma", "Şube"]
    # Columns line up: the status column starts at the same offset on every line.
    offsets = {line.index(word) for line, word in zip(lines[2:], ("Onaylı", "GİB'e"), strict=True)}
    assert len(offsets) == 1 and lines[0].index("e-Defter statüsü") in offsets
    assert "Eylül-2026" in lines[2] and "Ekim-2026" in lines[3]
    assert lines[2].endswith("…") and len(lines[2].split("  ")[-1].strip()) == 30
    assert " -  " in lines[3]  # firma bazında rows show "-" for the branch
    failed = StatusRow("Örnek", None, Period(2026, 3), "Onaylı Berat İndirildi", "Yedeklenemedi", "neden " * 40)
    assert format_table([failed], max_message=30).splitlines()[2].endswith("neden neden")  # reasons are kept whole


def test_settle_progress_counts_finished_and_deferred_months() -> None:
    scenario = make_scenario("demo", TODAY)
    exp = scenario.expectations()
    states = {}
    for key, value in exp.items():
        if value is Expectation.READY:
            states[key] = RunState("d", "r", "success")
        elif value is Expectation.TAMPERED:
            states[key] = RunState("d", "r", "failed")
        else:
            states[key] = RunState("d", "r", "running", "deferred")
    assert settle_progress(exp, states) == (len(exp), len(exp), [])
    waiting = next(k for k, v in exp.items() if v is Expectation.WAITING)
    states[waiting] = RunState("d", "r", "running", "running")  # sensor not deferred yet
    ready = next(k for k, v in exp.items() if v is Expectation.READY)
    states[ready] = RunState("d", "r", "failed")
    done, total, wrong = settle_progress(exp, states)
    assert (done, total) == (len(exp) - 1, len(exp))
    assert len(wrong) == 1 and "run failed, expected ready" in wrong[0]


# ---------------------------------------------------------------- processes

_TREE = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    log, name, depth, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    def on_term(*_):
        with open(log, "a") as fh:
            fh.write(f"{name} {time.monotonic()}\\n")
        if mode != "stubborn":
            sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    if depth > 0:
        child = subprocess.Popen([sys.executable, __file__, log, name + ".c", str(depth - 1), mode])
        if mode == "orphan":
            os._exit(0)  # leave the child re-parented to init, still in our session
    with open(log + ".ready", "a") as fh:
        fh.write(f"{name} {os.getpid()}\\n")
    while True:
        time.sleep(0.1)
    """
)


def _start_tree(tmp_path: Path, mode: str, depth: int = 2) -> tuple[ProcessGroup, Path, list[int]]:
    script = tmp_path / "tree.py"
    script.write_text(_TREE)
    log = tmp_path / f"{mode}.log"
    group = ProcessGroup(stop_timeout=4)
    group.start("tree", [sys.executable, str(script), str(log), "p", str(depth), mode], env=os.environ,
                log_path=tmp_path / "tree.out", cwd=tmp_path)
    ready = Path(str(log) + ".ready")
    wanted = 1 if mode == "orphan" else depth + 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ready.exists() and len(ready.read_text().splitlines()) >= wanted:
            break
        time.sleep(0.05)
    pids = [int(line.split()[1]) for line in ready.read_text().splitlines()]
    return group, log, pids


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_terminates_children_before_parents(tmp_path: Path) -> None:
    group, log, pids = _start_tree(tmp_path, "polite")
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    assert group.stop() == []  # nobody needed SIGKILL
    order = [line.split()[0] for line in log.read_text().splitlines()]
    # The direct child first, then what it left behind, the parent last.
    assert order == ["p.c", "p.c.c", "p"]
    assert not any(_alive(p) for p in pids)


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    group, _log, pids = _start_tree(tmp_path, "stubborn", depth=1)
    killed = group.stop()
    assert sorted(killed) == sorted(pids)
    assert not any(_alive(p) for p in pids)


def test_stop_finds_reparented_orphans_in_the_session(tmp_path: Path) -> None:
    group, _log, pids = _start_tree(tmp_path, "orphan", depth=1)
    (orphan,) = pids
    assert psutil.Process(orphan).ppid() != group.processes[0].popen.pid
    group.stop()
    assert not _alive(orphan)


def test_stop_of_a_finished_process_is_harmless(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert stop_process_tree(proc.pid) == []


def test_check_alive_reports_a_dead_component(tmp_path: Path) -> None:
    group = ProcessGroup()
    group.start("broken", [sys.executable, "-c", "raise SystemExit(3)"], env=os.environ,
                log_path=tmp_path / "broken.log", cwd=tmp_path)
    group.processes[0].popen.wait()
    with pytest.raises(demo.DemoError, match=r"broken exited with 3; see .*broken.log"):
        group.check_alive()
    group.stop()


def test_signal_handlers_turn_sigterm_into_cleanup() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    try:
        demo.install_signal_handlers()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_free_port_prefers_the_given_port_when_free() -> None:
    import socket

    port = demo.free_port()
    assert demo.free_port(port) == port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert demo.free_port(port) != port


def test_failure_reason_reads_the_verdict_from_the_task_log(tmp_path: Path) -> None:
    import json

    paths = demo.Paths(tmp_path)
    run = RunState("edefter_yedekleme_1234567801", "backfill__2026-03-31T21:00:00+00:00", "failed")
    task_dir = paths.airflow_home / "logs" / f"dag_id={run.dag_id}" / f"run_id={run.run_id}" / "task_id=verify"
    task_dir.mkdir(parents=True)
    verdict = (
        "Yedeklenemedi: Mart-2026 e-Defter dosyaları doğrulanamadı (1 sorun) / Backup failed (1 problems)\n"
        "- [crypto.signature.reference_digest] 1234567801-202603-Y-000000.xml: Belge özeti tutmuyor\n"
        "- second problem"
    )
    lines = [
        {"event": "Filling up the DagBag"},
        {"event": "Task failed with exception", "error_detail": [{"exc_type": "AirflowFailException", "exc_value": verdict}]},
        {"event": "::endgroup::"},
    ]
    (task_dir / "attempt=1.log").write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    reason = demo.failure_reason(paths, run)
    assert reason.startswith("Yedeklenemedi: Mart-2026")
    assert "[crypto.signature.reference_digest] 1234567801-202603-Y-000000.xml: Belge özeti tutmuyor" in reason
    assert "second problem" not in reason and "Backup failed" not in reason
    other = RunState(run.dag_id, "manual__x", "failed")
    assert "manual__x failed" in demo.failure_reason(paths, other)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_are_interrupted_when_the_demo_is_killed(tmp_path: Path) -> None:
    """kill -9 of the demo cannot run its cleanup; the kernel then interrupts each direct child."""
    script = tmp_path / "tree.py"
    script.write_text(_TREE)
    log = tmp_path / "pdeath.log"
    launcher = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from include.pipeline.demo import ProcessGroup
        group = ProcessGroup()
        proc = group.start("tree", [sys.executable, {str(script)!r}, {str(log)!r}, "p", "0", "polite"],
                           env=os.environ, log_path=Path({str(tmp_path / "tree.out")!r}), cwd=Path({str(tmp_path)!r}))
        print(proc.popen.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True, cwd=demo.PROJECT_ROOT)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    ready = Path(str(log) + ".ready")
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 15
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    survived = _alive(child)
    if survived:  # do not leave it behind when the test fails
        os.kill(child, signal.SIGKILL)
    assert not survived


def test_var_dir_lock_refuses_a_second_demo(tmp_path: Path) -> None:
    held = demo.lock_var_dir(tmp_path)
    other = subprocess.run(
        [sys.executable, "-c", f"from include.pipeline.demo import lock_var_dir; lock_var_dir(__import__('pathlib').Path({str(tmp_path)!r}))"],
        capture_output=True,
        text=True,
        cwd=demo.PROJECT_ROOT,
    )
    assert other.returncode != 0 and "another `make run` / `make demo` is using" in other.stderr
    held.close()
    again = demo.lock_var_dir(tmp_path)
    again.close()


# ---------------------------------------------------------------- the demo table through the status function


class _FakeApi:
    """The two REST reads run_info makes, answered as the api-server answers them for a verify failure."""

    def __init__(self, reason: str | None) -> None:
        self.reason = reason
        self.asked: list[tuple[str, str]] = []

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {"wait_for_approved_berats": "success", "verify": "failed", "upload": "upstream_failed"}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> object:
        self.asked.append((task_id, key))
        return self.reason if (task_id, key) == ("verify", "edefter_reason") else None


def test_demo_table_shows_a_verify_failed_month_as_yedeklenemedi_with_its_reason(
    tmp_path: Path, integrator, sample_pki  # noqa: ANN001 - fixtures from tests/pipeline/conftest.py
) -> None:
    """The demo's table is the status function's (status.month_rows): folder + the month's run (failed in
    verify, its reason as the pipeline stored it in XCom) + the real integrator (nothing submitted)."""
    from include.edefter.sample import generate_month
    from include.edefter.sample.breakage import flip_byte_in_ledger_body
    from tests.pipeline.conftest import PASSWORD

    company = demo.DemoCompany("bozuk-demo", "5555555555", "Bozuk Demo A.Ş.", automatic=True, tampered=(0,))
    scenario = demo.Scenario("t", (Period(2026, 3), Period(2026, 4)), (company,))
    paths = demo.Paths(tmp_path)
    for month in scenario.months:
        mf = generate_month(paths.edefter / company.id, taxpayer_id=company.taxpayer_id, company_name=company.name,
                            period=month, pki=sample_pki)
        if month == Period(2026, 3):
            flip_byte_in_ledger_body(mf.path("Y"))
    paths.companies_file.parent.mkdir(parents=True, exist_ok=True)
    paths.companies_file.write_text(demo._yaml_dump(scenario_config(scenario, paths.edefter)), encoding="utf-8")
    stack = demo.Stack(scenario, paths, ProcessGroup(), integrator_port=integrator.port)
    stack.credentials[company.conn_id(None)] = (integrator.account(company.taxpayer_id), PASSWORD)
    reason = (
        "Yedeklenemedi: Mart-2026 e-Defter dosyaları doğrulanamadı (1 sorun) / Backup failed (1 problems)\n"
        "- [crypto.signature.reference_digest] 5555555555-202603-Y-000000.xml: Belge özeti tutmuyor / digest mismatch"
    )
    dag_id = company.dag_id(None)
    states = {
        (company.taxpayer_id, None, Period(2026, 3)): RunState(dag_id, "backfill__2026-02-28T21:00:00+00:00", "failed"),
        (company.taxpayer_id, None, Period(2026, 4)): RunState(dag_id, "backfill__2026-03-31T21:00:00+00:00", "running",
                                                              sensor_state="deferred"),
    }
    api = _FakeApi(reason)
    rows = demo.status_rows(stack, states, api)  # type: ignore[arg-type]
    assert all(type(r) is demo.StatusRow for r in rows) and demo.StatusRow.__module__ == "include.pipeline.status"
    by_month = {r.month: r for r in rows}
    failed, waiting = by_month[Period(2026, 3)], by_month[Period(2026, 4)]
    assert failed.backup_status == BackupStatus.YEDEKLENEMEDI.value and failed.failed_task == "verify"
    assert failed.message.startswith("Doğrulama: Yedeklenemedi: Mart-2026")
    assert "5555555555-202603-Y-000000.xml: Belge özeti tutmuyor" in failed.message and "digest mismatch" not in failed.message
    assert waiting.backup_status == BackupStatus.GONDERILMEDI.value
    table = format_table(rows)
    assert "Mart-2026" in table and "Yedeklenemedi" in table and "Belge özeti tutmuyor" in table
    assert check_outcome(rows, {failed.key(): Expectation.TAMPERED}) == []
    # No stored reason (a task killed before its callback): the task log's verdict, then the step's name.
    rows = demo.status_rows(stack, states, _FakeApi(None))  # type: ignore[arg-type]
    failed = next(r for r in rows if r.month == Period(2026, 3))
    assert failed.backup_status == BackupStatus.YEDEKLENEMEDI.value and failed.message.startswith("Doğrulama: ")
