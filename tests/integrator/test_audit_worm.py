"""Fixity audit (corruption and loss are reported) and the S3 Object Lock WORM contract on SeaweedFS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from include.integrator.client import sha256_file
from tests.conftest import PROJECT_ROOT
from tests.integrator.conftest import Integrator, zip_month


def _audit_cli(integ: Integrator) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "include.integrator", "audit", "--data", str(integ.service.data), *integ.backend.args],
        cwd=PROJECT_ROOT,
        env=integ.backend.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_fixity_audit_reports_corrupted_and_missing_objects(fresh_integrator: Integrator, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    integ = fresh_integrator
    tid, user, pw = integ.account()
    zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
    with integ.client(user, pw) as c:
        shas = {code: c.upload_file(zips[code], zips[code].name).sha256 for code in ("Y", "K", "YB")}
    rc, report = _audit_cli(integ)
    assert rc == 0 and report["clean"] and report["checked"] == 3 and report["ok"] == 3
    objects = integ.service.data / "objects"
    y_obj = objects / "sha256" / shas["Y"][:2] / shas["Y"]
    k_obj = objects / "sha256" / shas["K"][:2] / shas["K"]
    assert stat.S_IMODE(y_obj.stat().st_mode) == 0o444  # read-only after write
    # Bit rot in one object, loss of another.
    os.chmod(y_obj, 0o644)
    data = bytearray(y_obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    y_obj.write_bytes(bytes(data))
    os.chmod(y_obj, 0o444)
    os.chmod(k_obj, 0o644)
    k_obj.unlink()
    rc, report = _audit_cli(integ)
    assert rc == 1 and not report["clean"]
    found = {(f["file"], f["kind"]) for f in report["findings"]}
    assert found == {(zips["Y"].name, "mismatch"), (zips["K"].name, "missing")}
    mism = next(f for f in report["findings"] if f["kind"] == "mismatch")
    assert mism["expected_sha256"] == shas["Y"] and mism["actual_sha256"] != shas["Y"]
    assert report["ok"] == 1
    # Every run is logged in the metadata DB.
    from sqlalchemy import func, select

    from include.integrator.context import ServiceContext
    from include.integrator.metadata.models import AuditRun

    ctx = ServiceContext(integ.backend.settings(integ.service.data))
    try:
        with ctx.session() as s:
            assert s.scalar(select(func.count()).select_from(AuditRun)) == 2
    finally:
        ctx.close()


def test_audit_on_s3_checks_hashes_and_locks(request, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from include.integrator.audit import run_audit
    from include.integrator.context import ServiceContext
    from tests.integrator.conftest import make_backend, start_service

    backend = make_backend("s3", request)
    svc = start_service(backend, tmp_path / "data")
    integ = Integrator(backend, svc)
    try:
        tid, user, pw = integ.account()
        zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
        with integ.client(user, pw) as c:
            r = c.upload_file(zips["KB"], zips["KB"].name)
        assert r.version_id
        ctx = ServiceContext(backend.settings(svc.data))
        try:
            report = run_audit(ctx)
        finally:
            ctx.close()
        assert report.clean and report.checked == 1, report.to_dict()
        s3 = backend.seaweed.client()
        ret = s3.get_object_retention(Bucket=backend.seaweed.bucket, Key=f"sha256/{r.sha256[:2]}/{r.sha256}", VersionId=r.version_id)
        assert ret["Retention"]["Mode"] == "COMPLIANCE"
        assert ret["Retention"]["RetainUntilDate"].date() >= dt.date(2029, 12, 31)
    finally:
        svc.stop()


@pytest.fixture
def s3_storage(seaweed):  # type: ignore[no-untyped-def]
    from include.integrator.storage.s3 import S3Settings, S3Storage

    st = S3Storage(S3Settings(seaweed.endpoint, seaweed.bucket, seaweed.access_key, seaweed.secret_key))
    yield st
    st.close()


def _put(storage, tmp_path: Path, payload: bytes, until: dt.date):  # type: ignore[no-untyped-def]
    src = tmp_path / "obj.bin"
    src.write_bytes(payload)
    md5 = base64.b64encode(hashlib.md5(payload).digest()).decode()
    return storage.put(src, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload), md5_b64=md5, retain_until=until)


def test_worm_contract_on_seaweedfs(s3_storage, seaweed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Delete of the locked version and shortening its retention must be refused by the server itself."""
    from botocore.exceptions import ClientError

    payload = os.urandom(4096)
    until = dt.date.today() + dt.timedelta(days=3650)
    obj = _put(s3_storage, tmp_path, payload, until)
    assert obj.created and obj.version_id
    same = _put(s3_storage, tmp_path, payload, until)  # identical bytes: no second version
    assert not same.created and same.version_id == obj.version_id
    s3 = seaweed.client()
    key = obj.key
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=seaweed.bucket, Key=key, VersionId=obj.version_id)
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=seaweed.bucket, Key=key, VersionId=obj.version_id, BypassGovernanceRetention=True)
    shorter = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with pytest.raises(ClientError):
        s3.put_object_retention(
            Bucket=seaweed.bucket,
            Key=key,
            VersionId=obj.version_id,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": shorter},
        )
    with pytest.raises(ClientError):
        s3.put_object_retention(
            Bucket=seaweed.bucket,
            Key=key,
            VersionId=obj.version_id,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": shorter},
            BypassGovernanceRetention=True,
        )
    # A plain delete only adds a delete marker; reads by the recorded VersionId still return the bytes.
    s3.delete_object(Bucket=seaweed.bucket, Key=key)
    with s3_storage.open(key, obj.version_id) as fh:
        assert fh.read() == payload
    assert s3_storage.lock_problem(key, obj.version_id, until) is None
    versions = s3.list_object_versions(Bucket=seaweed.bucket, Prefix=key).get("Versions", [])
    assert [v["VersionId"] for v in versions] == [obj.version_id]


