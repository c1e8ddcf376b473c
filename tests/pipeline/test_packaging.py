"""Deterministic per-file zips: same bytes in, byte-identical zip out; streaming; never into the source."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.edefter.packaging import Manifest, PackagingError, package_file, package_files, sha256_file

NAME = "1234567801-202501-Y-000000.xml"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_zip_is_valid_and_deterministic_across_time_and_mode(tmp_path: Path) -> None:
    data = b"<edefter:defter>" + os.urandom(50_000).hex().encode() + b"</edefter:defter>"
    src = _write(tmp_path / "a" / NAME, data)
    one = package_file(src, tmp_path / "out1")
    os.utime(src, (0, 1_700_000_000))
    src.chmod(0o600)
    two = package_file(src, tmp_path / "out2")
    assert Path(one.zip_path).read_bytes() == Path(two.zip_path).read_bytes()
    assert one.zip_sha256 == two.zip_sha256 == sha256_file(Path(one.zip_path))
    assert one.xml_sha256 == hashlib.sha256(data).hexdigest() and one.xml_size == len(data)
    with zipfile.ZipFile(one.zip_path) as zf:
        (info,) = zf.infolist()
        assert info.filename == NAME and info.date_time == (1980, 1, 1, 0, 0, 0)
        assert (info.external_attr >> 16) == 0o100644
        assert zf.read(info) == data and zf.testzip() is None
    if shutil.which("unzip"):
        assert subprocess.run(["unzip", "-tq", one.zip_path], capture_output=True).returncode == 0


def test_source_zip_is_repackaged_to_the_same_bytes(tmp_path: Path) -> None:
    data = b"<x>" * 1000
    xml = package_file(_write(tmp_path / "src" / NAME, data), tmp_path / "o1")
    again = package_file(Path(xml.zip_path), tmp_path / "o2")
    assert again.zip_sha256 == xml.zip_sha256 and again.xml_sha256 == xml.xml_sha256


def test_bad_source_zip_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "src" / NAME.replace(".xml", ".zip")
    bad.parent.mkdir()
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("other.xml", b"x")
        zf.writestr("second.xml", b"y")
    with pytest.raises(PackagingError, match="exactly 1234567801-202501-Y-000000.xml"):
        package_file(bad, tmp_path / "out")
    bad.write_bytes(b"not a zip")
    with pytest.raises(PackagingError, match="not a readable zip"):
        package_file(bad, tmp_path / "out")


def test_refuses_to_write_into_the_edefter_folder(tmp_path: Path) -> None:
    src = _write(tmp_path / "edefter" / NAME, b"<x/>")
    with pytest.raises(PackagingError, match="e-Defter"):
        package_file(src, tmp_path / "edefter" / "zips", forbidden_root=tmp_path / "edefter")
    assert sorted(p.name for p in (tmp_path / "edefter").iterdir()) == [NAME]


def test_manifest_roundtrip_keeps_order(tmp_path: Path) -> None:
    names = [NAME, "1234567801-202501-K-000000.xml", "GIB-1234567801-202501-YB-000000.xml"]
    srcs = [_write(tmp_path / "s" / n, n.encode()) for n in names]
    manifest = package_files(srcs, tmp_path / "w")
    manifest.write(tmp_path / "w" / "manifest.json")
    back = Manifest.read(tmp_path / "w" / "manifest.json")
    assert back == manifest and [f.name for f in back.files] == names
    assert [f.code for f in back.files] == ["Y", "K", "GIB-YB"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300_000), st.integers(1, 3))
def test_any_bytes_roundtrip_and_are_deterministic(tmp_path: Path, data: bytes, level: int) -> None:
    src = _write(tmp_path / "p" / NAME, data)
    a = package_file(src, tmp_path / "x", level=level, chunk=4096)
    b = package_file(src, tmp_path / "y", level=level, chunk=4096)
    assert a.zip_sha256 == b.zip_sha256 and a.xml_sha256 == hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(a.zip_path) as zf:
        assert zf.read(NAME) == data


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 5])
def test_block_boundaries_give_one_standard_deflate_stream_whatever_the_thread_count(tmp_path: Path, size: int) -> None:
    """Blocks deflate in parallel, primed with the previous block's tail: the zip is standard
    (Python's zipfile and Info-ZIP's unzip read it), and the same for 1, 2 or 3 threads."""
    from include.edefter.packaging import CHUNK

    assert CHUNK == 1 << 20
    unit = b"<gl-cor:entryDetail><gl-cor:amount>1234.56</gl-cor:amount></gl-cor:entryDetail>\n"
    data = (unit * (size // len(unit) + 1))[:size]
    if size > 100:
        data = data[: size // 2] + os.urandom(64) + data[size // 2 + 64 :]  # not only repeats
    src = _write(tmp_path / "src" / NAME, data)
    zips = [package_file(src, tmp_path / f"w{w}", workers=w) for w in (1, 2, 3)]
    assert len({z.zip_sha256 for z in zips}) == 1
    with zipfile.ZipFile(zips[0].zip_path) as zf:
        assert zf.read(NAME) == data and zf.testzip() is None
    if shutil.which("unzip"):
        out = subprocess.run(["unzip", "-p", zips[0].zip_path], capture_output=True, check=True).stdout
        assert out == data
        assert subprocess.run(["unzip", "-tq", zips[0].zip_path], capture_output=True).returncode == 0
