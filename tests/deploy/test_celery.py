"""CeleryExecutor with two workers, for real (see celery_stack.py for what runs).

Phase 1: 10 companies × 3 months, backfilled through the REST API: every run succeeds, the integrator
says Yedeklendi, the archive holds complete evidence for every month, both workers ran `upload`, and
no worker's private work dir keeps a file.

Phase 2: more months for a few companies; one worker is SIGKILLed (with its pool and task processes)
while tasks run on it. Every month still ends success / Yedeklendi on the surviving worker, with one
submission per month and manifest, and no object stored twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from include.edefter.naming import Period
from include.edefter.sample import Stage, generate_month
from tests.conftest import require_or_skip
from tests.deploy.celery_stack import (
    CeleryStack,
    UnitSpec,
    celery_available,
    pg_available,
    redis_server_binary,
)
from tests.pipeline.conftest import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(900)]

QUEUE = "ofis-a"  # two companies are pinned to this Celery queue; both workers listen to it
UNITS = [UnitSpec(f"12345678{i:02d}", queue=QUEUE if i in (3, 7) else None) for i in range(10, 20)]
PHASE1_MONTHS = [Period(2025, 1), Period(2025, 2), Period(2025, 3)]
PHASE2_UNITS = UNITS[:4]
PHASE2_MONTHS = [Period(2025, 4), Period(2025, 5)]
CODES = {"Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, sample_pki) -> Iterator[CeleryStack]:
    require_or_skip(celery_available(), "apache-airflow-providers-celery not installed (pip install -r requirements.txt)")
    require_or_skip(redis_server_binary() is not None, "redis-server not installed (Debian package redis-server)")
    require_or_skip(pg_available(), "PostgreSQL not reachable at 127.0.0.1:5432 (user postgres, trust)")
    root = tmp_path_factory.mktemp("celery")
    s = CeleryStack(root=root, units=UNITS, pki=sample_pki, queues=f"default,{QUEUE}")
    try:
        s.start()
        # The e-Defter folders: one shared tree, generated with the project's own generator.
        for unit in UNITS:
            for month in PHASE1_MONTHS + (PHASE2_MONTHS if unit in PHASE2_UNITS else []):
                generate_month(s.edefter_root / unit.taxpayer_id, taxpayer_id=unit.taxpayer_id,
                               company_name=f"Firma {unit.taxpayer_id} A.Ş.", period=month, pki=sample_pki,
                               stage=Stage.GIB_BERATS)
        s.wait_for_dags()
        yield s
    except BaseException:
        _dump_logs(s)
        raise
    finally:
        s.stop()


def _dump_logs(s: CeleryStack) -> None:
    for proc in s.procs.values():
        with open(proc.log, errors="replace") as fh:
            print(f"===== {proc.name} (last lines) =====\n{fh.read()[-2500:]}")


def _integrator_db(s: CeleryStack) -> sqlite3.Connection:
    assert s.integrator is not None
    return sqlite3.connect(f"file:{s.integrator.data / 'metadata.sqlite3'}?mode=ro", uri=True)


def _assert_archived(s: CeleryStack, unit: UnitSpec, month: Period) -> None:
    """Yedeklendi at the integrator, all 7 files archived, complete evidence stored with the month."""
    from include.integrator.client import IntegratorClient

    assert s.integrator is not None
    user = s.integrator.account(unit.taxpayer_id)
    with IntegratorClient(s.integrator.url, user, PASSWORD) as c:
        status = c.month_status(unit.taxpayer_id, None, month)
        assert status.status.value == "Yedeklendi", (unit.taxpayer_id, str(month), status)
        files = [f for f in c.list_files(unit.taxpayer_id, None) if f.period == month]
        assert {f.code for f in files} == CODES, (unit.taxpayer_id, str(month), files)
        receipts = c.list_evidence(unit.taxpayer_id, None, month)
        assert receipts, f"no evidence in the archive for {unit.taxpayer_id} {month}"
        docs = [json.loads(c.get_evidence(unit.taxpayer_id, None, month, r.sha256)) for r in receipts]
    names = {f.name for f in files}
    for doc in docs:
        assert doc["taxpayer_id"] == unit.taxpayer_id and doc["month"] == str(month)
        assert doc["backup_status"] == "Yedeklendi"
        assert doc["submission_id"] == status.submission_id
        assert len(doc["files"]) == len(CODES), doc["files"]
        for f in doc["files"]:
            assert f["signature_value"], f
            assert f["receipt"] and f["receipt"].get("sha256"), f
            assert f["zip_name"] in names or f["zip_name"].removesuffix(".zip") + ".zip" in names, (f, names)


def _hostnames(s: CeleryStack, task_id: str, dag_ids: list[str]) -> Counter[str]:
    rows = s.query(
        "SELECT hostname FROM task_instance WHERE task_id = %s AND state = 'success' AND dag_id = ANY(%s)",
        (task_id, dag_ids),
    )
    return Counter(r[0] for r in rows)


def test_ten_companies_three_months_on_two_workers(stack: CeleryStack) -> None:
    t0 = time.monotonic()
    for unit in UNITS:
        stack.backfill(unit, PHASE1_MONTHS[0], PHASE1_MONTHS[-1])
    for unit in UNITS:
        stack.unpause(unit)
    expected = [(u.dag_id, m) for u in UNITS for m in PHASE1_MONTHS]
    states = stack.wait_runs(expected, timeout=420)
    print(f"phase 1: {len(expected)} runs settled in {time.monotonic() - t0:.0f} s")
    assert set(states.values()) == {"success"}, {k: v for k, v in states.items() if v != "success"}

    for unit in UNITS:
        for month in PHASE1_MONTHS:
            _assert_archived(stack, unit, month)

    # Both workers ran uploads, under their own hostnames.
    uploads = _hostnames(stack, "upload", [u.dag_id for u in UNITS])
    assert sum(uploads.values()) == len(expected), uploads
    assert {"w1.celery-test", "w2.celery-test"} <= set(uploads), uploads
    # The queue-pinned companies' tasks went through their queue.
    rows = stack.query("SELECT DISTINCT dag_id, queue FROM task_instance WHERE dag_id = ANY(%s)",
                       ([u.dag_id for u in UNITS],))
    for dag_id, queue in rows:
        unit = next(u for u in UNITS if u.dag_id == dag_id)
        assert queue == (unit.queue or "default"), (dag_id, queue)

    # Each task's workspace died with the task, on both workers.
    for worker in stack.worker_names:
        assert stack.work_leftovers(worker) == [], (worker, stack.work_leftovers(worker))

    # One submission per month, none repeated.
    with _integrator_db(stack) as db:
        rows = db.execute("SELECT taxpayer_id, period, count(*) FROM submissions GROUP BY 1, 2").fetchall()
    assert all(n == 1 for *_k, n in rows), rows


def _wait_running_on(stack: CeleryStack, hostname: str, dag_ids: list[str], timeout: float,
                     prefer: tuple[str, ...] = ("verify", "upload"), prefer_for: float = 120) -> list[tuple]:
    """Running task instances on `hostname`, as soon as one of `prefer` runs there (they do the work);
    any running task after `prefer_for` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        rows = stack.query(
            "SELECT dag_id, run_id, task_id FROM task_instance WHERE state = 'running' AND hostname = %s "
            "AND dag_id = ANY(%s)",
            (hostname, dag_ids),
        )
        if rows and (any(r[2] in prefer for r in rows) or time.monotonic() - start > prefer_for):
            return rows
        time.sleep(0.1)
    return []


