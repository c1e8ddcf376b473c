"""Validation survives a restart; the crypto-verifier hook (extra_file_checks) is wired through."""

from __future__ import annotations

from pathlib import Path

from include.edefter.status import BackupStatus
from tests.integrator.conftest import SMALL_CAPS, Integrator, ServiceProc, make_backend, zip_month

ORDER = ["Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"]


def test_pending_submission_is_validated_after_restart(fresh_integrator: Integrator, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from include.integrator.context import ServiceContext
    from include.integrator.metadata.models import Account, Submission

    integ = fresh_integrator
    tid, user, pw = integ.account()
    zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
    with integ.client(user, pw) as c:
        manifest = [{"name": zips[k].name, "sha256": c.upload_file(zips[k], zips[k].name).sha256} for k in ORDER]
    integ.service.stop()
    # A submission accepted just before a crash: recorded "İşlendi", never validated.
    ctx = ServiceContext(integ.backend.settings(integ.service.data))
    try:
        with ctx.session() as s, s.begin():
            acc = s.query(Account).filter_by(username=user).one()
            s.add(
                Submission(
                    taxpayer_id=tid, branch=None, period="201909", source="Airflow", manifest=manifest,
                    manifest_sha256="x" * 64, status=BackupStatus.ISLENDI.value, submitted_by=acc.id,
                    results=[], problems=[],
                )
            )  # fmt: skip
    finally:
        ctx.close()
    integ.service.start()
    with integ.client(user, pw) as c:
        st = c.wait_for_final(tid, None, "201909", timeout=60)
    assert st.status is BackupStatus.YEDEKLENDI, st.problems


def test_extra_file_checks_hook_decides_the_verdict(request, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend("fs-sqlite", request)
    svc = ServiceProc(
        tmp_path / "data",
        [*SMALL_CAPS, "--extra-file-checks", "tests.integrator.plugin_checks:reject_dr"],
        backend.env,
    ).start()
    integ = Integrator(backend, svc)
    try:
        tid, user, pw = integ.account()
        zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
        with integ.client(user, pw) as c:
            manifest = [(zips[k].name, c.upload_file(zips[k], zips[k].name).sha256) for k in ORDER]
            c.submit_month(tid, None, "201909", manifest)
            st = c.wait_for_final(tid, None, "201909", timeout=60)
        assert st.status is BackupStatus.YEDEKLENEMEDI
        assert [p["code"] for p in st.problems] == ["test.extra_check"]
        dr = next(f for f in st.files if f.name == zips["DR"].name)
        assert dr.status is BackupStatus.YEDEKLENEMEDI
    finally:
        svc.stop()


def test_header_mode_truncated_ledger_fails_the_set(request, make_month, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from include.edefter.sample.breakage import truncate_xml

    backend = make_backend("fs-sqlite", request)
    svc = ServiceProc(tmp_path / "data", [*SMALL_CAPS, "--header-check-over-mb", "0"], backend.env).start()
    integ = Integrator(backend, svc)
    try:
        tid, user, pw = integ.account()
        month = make_month(taxpayer_id=tid)
        truncate_xml(month.path("Y"))
        zips = zip_month(month, tmp_path / "z")
        with integ.client(user, pw) as c:
            manifest = [(zips[k].name, c.upload_file(zips[k], zips[k].name).sha256) for k in ORDER]
            c.submit_month(tid, None, "201909", manifest)
            st = c.wait_for_final(tid, None, "201909", timeout=60)
        assert st.status is BackupStatus.YEDEKLENEMEDI
        y = next(f for f in st.files if f.name == zips["Y"].name)
        assert y.status is BackupStatus.YEDEKLENEMEDI and y.problems
    finally:
        svc.stop()
