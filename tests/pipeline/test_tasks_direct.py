"""The task functions called directly (no Airflow), against the real integrator on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.edefter.naming import Period
from include.edefter.sample import TestPKI, generate_month
from include.integrator.client import IntegratorClient
from include.pipeline.config import parse_config
from include.pipeline.tasks import VerdictError, package_month, upload_month, verify_month
from tests.pipeline.conftest import PASSWORD, Integrator


def _unit(folder: Path, tax: str):  # type: ignore[no-untyped-def]
    cfg = parse_config({"companies": [{"id": "direkt", "taxpayer_id": tax, "name": "Direkt A.Ş.", "folder": str(folder),
                                        "start_month": "2025-01", "integrator_conn_id": "unused"}]})
    return cfg.units[0]


def test_upload_resumes_after_a_partial_upload_and_sends_only_the_rest(
    integrator: Integrator, sample_pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDEFTER_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("EDEFTER_TRUSTED_ROOTS", str(sample_pki.ca_cert_path))
    monkeypatch.setenv("EDEFTER_GIB_CERTS", str(sample_pki.gib_cert_path))
    tax = "1414141414"
    folder = tmp_path / "edefter"
    generate_month(folder, taxpayer_id=tax, company_name="Direkt A.Ş.", period=Period(2025, 11), pki=sample_pki)
    unit = _unit(folder, tax)
    assert verify_month(unit, Period(2025, 11))["files"] == 7
    pkg = package_month(unit, Period(2025, 11))
    from include.edefter.packaging import Manifest

    manifest = Manifest.read(Path(pkg["manifest_path"]))
    with IntegratorClient(integrator.url, integrator.account(tax), PASSWORD) as client:
        for f in manifest.files[:3]:  # a previous attempt died after three files
            client.upload_file(f.zip_path, f.zip_name, sha256=f.zip_sha256)
        out = upload_month(unit, Period(2025, 11), pkg["manifest_path"], client)
        assert out["uploaded"] == 4 and out["already_archived"] == 3
        final = client.wait_for_final(tax, None, Period(2025, 11), timeout=60)
    assert final.status.value == "Yedeklendi"
    assert sorted(n for n, _ in integrator.stored(tax)) == sorted(f.zip_name for f in manifest.files)
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(f.name for f in manifest.files)


def test_verify_names_the_missing_month_and_folder(sample_pki: TestPKI, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDEFTER_WORK_DIR", str(tmp_path / "work"))
    unit = _unit(tmp_path, "1515151515")
    with pytest.raises(VerdictError, match="2025-12"):
        verify_month(unit, Period(2025, 12))
    unit = _unit(tmp_path / "yok", "1515151515")
    with pytest.raises(VerdictError, match="bulunamadı"):
        verify_month(unit, Period(2025, 12))


def test_guard_compares_xml_bytes_when_the_archive_was_zipped_by_another_packer(
    integrator: Integrator, sample_pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archived by another tool (different zip bytes, same XML): a re-run is not a ransomware alarm."""
    import zipfile

    from include.edefter.packaging import Manifest, sha256_file

    monkeypatch.setenv("EDEFTER_WORK_DIR", str(tmp_path / "work"))
    tax = "1717171717"
    folder = tmp_path / "edefter"
    generate_month(folder, taxpayer_id=tax, company_name="Başka A.Ş.", period=Period(2025, 12), pki=sample_pki)
    unit = _unit(folder, tax)
    pkg = package_month(unit, Period(2025, 12))
    manifest = Manifest.read(Path(pkg["manifest_path"]))
    other = tmp_path / "other-packer"
    other.mkdir()
    with IntegratorClient(integrator.url, integrator.account(tax), PASSWORD) as client:
        sent = []
        for f in manifest.files:
            z = other / f.zip_name
            with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
                zf.write(folder / f.name, f.name)
            sha = sha256_file(z)
            assert sha != f.zip_sha256
            client.upload_file(z, f.zip_name, sha256=sha)
            sent.append((f.zip_name, sha))
        client.submit_month(tax, None, Period(2025, 12), sent)
        assert client.wait_for_final(tax, None, Period(2025, 12), timeout=60).status.value == "Yedeklendi"
        out = upload_month(unit, Period(2025, 12), pkg["manifest_path"], client)
    assert out["uploaded"] == 0 and out["skipped_month_already_backed_up"] is True
