"""The command line: python -m include.edefter.sample OUT_DIR ..."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from include.edefter.naming import parse_name
from include.edefter.sample.__main__ import parse_size


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "include.edefter.sample", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_documents_options() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0
    for opt in ("--vkn", "--name", "--from", "--to", "--branch", "--branch-name", "--parts", "--part-size",
                "--entries", "--seed", "--stage", "--layout", "--zip", "--no-dr", "NOT VALID FOR GİB"):
        assert opt in proc.stdout, opt


def test_cli_gib_layout_zipped_with_branch(tmp_path: Path) -> None:
    proc = _cli(str(tmp_path), "--vkn", "0123456789", "--name", "Deneme Ltd. Şti.", "--from", "2019-12",
                "--to", "2020-01", "--branch", "0042", "--branch-name", "Ankara", "--parts", "2", "--entries", "3",
                "--stage", "berats", "--layout", "gib", "--zip", "--no-dr")
    assert proc.returncode == 0, proc.stderr
    files = sorted(p for p in tmp_path.rglob("*.zip"))
    rel = {str(p.relative_to(tmp_path)) for p in files}
    assert "0123456789/01.01.2019-31.12.2019/12/0123456789-201912-Y-000001-0042.zip" in rel
    assert "0123456789/01.01.2020-31.12.2020/01/0123456789-202001-KB-000002-0042.zip" in rel
    assert len(files) == 2 * 2 * 4  # months x parts x (Y, K, YB, KB); no GIB-, no DR
    for p in files:
        name = parse_name(p.name)
        assert not name.gib and name.branch == "0042"
        with zipfile.ZipFile(p) as zf:
            assert zf.namelist() == [p.with_suffix(".xml").name]
    certs = tmp_path / "test-certificates"
    assert {"ca.pem", "gib-seal.pem", "0123456789-mali-muhur.pem", "README.txt"} <= {x.name for x in certs.iterdir()}
    assert "NOT VALID FOR GİB" in (certs / "README.txt").read_text(encoding="utf-8")
    assert not list(tmp_path.rglob("*.xml"))


def test_cli_stage_ledgers(tmp_path: Path) -> None:
    proc = _cli(str(tmp_path), "--vkn", "1234567801", "--name", "X", "--from", "2023-05", "--stage", "ledgers")
    assert proc.returncode == 0, proc.stderr
    codes = sorted(parse_name(p.name).code for p in tmp_path.glob("*.xml"))
    assert codes == ["DR", "K", "Y"]


@pytest.mark.parametrize("args", [
    ["--from", "2019-13"],
    ["--from", "2019-09", "--branch", "0000"],
    ["--from", "2019-09", "--parts", "2", "--part-size", "1MB"],
    ["--from", "2019-09", "--to", "2019-01"],
])
def test_cli_rejects_bad_options(tmp_path: Path, args: list[str]) -> None:
    proc = _cli(str(tmp_path / "out"), "--vkn", "1234567801", "--name", "X", *args)
    assert proc.returncode != 0
    assert proc.stderr.strip()


def test_parse_size() -> None:
    assert parse_size("200MB") == 200 * 1024 * 1024
    assert parse_size("512k") == 512 * 1024
    assert parse_size("1000") == 1000
    with pytest.raises(Exception, match="size"):
        parse_size("lots")
