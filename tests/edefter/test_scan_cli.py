"""The scanner CLI: python -m include.edefter scan FOLDER [--json] [--verify]."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from include.edefter import __main__ as cli
from include.edefter.naming import Period
from include.edefter.problems import Problem
from tests.edefter.handmade import month_docs, tree_digest, write_docs

PROJECT = Path(__file__).resolve().parents[2]


def run(*args: str, schema: str | None = "off") -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess; handmade documents are not GİB-schema-valid by design, so ``--schema off``
    unless a test asks for the schema (``schema=None`` passes no flag: the CLI's default)."""
    if schema is not None and args and args[0] == "scan" and "--help" not in args:
        args = (*args, "--schema", schema)
    return subprocess.run(
        [sys.executable, "-m", "include.edefter", *args], capture_output=True, text=True, cwd=PROJECT, timeout=120
    )


def test_clean_folder_exit_0_text(tmp_path: Path) -> None:
    write_docs(tmp_path / "1234567801" / "01.09.2019-30.09.2019" / "09", month_docs(dr=True))
    write_docs(tmp_path, month_docs(period=Period(2019, 10), stage="berats", branch="7011"))
    before = tree_digest(tmp_path)
    out = run("scan", str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Onaylı Berat İndirildi" in out.stdout and "GİB'e Gönderildi" in out.stdout
    assert "Eylül-2019" in out.stdout and "Ekim-2019" in out.stdout and "7011" in out.stdout
    assert "GIB-1234567801-201910-YB-000000-7011" in out.stdout  # what is missing
    assert "Örnek Ticaret A.Ş." in out.stdout
    assert tree_digest(tmp_path) == before


def test_problems_exit_1_and_json(tmp_path: Path) -> None:
    write_docs(tmp_path, month_docs(parts=(1, 3), stage="ledgers"))
    (tmp_path / "1234567801-201909-YB-0000001.xml").write_text("x")
    before = tree_digest(tmp_path)
    out = run("scan", str(tmp_path), "--json")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["ok"] is False and data["cryptographic_verification"] is False
    (s,) = data["sets"]
    assert s["taxpayer_id"] == "1234567801" and s["period"] == "201909" and s["parts"] == ["000001", "000002", "000003"]
    assert s["status"] == "eksik defter dosyaları" and s["status_en"] == "ledger files incomplete"
    assert s["complete"] is False and "1234567801-201909-Y-000002" in s["missing"]
    assert s["company_name"] == "Örnek Ticaret A.Ş."
    assert s["facts"]["1234567801-201909-Y-000001.xml"]["unique_id"] == "YEV201909000011"
    assert s["paths"]["1234567801-201909-Y-000001.xml"] == "1234567801-201909-Y-000001.xml"
    assert {p["code"] for p in s["problems"]} == {"set.part_gap"}
    assert [(p["code"], p["files"], p["details"]["field"]) for p in data["folder_problems"]] == [
        ("name.invalid", ["1234567801-201909-YB-0000001.xml"], "part")
    ]
    assert tree_digest(tmp_path) == before


def test_empty_folder_reports_no_files(tmp_path: Path) -> None:
    out = run("scan", str(tmp_path))
    assert out.returncode == 1
    assert "e-Defter dosyası bulunamadı" in out.stdout and "no e-Defter files" in out.stdout


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("scan", str(tmp_path / "missing")).returncode == 2
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("scan", "--help").returncode == 0


def test_messy_files_never_crash(tmp_path: Path) -> None:
    docs = month_docs()
    write_docs(tmp_path, docs)
    names = sorted(p.name for p in tmp_path.iterdir())
    (tmp_path / names[0]).write_bytes(b"\x00\xff" * 100)
    (tmp_path / names[1]).write_bytes((tmp_path / names[1]).read_bytes()[:300])
    (tmp_path / names[2]).write_bytes(b'<!DOCTYPE x [<!ENTITY a SYSTEM "file:///etc/passwd">]><x>&a;</x>')
    out = run("scan", str(tmp_path), "--json")
    assert out.returncode == 1, out.stderr
    codes = {p["code"] for s in json.loads(out.stdout)["sets"] for p in s["problems"]}
    assert {"xml.not_xml", "xml.truncated", "xml.dtd"} <= codes
    assert "root:x:0:0" not in out.stdout


def test_verify_unavailable_is_said_not_faked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_docs(tmp_path, month_docs())
    monkeypatch.setattr(cli._scan, "load_crypto_check_with_reason", lambda: (None, "no verifier here"))
    assert cli.main(["scan", str(tmp_path), "--verify", "--json", "--schema", "off"]) == 0
    cap = capsys.readouterr()
    assert "not available" in cap.err and "kullanılamıyor" in cap.err and "no verifier here" in cap.err
    data = json.loads(cap.out)
    assert data["cryptographic_verification"] is False and "NOT verified" in data["cryptographic_verification_note"]


def test_verify_uses_the_verify_module_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_docs(tmp_path, month_docs())
    calls: list[str] = []

    class TrustSettings:
        @classmethod
        def from_env(cls) -> str:
            return "trust-from-env"

    def crypto_check(trust):  # noqa: ANN001, ANN202
        assert trust == "trust-from-env"

        def check(name, opener):  # noqa: ANN001, ANN202
            calls.append(name.filename)
            if name.code == "GIB-KB":
                return [Problem("signature.invalid", (name.filename,), "imza geçersiz", "signature invalid")]
            return []

        return check

    fake = types.ModuleType("include.edefter.verify")
    fake.crypto_check = crypto_check  # type: ignore[attr-defined]
    fake.TrustSettings = TrustSettings  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "include.edefter.verify", fake)
    assert cli.main(["scan", str(tmp_path), "--verify", "--schema", "off"]) == 1
    out = capsys.readouterr().out
    assert len(calls) == 6 and "signature.invalid" in out and "yapıldı / done" in out


def test_json_and_text_agree(tmp_path: Path) -> None:
    """Every set's status, missing files and every problem (code, message, details) are in both reports."""
    write_docs(tmp_path, month_docs(parts=(1, 3), stage="ledgers"))
    write_docs(tmp_path, month_docs(period=Period(2019, 10), stage="berats", branch="7011"))
    data = json.loads(run("scan", str(tmp_path), "--json").stdout)
    text = run("scan", str(tmp_path)).stdout
    assert data["sets"]
    for s in data["sets"]:
        assert s["status"] and s["status_en"]  # never null
        assert f"e-Defter statüsü: {s['status']} ({s['status_en']})" in text
        for m in s["missing"]:
            assert m in text
        for p in s["problems"]:
            assert p["code"] in text and p["message_tr"] in text and p["message_en"] in text
            for v in p["details"].values():
                for line in str(v).splitlines():
                    assert line in text
    assert ("SORUN VAR" in text) == (data["ok"] is False)
