"""The Saklama API over real HTTP on every backend: fs+SQLite, fs+PostgreSQL, S3 (SeaweedFS)."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest
import requests

from include.edefter.naming import Period, parse_name
from include.edefter.status import BackupStatus
from include.integrator.client import AuthError, ConflictError, RejectedError, sha256_file
from tests.integrator.conftest import zip_month, zip_one

SEP_2019 = Period(2019, 9)
ORDER = ["Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"]


def _upload_all(client, zips: dict[str, Path]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = {}
    for code in ORDER:
        if code in zips:
            r = client.upload_file(zips[code], zips[code].name)
            assert r.sha256 == sha256_file(zips[code])
            out[code] = r.sha256
    return out


def _commit_month(client, tid: str, zips: dict[str, Path], branch: str | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Upload and submit the set; wait until it is Yedeklendi (its files are then committed)."""
    shas = _upload_all(client, zips)
    client.submit_month(tid, branch, SEP_2019, [(zips[k].name, shas[k]) for k in ORDER if k in zips])
    st = client.wait_for_final(tid, branch, SEP_2019, timeout=90)
    assert st.status is BackupStatus.YEDEKLENDI, st.problems
    return shas


def test_upload_idempotent_conflict_download(integrator, make_month, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    month = make_month(taxpayer_id=tid)
    zips = zip_month(month, tmp_path / "z")
    with integrator.client(user, pw) as c:
        y = zips["Y"]
        first = c.upload_file(y, parse_name(y.name))
        assert first.created is True
        assert first.retention_until == dt.date(2029, 12, 31)  # fiscal year 2019 + 10
        again = c.upload_file(y, y.name)
        assert again.created is False and again.sha256 == first.sha256
        # Staged, not committed: the name is not taken until a set listing it is validated.
        assert c.list_files(tid) == []
        assert c.session.get(f"{integrator.url}/v1/files/{y.name}").status_code == 404
        _commit_month(c, tid, zips)
        assert y.name in [f.name for f in c.list_files(tid)]
        assert c.upload_file(y, y.name).created is False
        # Same name, other bytes: 409 and the original stays.
        other = tmp_path / "other" / y.name
        other.parent.mkdir()
        with zipfile.ZipFile(other, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(y.stem + ".xml", month.path("Y").read_bytes() + b"\n")
        with pytest.raises(ConflictError) as ei:
            c.upload_file(other, y.name)
        assert ei.value.status == 409 and ei.value.details["archived_sha256"] == first.sha256
        dest = tmp_path / "restored.zip"
        assert c.download(y.name, dest) == first.sha256
        assert dest.read_bytes() == y.read_bytes()
        assert sorted(f.name for f in c.list_files(tid)) == sorted(z.name for z in zips.values())


def test_month_backed_up_with_seed_message(integrator, make_month, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    month = make_month(taxpayer_id=tid)
    zips = zip_month(month, tmp_path / "z")
    with integrator.client(user, pw) as c:
        shas = _upload_all(c, zips)
        before = c.month_status(tid, None, SEP_2019)
        assert before.status is BackupStatus.GONDERILMEDI
        manifest = [(zips[code].name, shas[code]) for code in ORDER]
        receipt = c.submit_month(tid, None, SEP_2019, manifest, source="Airflow")
        assert receipt.status is BackupStatus.ISLENDI and receipt.created
        # Submitting the identical manifest again (a client retry) is the same submission.
        again = c.submit_month(tid, None, "201909", manifest)
        assert again.submission_id == receipt.submission_id and not again.created
        st = c.wait_for_final(tid, None, SEP_2019, timeout=60)
        assert st.status is BackupStatus.YEDEKLENDI, st.problems
        assert st.message_tr == "Eylül-2019 ayına ait Yevmiye ve Büyük Defter dosyaları yedeklendi."
        assert st.description == "Airflow sisteminden aktarılmıştır"
        assert st.retention_until == dt.date(2029, 12, 31)
        assert {f.name for f in st.files} == {zips[c_].name for c_ in ORDER}
        assert all(f.status is BackupStatus.YEDEKLENDI for f in st.files)
        tree = c.session.get(f"{integrator.url}/v1/files", params={"taxpayer_id": tid}).json()
        assert tree["years"][0]["year"] == 2019
        assert tree["years"][0]["months"][0]["label_tr"] == "Eylül-2019"
        assert len(tree["years"][0]["months"][0]["files"]) == 7


def test_submit_with_missing_files_is_yedeklenemedi(integrator, make_month, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    month = make_month(taxpayer_id=tid)
    zips = zip_month(month, tmp_path / "z")
    missing = zips.pop("GIB-KB")
    with integrator.client(user, pw) as c:
        shas = _upload_all(c, zips)
        manifest = [(zips[code].name, shas[code]) for code in ORDER if code in zips]
        c.submit_month(tid, None, SEP_2019, manifest)
        st = c.wait_for_final(tid, None, SEP_2019, timeout=60)
    assert st.status is BackupStatus.YEDEKLENEMEDI
    named = {f for p in st.problems for f in p["files"]}
    assert any(missing.stem in f for f in named), st.problems
    assert "yedeklenemedi" in st.message_tr


def test_manifest_lists_file_never_uploaded(integrator, make_month, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    month = make_month(taxpayer_id=tid)
    zips = zip_month(month, tmp_path / "z")
    with integrator.client(user, pw) as c:
        shas = _upload_all(c, {k: v for k, v in zips.items() if k != "DR"})
        manifest = [(zips[code].name, shas.get(code, sha256_file(zips[code]))) for code in ORDER]
        c.submit_month(tid, None, SEP_2019, manifest)
        st = c.wait_for_final(tid, None, SEP_2019, timeout=60)
    assert st.status is BackupStatus.YEDEKLENEMEDI
    dr = next(f for f in st.files if f.name == zips["DR"].name)
    assert dr.status is BackupStatus.YEDEKLENEMEDI
    assert any(p["code"] == "set.file_not_uploaded" for p in dr.problems)


def test_ledger_signature_value_not_matching_berat_is_yedeklenemedi(integrator, make_month, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    month = make_month(taxpayer_id=tid, seed=0)
    other = make_month(taxpayer_id=tid, seed=1)  # same names, other signatures
    shutil.copyfile(other.path("Y"), month.path("Y"))
    zips = zip_month(month, tmp_path / "z")
    with integrator.client(user, pw) as c:
        shas = _upload_all(c, zips)
        c.submit_month(tid, None, SEP_2019, [(zips[k].name, shas[k]) for k in ORDER])
        st = c.wait_for_final(tid, None, SEP_2019, timeout=60)
    assert st.status is BackupStatus.YEDEKLENEMEDI
    codes = {p["code"] for p in st.problems}
    assert any(code.startswith("chain.") for code in codes), codes
    y = next(f for f in st.files if f.name == zips["Y"].name)
    assert y.status is BackupStatus.YEDEKLENEMEDI


def test_tampered_ledger_is_yedeklenemedi_by_the_cryptographic_check(integrator, make_month, tmp_path: Path) -> None:
    """A flipped byte inside a ledger keeps every name, header and copied SignatureValue intact:
    only the service's cryptographic verification (on by default) can catch it."""
    from include.edefter.sample import breakage

    tid, user, pw = integrator.account()
    month = make_month(taxpayer_id=tid)
    breakage.flip_byte_in_ledger_body(month.path("Y"))
    zips = zip_month(month, tmp_path / "z")
    with integrator.client(user, pw) as c:
        shas = _upload_all(c, zips)
        c.submit_month(tid, None, SEP_2019, [(zips[k].name, shas[k]) for k in ORDER])
        st = c.wait_for_final(tid, None, SEP_2019, timeout=90)
    assert st.status is BackupStatus.YEDEKLENEMEDI
    y = next(f for f in st.files if f.name == zips["Y"].name)
    assert y.status is BackupStatus.YEDEKLENEMEDI
    assert any(p["code"].startswith("crypto.signature") for p in y.problems), y.problems
    # The verdict names the damaged ledger only: no other file has a cryptographic finding.
    assert not [p for f in st.files if f.name != y.name for p in f.problems if p["code"].startswith("crypto.")]


def test_delete_is_refused_and_file_stays(integrator, make_month, tmp_path: Path) -> None:
    tid, user, pw = integrator.account()
    zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
    with integrator.client(user, pw) as c:
        shas = _commit_month(c, tid, zips)
        resp = c.session.delete(f"{integrator.url}/v1/files/{zips['YB'].name}")
        assert resp.status_code == 405
        body = resp.json()["error"]
        assert body["code"] == "file.delete_refused" and "silinemez" in body["message_tr"]
        assert c.download(zips["YB"].name, tmp_path / "back.zip") == shas["YB"]


def test_tenants_are_isolated(integrator, make_month, tmp_path: Path) -> None:
    tid_a, user_a, pw_a = integrator.account()
    tid_b, user_b, pw_b = integrator.account()
    zips_a = zip_month(make_month(taxpayer_id=tid_a), tmp_path / "a")
    with integrator.client(user_a, pw_a) as a, integrator.client(user_b, pw_b) as b:
        a.upload_file(zips_a["KB"], zips_a["KB"].name)
        with pytest.raises(AuthError) as ei:  # B uploads a file named for A's taxpayer id
            b.upload_file(zips_a["Y"], zips_a["Y"].name)
        assert ei.value.status == 403 and ei.value.code == "tenant.forbidden"
        with pytest.raises(AuthError):
            b.download(zips_a["KB"].name, tmp_path / "stolen.zip")
        assert not (tmp_path / "stolen.zip").exists()
        with pytest.raises(AuthError):
            b.list_files(tid_a)
        with pytest.raises(AuthError):
            b.month_status(tid_a, None, SEP_2019)
    with integrator.client(user_a, "wrong-password", retries=0) as bad:
        with pytest.raises(AuthError) as ei:
            bad.list_files(tid_a)
        assert ei.value.status == 401


def test_branch_account_sees_only_its_branch(integrator, make_month, tmp_path: Path) -> None:
    tid, company_user, company_pw = integrator.account()
    _, branch_user, branch_pw = integrator.account(tid, branch="0001")
    head = zip_month(make_month(taxpayer_id=tid), tmp_path / "h")
    br = zip_month(make_month(taxpayer_id=tid, branch="0001", branch_name="Merkez Şube"), tmp_path / "b")
    with integrator.client(company_user, company_pw) as comp, integrator.client(branch_user, branch_pw) as bra:
        comp.upload_file(head["Y"], head["Y"].name)
        bra.upload_file(br["Y"], br["Y"].name)
        with pytest.raises(AuthError):
            bra.upload_file(head["K"], head["K"].name)
        with pytest.raises(AuthError):
            bra.download(head["Y"].name, tmp_path / "x.zip")
        # The branch's own month set, submitted by the branch account.
        _commit_month(bra, tid, br, branch="0001")
        st = bra.month_status(tid, "0001", SEP_2019)
        assert st.branch == "0001"
        branch_files = {br[k].name for k in ORDER}
        assert {f.name for f in bra.list_files(tid)} == branch_files
        # The head office's Y is only staged (never submitted): listed nowhere.
        assert {f.name for f in comp.list_files(tid)} == branch_files
        # The company-level month is a different set: not submitted.
        assert comp.month_status(tid, None, SEP_2019).status is BackupStatus.GONDERILMEDI


def test_eight_concurrent_uploaders_store_each_object_once(integrator, make_month, tmp_path: Path) -> None:
    import random
    from concurrent.futures import ThreadPoolExecutor

    tid, user, pw = integrator.account()
    zips = zip_month(make_month(taxpayer_id=tid), tmp_path / "z")
    items = list(zips.values())

    def worker(seed: int) -> list[tuple[str, bool, str]]:
        order = items[:]
        random.Random(seed).shuffle(order)
        with integrator.client(user, pw) as c:
            return [(p.name, (r := c.upload_file(p, p.name)).created, r.sha256) for p in order]

    with ThreadPoolExecutor(8) as pool:
        results = [x for chunk in pool.map(worker, range(8)) for x in chunk]
    assert len(results) == 8 * len(items)
    for p in items:
        mine = [r for r in results if r[0] == p.name]
        assert sum(1 for r in mine if r[1]) == 1, f"{p.name} created {sum(1 for r in mine if r[1])} times"
        assert {r[2] for r in mine} == {sha256_file(p)}
    with integrator.client(user, pw) as c:
        _commit_month(c, tid, zips)
        listing = c.list_files(tid)
        assert sorted(f.name for f in listing) == sorted(p.name for p in items)
        for f in listing:
            assert c.download(f.name, tmp_path / "dl.zip") == f.sha256
    if integrator.backend.seaweed is None:
        objects = [p for p in (integrator.service.data / "objects" / "sha256").rglob("*") if p.is_file()]
        shas = {sha256_file(p) for p in items}
        stored = {p.name for p in objects}
        assert shas <= stored
        for p in objects:
            if p.name in shas:
                assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name
    else:
        s3 = integrator.backend.seaweed.client()
        for p in items:
            sha = sha256_file(p)
            versions = s3.list_object_versions(Bucket=integrator.backend.seaweed.bucket, Prefix=f"sha256/{sha[:2]}/{sha}")
            assert len(versions.get("Versions", [])) == 1, versions.get("Versions")


def test_health_and_openapi(integrator) -> None:
    r = requests.get(f"{integrator.url}/health", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    spec = requests.get(f"{integrator.url}/openapi.json", timeout=10).json()
    assert "/v1/files/{filename}" in spec["paths"]
    assert {"put", "get", "delete"} <= set(spec["paths"]["/v1/files/{filename}"])


def test_rejected_error_carries_turkish_and_english(default_integrator, tmp_path: Path) -> None:
    tid, user, pw = default_integrator.account()
    bad = tmp_path / f"{tid}-201913-Y-000000.zip"
    bad.write_bytes(b"PK")
    with default_integrator.client(user, pw) as c:
        with pytest.raises(RejectedError) as ei:
            c.upload_file(bad, bad.name)
    assert ei.value.status == 400 and ei.value.code == "name.period"
    assert "ay" in ei.value.message_tr and "month" in ei.value.message_en


def test_zip_one_helper_matches_stem(tmp_path: Path, approved_month) -> None:  # type: ignore[no-untyped-def]
    z = zip_one(approved_month.path("Y"), tmp_path)
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == [approved_month.path("Y").name]