def test_s3_put_refuses_wrong_checksums(s3_storage, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from include.integrator.storage.base import StorageError

    payload = os.urandom(2048)
    src = tmp_path / "x.bin"
    src.write_bytes(payload)
    good_md5 = base64.b64encode(hashlib.md5(payload).digest()).decode()
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(StorageError):
        s3_storage.put(src, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload), md5_b64=bad_md5,
                       retain_until=dt.date.today() + dt.timedelta(days=1))  # fmt: skip
    wrong_sha = hashlib.sha256(b"not the payload").hexdigest()
    with pytest.raises(StorageError):
        s3_storage.put(src, sha256=wrong_sha, size=len(payload), md5_b64=good_md5,
                       retain_until=dt.date.today() + dt.timedelta(days=1))  # fmt: skip
    assert not s3_storage.exists(f"sha256/{wrong_sha[:2]}/{wrong_sha}")


def test_s3_bucket_without_object_lock_is_refused(seaweed) -> None:  # type: ignore[no-untyped-def]
    from include.integrator.storage.base import StorageError
    from include.integrator.storage.s3 import S3Settings, S3Storage

    s3 = seaweed.client()
    s3.create_bucket(Bucket="plain-no-lock")
    st = S3Storage(S3Settings(seaweed.endpoint, "plain-no-lock", seaweed.access_key, seaweed.secret_key))
    try:
        with pytest.raises(StorageError):
            st.check_ready()
    finally:
        st.close()


def test_sha256_file_helper(tmp_path: Path) -> None:
    p = tmp_path / "a"
    p.write_bytes(b"abc")
    assert sha256_file(p) == hashlib.sha256(b"abc").hexdigest()


def test_audit_findings_reach_the_month_status_and_the_alert_webhook(fresh_integrator: Integrator, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A Yedeklendi month whose stored ledger rotted shows "Bozuk/Eksik" naming the file; the
    webhook gets the report; an object no record points at is reported as an orphan."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from include.edefter.naming import Period
    from include.edefter.status import BackupStatus

    integ = fresh_integrator
    tid, user, pw = integ.account()
    zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
    order = ["Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"]
    with integ.client(user, pw) as c:
        shas = {k: c.upload_file(zips[k], zips[k].name).sha256 for k in order}
        c.submit_month(tid, None, "201909", [(zips[k].name, shas[k]) for k in order])
        assert c.wait_for_final(tid, None, "201909", timeout=90).status is BackupStatus.YEDEKLENDI
        assert c.month_status(tid, None, "201909").fixity is None
    objects = integ.service.data / "objects"
    y_obj = objects / "sha256" / shas["Y"][:2] / shas["Y"]
    os.chmod(y_obj, 0o644)
    data = bytearray(y_obj.read_bytes())
    data[len(data) // 3] ^= 0x40
    y_obj.write_bytes(bytes(data))
    stray = hashlib.sha256(b"stray").hexdigest()
    (objects / "sha256" / stray[:2]).mkdir(parents=True, exist_ok=True)
    (objects / "sha256" / stray[:2] / stray).write_bytes(b"stray")

    got: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "include.integrator", "audit", "--data", str(integ.service.data),
             "--alert-webhook", f"http://127.0.0.1:{srv.server_port}/hook?token=s3cret", *integ.backend.args],
            cwd=PROJECT_ROOT, env=integ.backend.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        srv.shutdown()
    assert proc.returncode == 1, proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert f"sha256/{stray[:2]}/{stray}" in report["orphans"]
    assert len(got) == 1 and got[0]["findings"][0]["file"] == zips["Y"].name
    import time

    def status_when(pred):  # type: ignore[no-untyped-def]
        """The service refreshes its index of audit findings every few seconds."""
        deadline = time.monotonic() + 15
        with integ.client(user, pw) as c:
            while True:
                st = c.month_status(tid, None, Period(2019, 9))
                if pred(st) or time.monotonic() > deadline:
                    return st
                time.sleep(0.5)

    st = status_when(lambda s: s.fixity is not None)
    assert st.status is BackupStatus.YEDEKLENDI  # the verdict stays; the damage is shown beside it
    assert st.fixity is not None and st.fixity["status"] == "Bozuk/Eksik"
    assert [(f["name"], f["kind"]) for f in st.fixity["files"]] == [(zips["Y"].name, "mismatch")]
    # Once repaired (the operator restores the object from a replica), the next clean run clears it.
    y_obj.write_bytes(zips["Y"].read_bytes())
    os.chmod(y_obj, 0o444)
    rc, _ = _audit_cli(integ)
    assert rc == 0
    assert status_when(lambda s: s.fixity is None).fixity is None
