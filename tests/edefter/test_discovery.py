"""Discovery over real folder trees: layouts, zips, duplicates, links, special files; read-only."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.edefter.checks import validate_month as _validate_month
from include.edefter.discovery import discover
from include.edefter.naming import EDefterName, FileKind, Period
from include.edefter.problems import Problem
from include.edefter.settings import XmlLimits
from include.edefter.status import EDefterStatus
from tests.edefter.handmade import Doc, month_docs, tree_digest, write_docs


def validate_month(*args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: ANN002, ANN003, ANN201
    """Handmade documents are deliberately minimal (fake signatures), not GİB-schema-valid: no XSD here."""
    kwargs.setdefault("schema", "off")
    return _validate_month(*args, **kwargs)


P = Period(2019, 9)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """The scanned folder; every test proves it was not modified."""
    r = tmp_path / "edefter"
    r.mkdir()
    yield r
    # Checked at teardown by the tests themselves (after their last scan).


def scan_unchanged(root: Path, **kw: object):  # noqa: ANN201
    before = tree_digest(root)
    d = discover(root, **kw)  # type: ignore[arg-type]
    assert tree_digest(root) == before, "discovery modified the scanned folder"
    return d


def one(problems: tuple[Problem, ...], code: str) -> Problem:
    hits = [p for p in problems if p.code == code]
    assert len(hits) == 1, [str(p) for p in problems]
    return hits[0]


def test_flat_folder(root: Path) -> None:
    write_docs(root, month_docs(dr=True))
    d = scan_unchanged(root)
    assert not d.problems and len(d.files) == 7 and len(d.sets) == 1
    s = d.sets[0]
    assert s.status is EDefterStatus.ONAYLI_BERAT_INDIRILDI and s.has_dr
    r = validate_month(d.month_inputs(s), expected=s.key)
    assert r.ok, [str(p) for p in r.problems]


def test_gib_style_tree_and_vendor_tree_and_zips(root: Path) -> None:
    write_docs(root / "1234567801" / "01.09.2019-30.09.2019" / "09", month_docs())
    write_docs(root / "Zirve" / "paketler" / "2019" / "10" / "x", month_docs(period=Period(2019, 10), stage="berats"))
    write_docs(root / "zipped", month_docs(period=Period(2019, 11), stage="ledgers"), zipped=True)
    d = scan_unchanged(root)
    assert not d.problems, [str(p) for p in d.problems]
    assert [(str(s.key.period), s.status) for s in d.sets] == [
        ("2019-09", EDefterStatus.ONAYLI_BERAT_INDIRILDI),
        ("2019-10", EDefterStatus.GIBE_GONDERILDI),
        ("2019-11", EDefterStatus.DOSYA_OLUSTURULDU),
    ]
    nov = d.sets[2]
    assert {d.found(n).container for n in nov.names} == {"zip"}
    r = validate_month(d.month_inputs(nov), expected=nov.key, require_approved=False)
    assert r.ok and r.facts[nov.names[0]].root == "defter"


def test_zip_open_and_hashes(root: Path) -> None:
    docs = month_docs(stage="ledgers")
    write_docs(root, docs, zipped=True)
    d = scan_unchanged(root)
    f = d.files[0]
    with f.open() as fh:
        data = fh.read()
    assert data == docs[f.name.with_ext("xml")].xml()
    import hashlib

    assert f.content_sha256 == hashlib.sha256(data).hexdigest()
    assert f.sha256 == hashlib.sha256(f.path.read_bytes()).hexdigest() != f.content_sha256
    assert f.member == f.name.stem + ".xml" and f.rel_path == f.name.filename


def test_unrelated_files_ignored_and_bad_names_reported(root: Path) -> None:
    write_docs(root, month_docs(stage="ledgers"))
    (root / "readme.txt").write_text("not e-Defter")
    (root / "Thumbs.db").write_bytes(b"\0")
    (root / "rapor.xml").write_text("<x/>")
    (root / "1234567801-201913-Y-000000.xml").write_bytes(b"<x/>")
    (root / "1234567801-201909-X-000000.zip").write_bytes(b"PK")
    (root / "GIB-1234567801-201909-Y-000000.xml").write_bytes(b"<x/>")
    d = scan_unchanged(root)
    bad = {p.files[0]: dict(p.details)["field"] for p in d.problems if p.code == "name.invalid"}
    assert bad == {
        "1234567801-201913-Y-000000.xml": "period",
        "1234567801-201909-X-000000.zip": "kind",
        "GIB-1234567801-201909-Y-000000.xml": "prefix",
    }
    assert set(d.ignored) == {"readme.txt", "Thumbs.db", "rapor.xml"}
    assert len(d.files) == 2


def test_non_xml_file_with_a_ledger_name(root: Path) -> None:
    docs = month_docs(stage="ledgers")
    write_docs(root, docs)
    (root / "1234567801-201909-Y-000000.xml").write_bytes(b"%PDF-1.4 this is a PDF")
    d = scan_unchanged(root)
    r = validate_month(d.month_inputs(d.sets[0]), require_approved=False)
    p = one(r.problems, "xml.not_xml")
    assert p.files == ("1234567801-201909-Y-000000.xml",)


def test_identical_copies_count_once(root: Path) -> None:
    docs = month_docs(stage="ledgers")
    write_docs(root / "a", docs)
    write_docs(root / "b", docs)
    write_docs(root / "c", docs, zipped=True)
    d = scan_unchanged(root)
    assert not d.problems and len(d.files) == 2
    assert all(f.container == "xml" and f.rel_path.startswith("a/") for f in d.files)


def test_conflicting_copies_are_reported(root: Path) -> None:
    docs = month_docs(stage="ledgers")
    write_docs(root / "a", docs)
    y = EDefterName("1234567801", P, FileKind.Y, 0)
    write_docs(root / "b", {y: Doc(signature_value="different")}, zipped=True)
    d = scan_unchanged(root)
    p = one(d.problems, "discovery.conflicting_copies")
    assert p.files == ("a/1234567801-201909-Y-000000.xml", "b/1234567801-201909-Y-000000.zip")
    assert d.problems_for(d.sets[0]) == (p,)


def test_link_outside_root_not_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_docs(outside, month_docs())
    write_docs(root, month_docs(stage="ledgers"))
    (root / "1234567801-201909-YB-000000.xml").symlink_to(outside / "1234567801-201909-YB-000000.xml")
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "passwd.xml").symlink_to("/etc/passwd")
    d = scan_unchanged(root)
    links = sorted(p.files[0] for p in d.problems if p.code == "discovery.link_outside_root")
    assert links == ["1234567801-201909-YB-000000.xml", "elsewhere", "passwd.xml"]
    assert len(d.files) == 2 and d.sets[0].status is EDefterStatus.DOSYA_OLUSTURULDU


def test_links_inside_root_and_loops(root: Path) -> None:
    write_docs(root / "real", month_docs(stage="ledgers"))
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "real" / "again").symlink_to(root / "real", target_is_directory=True)
    (root / "dangling.xml").symlink_to(root / "nope.xml")
    d = scan_unchanged(root)
    assert len(d.files) == 2
    assert [p.code for p in d.problems] == ["discovery.broken_link"]


def test_fifo_with_a_ledger_name_is_not_opened(root: Path) -> None:
    write_docs(root, month_docs(stage="ledgers"))
    os.mkfifo(root / "1234567801-201909-YB-000000.xml")
    d = scan_unchanged(root)  # would block forever if the FIFO were opened
    assert one(d.problems, "file.not_regular").files == ("1234567801-201909-YB-000000.xml",)


def test_directory_named_like_a_file_is_walked_not_read(root: Path) -> None:
    (root / "1234567801-201909-Y-000000.xml").mkdir()
    write_docs(root / "1234567801-201909-Y-000000.xml", month_docs(stage="ledgers"))
    d = scan_unchanged(root)
    assert not d.problems and len(d.files) == 2


def test_unreadable_file_is_reported(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop reading; simulate the
    # permission error at the open() discovery does instead.
    write_docs(root, month_docs(stage="ledgers"))
    victim = str(root / "1234567801-201909-K-000000.xml")
    real_open = os.open

    def fake_open(path, flags, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        if os.fspath(path) == victim:
            raise PermissionError(13, "Permission denied", victim)
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    d = scan_unchanged(root)
    p = one(d.problems, "file.unreadable")
    assert p.files == ("1234567801-201909-K-000000.xml",) and "Permission denied" in p.message_en
    assert d.sets[0].status is None and "1234567801-201909-K-000000" in d.sets[0].missing


def test_unreadable_subfolder_is_reported(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_docs(root / "ok", month_docs(stage="ledgers"))
    (root / "locked").mkdir()
    real = os.scandir

    def fake_scandir(path):  # noqa: ANN001, ANN202
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", fake_scandir)
    d = scan_unchanged(root)
    assert one(d.problems, "file.unreadable").files == ("locked",)
    assert len(d.files) == 2


def test_empty_folder(root: Path) -> None:
    d = scan_unchanged(root)
    assert d.empty and d.sets == ()
    p = one(d.problems, "discovery.no_files")
    assert "bulunamadı" in p.message_tr and "no e-Defter files" in p.message_en


def test_missing_root(tmp_path: Path) -> None:
    d = discover(tmp_path / "nope")
    assert one(d.problems, "discovery.root_missing")


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", method) as zf:
        for n, b in members.items():
            zf.writestr(n, b)


def test_bad_zips(root: Path) -> None:
    xml = Doc().xml()
    _zip(root / "1234567801-201909-Y-000000.zip", {"1234567801-201909-Y-000000.xml": xml, "extra.txt": b"x"})
    _zip(root / "1234567801-201909-K-000000.zip", {"../../etc/1234567801-201909-K-000000.xml": xml})
    _zip(root / "1234567801-201909-YB-000000.zip", {"another-name.xml": xml})
    (root / "1234567801-201909-KB-000000.zip").write_bytes(b"PK\x03\x04 not really a zip")
    _zip(root / "1234567801-201910-Y-000000.zip", {})
    d = scan_unchanged(root)
    got = {(p.code, p.files[0]) for p in d.problems}
    assert got == {
        ("zip.extra_members", "1234567801-201909-Y-000000.zip"),
        ("zip.unsafe_member", "1234567801-201909-K-000000.zip"),
        ("zip.member_name_mismatch", "1234567801-201909-YB-000000.zip"),
        ("zip.invalid", "1234567801-201909-KB-000000.zip"),
        ("zip.member_name_mismatch", "1234567801-201910-Y-000000.zip"),
    }
    # The zip with an extra member still has the right XML: usable, but flagged.
    assert [f.rel_path for f in d.files] == ["1234567801-201909-Y-000000.zip"]
    assert not (root.parent / "etc").exists()


def test_zip_bomb_is_refused(root: Path) -> None:
    _zip(root / "1234567801-201909-Y-000000.zip", {"1234567801-201909-Y-000000.xml": b"<a>" + b" " * (30 << 20)})
    d = scan_unchanged(root, limits=XmlLimits(max_zip_ratio=100))
    assert one(d.problems, "zip.too_large").files == ("1234567801-201909-Y-000000.zip",)
    d2 = scan_unchanged(root, limits=XmlLimits(max_file_bytes=1 << 20))
    assert one(d2.problems, "zip.too_large")


def test_corrupt_zip_member_is_a_problem_at_validation(root: Path) -> None:
    docs = month_docs(stage="ledgers")
    write_docs(root, docs, zipped=True)
    p = root / "1234567801-201909-Y-000000.zip"
    data = bytearray(p.read_bytes())
    data[60] ^= 0xFF  # inside the compressed stream
    p.write_bytes(bytes(data))
    d = scan_unchanged(root)
    r = validate_month(d.month_inputs(d.sets[0]), require_approved=False)
    bad = [q for q in r.problems if "1234567801-201909-Y-000000.zip" in q.files]
    assert bad and bad[0].code in ("file.unreadable", "xml.not_xml", "xml.malformed", "xml.truncated")


def test_inspect_zip_on_an_uploaded_file_object() -> None:
    import io

    from include.edefter.discovery import inspect_zip

    name = EDefterName("1234567801", P, FileKind.KB, 0, gib=True, ext="zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name.stem + ".xml", b"<x/>")
    assert inspect_zip(buf, name.filename, name) == (name.stem + ".xml", [])
    bad = io.BytesIO(b"garbage")
    member, problems = inspect_zip(bad, name.filename, name)
    assert member is None and [p.code for p in problems] == ["zip.invalid"] and problems[0].files == (name.filename,)
