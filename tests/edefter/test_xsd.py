"""XSD validation against GİB's e-Defter package: in validate_month, the scanner and the CLI; bounded memory."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from include.edefter.checks import validate_month
from include.edefter.naming import parse_name
from include.edefter.problems import Severity
from include.edefter.sample import MonthFiles
from include.edefter.scan import scan_folder
from include.edefter.xsd import MAX_ERRORS, SchemaUnavailable, load_validator

PROJECT = Path(__file__).resolve().parents[2]


def _inputs(mf: MonthFiles):  # type: ignore[no-untyped-def]  # noqa: ANN202
    return [(parse_name(p.name), (lambda p=p: p.open("rb"))) for p in sorted(mf.paths.values())]


def _codes(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.code for p in report.problems]


def _bad_context_ref(path: Path, count: int | None = None) -> None:
    data = path.read_bytes()
    n = -1 if count is None else count
    path.write_bytes(data.replace(b'contextRef="journal_context"', b'contextRef="1bad"', n))


def test_generated_month_is_schema_valid(approved_month: MonthFiles, schema_dir: Path) -> None:
    r = validate_month(_inputs(approved_month), schema="require")
    assert not [p for p in r.problems if p.code.startswith("schema.")], [str(p) for p in r.problems]
    assert r.ok


def test_invalid_context_ref_reported_with_file_line_rule(approved_month: MonthFiles, schema_dir: Path) -> None:
    y = approved_month.path("Y")
    _bad_context_ref(y)
    r = validate_month(_inputs(approved_month), schema="auto")
    (p,) = [p for p in r.problems if p.code == "schema.invalid"]
    assert p.files == (y.name,) and p.severity is Severity.ERROR
    d = dict(p.details)
    assert int(d["error_count"]) > MAX_ERRORS and d["error_count_is_lower_bound"] == "false"
    lines = d["errors"].splitlines()
    assert len(lines) == MAX_ERRORS
    first_line, msg = lines[0].split(": ", 1)
    assert int(first_line) > 1 and "contextRef" in msg and "IDREF" in msg
    assert "satır" in p.message_tr and "line" in p.message_en and "XSD" in p.message_en
    assert not r.ok


def test_signature_misplaced_inside_xbrl_is_schema_invalid(approved_month: MonthFiles, schema_dir: Path) -> None:
    dr = approved_month.path("DR")
    data = dr.read_bytes()
    start = data.index(b"<ds:Signature")
    end = data.index(b"</ds:Signature>") + len(b"</ds:Signature>")
    sig = data[start:end]
    rest = data[:start] + data[end:]
    i = rest.index(b"</xbrli:xbrl>")
    dr.write_bytes(rest[:i] + sig + rest[i:])
    r = validate_month(_inputs(approved_month), schema="auto")
    (p,) = [p for p in r.problems if p.code == "schema.invalid"]
    assert p.files == (dr.name,) and "Signature" in dict(p.details)["errors"]


def test_no_schema_dir_says_skipped(approved_month: MonthFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDEFTER_SCHEMA_DIR", raising=False)
    r = validate_month(_inputs(approved_month))
    (p,) = [p for p in r.problems if p.code == "schema.skipped"]
    assert p.severity is Severity.WARNING and r.ok
    assert "skipped" in p.message_en and "yapılmadı" in p.message_tr and "EDEFTER_SCHEMA_DIR" in p.message_en
    strict = validate_month(_inputs(approved_month), schema="require")
    (p,) = [p for p in strict.problems if p.code == "schema.skipped"]
    assert p.severity is Severity.ERROR and not strict.ok
    off = validate_month(_inputs(approved_month), schema="off")
    assert not [p for p in off.problems if p.code.startswith("schema.")]


def test_bad_schema_dirs(tmp_path: Path, schema_dir: Path, approved_month: MonthFiles) -> None:
    with pytest.raises(SchemaUnavailable, match="does not exist"):
        load_validator(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SchemaUnavailable, match="not found"):
        load_validator(tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "edefter.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x">'
        '<xs:element name="a"/></xs:schema>'
    )
    with pytest.raises(SchemaUnavailable, match="not GİB"):
        load_validator(other)
    # GİB's package but an import that would go to the network: refused, never fetched
    net = tmp_path / "net"
    shutil.copytree(schema_dir, net)
    (net / "edefter.xsd").chmod(0o644)
    text = (net / "edefter.xsd").read_text()
    (net / "edefter.xsd").write_text(text.replace('schemaLocation="edefter_ek.xsd"',
                                                  'schemaLocation="http://example.invalid/edefter_ek.xsd"'))
    with pytest.raises(SchemaUnavailable):
        load_validator(net)
    # through validate_month: a demanded but unusable schema is an error naming the reason
    r = validate_month(_inputs(approved_month), schema=other)
    (p,) = [p for p in r.problems if p.code == "schema.skipped"]
    assert p.severity is Severity.ERROR and "not GİB" in p.message_en


def test_ten_thousand_errors_bounded(tmp_path: Path, schema_dir: Path) -> None:
    v = load_validator(schema_dir)
    body = "".join(f'<x{i} bad="1"/>' for i in range(10_000))
    data = f'<edefter:defter xmlns:edefter="http://www.edefter.gov.tr"><bogus>{body}</bogus></edefter:defter>'
    r = v.validate(lambda: io.BytesIO(data.encode()), name="f.xml")
    assert not r.valid and 1 <= len(r.errors) <= MAX_ERRORS and r.errors[0].line == 1


@pytest.mark.parametrize("mode", ["xmllint", "lxml"])
def test_streaming_paths_agree_with_tree(approved_month: MonthFiles, schema_dir: Path, mode: str) -> None:
    if mode == "xmllint" and shutil.which("xmllint") is None:
        pytest.skip("xmllint not installed")
    v = load_validator(schema_dir)
    y = approved_month.path("Y")
    ok = v.validate(lambda: y.open("rb"), name=y.name, force_stream=mode, tree_max_bytes=1024)
    assert ok.valid and ok.method == f"{mode}-stream"
    _bad_context_ref(y)
    tree = v.validate(lambda: y.open("rb"), name=y.name)
    bad = v.validate(lambda: y.open("rb"), name=y.name, force_stream=mode, tree_max_bytes=1024)
    assert not bad.valid and bad.errors and "IDREF" in bad.errors[0].message
    if mode == "xmllint":  # exact: same lines and count as the tree validation
        assert bad.error_count == tree.error_count and [e.line for e in bad.errors] == [e.line for e in tree.errors]
    else:  # lines unknown, count a lower bound
        assert bad.count_is_lower_bound and bad.error_count >= 1


def test_scan_cli_reports_schema_errors(approved_month: MonthFiles, schema_dir: Path) -> None:
    """The issue: a schema-invalid file must not be "SORUN YOK" / exit 0."""
    _bad_context_ref(approved_month.path("Y"), count=1)
    out = subprocess.run([sys.executable, "-m", "include.edefter", "scan", str(approved_month.directory), "--json"],
                         capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    (s,) = json.loads(out.stdout)["sets"]
    (p,) = [p for p in s["problems"] if p["code"] == "schema.invalid"]
    assert p["details"]["error_count"] == "1" and p["details"]["first_line"].isdigit()
    text = subprocess.run([sys.executable, "-m", "include.edefter", "scan", str(approved_month.directory)],
                          capture_output=True, text=True, cwd=PROJECT, timeout=120)
    assert text.returncode == 1 and "schema.invalid" in text.stdout and "SORUN VAR" in text.stdout


def test_scan_folder_schema_off_and_required(approved_month: MonthFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDEFTER_SCHEMA_DIR", raising=False)
    res = scan_folder(approved_month.directory, schema="require")
    assert res.has_errors and any(p.code == "schema.skipped" for p in res.all_problems)
    res = scan_folder(approved_month.directory)
    assert not res.has_errors and any(p.code == "schema.skipped" for p in res.all_problems)
