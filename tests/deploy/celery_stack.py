"""A real CeleryExecutor deployment on loopback, started and stopped by the tests.

Pieces: our own `redis-server` (broker; free port, nothing on disk), a fresh PostgreSQL database (Airflow
metadata AND the Celery result backend `db+postgresql+psycopg2://…`), the reference integrator service,
`airflow db migrate`, api-server, scheduler, dag-processor, triggerer and two `airflow celery worker`s
(`-H w1@%h`, `-H w2@%h`), each with a PRIVATE work dir (EDEFTER_WORK_DIR) and TMPDIR. The e-Defter
folders are one shared tree every component reads.

Every process runs in its own session (process group) and `stop()` ends each group: SIGTERM, then
SIGKILL after a grace period. `kill_worker()` SIGKILLs a worker's whole group (worker + pool + task
processes), as a machine loss would.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from include.edefter.naming import Period
from include.pipeline.demo import AirflowApi, backfill_window, free_port
from tests.conftest import PROJECT_ROOT
from tests.pipeline.conftest import Integrator

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, os.environ.get("EDEFTER_TEST_PG_USER", "postgres")
TIMEZONE = "Europe/Istanbul"


# ---------------------------------------------------------------------------------------- availability


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


def pg_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3).close()
        return True
    except Exception:
        return False


def celery_available() -> bool:
    try:
        import airflow.providers.celery  # noqa: F401
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        return False
    return True


def _pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` s (the group outlives its leader too)."""
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left in the group (pool children, task processes): killed.
        deadline = time.monotonic() + 5
        while _group_alive(self.popen.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


@dataclass(frozen=True)
class UnitSpec:
    """One backup unit (a company without branches) of the test world."""

    taxpayer_id: str
    queue: str | None = None

    @property
    def dag_id(self) -> str:
        return f"edefter_yedekleme_{self.taxpayer_id}"

    @property
    def conn_id(self) -> str:
        return f"edefter_celery_{self.taxpayer_id}"


@dataclass
class CeleryStack:
    root: Path
    units: list[UnitSpec]
    pki: Any  # include.edefter.sample.TestPKI
    procs: dict[str, Proc] = field(default_factory=dict)
    redis_port: int = 0
    api_port: int = 0
    db_name: str = ""
    integrator: Integrator | None = None
    env: dict[str, str] = field(default_factory=dict)
    api: AirflowApi | None = None
    worker_names: tuple[str, ...] = ("w1", "w2")
    queues: str = "default"

    # -- paths
    @property
    def edefter_root(self) -> Path:
        return self.root / "edefter"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def work_dir(self, worker: str) -> Path:
        return self.root / "workers" / worker / "work"

    def tmp_dir(self, worker: str) -> Path:
        return self.root / "workers" / worker / "tmp"

    @property
    def db_url(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"

    # -- start
    def start(self) -> None:
        for d in (self.edefter_root, self.airflow_home, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self._start_redis()
        self._create_db()
        self._start_integrator()
        self._write_companies()
        self._build_env()
        self._run(["db", "migrate"], "airflow-db-migrate", timeout=300)
        self.api_port = int(self.env["AIRFLOW__API__PORT"])
        for name, args in (
            ("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)]),
            ("scheduler", ["scheduler"]),
            ("dag-processor", ["dag-processor"]),
            ("triggerer", ["triggerer", "--skip-serve-logs"]),
        ):
            self._spawn(name, [sys.executable, "-m", "airflow", *args], self.env)
        for worker in self.worker_names:
            self.start_worker(worker)
        self._wait_api()

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> Proc:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as fh:
            popen = subprocess.Popen(
                argv, env=dict(env), cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=fh,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs[name] = proc
        return proc

    def _start_redis(self) -> None:
        binary = redis_server_binary()
        assert binary is not None
        self.redis_port = free_port()
        redis_dir = self.root / "redis"
        redis_dir.mkdir()
        self._spawn("redis", [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--daemonize", "no", "--dir", str(redis_dir)], os.environ)
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=1).ping()
                return
            except Exception as exc:
                if time.monotonic() > deadline or not self.procs["redis"].alive():
                    log = self.procs["redis"].log.read_text()[-2000:]
                    raise RuntimeError(f"redis-server did not start: {log}") from exc
                time.sleep(0.1)

    def _create_db(self) -> None:
        self.db_name = f"edefter_celery_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{self.db_name}"')

    def _drop_db(self) -> None:
        if not self.db_name:
            return
        with contextlib.suppress(Exception):
            _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.db_name}'")
        _pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}"')
        self.db_name = ""

    def _start_integrator(self) -> None:
        data = self.root / "integrator" / "data"
        data.mkdir(parents=True)
        self.integrator = Integrator(data=data, port=free_port())
        self.integrator.start()
        for unit in self.units:
            self.integrator.account(unit.taxpayer_id)

    def _write_companies(self) -> None:
        companies = []
        for unit in self.units:
            folder = self.edefter_root / unit.taxpayer_id
            folder.mkdir(parents=True, exist_ok=True)
            entry: dict[str, Any] = {
                "id": f"firma-{unit.taxpayer_id}",
                "taxpayer_id": unit.taxpayer_id,
                "name": f"Firma {unit.taxpayer_id} A.Ş.",
                "folder": str(folder),
                "automatic": True,
                "start_month": "2025-01",
                "integrator_conn_id": unit.conn_id,
            }
            if unit.queue:
                entry["queue"] = unit.queue
            companies.append(entry)
        defaults = {
            "poll_interval_seconds": 2,
            "status_poll_interval_seconds": 2,
            "status_timeout_seconds": 300,
            "deadline_warning_days": 0,
            "retries": 3,
            "retry_delay_seconds": 1,
            "max_retry_delay_seconds": 5,
            "max_active_runs": 3,
        }
        self.companies_file.write_text(
            yaml.safe_dump({"defaults": defaults, "companies": companies}, allow_unicode=True), encoding="utf-8"
        )

    @property
    def companies_file(self) -> Path:
        return self.root / "companies.yaml"

    def _build_env(self) -> None:
        assert self.integrator is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        api_port = free_port()
        result_backend = f"db+postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p),
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]),
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.deploy.hostname.hostname",
                # A SIGKILLed worker's task is declared dead after 20 s instead of 300 s, then retried.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(api_port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "EDEFTER_COMPANIES_FILE": str(self.companies_file),
                "EDEFTER_EVIDENCE_DIR": str(self.root / "evidence"),
                "EDEFTER_WORK_DIR": str(self.root / "work-nonworker"),
            }
        )
        for unit in self.units:
            env[f"AIRFLOW_CONN_{unit.conn_id.upper()}"] = self.integrator.conn_uri(unit.taxpayer_id)
        self.env = env

    def _run(self, args: list[str], name: str, timeout: float) -> None:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as fh:
            proc = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, cwd=PROJECT_ROOT,
                                  stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{log.read_text()[-4000:]}")

    def worker_env(self, worker: str) -> dict[str, str]:
        for d in (self.work_dir(worker), self.tmp_dir(worker)):
            d.mkdir(parents=True, exist_ok=True)
        return {
            **self.env,
            "EDEFTER_WORK_DIR": str(self.work_dir(worker)),
            "TMPDIR": str(self.tmp_dir(worker)),
            "EDEFTER_TEST_HOSTNAME": f"{worker}.celery-test",
        }

    def start_worker(self, worker: str) -> Proc:
        argv = [sys.executable, "-m", "airflow", "celery", "worker", "-H", f"{worker}@%h", "-q", self.queues,
                "--skip-serve-logs", "--concurrency", "2"]
        return self._spawn(f"worker-{worker}", argv, self.worker_env(worker))

    def kill_worker(self, worker: str) -> None:
        """SIGKILL the worker and everything in its process group (pool children, running tasks)."""
        proc = self.procs[f"worker-{worker}"]
        proc.signal_group(signal.SIGKILL)
        proc.popen.wait(10)

    def _wait_api(self, timeout: float = 240) -> None:
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("api-server not healthy in time")
            time.sleep(1)
        password_file = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        while not password_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("no SimpleAuthManager password file")
            time.sleep(0.5)
        self.api = AirflowApi(f"http://127.0.0.1:{self.api_port}", password_file)

    def check_alive(self, *, except_: Iterable[str] = ()) -> None:
        dead = [p for n, p in self.procs.items() if n not in set(except_) and not p.alive()]
        if dead:
            details = "\n".join(f"--- {p.name} exited {p.popen.returncode}:\n{p.log.read_text()[-3000:]}" for p in dead)
            raise RuntimeError(f"components died:\n{details}")

    # -- stop
    def stop(self) -> None:
        order = [n for n in self.procs if n.startswith("worker-")]
        order += [n for n in ("scheduler", "triggerer", "dag-processor", "api-server") if n in self.procs]
        order += [n for n in self.procs if n not in order and n != "redis"]
        if "redis" in self.procs:
            order.append("redis")
        errors: list[str] = []
        for name in order:
            try:
                self.procs[name].stop()
            except Exception as exc:  # keep stopping the others
                errors.append(f"{name}: {exc}")
        if self.integrator is not None:
            self.integrator.stop()
        try:
            self._drop_db()
        except Exception as exc:
            errors.append(f"drop database: {exc}")
        if errors:
            raise RuntimeError("; ".join(errors))

    # -- driving Airflow
    def wait_for_dags(self, timeout: float = 240) -> None:
        assert self.api is not None
        wanted = {u.dag_id for u in self.units}
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if wanted <= self.api.dag_ids():
                return
            errors = self.api.import_errors()
            if errors:
                raise RuntimeError(f"DAG import errors: {errors}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"DAGs not parsed in time: {sorted(wanted - self.api.dag_ids())}")
            time.sleep(2)

    def backfill(self, unit: UnitSpec, first: Period, last: Period) -> dict[str, Any]:
        """POST /api/v2/backfills (the REST twin of `airflow backfill create`)."""
        assert self.api is not None
        from include.pipeline.demo import DemoError

        from_date, to_date = backfill_window(first, last)
        body = {
            "dag_id": unit.dag_id,
            "from_date": from_date,
            "to_date": to_date,
            "run_backwards": False,
            "dag_run_conf": {},
            "reprocess_behavior": "none",
            "max_active_runs": 3,
        }
        # One backfill per DAG at a time: the scheduler marks the previous one completed a few
        # seconds after its last run finished (HTTP 409 until then).
        deadline = time.monotonic() + 90
        while True:
            try:
                return self.api.request("POST", "/backfills", json=body)
            except DemoError as exc:
                if "HTTP 409" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def unpause(self, unit: UnitSpec) -> None:
        assert self.api is not None
        self.api.unpause(unit.dag_id)

    # -- the metadata DB, read directly
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.db_name, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def run_states(self, dag_ids: Iterable[str]) -> dict[tuple[str, Period], str]:
        """(dag_id, backed-up month) -> dag run state."""
        import pendulum

        out: dict[tuple[str, Period], str] = {}
        rows = self.query(
            "SELECT dag_id, data_interval_start, state FROM dag_run WHERE dag_id = ANY(%s)", (list(dag_ids),)
        )
        for dag_id, start, state in rows:
            local = pendulum.instance(start).in_timezone(TIMEZONE)
            out[(dag_id, Period(local.year, local.month))] = str(state)
        return out

    def wait_runs(self, expected: Iterable[tuple[str, Period]], timeout: float, *, allow_dead: Iterable[str] = ()
                  ) -> dict[tuple[str, Period], str]:
        wanted = set(expected)
        dag_ids = {d for d, _ in wanted}
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive(except_=allow_dead)
            states = self.run_states(dag_ids)
            done = {k: v for k, v in states.items() if k in wanted and v in ("success", "failed")}
            if len(done) == len(wanted):
                return {k: states[k] for k in wanted}
            if time.monotonic() > deadline:
                pending = {k: states.get(k) for k in wanted if k not in done}
                raise AssertionError(f"runs not finished in {timeout:.0f} s: {pending}\n{self.task_summary()}")
            time.sleep(2)

    def task_summary(self) -> str:
        rows = self.query(
            "SELECT dag_id, run_id, task_id, state, try_number, hostname FROM task_instance "
            "WHERE state IS NULL OR state <> 'success' ORDER BY dag_id, run_id, task_id"
        )
        return "\n".join(" ".join(str(c) for c in r) for r in rows[:80])

    def work_leftovers(self, worker: str) -> list[str]:
        root = self.work_dir(worker)
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []
