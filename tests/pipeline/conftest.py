"""Harness for the end-to-end DAG tests: a real integrator on 127.0.0.1, real signed sample
months, an SMTP sink (aiosmtpd) and a webhook receiver on loopback, and Airflow's dag.test().
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from include.edefter.naming import Period
from include.edefter.sample import Stage, TestPKI, generate_month

PASSWORD = "s3cret-Entegrator!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Integrator:
    data: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    accounts: dict[tuple[str, str | None], str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        assert self.proc is None
        self.log = self.data.parent / f"integrator-{self.port}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "include.integrator", "serve",
                "--host", "127.0.0.1", "--port", str(self.port), "--data", str(self.data), "--log-level", "warning",
            ],
            stdout=open(self.log, "ab"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.extra_env},
        )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text() if self.log else ""
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError("integrator did not become healthy")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def account(self, taxpayer_id: str, branch: str | None = None) -> str:
        """Create (once) the account of a taxpayer/branch; returns the username."""
        key = (taxpayer_id, branch)
        if key in self.accounts:
            return self.accounts[key]
        from include.integrator.auth import create_account
        from include.integrator.context import ServiceContext
        from include.integrator.settings import Settings

        username = f"u{taxpayer_id}" + (f"-{branch}" if branch else "")
        ctx = ServiceContext(Settings.from_env(self.data))
        try:
            with ctx.session() as sess, sess.begin():
                create_account(sess, username, PASSWORD, taxpayer_id, branch)
        finally:
            ctx.close()
        self.accounts[key] = username
        return username

    def conn_uri(self, taxpayer_id: str, branch: str | None = None, password: str = PASSWORD) -> str:
        return f"http://{self.account(taxpayer_id, branch)}:{password}@127.0.0.1:{self.port}"

    def stored(self, taxpayer_id: str, branch: str | None = None) -> list[tuple[str, str]]:
        """(name, sha256) of every archived file of a taxpayer, through the real list API."""
        from include.integrator.client import IntegratorClient

        with IntegratorClient(self.url, self.account(taxpayer_id, branch), PASSWORD) as c:
            return sorted((f.name, f.sha256) for f in c.list_files(taxpayer_id, branch))

    def evidence(self, taxpayer_id: str, period: Period, branch: str | None = None) -> list[dict[str, Any]]:
        """Every evidence document ("Kayıt Bilgisi") the archive keeps for the month, decoded."""
        from include.integrator.client import IntegratorClient

        with IntegratorClient(self.url, self.account(taxpayer_id, branch), PASSWORD) as c:
            return [
                json.loads(c.get_evidence(taxpayer_id, branch, period, r.sha256))
                for r in c.list_evidence(taxpayer_id, branch, period)
            ]


@pytest.fixture(scope="session")
def integrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Integrator]:
    data = tmp_path_factory.mktemp("integrator") / "data"
    data.mkdir()
    srv = Integrator(data=data, port=free_port())
    srv.start()
    yield srv
    srv.stop()


# -- alert receivers ------------------------------------------------------------------------------


@dataclass
class SmtpSink:
    port: int
    messages: list[Any]


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpSink(port, received)
    controller.stop()


@dataclass
class WebhookReceiver:
    port: int
    payloads: list[dict[str, Any]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/edefter"


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookReceiver]:
    payloads: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            payloads.append({"path": self.path, **json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield WebhookReceiver(server.server_address[1], payloads)
    server.shutdown()


# -- DAG runs ---------------------------------------------------------------------------------------


@dataclass
class Env:
    """One test's world: config file, folders, connections; builds and runs DAGs with dag.test."""

    tmp: Path
    integrator: Integrator
    pki: TestPKI
    monkeypatch: pytest.MonkeyPatch
    companies: list[dict[str, Any]] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    smtp: Any = None
    webhook: Any = None

    def company(self, cid: str, taxpayer_id: str, *, branches: list[str] | None = None, connect: bool = True,
                **extra: Any) -> Path:
        folder = self.tmp / "edefter" / cid
        folder.mkdir(parents=True, exist_ok=True)
        entry: dict[str, Any] = {
            "id": cid,
            "taxpayer_id": taxpayer_id,
            "name": f"{cid.title()} A.Ş.",
            "folder": str(folder),
            "automatic": True,
            "start_month": "2025-01",
        }
        if branches:
            entry["branches"] = [
                {"branch": b, "name": f"Şube {b}", "integrator_conn_id": f"edefter_test_{taxpayer_id}_{b}"} for b in branches
            ]
            for b in branches:
                if connect:
                    self.connect(f"edefter_test_{taxpayer_id}_{b}", self.integrator.conn_uri(taxpayer_id, b))
        else:
            entry["integrator_conn_id"] = f"edefter_test_{taxpayer_id}"
            if connect:
                self.connect(f"edefter_test_{taxpayer_id}", self.integrator.conn_uri(taxpayer_id))
        entry.update(extra)
        self.companies.append(entry)
        return folder

    def connect(self, conn_id: str, uri: str) -> None:
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)

    def month(self, folder: Path, taxpayer_id: str, period: Period, *, stage: Stage = Stage.GIB_BERATS,
              branch: str | None = None, **kw: Any):  # -> MonthFiles
        return generate_month(folder, taxpayer_id=taxpayer_id, company_name="Test A.Ş.", period=period, pki=self.pki,
                              stage=stage, branch=branch, branch_name=f"Şube {branch}" if branch else None, **kw)

    def config_path(self) -> Path:
        path = self.tmp / "companies.yaml"
        path.write_text(yaml.safe_dump({"defaults": self.defaults, "companies": self.companies}, allow_unicode=True),
                        encoding="utf-8")
        self.monkeypatch.setenv("EDEFTER_COMPANIES_FILE", str(path))
        return path

    def dag(self, dag_id: str):  # -> DAG
        from include.pipeline.config import load_config
        from include.pipeline.dag_factory import build_dag

        return build_dag(load_config(self.config_path()).unit(dag_id))

    def run(self, dag_id: str, month: Period | None = None, conf: dict[str, Any] | None = None) -> RunResult:
        import pendulum

        dag = self.dag(dag_id)
        kwargs: dict[str, Any] = {}
        if month is not None:
            # Airflow 3: a data-interval run's logical date is the interval END, so the run dated
            # the 1st of the next month (Istanbul) backs up ``month``.
            nxt = month.next()
            kwargs["logical_date"] = pendulum.datetime(nxt.year, nxt.month, 1, tz="Europe/Istanbul")
        else:
            kwargs["logical_date"] = pendulum.now("UTC")
        if conf is not None:
            kwargs["run_conf"] = conf
        dr = dag.test(**kwargs)
        tis = dr.get_task_instances()
        return RunResult(dr, {ti.task_id: ti.state for ti in tis}, {ti.task_id: ti.try_number for ti in tis})

    def work_leftovers(self) -> list[str]:
        """Anything tasks left in the work dir (each task's workspace must die with the task)."""
        root = self.tmp / "work"
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []

    def alert_reasons(self) -> list[str]:
        return [p["reason"] for p in self.webhook.payloads]


