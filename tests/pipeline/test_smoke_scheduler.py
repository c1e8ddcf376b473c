"""Smoke test through the real scheduler: `make run` on a tiny world, then Ctrl-C.

`python -m include.pipeline.demo run --scenario smoke` starts, in an isolated var dir, the integrator on
127.0.0.1, `airflow standalone` (api-server, scheduler, dag-processor, triggerer) on a free port with
its own AIRFLOW_HOME, one company, and `airflow backfill create` for 3 months. The test waits (bounded)
for the status table, checks every month Yedeklendi both in the table and by asking the integrator
itself, then sends SIGINT as a user's Ctrl-C would and checks that every process is gone.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from include.pipeline.demo import free_port, make_scenario
from tests.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SETTLE_TIMEOUT = 240  # seconds; the run itself takes ~1-2 minutes on 2 cores


def _reader(stream, lines: list[str]) -> None:
    for line in iter(stream.readline, ""):
        lines.append(line.rstrip("\n"))


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _processes_using(var_dir: Path) -> list[str]:
    """Every live process whose environment or command line points into var_dir."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
            continue
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(var_dir) in cmdline or str(var_dir) in env.get("AIRFLOW_HOME", ""):
            found.append(f"{proc.pid} {cmdline[:120]}")
    return found


def test_run_backfills_three_months_to_yedeklendi_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.pop("AIRFLOW_HOME", None)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "include.pipeline.demo",
            "run",
            "--scenario",
            "smoke",
            "--var-dir",
            str(var_dir),
            "--port",
            str(port),
            "--settle-timeout",
            str(SETTLE_TIMEOUT),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    try:
        deadline = time.monotonic() + SETTLE_TIMEOUT + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any("Durdurmak için Ctrl-C" in line for line in lines):
                break
            time.sleep(1)
        output = "\n".join(lines)
        assert proc.poll() is None, f"demo exited early ({proc.returncode}):\n{output[-4000:]}"
        assert any("Durdurmak için Ctrl-C" in line for line in lines), (
            f"no status table in time:\n{output[-4000:]}"
        )

        # The UI is announced with its address and login.
        assert f"Airflow UI: http://127.0.0.1:{port}" in output
        assert "kullanıcı (user): admin" in output
        # The months were backfilled through the CLI.
        assert "airflow backfill create --dag-id edefter_yedekleme_1234567801" in output

        # The status table: all three months Yedeklendi, and the outcome check agreed.
        scenario = make_scenario("smoke")
        table_rows = [line for line in lines if line.startswith("Örnek Ticaret A.Ş.")]
        assert len(table_rows) == 3, output[-3000:]
        for month, row in zip(scenario.months, table_rows, strict=True):
            assert month.label_tr in row and "Yedeklendi" in row and "Onaylı Berat İndirildi" in row
        assert "Sonuç beklendiği gibi" in output

        # Ask the integrator itself, with the Connection the demo generated (0600 file, never printed).
        secrets_file = var_dir / "demo" / "connections.env"
        assert secrets_file.stat().st_mode & 0o077 == 0
        (line,) = [x for x in secrets_file.read_text().splitlines() if x.startswith("export AIRFLOW_CONN_")]
        uri = shlex.split(line.split("=", 1)[1])[0]
        match = re.fullmatch(r"http://([^:]+):([^@]+)@127\.0\.0\.1:(\d+)", uri)
        assert match, "connection URI has an unexpected form"
        from urllib.parse import unquote

        user, password, integrator_port = unquote(match[1]), unquote(match[2]), int(match[3])
        assert password not in output, "an integrator password was printed"
        for month in scenario.months:
            response = requests.get(
                f"http://127.0.0.1:{integrator_port}/v1/months/1234567801/{month.yyyymm}",
                auth=(user, password),
                timeout=10,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "Yedeklendi", body
            assert (
                body["message_tr"]
                == f"{month.label_tr} ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi."
            )

        # Runs name their month: the backfill's runs carry the note "Ocak-2026" etc. (set by the
        # plugin's listener in the scheduler), whatever Airflow named their run_id.
        from include.pipeline.demo import AirflowApi, Paths, month_of_run

        api = AirflowApi(f"http://127.0.0.1:{port}", Paths(var_dir).airflow_home / "simple_auth_manager_passwords.json.generated")
        runs = api.runs("edefter_yedekleme_1234567801")
        assert sorted((month_of_run(r), r.get("note")) for r in runs) == [(m, m.label_tr) for m in scenario.months], runs

        # Ctrl-C: every process the demo started must go away, children first, no orphans.
        started = _tree(proc.pid)
        assert len(started) >= 4, [
            p.cmdline()[:4] for p in started
        ]  # demo, integrator, standalone + components
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
        gone, alive = psutil.wait_procs(started, timeout=10)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
        assert _processes_using(var_dir) == []
        assert "needed SIGKILL" not in "\n".join(lines), "\n".join(lines[-20:])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                for p in reversed(_tree(proc.pid)):
                    p.kill()
