"""Faults: SIGKILL mid-upload, storage write failure, metadata DB outage."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from include.integrator.client import ServerError, sha256_file
from tests.integrator.conftest import (
    SMALL_CAPS,
    Backend,
    Integrator,
    ServiceProc,
    drop_pg_database,
    free_port,
    make_backend,
    new_pg_database,
    pg_admin_exec,
    wait_http,
    zip_month,
)


def _objects(data: Path) -> list[Path]:
    root = data / "objects" / "sha256"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture(params=["fs-sqlite", "fs-pg", "s3"])
def private_integrator(request, tmp_path: Path) -> Iterator[Integrator]:  # type: ignore[no-untyped-def]
    """A private service per backend (own data dir, own PostgreSQL database) for destructive tests."""
    base = make_backend(request.param, request)
    dbname = None
    if request.param == "fs-pg":
        dbname = new_pg_database()
        url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{dbname}"
        base = Backend("fs-pg", ["--db-url", url], base.env, url)
    svc = ServiceProc(tmp_path / "data", [*base.args, *SMALL_CAPS], base.env).start()
    try:
        yield Integrator(base, svc)
    finally:
        svc.stop()
        if dbname:
            drop_pg_database(dbname)


def test_sigkill_during_upload_then_client_retry(private_integrator: Integrator, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    integ = private_integrator
    tid, user, pw = integ.account()
    zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
    y = zips["Y"]
    body = y.read_bytes()
    sha = sha256_file(y)
    # Send headers and half the body, then kill the server hard.
    sock = socket.create_connection(("127.0.0.1", integ.service.port))
    import base64

    auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
    head = (
        f"PUT /v1/files/{y.name} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
        f"X-Content-SHA256: {sha}\r\nContent-Type: application/zip\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[: len(body) // 2])
    incoming = integ.service.data / "incoming"
    deadline = time.monotonic() + 10
    while not any(incoming.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(incoming.iterdir()), "the server never started spooling the upload"
    integ.service.kill()
    sock.close()
    assert _objects(integ.service.data) == []  # the partial upload never became an object
    if integ.backend.seaweed is not None:
        s3 = integ.backend.seaweed.client()
        listed = s3.list_object_versions(Bucket=integ.backend.seaweed.bucket, Prefix=f"sha256/{sha[:2]}/{sha}")
        assert listed.get("Versions", []) == []

    # The client now retries against a dead server; the server comes back during its backoff.
    result: dict[str, object] = {}

    def upload() -> None:
        with integ.client(user, pw, retries=10, backoff=0.2, max_backoff=1.0) as c:
            try:
                result["receipt"] = c.upload_file(y, y.name)
            except Exception as exc:  # surfaced below
                result["error"] = exc

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(0.5)
    integ.service.start()
    t.join(60)
    assert "error" not in result, result.get("error")
    receipt = result["receipt"]
    assert receipt.created and receipt.sha256 == sha  # type: ignore[attr-defined]
    assert list(incoming.iterdir()) == []  # restart cleaned the partial spool
    if integ.backend.seaweed is None:
        assert [p.name for p in _objects(integ.service.data)] == [sha]
    with integ.client(user, pw) as c:
        staged = c.list_files(tid, include_staged=True)
        assert [(f.name, f.sha256, f.committed) for f in staged] == [(y.name, sha, False)]


def _serve_in_thread(app, port: int):  # type: ignore[no-untyped-def]
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    wait_http(f"http://127.0.0.1:{port}/health", timeout=30)
    return server, th


def test_storage_write_failure_records_nothing(tmp_path: Path, make_month, request) -> None:  # type: ignore[no-untyped-def]
    from include.integrator.app import create_app
    from include.integrator.storage.filesystem import FilesystemStorage

    class DiskFullOnce(FilesystemStorage):
        """Writes half the object to its temp file, then fails as a full disk would."""

        failing = True

        def _link_tmp(self, src: Path) -> Path | None:
            return None if self.failing else super()._link_tmp(src)  # force the copying path

        def _copy(self, fin, fout) -> None:  # type: ignore[no-untyped-def]
            if not self.failing:
                return super()._copy(fin, fout)
            data = fin.read()
            fout.write(data[: len(data) // 2])
            fout.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    backend: Backend = make_backend("fs-sqlite", request)
    settings = backend.settings(tmp_path / "data")
    storage = DiskFullOnce(settings.objects_dir)
    port = free_port()
    server, th = _serve_in_thread(create_app(settings, storage=storage), port)
    try:
        svc = ServiceProc(settings.data_dir, [], {}, port=port)
        integ = Integrator(backend, svc)
        tid, user, pw = integ.account()
        zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
        with integ.client(user, pw, retries=1, backoff=0.05) as c:
            with pytest.raises(ServerError) as ei:
                c.upload_file(zips["K"], zips["K"].name)
            assert ei.value.status == 507 and ei.value.code == "storage.write_failed"
            assert "kaydedilmedi" in ei.value.message_tr
            assert c.list_files(tid, include_staged=True) == []
            assert _objects(settings.data_dir) == []
            assert list(storage.tmp.iterdir()) == []
            assert list((settings.data_dir / "incoming").iterdir()) == []
            storage.failing = False  # the disk has room again: the same upload now succeeds
            r = c.upload_file(zips["K"], zips["K"].name)
            assert r.created and [f.name for f in c.list_files(tid, include_staged=True)] == [zips["K"].name]
    finally:
        server.should_exit = True
        th.join(15)


def test_metadata_db_outage_is_503_and_recovers(tmp_path: Path, make_month, request) -> None:  # type: ignore[no-untyped-def]
    request.getfixturevalue("pg_database")  # skip/fail consistently when PostgreSQL is absent
    name = new_pg_database()
    try:
        backend = make_backend("fs-sqlite", request)
        url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
        backend = Backend("fs-pg-private", ["--db-url", url], backend.env, url)
        svc = ServiceProc(tmp_path / "data", [*backend.args, *SMALL_CAPS], backend.env).start()
        integ = Integrator(backend, svc)
        try:
            tid, user, pw = integ.account()
            zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
            with integ.client(user, pw, retries=0) as c:
                c.upload_file(zips["Y"], zips["Y"].name)
                pg_admin_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                pg_admin_exec(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
                r = requests.get(f"{svc.url}/health", timeout=30)
                assert r.status_code == 503 and r.json()["error"]["code"] == "metadata.unavailable"
                assert r.headers.get("Retry-After")
                with pytest.raises(ServerError) as ei:
                    c.upload_file(zips["K"], zips["K"].name)
                assert ei.value.status == 503 and ei.value.code == "metadata.unavailable"
                with pytest.raises(ServerError) as ei:
                    c.list_files(tid, include_staged=True)
                assert ei.value.status == 503
                assert list((svc.data / "incoming").iterdir()) == []
                pg_admin_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                wait_http(f"{svc.url}/health", timeout=30)
                assert [f.name for f in c.list_files(tid, include_staged=True)] == [zips["Y"].name]
                assert c.upload_file(zips["K"], zips["K"].name).created
        finally:
            svc.stop()
    finally:
        drop_pg_database(name)


def test_service_starts_without_its_db_and_answers_503(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    env = make_backend_env()
    svc = ServiceProc(
        tmp_path / "data", ["--db-url", f"postgresql+psycopg2://postgres@127.0.0.1:{port}/nope"], env
    ).start(ready_codes=(503,))
    try:
        r = requests.get(f"{svc.url}/v1/files", params={"taxpayer_id": "1234567801"}, auth=("a", "b"), timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "metadata.unavailable"
    finally:
        svc.stop()


def make_backend_env() -> dict[str, str]:
    from tests.integrator.conftest import _base_env

    return _base_env()


def test_s3_write_refused_records_nothing(request, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """S3 refuses the PUT (wrong secret): a clear 503, nothing recorded, nothing left in the spool."""
    backend = make_backend("s3", request)
    env = backend.env | {"INTEGRATOR_S3_SECRET_KEY": "not-the-secret"}
    svc = ServiceProc(tmp_path / "data", [*backend.args, *SMALL_CAPS], env).start(ready_codes=(503,))
    integ = Integrator(Backend("s3-bad", backend.args, env, None, backend.seaweed), svc)
    try:
        health = requests.get(f"{svc.url}/health", timeout=10).json()
        assert health["error"]["code"] == "storage.unavailable"
        tid, user, pw = integ.account()
        zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
        with integ.client(user, pw, retries=0) as c:
            with pytest.raises(ServerError) as ei:
                c.upload_file(zips["YB"], zips["YB"].name)
            assert ei.value.status == 503 and ei.value.code == "storage.write_failed"
            assert c.list_files(tid, include_staged=True) == []
        assert list((svc.data / "incoming").iterdir()) == []
    finally:
        svc.stop()
