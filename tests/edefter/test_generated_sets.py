"""The domain core over real signed sets from the project's sample generator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from include.edefter.checks import MonthReport, validate_month
from include.edefter.discovery import discover
from include.edefter.naming import Period
from include.edefter.sample import MonthFiles, TestPKI
from include.edefter.sample import breakage as brk
from include.edefter.sample.generator import Stage
from include.edefter.status import EDefterStatus
from tests.edefter.handmade import tree_digest


def check_folder(root: Path, **kw: object) -> MonthReport:
    before = tree_digest(root)
    d = discover(root)
    assert len(d.sets) == 1, [str(s.key) for s in d.sets]
    r = validate_month(d.month_inputs(d.sets[0]), expected=d.sets[0].key, **kw)  # type: ignore[arg-type]
    assert tree_digest(root) == before
    return r


def codes_for(r: MonthReport, filename: str) -> set[str]:
    return {p.code for p in r.errors if filename in p.files}


def test_approved_generated_month_is_clean_and_facts_match(approved_month: MonthFiles) -> None:
    r = check_folder(approved_month.directory)
    assert r.ok, [str(p) for p in r.problems]
    assert r.status is EDefterStatus.ONAYLI_BERAT_INDIRILDI
    stats = approved_month.parts[0]
    by_code = {n.code: f for n, f in r.facts.items()}
    assert set(by_code) == {"Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"}
    assert by_code["Y"].unique_id == stats.journal_unique_id == by_code["YB"].unique_id
    assert by_code["K"].unique_id == stats.kebir_unique_id
    assert by_code["Y"].signature_value == stats.journal_signature_value == by_code["GIB-YB"].copied_signature_value
    assert by_code["K"].signature_value == stats.kebir_signature_value == by_code["KB"].copied_signature_value
    assert by_code["YB"].entry_count == stats.entry_count
    assert by_code["GIB-KB"].has_counter_signature and not by_code["KB"].has_counter_signature
    assert by_code["GIB-KB"].signature_value == by_code["KB"].signature_value
    assert by_code["Y"].company_name == "Örnek Ticaret A.Ş." and by_code["Y"].taxpayer_id == "1234567801"
    assert by_code["DR"].root == "defterraporu"


@pytest.mark.parametrize(
    ("stage", "status", "missing_codes"),
    [
        (Stage.LEDGERS, EDefterStatus.DOSYA_OLUSTURULDU, ("YB", "KB")),
        (Stage.TAXPAYER_BERATS, EDefterStatus.GIBE_GONDERILDI, ("GIB-YB", "GIB-KB")),
        (Stage.GIB_BERATS, EDefterStatus.ONAYLI_BERAT_INDIRILDI, ()),
    ],
)
def test_every_status_from_generated_sets(
    make_month: Callable[..., MonthFiles], stage: Stage, status: EDefterStatus, missing_codes: tuple[str, ...]
) -> None:
    mf = make_month(stage=stage, entries_per_part=5)
    r = check_folder(mf.directory, require_approved=False)
    assert r.ok, [str(p) for p in r.problems]
    assert r.status is status
    assert r.missing == tuple(
        f"{'GIB-' if c.startswith('GIB-') else ''}1234567801-201909-{c.removeprefix('GIB-')}-000000"
        for c in missing_codes
    )


def test_split_branch_gib_layout_zipped(make_month: Callable[..., MonthFiles]) -> None:
    mf = make_month(parts=3, entries_per_part=6, branch="7011", layout="gib", zipped=True, period=Period(2020, 1))
    root = mf.directory.parents[2]
    r = check_folder(root)
    assert r.ok, [str(p) for p in r.problems]
    assert r.ledger_set is not None and r.ledger_set.parts == (1, 2, 3)
    assert r.key is not None and r.key.branch == "7011"
    assert all(f.branch_no == "7011" for f in r.facts.values())


def test_missing_file(approved_month: MonthFiles) -> None:
    brk.remove_file(approved_month.paths[("GIB-KB", 0)])
    r = check_folder(approved_month.directory)
    assert r.status is EDefterStatus.GIBE_GONDERILDI
    assert r.missing == ("GIB-1234567801-201909-KB-000000",)
    assert {p.code for p in r.errors} == {"set.not_approved"}


def test_berat_of_other_month(approved_month: MonthFiles, sample_pki: TestPKI) -> None:
    p = brk.berat_of_other_month(approved_month.paths[("YB", 0)], pki=sample_pki)
    r = check_folder(approved_month.directory)
    got = codes_for(r, p.name)
    assert {"content.period_mismatch", "chain.signature_value_mismatch", "chain.gib_berat_mismatch"} <= got


def test_wrong_taxpayer_inside(approved_month: MonthFiles) -> None:
    p = brk.wrong_taxpayer_inside(approved_month.paths[("K", 0)])
    r = check_folder(approved_month.directory)
    assert "content.taxpayer_mismatch" in codes_for(r, p.name)


def test_truncated_ledger(approved_month: MonthFiles) -> None:
    p = brk.truncate_xml(approved_month.paths[("Y", 0)])
    r = check_folder(approved_month.directory)
    assert codes_for(r, p.name) == {"xml.truncated"}


def test_gib_berat_without_counter_signature(approved_month: MonthFiles) -> None:
    p = brk.gib_berat_without_counter_signature(approved_month.paths[("GIB-YB", 0)])
    r = check_folder(approved_month.directory)
    assert codes_for(r, p.name) == {"chain.gib_counter_signature_missing"}


def test_ledger_name_with_berat_content(approved_month: MonthFiles) -> None:
    y = approved_month.paths[("Y", 0)]
    y.write_bytes(approved_month.paths[("YB", 0)].read_bytes())
    r = check_folder(approved_month.directory)
    assert "content.type_mismatch" in codes_for(r, y.name)


def test_scan_verify_with_the_real_verifier(
    approved_month: MonthFiles, sample_pki: TestPKI, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from include.edefter import __main__ as cli

    monkeypatch.setenv("EDEFTER_TRUSTED_ROOTS", str(sample_pki.ca_cert_path))
    monkeypatch.setenv("EDEFTER_GIB_CERTS", str(sample_pki.gib_cert_path))
    root = approved_month.directory
    assert cli.main(["scan", str(root), "--verify", "--json"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert clean["cryptographic_verification"] is True and clean["ok"] is True

    y = brk.flip_byte_in_ledger_body(approved_month.paths[("Y", 0)])
    before = tree_digest(root)
    assert cli.main(["scan", str(root), "--verify", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert tree_digest(root) == before
    bad = [p for s in data["sets"] for p in s["problems"] if y.name in p["files"]]
    # Only cryptography can see this: names, facts and the copied signature value all still agree.
    assert bad and all(p["code"].startswith("crypto.") for p in bad), bad
