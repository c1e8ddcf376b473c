"""`make run` and `make demo`: the whole product on embedded defaults, from a fresh clone.

    python -m include.pipeline.demo run    # UI: airflow standalone, prints the address and login
    python -m include.pipeline.demo demo   # headless, finishes by itself, exit 0 only if the outcome is right

Both build the same world under var/: a generated e-Defter folder (3 companies x 12 months: one company
backed up per branch, one manual; recent months still waiting for GİB's berats; one tampered ledger),
the reference integrator on 127.0.0.1 (filesystem + SQLite) with one account per company/branch, the
Airflow Connections as AIRFLOW_CONN_* variables of the child processes (random passwords per run, kept
only in the children's environment and in a 0600 file), an Airflow home on SQLite, and the real DAGs
driven by the real scheduler through `airflow backfill create` (manual company: triggered runs with
conf {"month": ...}). Once every month has settled, a status table is printed.

Each run starts from a clean var/ state on purpose: the demo files are regenerated (new signatures,
new bytes), and an integrator archive never accepts different bytes under an already archived name.

Every process started here runs in its own session and is stopped children-first (SIGTERM, then
SIGKILL after a grace period), so Ctrl-C leaves no orphans.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import enum
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.edefter.naming import Period
from include.edefter.status import BackupStatus, EDefterStatus
from include.pipeline.status import RunInfo, StatusRow

__all__ = [
    "DemoCompany",
    "Expectation",
    "ProcessGroup",
    "Scenario",
    "StatusRow",
    "backfill_window",
    "check_outcome",
    "connection_env_name",
    "connection_uri",
    "demo_months",
    "format_table",
    "free_port",
    "main",
    "make_scenario",
    "scenario_config",
    "stop_process_tree",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ISTANBUL = "Europe/Istanbul"


# --------------------------------------------------------------------------------------------------
# The scenario: which companies, which months, what each month should end as
# --------------------------------------------------------------------------------------------------


class Expectation(enum.Enum):
    """How a demo month must end for `make demo` to exit 0."""

    READY = "ready"  # every file incl. GİB berats present and intact -> Yedeklendi
    TAMPERED = "tampered"  # a ledger byte flipped after signing -> Yedeklenemedi with a reason
    WAITING = "waiting"  # GİB berats not downloaded yet -> still waiting, nothing sent


@dataclass(frozen=True)
class DemoCompany:
    id: str
    taxpayer_id: str
    name: str
    automatic: bool
    branches: tuple[tuple[str, str], ...] = ()  # (branch number, branch name); empty = firma bazında
    waiting_months: int = 0  # the last N months still wait for GİB's berats
    tampered: tuple[int, ...] = ()  # indexes into the scenario's months with a flipped ledger byte
    taxpayer_type: str = "kurumlar"

    def units(self) -> tuple[str | None, ...]:
        return tuple(b for b, _ in self.branches) if self.branches else (None,)

    def conn_id(self, branch: str | None) -> str:
        base = "edefter_integrator_" + self.id.replace("-", "_")
        return f"{base}_{branch}" if branch else base

    def username(self, branch: str | None) -> str:
        return f"{self.id}-{branch}" if branch else self.id

    def dag_id(self, branch: str | None) -> str:
        return (
            f"edefter_yedekleme_{self.taxpayer_id}_{branch}"
            if branch
            else f"edefter_yedekleme_{self.taxpayer_id}"
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    months: tuple[Period, ...]
    companies: tuple[DemoCompany, ...]
    poll_interval_seconds: int = 3
    status_poll_interval_seconds: int = 2

    def expectation(self, company: DemoCompany, index: int) -> Expectation:
        if index >= len(self.months) - company.waiting_months:
            return Expectation.WAITING
        if index in company.tampered:
            return Expectation.TAMPERED
        return Expectation.READY

    def expectations(self) -> dict[tuple[str, str | None, Period], Expectation]:
        """(taxpayer id, branch, month) -> expectation, for every unit and month."""
        out: dict[tuple[str, str | None, Period], Expectation] = {}
        for company in self.companies:
            for branch in company.units():
                for index, month in enumerate(self.months):
                    out[(company.taxpayer_id, branch, month)] = self.expectation(company, index)
        return out


def demo_months(today: dt.date, count: int = 12) -> tuple[Period, ...]:
    """The `count` months ending with the month before `today` (their data intervals are all past,
    so the scheduler may run every one of them)."""
    last = Period(today.year, today.month).previous()
    months = [last]
    while len(months) < count:
        months.append(months[-1].previous())
    return tuple(reversed(months))


def make_scenario(name: str, today: dt.date | None = None) -> Scenario:
    today = today or dt.date.today()
    if name == "smoke":
        # One company, three ready months: the real-scheduler smoke test.
        return Scenario(
            name="smoke",
            months=demo_months(today, 3),
            companies=(DemoCompany("ornek-ticaret", "1234567801", "Örnek Ticaret A.Ş.", automatic=True),),
        )
    if name != "demo":
        raise ValueError(f"unknown scenario {name!r} (demo, smoke)")
    return Scenario(
        name="demo",
        months=demo_months(today, 12),
        companies=(
            DemoCompany(
                "ornek-ticaret",
                "1234567801",
                "Örnek Ticaret A.Ş.",
                automatic=True,
                waiting_months=3,
                tampered=(4,),
            ),
            DemoCompany(
                "yildiz-gida",
                "9876543210",
                "Yıldız Gıda Ltd. Şti.",
                automatic=True,
                branches=(("0001", "Merkez"), ("0002", "Kadıköy Şube")),
                waiting_months=2,
            ),
            DemoCompany(
                "deniz-danismanlik",
                "12345678950",
                "Ayşe Deniz Mali Müşavirlik",
                automatic=False,
                waiting_months=2,
                taxpayer_type="gelir",
            ),
        ),
    )


def scenario_config(scenario: Scenario, folder_root: Path) -> dict[str, Any]:
    """The companies YAML (as data) for the scenario: the same schema a user writes, no secrets."""
    companies: list[dict[str, Any]] = []
    for company in scenario.companies:
        entry: dict[str, Any] = {
            "id": company.id,
            "taxpayer_id": company.taxpayer_id,
            "name": company.name,
            "folder": str(folder_root / company.id),
            "automatic": company.automatic,
            "start_month": f"{scenario.months[0].year:04d}-{scenario.months[0].month:02d}",
            "taxpayer_type": company.taxpayer_type,
        }
        if company.branches:
            entry["branches"] = [
                {"branch": b, "name": n, "integrator_conn_id": company.conn_id(b)}
                for b, n in company.branches
            ]
        else:
            entry["integrator_conn_id"] = company.conn_id(None)
        companies.append(entry)
    return {
        "defaults": {
            # Short polls so the demo settles in minutes; production keeps the defaults (hours).
            "poll_interval_seconds": scenario.poll_interval_seconds,
            "status_poll_interval_seconds": scenario.status_poll_interval_seconds,
            "retries": 1,
            "retry_delay_seconds": 5,
            "max_retry_delay_seconds": 10,
            "max_active_runs": 12,
        },
        "companies": companies,
    }


# --------------------------------------------------------------------------------------------------
# Small pure helpers: connections, backfill windows, table, outcome
# --------------------------------------------------------------------------------------------------


def connection_env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def connection_uri(username: str, password: str, host: str, port: int, scheme: str = "http") -> str:
    """Airflow's URI form of an http Connection; user and password are percent-encoded."""
    user = urllib.parse.quote(username, safe="")
    pw = urllib.parse.quote(password, safe="")
    return f"{scheme}://{user}:{pw}@{host}:{port}"


