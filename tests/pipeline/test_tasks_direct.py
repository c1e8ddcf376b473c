"""The task functions called directly (no Airflow), against the real integrator on loopback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from include.edefter.naming import Period
from include.edefter.packaging import package_file, sha256_file
from include.edefter.sample import TestPKI, generate_month
from include.integrator.client import IntegratorClient
from include.pipeline.config import parse_config
from include.pipeline.tasks import CHANGED_TR, VerdictError, package_pinned, upload_month, verify_month
from tests.pipeline.conftest import PASSWORD, Integrator


def _unit(folder: Path, tax: str):  # type: ignore[no-untyped-def]
    cfg = parse_config({"companies": [{"id": "direkt", "taxpayer_id": tax, "name": "Direkt A.Ş.", "folder": str(folder),
                                        "start_month": "2025-01", "integrator_conn_id": "unused"}]})
    return cfg.units[0]


@pytest.fixture
def trust(sample_pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDEFTER_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("EDEFTER_TRUSTED_ROOTS", str(sample_pki.ca_cert_path))
    monkeypatch.setenv("EDEFTER_GIB_CERTS", str(sample_pki.gib_cert_path))
    return tmp_path / "work"


def _leftovers(work: Path) -> list[Path]:
    return [p for p in work.rglob("*")] if work.exists() else []


def test_verify_pins_the_bytes_it_checked(trust: Path, sample_pki: TestPKI, tmp_path: Path) -> None:
    import hashlib

    tax = "1313131313"
    folder = tmp_path / "edefter"
    generate_month(folder, taxpayer_id=tax, company_name="Direkt A.Ş.", period=Period(2025, 10), pki=sample_pki)
    out = verify_month(_unit(folder, tax), Period(2025, 10))
    assert len(out["files"]) == 7 and out["month"] == "2025-10"
    for f in out["files"]:
        data = (folder / f["name"]).read_bytes()
        assert f["xml_sha256"] == hashlib.sha256(data).hexdigest() and f["xml_size"] == len(data)
        assert f["signature_value"] and "path" not in str(f).lower()  # XCom carries no paths
    assert _leftovers(trust) == []


def test_upload_resumes_after_a_partial_upload_and_sends_only_the_rest(
    integrator: Integrator, sample_pki: TestPKI, tmp_path: Path, trust: Path
) -> None:
    tax = "1414141414"
    folder = tmp_path / "edefter"
    generate_month(folder, taxpayer_id=tax, company_name="Direkt A.Ş.", period=Period(2025, 11), pki=sample_pki)
    unit = _unit(folder, tax)
    verified = verify_month(unit, Period(2025, 11))
    assert len(verified["files"]) == 7
    other = tmp_path / "earlier-attempt"
    zips = package_pinned(unit, Period(2025, 11), verified, other)
    with IntegratorClient(integrator.url, integrator.account(tax), PASSWORD) as client:
        for f in zips[:3]:  # a previous attempt (on another worker) died after three files
            client.upload_file(f.zip_path, f.zip_name, sha256=f.zip_sha256)
        out = upload_month(unit, Period(2025, 11), verified, client)
        assert out["uploaded"] == 4 and out["already_archived"] == 3
        final = client.wait_for_final(tax, None, Period(2025, 11), timeout=60)
    assert final.status.value == "Yedeklendi"
    assert sorted(n for n, _ in integrator.stored(tax)) == sorted(f.zip_name for f in zips)
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(f["name"] for f in verified["files"])
    assert _leftovers(trust) == []


def test_upload_refuses_bytes_changed_after_verify_and_uploads_nothing(
    integrator: Integrator, sample_pki: TestPKI, tmp_path: Path, trust: Path
) -> None:
    tax = "1616161616"
    folder = tmp_path / "edefter"
    mf = generate_month(folder, taxpayer_id=tax, company_name="Direkt A.Ş.", period=Period(2025, 9), pki=sample_pki)
    unit = _unit(folder, tax)
    verified = verify_month(unit, Period(2025, 9))
    # The whole set replaced by another validly signed one, between verify and upload.
    for p in folder.glob("*.xml"):
        p.unlink()
    generate_month(folder, taxpayer_id=tax, company_name="Direkt A.Ş.", period=Period(2025, 9), pki=sample_pki, seed=99)
    with IntegratorClient(integrator.url, integrator.account(tax), PASSWORD) as client:
        with pytest.raises(VerdictError) as err:
            upload_month(unit, Period(2025, 9), verified, client)
        assert client.month_status(tax, None, Period(2025, 9)).status.value == "Entegratör'e Gönderilmedi"
    assert CHANGED_TR in err.value.message_tr and mf.path("Y").name in str(err.value)
    assert integrator.stored(tax) == []
    assert _leftovers(trust) == []


def test_upload_refuses_a_file_added_after_verify(integrator: Integrator, sample_pki: TestPKI, tmp_path: Path,
                                                  trust: Path) -> None:
    tax = "1818181818"
    folder = tmp_path / "edefter"
    generate_month(folder, taxpayer_id=tax, company_name="Direkt A.Ş.", period=Period(2025, 8), pki=sample_pki,
                   with_dr=False)
    unit = _unit(folder, tax)
    verified = verify_month(unit, Period(2025, 8))
    generate_month(tmp_path / "other", taxpayer_id=tax, company_name="Direkt A.Ş.", period=Period(2025, 8),
                   pki=sample_pki)
    dr = next((tmp_path / "other").glob("*-DR-*"))
    (folder / dr.name).write_bytes(dr.read_bytes())
    with IntegratorClient(integrator.url, integrator.account(tax), PASSWORD) as client, pytest.raises(VerdictError) as err:
        upload_month(unit, Period(2025, 8), verified, client)
    assert dr.name in str(err.value) and CHANGED_TR in str(err.value)
    assert integrator.stored(tax) == []


def test_verify_names_the_missing_month_and_folder(sample_pki: TestPKI, tmp_path: Path, trust: Path) -> None:
    unit = _unit(tmp_path, "1515151515")
    with pytest.raises(VerdictError, match="2025-12"):
        verify_month(unit, Period(2025, 12))
    unit = _unit(tmp_path / "yok", "1515151515")
    with pytest.raises(VerdictError, match="bulunamadı"):
        verify_month(unit, Period(2025, 12))


def test_upload_without_a_verify_result_refuses_to_send(integrator: Integrator, sample_pki: TestPKI,
                                                        tmp_path: Path, trust: Path) -> None:
    from include.pipeline.tasks import EvidenceIncompleteError

    tax = "1919191919"
    folder = tmp_path / "edefter"
    generate_month(folder, taxpayer_id=tax, company_name="Direkt A.Ş.", period=Period(2025, 7), pki=sample_pki)
    with IntegratorClient(integrator.url, integrator.account(tax), PASSWORD) as client:
        for verified in (None, {"month": "2025-07", "files": []}, {"month": "2025-06", "files": [{"name": "x"}]}):
            with pytest.raises(EvidenceIncompleteError):
                upload_month(_unit(folder, tax), Period(2025, 7), verified, client)
    assert integrator.stored(tax) == []


def test_guard_compares_xml_bytes_when_the_archive_was_zipped_by_another_packer(
    integrator: Integrator, sample_pki: TestPKI, tmp_path: Path, trust: Path
) -> None:
    """Archived by another tool (different zip bytes, same XML): a re-run is not a ransomware alarm."""
    tax = "1717171717"
    folder = tmp_path / "edefter"
    generate_month(folder, taxpayer_id=tax, company_name="Başka A.Ş.", period=Period(2025, 12), pki=sample_pki)
    unit = _unit(folder, tax)
    verified = verify_month(unit, Period(2025, 12))
    other = tmp_path / "other-packer"
    other.mkdir()
    with IntegratorClient(integrator.url, integrator.account(tax), PASSWORD) as client:
        sent = []
        for f in verified["files"]:
            ours = package_file(folder / f["name"], tmp_path / "ours")
            z = other / ours.zip_name
            with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
                zf.write(folder / f["name"], f["name"])
            sha = sha256_file(z)
            assert sha != ours.zip_sha256
            client.upload_file(z, ours.zip_name, sha256=sha)
            sent.append((ours.zip_name, sha, f["xml_sha256"]))
        client.submit_month(tax, None, Period(2025, 12), sent)
        assert client.wait_for_final(tax, None, Period(2025, 12), timeout=60).status.value == "Yedeklendi"
        out = upload_month(unit, Period(2025, 12), verified, client)
    assert out["uploaded"] == 0 and out["skipped_month_already_backed_up"] is True
