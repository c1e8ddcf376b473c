"""Every bad input of issue 2 through the scanner's own path: a problem naming the file
and the rule, and the scanned folder byte-for-byte unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from include.edefter.naming import EDefterName, FileKind, Period
from include.edefter.scan import scan_folder
from tests.edefter.handmade import Doc, fake_sig, month_docs, tree_digest, write_docs

P = Period(2019, 9)


def n(code: str, part: int = 0) -> EDefterName:
    return EDefterName("1234567801", P, FileKind(code.removeprefix("GIB-")), part, None, code.startswith("GIB-"))


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE edefter:defter [<!ENTITY l0 "lol">'
    + "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    + ']><edefter:defter xmlns:edefter="http://www.edefter.gov.tr">&l9;</edefter:defter>'
).encode()
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE edefter:defter [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<edefter:defter xmlns:edefter="http://www.edefter.gov.tr">&x;</edefter:defter>'
)
DTD = Doc().xml().replace(b"<edefter:defter", b'<!DOCTYPE edefter:defter SYSTEM "edefter.dtd">\n<edefter:defter', 1)


def _set(code: str, value: bytes | Doc) -> Callable[[dict[EDefterName, Doc | bytes]], None]:
    def apply(docs: dict[EDefterName, Doc | bytes]) -> None:
        docs[n(code)] = value

    return apply


def _edit(code: str, **changes: object) -> Callable[[dict[EDefterName, Doc | bytes]], None]:
    def apply(docs: dict[EDefterName, Doc | bytes]) -> None:
        doc = docs[n(code)]
        assert isinstance(doc, Doc)
        docs[n(code)] = replace(doc, **changes)  # type: ignore[arg-type]

    return apply


CASES: list[tuple[str, Callable[[dict[EDefterName, Doc | bytes]], None], str, str]] = [
    ("non-xml with a ledger name", _set("Y", b"PK\x03\x04 definitely not XML"), "xml.not_xml", "Y"),
    ("truncated", _set("K", Doc(entries_type="ledger").xml()[:-200]), "xml.truncated", "K"),
    ("dtd", _set("Y", DTD), "xml.dtd", "Y"),
    ("billion laughs", _set("Y", BILLION_LAUGHS), "xml.dtd", "Y"),
    ("external entity", _set("K", XXE), "xml.dtd", "K"),
    ("ledger name, berat content", _set("Y", replace(Doc(), root="berat")), "content.type_mismatch", "Y"),
    ("taxpayer mismatch", _edit("K", taxpayer_id="9876543210"), "content.taxpayer_mismatch", "K"),
    ("period mismatch", _edit("Y", period=Period(2019, 8)), "content.period_mismatch", "Y"),
    ("gib berat without counter-signature", _edit("GIB-YB", counter_signature=False),
     "chain.gib_counter_signature_missing", "GIB-YB"),
    ("copied signature value mismatch", _edit("KB", copied_signature_value=fake_sig("x")),
     "chain.signature_value_mismatch", "KB"),
]


@pytest.mark.parametrize(("label", "mutate", "rule", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_content(tmp_path: Path, label: str, mutate: Callable, rule: str, code: str) -> None:  # type: ignore[type-arg]
    docs: dict[EDefterName, Doc | bytes] = dict(month_docs())
    mutate(docs)
    for name, doc in docs.items():
        (tmp_path / name.filename).write_bytes(doc if isinstance(doc, bytes) else doc.xml())
    before = tree_digest(tmp_path)
    result = scan_folder(tmp_path)
    assert tree_digest(tmp_path) == before
    assert result.has_errors
    hits = [p for p in result.all_problems if p.code == rule]
    assert hits, f"{label}: {[str(p) for p in result.all_problems]}"
    assert n(code).filename in hits[0].files
    assert hits[0].message_tr and hits[0].message_en
    assert "root:x:0:0" not in repr(result.to_dict())  # /etc/passwd never read


@pytest.mark.parametrize(
    ("parts", "rule"), [((1, 3), "set.part_gap"), ((0, 1), "set.part_numbering")], ids=["gap", "000000+000001"]
)
def test_bad_part_numbering(tmp_path: Path, parts: tuple[int, ...], rule: str) -> None:
    write_docs(tmp_path, month_docs(parts=parts))
    before = tree_digest(tmp_path)
    result = scan_folder(tmp_path)
    assert tree_digest(tmp_path) == before
    hits = [p for p in result.all_problems if p.code == rule]
    assert hits and n("Y", parts[1]).filename in hits[0].files


def test_empty_folder(tmp_path: Path) -> None:
    result = scan_folder(tmp_path)
    assert result.has_errors and [p.code for p in result.folder_problems] == ["discovery.no_files"]
    assert list(tmp_path.iterdir()) == []