def month_start_utc(period: Period) -> dt.datetime:
    import pendulum

    return pendulum.datetime(period.year, period.month, 1, tz=ISTANBUL).in_timezone("UTC")


def backfill_window(first: Period, last: Period) -> tuple[str, str]:
    """--from-date/--to-date for `airflow backfill create` covering exactly the months first..last.

    The DAGs' monthly intervals start at midnight Istanbul (21:00 UTC the day before), and the CLI
    reads bare dates as UTC; 12 hours of margin each side selects exactly the wanted interval starts
    whatever the offset."""
    margin = dt.timedelta(hours=12)
    return (
        (month_start_utc(first) - margin).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        (month_start_utc(last) + margin).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
    )


def month_of_run(run: Mapping[str, Any]) -> Period | None:
    """Which month a DAG run (REST API JSON) backs up: conf["month"] when given, else its data
    interval start (Istanbul); the same rule as the status table's (status.month_of_run)."""
    from include.pipeline.status import month_of_run as month_of

    return month_of(run.get("conf") or {}, run.get("data_interval_start") or run.get("logical_date"))


def _width(text: str) -> int:
    # Turkish letters are single-width; combining marks (none expected) take no column.
    return sum(0 if unicodedata.combining(ch) else 1 for ch in text)


def format_table(rows: Sequence[StatusRow], *, max_message: int = 70) -> str:
    """The status table users read: Firma, Şube, Ay, e-Defter statüsü, Yedekleme durumu, Açıklama."""
    header = ("Firma", "Şube", "Ay", "e-Defter statüsü", "Yedekleme durumu", "Açıklama")
    body = []
    for r in rows:
        message = " ".join(r.message.split())
        # A failure reason is the point of its row (file and rule): never cut it short.
        if len(message) > max_message and r.backup_status != BackupStatus.YEDEKLENEMEDI.value:
            message = message[: max_message - 1] + "…"
        body.append(
            (r.company, r.branch or "-", r.month.label_tr, r.edefter_status, r.backup_status, message)
        )
    widths = [max(_width(str(row[i])) for row in (header, *body)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in body)])


