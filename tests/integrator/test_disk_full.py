"""A full disk is the documented JSON 507 (never a plain-text 500) and /health says so first."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integrator.conftest import ServiceProc, make_backend


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        msg = f"cannot mount a small tmpfs to fill ({r.stderr.strip()}); needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_is_json_507_and_health_reports_low_space(request, small_disk: Path) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend("fs-sqlite", request)
    env = {**backend.env, "INTEGRATOR_MIN_FREE_BYTES": str(1 << 20)}
    svc = ServiceProc(small_disk / "data", backend.args, env).start()
    try:
        from tests.integrator.conftest import Integrator

        integ = Integrator(backend, svc)
        tid, user, pw = integ.account()
        body = os.urandom(8 << 20)  # more than the disk holds: the spool hits ENOSPC
        r = requests.put(
            f"{svc.url}/v1/files/{tid}-201909-Y-000000.zip",
            data=body,
            headers={"X-Content-SHA256": hashlib.sha256(body).hexdigest(), "Content-Type": "application/zip"},
            auth=(user, pw),
            timeout=60,
        )
        assert r.status_code == 507, r.text[:300]
        err = r.json()["error"]
        assert err["code"] == "storage.disk_full" and "dolu" in err["message_tr"]
        assert list((svc.data / "incoming").iterdir()) == []  # the partial spool is gone
        # Fill the disk below the floor: not ready, with the figures.
        filler = small_disk / "filler"
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        with open(filler, "wb") as fh:
            fh.write(b"\0" * max(0, free - (256 << 10)))
        h = requests.get(f"{svc.url}/health", timeout=10)
        assert h.status_code == 503 and h.json()["error"]["code"] == "storage.low_space", h.text
        filler.unlink()
        assert requests.get(f"{svc.url}/health", timeout=10).status_code == 200
    finally:
        svc.stop()
