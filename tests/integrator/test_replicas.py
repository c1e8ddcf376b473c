"""Several service processes on one archive: a replica never wipes another's work; identical
concurrent submissions are one submission; input rules (branch 0000, retention floor)."""

from __future__ import annotations

import datetime as dt
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from include.edefter.naming import Period
from include.integrator.client import RejectedError
from include.integrator.spool import is_orphan, spool_name
from tests.integrator.conftest import Integrator, ServiceProc, start_service, zip_month

SEP_2019 = Period(2019, 9)
ORDER = ["Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"]


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_orphan_rule(tmp_path: Path) -> None:
    mine = tmp_path / spool_name(".upload")
    mine.write_bytes(b"x")
    assert not is_orphan(mine)  # this process is alive
    host = socket.gethostname().replace("-", "_")[:40]
    dead = tmp_path / f"{host}-{_dead_pid()}-abc.upload"
    dead.write_bytes(b"x")
    assert is_orphan(dead)
    other_host = tmp_path / "elsewhere-1-abc.upload"
    other_host.write_bytes(b"x")
    assert not is_orphan(other_host)  # another host's live upload: only age removes it
    old = os.stat(other_host).st_mtime - 2 * 86400
    os.utime(other_host, (old, old))
    assert is_orphan(other_host)


def test_a_second_replica_on_the_same_data_dir_keeps_the_first_ones_uploads(fresh_integrator: Integrator) -> None:
    first = fresh_integrator.service
    assert first.proc is not None
    incoming = first.data / "incoming"
    host = socket.gethostname().replace("-", "_")[:40]
    in_flight = incoming / f"{host}-{first.proc.pid}-{'a' * 32}.upload"  # the first replica's upload
    in_flight.write_bytes(b"PK partial")
    crashed = incoming / f"{host}-{_dead_pid()}-{'b' * 32}.upload"  # a crashed process's leftover
    crashed.write_bytes(b"PK partial")
    second = ServiceProc(first.data, first.args, first.env).start()
    try:
        assert in_flight.exists(), "the second replica removed the first one's in-flight upload"
        assert not crashed.exists()
        # Both serve the same archive.
        for svc in (first, second):
            assert requests.get(f"{svc.url}/health", timeout=10).status_code == 200
    finally:
        second.stop()
        in_flight.unlink(missing_ok=True)


def test_identical_concurrent_submissions_are_one_submission(integrator, make_month, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
    with integrator.client(user, pw) as c:
        manifest = [(zips[k].name, c.upload_file(zips[k], zips[k].name).sha256) for k in ORDER]

    def submit(_: int) -> tuple[int, bool]:
        with integrator.client(user, pw) as cc:
            r = cc.submit_month(tid, None, SEP_2019, manifest)
            return r.submission_id, r.created

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(submit, range(8)))
    assert len({sid for sid, _ in got}) == 1, got
    assert sum(1 for _, created in got if created) == 1, got


def test_two_replicas_on_postgresql_make_one_submission(request, make_month, tmp_path: Path) -> None:
    from tests.integrator.conftest import make_backend

    backend = make_backend("fs-pg", request)
    a = start_service(backend, tmp_path / "data")
    b = ServiceProc(a.data, a.args, a.env).start()
    try:
        integ = Integrator(backend, a)
        tid, user, pw = integ.account()
        zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
        with integ.client(user, pw) as c:
            manifest = [(zips[k].name, c.upload_file(zips[k], zips[k].name).sha256) for k in ORDER]
        from include.integrator.client import IntegratorClient

        def submit(i: int) -> int:
            with IntegratorClient((a if i % 2 else b).url, user, pw) as cc:
                return cc.submit_month(tid, None, SEP_2019, manifest).submission_id

        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(submit, range(8)))
        assert len(ids) == 1, ids
    finally:
        b.stop()
        a.stop()


def test_branch_0000_is_refused(default_integrator) -> None:
    tid, user, pw = default_integrator.account()
    with default_integrator.client(user, pw) as c:
        with pytest.raises(RejectedError) as ei:
            c.submit_month(tid, "0000", SEP_2019, [(f"{tid}-201909-Y-000000-0000.zip", "a" * 64)])
        assert ei.value.status in (400, 422)


def test_retention_never_ends_before_the_period_year_plus_ten(default_integrator, make_month, tmp_path: Path) -> None:
    """A ledger claiming fiscalYearEnd 2000-12-31 inside a 2019-09 month still gets 2029-12-31."""
    import zipfile

    tid, user, pw = default_integrator.account()
    month = make_month(taxpayer_id=tid)
    src = month.path("YB")  # a berat: small, its content is not cryptographically re-checked at upload
    text = src.read_bytes()
    marker = b"fiscalYearEnd"
    if marker not in text:
        pytest.skip("the generated berat carries no fiscalYearEnd")
    import re

    forged = re.sub(rb"(fiscalYearEnd[^>]*>)\d{4}-\d{2}-\d{2}", rb"\g<1>2000-12-31", text, count=1)
    assert forged != text
    z = tmp_path / (src.stem + ".zip")
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(src.name, forged)
    with default_integrator.client(user, pw) as c:
        r = c.upload_file(z, z.name)
    assert r.retention_until >= dt.date(2029, 12, 31)