def check_outcome(
    rows: Iterable[StatusRow], expectations: Mapping[tuple[str, str | None, Period], Expectation]
) -> list[str]:
    """Every way the demo outcome differs from what the scenario promises (empty = right)."""
    by_key = {r.key(): r for r in rows}
    problems: list[str] = []
    for key, expected in sorted(expectations.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        taxpayer_id, branch, month = key
        where = f"{taxpayer_id}{'/' + branch if branch else ''} {month.label_tr}"
        row = by_key.get(key)
        if row is None:
            problems.append(f"{where}: no status row")
            continue
        if expected is Expectation.READY:
            if row.backup_status != BackupStatus.YEDEKLENDI.value:
                problems.append(f"{where}: expected Yedeklendi, got {row.backup_status} ({row.message})")
        elif expected is Expectation.TAMPERED:
            if row.backup_status != BackupStatus.YEDEKLENEMEDI.value:
                problems.append(f"{where}: expected Yedeklenemedi, got {row.backup_status}")
            elif not row.message.strip():
                problems.append(f"{where}: Yedeklenemedi without a reason")
        else:
            if row.backup_status in (BackupStatus.YEDEKLENDI.value, BackupStatus.YEDEKLENEMEDI.value):
                problems.append(f"{where}: expected still waiting for GİB berats, got {row.backup_status}")
            if row.edefter_status == EDefterStatus.ONAYLI_BERAT_INDIRILDI.value:
                problems.append(f"{where}: expected GİB berats missing, got {row.edefter_status}")
    return problems


# --------------------------------------------------------------------------------------------------
# Processes: every child in its own session, stopped children-first, nothing left behind
# --------------------------------------------------------------------------------------------------


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` if it can be bound on host, else a free ephemeral port."""
    if preferred:
        with socket.socket() as s:
            try:
                s.bind((host, preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def stop_process_tree(pid: int, *, timeout: float = 20.0) -> list[int]:
    """SIGTERM pid's direct children, then its other descendants, then pid itself; SIGKILL what is alive
    after `timeout`, including anything left in pid's session (re-parented grandchildren).
    Returns the pids that had to be killed."""
    import psutil

    # ProcessGroup starts every child with start_new_session, so its pid is its session id; a root that
    # already exited (zombie or reaped) may still have left live children in that session.
    session = pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        session = os.getsid(pid)
    killed: list[int] = []
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return _sweep_session(session, killed)
    step = timeout / 3

    def terminate_and_wait(procs: list[psutil.Process]) -> None:
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        psutil.wait_procs(procs, timeout=step)

    with contextlib.suppress(psutil.NoSuchProcess):
        descendants = root.children(recursive=True)
        direct = root.children()
        # Children first: the direct children are Airflow's components under `standalone`; on SIGTERM
        # each shuts its own workers down cleanly. Then whatever they left, then the parent, which
        # would otherwise restart or wait on its children.
        terminate_and_wait(direct)
        terminate_and_wait([p for p in descendants if p not in direct and p.is_running()])
        terminate_and_wait([root])
        stubborn = []
        for proc in [*descendants, root]:
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.is_running() and not proc.cmdline():
                    # An empty command line: the kernel already released its memory, it is exiting
                    # (slowly on a loaded box). Give it a moment rather than counting it stubborn.
                    psutil.wait_procs([proc], timeout=10)
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    say(f"  SIGKILL {proc.pid} ({' '.join(proc.cmdline())[:100]}): still alive after SIGTERM")
                    proc.kill()
                    stubborn.append(proc)
                    killed.append(proc.pid)
        psutil.wait_procs(stubborn, timeout=5)
    return _sweep_session(session, killed)


def _sweep_session(session: int, killed: list[int], grace: float = 5.0) -> list[int]:
    """Stop anything still in the session (a grandchild re-parented to init is ours too): SIGTERM,
    then SIGKILL after `grace` seconds."""
    import psutil

    left = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            if (
                proc.pid != os.getpid()
                and proc.pid not in killed
                and os.getsid(proc.pid) == session
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                proc.terminate()
                left.append(proc)
    _gone, alive = psutil.wait_procs(left, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            killed.append(proc.pid)
    return killed


def _interrupt_when_parent_dies() -> None:
    """In the child, before exec: if the demo itself dies without cleaning up (kill -9), the kernel
    sends this child SIGINT, the signal every component treats as Ctrl-C (`airflow standalone` then
    stops its own components). Linux only; elsewhere the ordered stop on Ctrl-C is all there is."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGINT), 0, 0, 0)


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class ProcessGroup:
    """Processes started by the demo, stopped in reverse start order, each children-first."""

    processes: list[ManagedProcess] = field(default_factory=list)
    stop_timeout: float = 60.0  # per tree; a third each for children, the rest, the parent

    def start(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path
    ) -> ManagedProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
                preexec_fn=_interrupt_when_parent_dies,
            )
        proc = ManagedProcess(name, popen, log_path)
        self.processes.append(proc)
        return proc

    def check_alive(self) -> None:
        for proc in self.processes:
            code = proc.popen.poll()
            if code is not None:
                raise DemoError(f"{proc.name} exited with {code}; see {proc.log_path}")

    def stop(self) -> list[int]:
        killed: list[int] = []
        for proc in reversed(self.processes):
            hard = stop_process_tree(proc.popen.pid, timeout=self.stop_timeout)
            if hard:
                say(f"  {proc.name}: {len(hard)} process(es) ignored SIGTERM and were killed")
            killed += hard
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
        self.processes.clear()
        return killed


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what failed and where its log is."""


# --------------------------------------------------------------------------------------------------
# The world under var/: folder, integrator, accounts, Connections, Airflow
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    var: Path

    @property
    def demo(self) -> Path:
        return self.var / "demo"

    @property
    def edefter(self) -> Path:
        return self.demo / "edefter"

    @property
    def pki(self) -> Path:
        return self.demo / "pki"

    @property
    def trusted_root(self) -> Path:
        return self.pki / "test-certificates" / "ca.pem"

    @property
    def gib_cert(self) -> Path:
        return self.pki / "test-certificates" / "gib-seal.pem"

    @property
    def companies_file(self) -> Path:
        return self.demo / "companies.yaml"

    @property
    def secrets_file(self) -> Path:
        return self.demo / "connections.env"

    @property
    def integrator(self) -> Path:
        return self.var / "integrator"

    @property
    def airflow_home(self) -> Path:
        return self.var / "airflow"

    @property
    def work(self) -> Path:
        return self.var / "work"

    @property
    def evidence(self) -> Path:
        return self.var / "evidence"

    @property
    def logs(self) -> Path:
        return self.var / "logs"

    def reset(self) -> None:
        for path in (self.demo, self.integrator, self.airflow_home, self.work, self.evidence, self.logs):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.demo, self.integrator, self.airflow_home, self.work, self.evidence, self.logs):
            path.mkdir(parents=True, exist_ok=True)


def say(message: str) -> None:
    print(message, flush=True)


def generate_folder(scenario: Scenario, paths: Paths) -> None:
    """Write the demo e-Defter folders with the project's sample generator (signed with a test PKI).

    Ready months get the full set; waiting months lose their GIB-* berats (stage "GİB'e Gönderildi");
    tampered months get one ASCII letter of a journal line changed after signing."""
    from include.edefter.sample import TestPKI, generate
    from include.edefter.sample.breakage import flip_byte_in_ledger_body

    pki = TestPKI.create(paths.pki)
    if pki.ca_cert_path != paths.trusted_root or pki.gib_cert_path != paths.gib_cert:
        raise DemoError(
            f"the test PKI wrote its certificates elsewhere: {pki.ca_cert_path}, {pki.gib_cert_path}"
        )
    for seed, company in enumerate(scenario.companies):
        folder = paths.edefter / company.id
        for branch, branch_name in company.branches or ((None, None),):
            result = generate(
                folder,
                taxpayer_id=company.taxpayer_id,
                company_name=company.name,
                first=scenario.months[0],
                last=scenario.months[-1],
                pki=pki,
                branch=branch,
                branch_name=branch_name,
                layout="gib",  # <VKN>/<dd.mm.yyyy-dd.mm.yyyy>/<MM>/, as LOGO and Luca write it
                seed=seed,
            )
            for index, month in enumerate(result.months):
                expected = scenario.expectation(company, index)
                if expected is Expectation.WAITING:
                    for (code, _part), path in month.paths.items():
                        if code.startswith("GIB-"):
                            path.unlink()
                elif expected is Expectation.TAMPERED:
                    flip_byte_in_ledger_body(month.path("Y"))
        # The generator exports its whole test PKI (private keys included) next to the files; a real
        # e-Defter folder holds no keys, and the PKI is kept once under var/demo/pki.
        shutil.rmtree(folder / "test-certificates", ignore_errors=True)


def base_env(paths: Paths) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    schema = os.environ.get("EDEFTER_SCHEMA_DIR") or str(
        PROJECT_ROOT.parent / "shared" / "schemas" / "edefter"
    )
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            "EDEFTER_COMPANIES_FILE": str(paths.companies_file),
            "EDEFTER_WORK_DIR": str(paths.work),
            "EDEFTER_EVIDENCE_DIR": str(paths.evidence),
            "PYTHONUNBUFFERED": "1",
            # `airflow standalone` starts its components as `airflow ...` by name: the venv's bin first.
            "PATH": os.pathsep.join(
                [str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]
            ),
        }
    )
    # Trust anchors for the cryptographic check: the demo's TEST PKI (a real installation points these
    # at the Kamu SM roots and GİB's seal certificate).
    if paths.trusted_root.is_file():
        env["EDEFTER_TRUSTED_ROOTS"] = str(paths.trusted_root)
    if paths.gib_cert.is_file():
        env["EDEFTER_GIB_CERTS"] = str(paths.gib_cert)
    if Path(schema, "edefter.xsd").is_file():
        env["EDEFTER_SCHEMA_DIR"] = schema
    return env


def airflow_env(paths: Paths, api_port: int, connections: Mapping[str, str]) -> dict[str, str]:
    env = base_env(paths)
    env.update(
        {
            "AIRFLOW_HOME": str(paths.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # SQLite allows one writer; every component (and the backfill CLI) waits up to 60 s for the
            # lock instead of failing with "database is locked".
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{paths.airflow_home}/airflow.db?timeout=60",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Modest: each worker is ~130 MB and the machine may be a laptop.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # One api-server worker: enough for one user, and no uvicorn supervisor that would respawn
            # workers while we stop them.
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    env.update(connections)
    return env


def write_secrets_file(path: Path, connections: Mapping[str, str]) -> None:
    """The Connections of this run, for `source`-ing in a shell (0600, created before anything is written)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(
            "# Integrator Connections of the running demo (random passwords, valid until the next run)\n"
        )
        for name, value in sorted(connections.items()):
            fh.write(f"export {name}='{value}'\n")


def wait_http(
    url: str,
    *,
    timeout: float,
    ok: Callable[[int], bool] = lambda code: code < 500,
    group: ProcessGroup | None = None,
) -> None:
    import requests

    deadline = time.monotonic() + timeout
    last: str = ""
    while time.monotonic() < deadline:
        if group is not None:
            group.check_alive()
        try:
            response = requests.get(url, timeout=3)
            if ok(response.status_code):
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise DemoError(f"{url} did not answer within {timeout:.0f} s (last: {last})")


def run_checked(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    what: str,
    input_text: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        env=dict(env),
        cwd=PROJECT_ROOT,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise DemoError(f"{what} failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-3000:]}")
    return proc


def run_with_lock_retry(argv: Sequence[str], *, env: Mapping[str, str], what: str, attempts: int = 5) -> None:
    """An Airflow CLI call against the SQLite metadata DB the running components also write: retry on
    "database is locked" (SQLite has one writer and gives up at once on a lock upgrade), fail on
    anything else."""
    for attempt in range(1, attempts + 1):
        try:
            run_checked(argv, env=env, what=what)
            return
        except DemoError as exc:
            if "database is locked" not in str(exc) or attempt == attempts:
                raise
            say(f"    (SQLite busy, retrying {what})")
            time.sleep(2 * attempt)


class AirflowApi:
    """The few REST calls the demo needs (api-server /api/v2, SimpleAuthManager token)."""

    def __init__(self, base_url: str, password_file: Path, username: str = "admin") -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.password_file = password_file
        self.username = username
        self.session = requests.Session()
        self._token: str | None = None

    def password(self) -> str:
        data = json.loads(self.password_file.read_text(encoding="utf-8"))
        return str(data[self.username])

    def _auth(self) -> None:
        response = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password()},
            timeout=10,
        )
        response.raise_for_status()
        self._token = response.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self._token}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            self._auth()
        response = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)
        if response.status_code == 401:
            self._auth()
            response = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise DemoError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def dag_ids(self) -> set[str]:
        data = self.request("GET", "/dags", params={"limit": 1000})
        return {d["dag_id"] for d in data["dags"]}

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/importErrors", params={"limit": 100}).get("import_errors", []))

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> None:
        self.request(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)},
        )

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100}).get("dag_runs", []))

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        data = self.request("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances")
        return {ti["task_id"]: str(ti.get("state")) for ti in data.get("task_instances", [])}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        """One XCom value, deserialized; None when the task pushed none."""
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/{key}"
        try:
            return (self.request("GET", path, params={"deserialize": "true"}) or {}).get("value")
        except DemoError:
            return None


# --------------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """Everything a running demo holds: processes, ports, Connections (secrets stay in memory)."""

    scenario: Scenario
    paths: Paths
    group: ProcessGroup
    integrator_port: int = 0
    api_port: int = 0
    connections: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)  # conn_id -> (user, password)
    env: dict[str, str] = field(default_factory=dict)
    lock: Any = None  # the open lock file of var/

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def password_file(self) -> Path:
        return self.paths.airflow_home / "simple_auth_manager_passwords.json.generated"


def start_integrator(stack: Stack) -> None:
    """Accounts first (one per company or branch, random passwords), then the service on 127.0.0.1."""
    paths, scenario = stack.paths, stack.scenario
    env = base_env(paths)
    for company in scenario.companies:
        for branch in company.units():
            username, password = company.username(branch), secrets.token_urlsafe(24)
            argv = [
                sys.executable,
                "-m",
                "include.integrator",
                "account",
                "create",
                "--data",
                str(paths.integrator),
                "--username",
                username,
                "--taxpayer-id",
                company.taxpayer_id,
                "--password-env",
                "DEMO_ACCOUNT_PASSWORD",
            ]
            if branch:
                argv += ["--branch", branch]
            run_checked(
                argv, env={**env, "DEMO_ACCOUNT_PASSWORD": password}, what=f"integrator account {username}"
            )
            stack.credentials[company.conn_id(branch)] = (username, password)
    stack.integrator_port = free_port()
    stack.group.start(
        "integrator",
        [
            sys.executable,
            "-m",
            "include.integrator",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(stack.integrator_port),
            "--data",
            str(paths.integrator),
            "--log-level",
            "warning",
        ],
        env=env,
        log_path=paths.logs / "integrator.log",
        cwd=PROJECT_ROOT,
    )
    wait_http(
        f"http://127.0.0.1:{stack.integrator_port}/health",
        timeout=90,
        ok=lambda c: c == 200,
        group=stack.group,
    )
    stack.connections = {
        connection_env_name(conn_id): connection_uri(user, pw, "127.0.0.1", stack.integrator_port)
        for conn_id, (user, pw) in stack.credentials.items()
    }
    write_secrets_file(paths.secrets_file, stack.connections)


def start_airflow(stack: Stack, *, ui: bool, preferred_port: int) -> AirflowApi:
    """`airflow standalone` (ui) or the four components without standalone's extras (headless).
    The api-server runs in both: LocalExecutor's task processes talk to its execution API."""
    stack.api_port = free_port(preferred_port)
    stack.env = airflow_env(stack.paths, stack.api_port, stack.connections)
    airflow = [sys.executable, "-m", "airflow"]
    run_checked([*airflow, "db", "migrate"], env=stack.env, what="airflow db migrate")
    logs = stack.paths.logs
    if ui:
        stack.group.start(
            "airflow standalone",
            [*airflow, "standalone"],
            env=stack.env,
            log_path=logs / "airflow-standalone.log",
            cwd=PROJECT_ROOT,
        )
    else:
        for name, args in (
            ("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(stack.api_port)]),
            ("scheduler", ["scheduler"]),
            ("dag-processor", ["dag-processor"]),
            ("triggerer", ["triggerer"]),
        ):
            stack.group.start(
                f"airflow {name}",
                [*airflow, *args],
                env=stack.env,
                log_path=logs / f"airflow-{name}.log",
                cwd=PROJECT_ROOT,
            )
    wait_http(f"{stack.api_url}/api/v2/monitor/health", timeout=180, ok=lambda c: c == 200, group=stack.group)
    deadline = time.monotonic() + 60
    while not stack.password_file.exists():
        if time.monotonic() > deadline:
            raise DemoError(f"{stack.password_file} was not written by the api-server")
        time.sleep(0.5)
    return AirflowApi(stack.api_url, stack.password_file)


def unit_dag_ids(scenario: Scenario) -> list[tuple[DemoCompany, str | None, str]]:
    return [(c, b, c.dag_id(b)) for c in scenario.companies for b in c.units()]


def wait_for_dags(stack: Stack, api: AirflowApi, *, timeout: float = 240) -> None:
    wanted = {dag_id for _c, _b, dag_id in unit_dag_ids(stack.scenario)}
    deadline = time.monotonic() + timeout
    while True:
        stack.group.check_alive()
        found = api.dag_ids()
        if wanted <= found:
            return
        errors = api.import_errors()
        if errors:
            details = "\n".join(
                f"{e.get('filename')}: {str(e.get('stack_trace', ''))[-1500:]}" for e in errors
            )
            raise DemoError(f"the DAG file does not import:\n{details}")
        if time.monotonic() > deadline:
            raise DemoError(f"DAGs not parsed within {timeout:.0f} s; missing {sorted(wanted - found)}")
        time.sleep(2)


def start_months(stack: Stack, api: AirflowApi) -> None:
    """Backfill the automatic DAGs, trigger the manual one month by month, then unpause them all.

    Backfills are created while the DAGs are still paused (their runs wait queued): the scheduler then
    leaves those DAGs alone, which keeps the backfill CLI's writes clear of SQLite's single-writer lock."""
    scenario = stack.scenario
    from_date, to_date = backfill_window(scenario.months[0], scenario.months[-1])
    for company, _branch, dag_id in unit_dag_ids(scenario):
        if company.automatic:
            say(f"  airflow backfill create --dag-id {dag_id} --from-date {from_date} --to-date {to_date}")
            argv = [sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", dag_id]
            argv += [
                "--from-date",
                from_date,
                "--to-date",
                to_date,
                "--max-active-runs",
                str(len(scenario.months)),
            ]
            argv += ["--reprocess-behavior", "none"]
            run_with_lock_retry(argv, env=stack.env, what=f"backfill of {dag_id}")
        else:
            say(
                f'  {dag_id}: manual company, {len(scenario.months)} runs triggered with conf {{"month": ...}}'
            )
            for month in scenario.months:
                label = f"{month.year:04d}-{month.month:02d}"
                api.trigger(dag_id, f"manual__demo_{label}", {"month": label})
    for _company, _branch, dag_id in unit_dag_ids(scenario):
        api.unpause(dag_id)


@dataclass(frozen=True)
class RunState:
    dag_id: str
    run_id: str
    state: str
    sensor_state: str | None = None


def run_states(stack: Stack, api: AirflowApi) -> dict[tuple[str, str | None, Period], RunState]:
    out: dict[tuple[str, str | None, Period], RunState] = {}
    for company, branch, dag_id in unit_dag_ids(stack.scenario):
        for run in api.runs(dag_id):
            month = month_of_run(run)
            if month is None:
                continue
            out[(company.taxpayer_id, branch, month)] = RunState(
                dag_id, run["dag_run_id"], str(run.get("state"))
            )
    return out


def sensor_state(api: AirflowApi, run: RunState) -> str | None:
    data = api.request(
        "GET", f"/dags/{run.dag_id}/dagRuns/{urllib.parse.quote(run.run_id, safe='')}/taskInstances"
    )
    for ti in data.get("task_instances", []):
        if ti.get("task_id") == "wait_for_approved_berats":
            return ti.get("state")
    return None


def settle_progress(
    expectations: Mapping[tuple[str, str | None, Period], Expectation],
    states: Mapping[tuple[str, str | None, Period], RunState],
) -> tuple[int, int, list[str]]:
    """(settled months, total, months that went the wrong way). A month settles when its run finished
    (ready/tampered) or when its berat sensor is deferred, i.e. waiting without holding a worker."""
    done = 0
    wrong: list[str] = []
    for key, expected in expectations.items():
        run = states.get(key)
        if run is None:
            continue
        if expected is Expectation.WAITING:
            if run.state == "running" and run.sensor_state in ("deferred", "up_for_reschedule"):
                done += 1
            elif run.state in ("success", "failed"):
                done += 1
                wrong.append(
                    f"{run.dag_id} {key[2].label_tr}: run {run.state} although GİB berats are missing"
                )
        elif run.state in ("success", "failed"):
            done += 1
            if (run.state == "success") != (expected is Expectation.READY):
                wrong.append(f"{run.dag_id} {key[2].label_tr}: run {run.state}, expected {expected.value}")
    return done, len(expectations), wrong


def wait_until_settled(
    stack: Stack, api: AirflowApi, *, timeout: float
) -> dict[tuple[str, str | None, Period], RunState]:
    expectations = stack.scenario.expectations()
    deadline = time.monotonic() + timeout
    last_report = -1
    while True:
        stack.group.check_alive()
        states = run_states(stack, api)
        for key, run in list(states.items()):
            if expectations.get(key) is Expectation.WAITING and run.state == "running":
                states[key] = dataclasses.replace(run, sensor_state=sensor_state(api, run))
        done, total, _wrong = settle_progress(expectations, states)
        if done != last_report:
            say(f"  {done}/{total} ay sonuçlandı (months settled)")
            last_report = done
        if done == total:
            return states
        if time.monotonic() > deadline:
            say(f"  timeout after {timeout:.0f} s: {total - done} months not settled")
            return states
        time.sleep(3)


def failure_reason(paths: Paths, run: RunState, *, bilingual: bool = False) -> str:
    """The reason a run failed, from its task logs: the message of the exception that failed a task
    (the pipeline raises "Yedeklenemedi: ..." with the problems, one per line)."""
    run_dir = paths.airflow_home / "logs" / f"dag_id={run.dag_id}" / f"run_id={run.run_id}"
    logs = (
        sorted(run_dir.glob("task_id=*/attempt=*.log"), key=lambda p: p.stat().st_mtime)
        if run_dir.is_dir()
        else []
    )
    for log in reversed(logs):
        with contextlib.suppress(OSError):
            for line in reversed(log.read_text(encoding="utf-8", errors="replace").splitlines()):
                if '"Task failed with exception"' not in line:
                    continue
                with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                    detail = json.loads(line)["error_detail"][0]
                    lines = [x.strip() for x in str(detail["exc_value"]).splitlines() if x.strip()]
                    if bilingual:  # "tr / en" lines, as the pipeline stores its reason
                        return "\n".join(lines[:2])
                    # The verdict plus the first problem (rule and file), Turkish halves only: the table
                    # is for accountants; the full bilingual text stays in the task log.
                    return " ".join(x.split(" / ", 1)[0] for x in lines[:2])
    return f"DAG run {run.run_id} failed; see its task logs in the Airflow UI"


def run_info(stack: Stack, api: AirflowApi | None, run: RunState) -> RunInfo:
    """What the status table needs of one run: for a failed run its failed task and the reason the
    pipeline stored (XCom edefter_reason; the task log as a fallback), and its submission id."""
    from include.pipeline.status import PRE_UPLOAD_TASKS, REASON_XCOM_KEY, TASK_IDS, RunInfo

    waiting = "wait_for_approved_berats" if run.sensor_state in ("running", "deferred", "up_for_reschedule") else None
    if run.state != "failed" or api is None:
        return RunInfo(run.run_id, run.state, waiting_task=waiting)
    states = api.task_states(run.dag_id, run.run_id)
    failed = next((t for t in TASK_IDS if states.get(t) == "failed"), None)
    reason = api.xcom(run.dag_id, run.run_id, failed, REASON_XCOM_KEY) if failed else None
    submission = None
    if failed is not None and failed not in PRE_UPLOAD_TASKS:
        upload = api.xcom(run.dag_id, run.run_id, "upload", "return_value")
        submission = upload.get("submission_id") if isinstance(upload, dict) else None
    return RunInfo(
        run.run_id,
        run.state,
        failed_task=failed,
        reason=str(reason) if reason else failure_reason(stack.paths, run, bilingual=True),
        submission_id=submission if isinstance(submission, int) else None,
    )


def status_rows(
    stack: Stack, states: Mapping[tuple[str, str | None, Period], RunState], api: AirflowApi | None = None
) -> list[StatusRow]:
    """One row per company/branch and month: the status table's one true status
    (include.pipeline.status.month_rows over the folder, each month's latest run and the
    integrator). A run that failed before anything reached the integrator (a local verification
    verdict) is Yedeklenemedi with the reason the pipeline stored."""
    from include.integrator.client import IntegratorClient
    from include.pipeline.config import load_config
    from include.pipeline.status import client_lookup, month_rows, runs_by_month

    config = load_config(stack.paths.companies_file)
    dag_ids = {(u.taxpayer_id, u.branch): u.dag_id for u in config.units}
    runs = {
        (dag_ids[(taxpayer_id, branch)], month): run_info(stack, api, run)
        for (taxpayer_id, branch, month), run in states.items()
        if (taxpayer_id, branch) in dag_ids
    }
    base_url = f"http://127.0.0.1:{stack.integrator_port}"
    clients = {
        conn_id: IntegratorClient(base_url, user, password, retries=2)
        for conn_id, (user, password) in stack.credentials.items()
    }
    try:
        return month_rows(
            config, client_lookup(clients), months=stack.scenario.months, run_lookup=runs_by_month(runs)
        )
    finally:
        for client in clients.values():
            client.close()


def ui_login(stack: Stack) -> str:
    """The local UI login, as `airflow standalone` itself shows it (a per-run password of this
    machine's demo UI; integrator passwords are never printed)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        password = json.loads(stack.password_file.read_text(encoding="utf-8"))["admin"]
        return f"kullanıcı (user): admin  parola (password): {password}  ({stack.password_file})"
    return f"kullanıcı (user): admin  parola (password): {stack.password_file}"


def install_signal_handlers() -> None:
    """Ctrl-C / SIGTERM unwind through `finally`, which stops every child in order."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def lock_var_dir(var: Path) -> Any:
    """An exclusive lock on var/ for the life of this process: a second `make run`/`make demo` on the
    same directory would otherwise reset the state under the first one's running processes."""
    import fcntl

    var.mkdir(parents=True, exist_ok=True)
    handle = open(var / ".demo.lock", "w")  # noqa: SIM115 - kept open: the lock lives as long as the file
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DemoError(
            f"another `make run` / `make demo` is using {var}; stop it first (or pass --var-dir)"
        ) from None
    return handle


def run_demo(mode: str, *, scenario: Scenario, paths: Paths, port: int, settle_timeout: float) -> int:
    ui = mode == "run"
    group = ProcessGroup()
    stack = Stack(scenario, paths, group)
    started = time.monotonic()
    install_signal_handlers()
    try:
        stack.lock = lock_var_dir(paths.var)  # held until this process exits
        say(f"[1/5] Demo e-Defter klasörü (folder): {paths.edefter}")
        paths.reset()
        generate_folder(scenario, paths)
        paths.companies_file.write_text(
            "# Generated by include.pipeline.demo for this run; see include/config/companies.example.yaml\n"
            + _yaml_dump(scenario_config(scenario, paths.edefter)),
            encoding="utf-8",
        )
        say(f"[2/5] Entegratör (integrator) on 127.0.0.1, data {paths.integrator}")
        start_integrator(stack)
        say(
            f"      Connections: {', '.join(sorted(stack.connections))} (passwords in {paths.secrets_file}, mode 0600)"
        )
        say(
            f"[3/5] Airflow ({'standalone' if ui else 'scheduler, dag-processor, triggerer, api-server'}), "
            f"AIRFLOW_HOME={paths.airflow_home}"
        )
        api = start_airflow(stack, ui=ui, preferred_port=port)
        wait_for_dags(stack, api)
        if ui:
            say(f"\n  Airflow UI: {stack.api_url}   {ui_login(stack)}\n")
        say(
            "[4/5] Aylar başlatılıyor: backfill, tetikleme, DAG'lar açılıyor (backfills, triggered runs, DAGs unpaused)"
        )
        start_months(stack, api)
        states = wait_until_settled(stack, api, timeout=settle_timeout)
        say("[5/5] Durum tablosu (status table)\n")
        rows = status_rows(stack, states, api)
        say(format_table(rows))
        problems = check_outcome(rows, scenario.expectations())
        _done, _total, wrong = settle_progress(scenario.expectations(), states)
        problems += [w for w in wrong if w not in problems]
        say(f"\n{len(rows)} months in {time.monotonic() - started:.0f} s")
        if problems:
            say("Beklenen sonuç alınamadı (outcome differs from the scenario):")
            for problem in problems:
                say(f"  - {problem}")
        else:
            say(
                "Sonuç beklendiği gibi (outcome as expected): hazır aylar Yedeklendi, bozuk ay Yedeklenemedi, "
                "bekleyen aylar bekliyor."
            )
        if ui:
            say(
                f"\nAirflow UI: {stack.api_url}   {ui_login(stack)}\nDurdurmak için Ctrl-C (Ctrl-C stops everything)."
            )
            while True:
                stack.group.check_alive()
                time.sleep(2)
        return 1 if problems else 0
    except KeyboardInterrupt:
        say("\nDurduruluyor (stopping)...")
        return 130
    except DemoError as exc:
        say(f"error: {exc}")
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abort the cleanup
        killed = group.stop()
        if killed:
            say(f"  {len(killed)} processes needed SIGKILL")
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _yaml_dump(data: Mapping[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(dict(data), allow_unicode=True, sort_keys=False))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.pipeline.demo", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "mode", choices=("run", "demo"), help="run: with the UI, until Ctrl-C; demo: headless, exits"
    )
    parser.add_argument("--scenario", default="demo", choices=("demo", "smoke"))
    parser.add_argument(
        "--var-dir", type=Path, default=PROJECT_ROOT / "var", help="all state goes here (reset first)"
    )
    parser.add_argument("--port", type=int, default=8080, help="api-server port if free (else any free port)")
    parser.add_argument(
        "--settle-timeout", type=float, default=1200.0, help="seconds to wait for the months to settle"
    )
    args = parser.parse_args(argv)
    return run_demo(
        args.mode,
        scenario=make_scenario(args.scenario),
        paths=Paths(args.var_dir.resolve()),
        port=args.port,
        settle_timeout=args.settle_timeout,
    )


if __name__ == "__main__":
    sys.exit(main())