@dataclass
class RunResult:
    dag_run: Any
    states: dict[str, Any]
    tries: dict[str, int]

    @property
    def state(self) -> str:
        return str(self.dag_run.state)

    def xcom(self, task_id: str) -> Any:
        """The return value (XCom) of one task of this run, read from the metadata DB."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(run_id=self.dag_run.run_id, dag_ids=self.dag_run.dag_id, task_ids=task_id,
                                   key="return_value")
            ).first()
            return XComModel.deserialize_value(row) if row is not None else None

    def assert_states(self, **expected: str) -> None:
        got = {k: str(v) for k, v in self.states.items()}
        for task_id, state in expected.items():
            assert got.get(task_id) == state, f"{task_id}: {got.get(task_id)} != {state}; all: {got}"


@pytest.fixture
def env(tmp_path: Path, integrator: Integrator, sample_pki: TestPKI, monkeypatch: pytest.MonkeyPatch,
        airflow_db: Path, smtp_sink: SmtpSink, webhook: WebhookReceiver) -> Env:
    monkeypatch.setenv("EDEFTER_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("EDEFTER_EVIDENCE_DIR", str(tmp_path / "evidence"))
    # Trust the sample PKI's test CA and test GİB seal, as production trusts Kamu SM and GİB.
    monkeypatch.setenv("EDEFTER_TRUSTED_ROOTS", str(sample_pki.ca_cert_path))
    monkeypatch.setenv("EDEFTER_GIB_CERTS", str(sample_pki.gib_cert_path))
    e = Env(tmp_path, integrator, sample_pki, monkeypatch)
    e.defaults = {
        "poll_interval_seconds": 1,
        "status_poll_interval_seconds": 1,
        "status_timeout_seconds": 60,
        "retries": 0,
        "retry_delay_seconds": 1,
        "max_retry_delay_seconds": 2,
        "alerts": {"email": ["muhasebe@example.com.tr"], "webhook_conn_id": "edefter_test_webhook"},
    }
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp_sink.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "edefter@example.com.tr"}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
    monkeypatch.setenv("AIRFLOW_CONN_EDEFTER_TEST_WEBHOOK", json.dumps({"conn_type": "http", "extra": {"url": webhook.url}}))
    smtp_sink.messages.clear()
    webhook.payloads.clear()
    e.smtp = smtp_sink
    e.webhook = webhook
    return e


def evidence(tmp: Path, taxpayer_id: str, month: Period, branch: str | None = None) -> dict[str, Any]:
    path = tmp / "evidence" / taxpayer_id / (branch or "") / f"{month}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def tree_snapshot(folder: Path) -> dict[str, tuple[int, float, str]]:
    import hashlib

    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