def test_sigkill_of_one_worker_mid_run_still_archives_every_month_once(stack: CeleryStack) -> None:
    dag_ids = [u.dag_id for u in PHASE2_UNITS]
    for unit in PHASE2_UNITS:
        stack.backfill(unit, PHASE2_MONTHS[0], PHASE2_MONTHS[-1])
        stack.unpause(unit)
    running = _wait_running_on(stack, "w1.celery-test", dag_ids, timeout=240)
    assert running, f"no task ever ran on w1:\n{stack.task_summary()}"
    stack.kill_worker("w1")
    t_kill = time.monotonic()

    expected = [(u.dag_id, m) for u in PHASE2_UNITS for m in PHASE2_MONTHS]
    states = stack.wait_runs(expected, timeout=420, allow_dead=["worker-w1"])
    print(f"phase 2: killed w1 while running {running}; settled {time.monotonic() - t_kill:.0f} s later")
    assert set(states.values()) == {"success"}, {k: v for k, v in states.items() if v != "success"}

    # The killed tasks were retried (try_number > 1) and finished on the surviving worker.
    for dag_id, run_id, task_id in running:
        (row,) = stack.query(
            "SELECT state, try_number, hostname FROM task_instance WHERE dag_id=%s AND run_id=%s AND task_id=%s",
            (dag_id, run_id, task_id),
        )
        assert row[0] == "success" and row[1] >= 2 and row[2] == "w2.celery-test", (dag_id, run_id, task_id, row)

    for unit in PHASE2_UNITS:
        for month in PHASE2_MONTHS:
            _assert_archived(stack, unit, month)

    with _integrator_db(stack) as db:
        periods = [m.yyyymm for m in PHASE2_MONTHS]
        marks = ",".join("?" * len(periods))
        subs = db.execute(
            f"SELECT taxpayer_id, period, manifest_sha256, status FROM submissions WHERE period IN ({marks})", periods
        ).fetchall()
        files = db.execute(f"SELECT filename, sha256 FROM files WHERE period IN ({marks})", periods).fetchall()
        staged = db.execute(f"SELECT filename, sha256 FROM staged_files WHERE period IN ({marks})", periods).fetchall()
    per_month = Counter((t, p) for t, p, _m, _s in subs)
    per_manifest = Counter((t, p, m) for t, p, m, _s in subs)
    assert len(per_month) == len(expected) and set(per_month.values()) == {1}, subs
    assert set(per_manifest.values()) == {1}, subs
    assert {s for *_x, s in subs} == {"Yedeklendi"}, subs
    # No duplicate object: every archived name once, 7 per month.
    names = Counter(name for name, _sha in files)
    assert set(names.values()) == {1} and len(names) == len(expected) * len(CODES), names
    # Uploads are staged until their set is Yedeklendi (rows kept for forensics): a retried upload on
    # the other worker re-sent the same bytes, so each name was staged once, with the committed bytes.
    staged_names = Counter(name for name, _sha in staged)
    assert set(staged_names.values()) <= {1}, staged_names
    committed = dict(files)
    assert all(committed.get(name) == sha for name, sha in staged), (staged, committed)

    # The surviving worker's workspace is clean; the killed one could not clean up what it held.
    assert stack.work_leftovers("w2") == [], stack.work_leftovers("w2")
