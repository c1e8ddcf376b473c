"""Safe streaming XML reading: facts, hostile documents, fuzzing, bounded memory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.edefter.naming import Period
from include.edefter.settings import XmlLimits, schema_dir
from include.edefter.xmlread import FileFacts, XmlReadError, read_facts, read_facts_bytes, read_header_facts
from tests.edefter.handmade import Doc, fake_sig

LEDGER = Doc(branch="7011")
BERAT = replace(LEDGER, root="berat", signature_value="b", copied_signature_value=fake_sig("L"), berat_uuid="u-1")


def _err(data: bytes, limits: XmlLimits = XmlLimits.DEFAULT) -> XmlReadError:
    with pytest.raises(XmlReadError) as info:
        read_facts_bytes(data, name="1234567801-201909-Y-000000.xml", limits=limits)
    assert info.value.name == "1234567801-201909-Y-000000.xml"
    assert info.value.message_en and info.value.message_tr
    p = info.value.to_problem()
    assert p.files == ("1234567801-201909-Y-000000.xml",) and p.code == info.value.rule
    return info.value


def test_ledger_facts() -> None:
    f = read_facts_bytes(LEDGER.xml(), name="x.xml")
    assert f.root == "defter" and f.entries_type == "journal"
    assert f.taxpayer_id == "1234567801" and f.period == Period(2019, 9)
    assert str(f.period_start) == "2019-09-01" and str(f.period_end) == "2019-09-30"
    assert f.unique_id == "YEV201909000010"
    assert (f.branch_no, f.branch_name) == ("7011", "Merkez Dışı Şube")
    assert f.company_name == "Örnek Ticaret A.Ş."
    assert f.source_application == "Elle Yazılmış Test 1.0"
    assert (str(f.fiscal_year_start), str(f.fiscal_year_end)) == ("2019-01-01", "2019-12-31")
    assert f.signature_value == fake_sig("SIG")  # line-wrapped in the file, whitespace removed
    assert f.copied_signature_value is None and not f.has_counter_signature
    assert f.signature_count == 1 and f.entry_header_count == 2 and f.context_id == "journal_context"
    json.dumps(f.to_dict())


def test_berat_facts_and_counter_signature() -> None:
    f = read_facts_bytes(BERAT.xml(), name="x.xml")
    assert f.root == "berat" and f.berat_uuid == "u-1" and f.entry_count == 2
    assert f.copied_signature_value == fake_sig("L") and f.signature_value == fake_sig("b")
    assert not f.has_counter_signature
    g = read_facts_bytes(replace(BERAT, counter_signature=True).xml(), name="g.xml")
    assert g.has_counter_signature and g.signature_count == 2
    # The GİB seal's own SignatureValue must not be mistaken for the berat's.
    assert g.signature_value == f.signature_value
    assert g.counter_signature_value == fake_sig("gib:b")


@pytest.mark.parametrize("root", ["defterraporu", "defterRaporu"])
def test_defter_raporu_both_spellings(root: str) -> None:
    f = read_facts_bytes(Doc(root=root, entries_type="trialbalance").xml(), name="dr.xml")
    assert f.root == "defterraporu"


def test_reads_from_path_and_unreadable_path(tmp_path: Path) -> None:
    p = tmp_path / "a.xml"
    p.write_bytes(LEDGER.xml())
    assert read_facts(p, name="a.xml").taxpayer_id == "1234567801"
    with pytest.raises(XmlReadError) as info:
        read_facts(tmp_path / "missing.xml", name="missing.xml")
    assert info.value.rule == "file.unreadable"


def test_not_xml() -> None:
    assert _err(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj").rule == "xml.not_xml"
    assert _err(b"").rule == "xml.not_xml"
    assert _err(b"PK\x03\x04" + b"\x00" * 40).rule == "xml.not_xml"


def test_truncated() -> None:
    data = LEDGER.xml()
    for cut in range(1, len(data) - 1, 37):  # every cut point class: tag, attribute, text, signature
        assert _err(data[:cut]).rule == "xml.truncated", cut


def test_wrong_root() -> None:
    e = _err(b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>')
    assert e.rule == "xml.wrong_root" and "Invoice" in e.message_en
    assert _err(b"<defter/>").rule == "xml.wrong_root"  # right local name, no namespace


def test_dtd_rejected() -> None:
    data = LEDGER.xml().replace(b"<edefter:defter", b'<!DOCTYPE edefter:defter SYSTEM "x.dtd">\n<edefter:defter', 1)
    assert _err(data).rule == "xml.dtd"


def test_network_dtd_is_not_fetched() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://192.0.2.1/evil.dtd"><r/>'
    assert _err(data).rule == "xml.dtd"


def test_billion_laughs() -> None:
    ents = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    data = (
        '<?xml version="1.0"?><!DOCTYPE edefter:defter [' + "".join(ents) + "]>"
        '<edefter:defter xmlns:edefter="http://www.edefter.gov.tr">&lol9;</edefter:defter>'
    ).encode()
    assert _err(data).rule == "xml.dtd"


def test_external_entity_file_is_not_read() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<edefter:defter xmlns:edefter="http://www.edefter.gov.tr">&xxe;</edefter:defter>'
    )
    e = _err(data)
    assert e.rule in ("xml.dtd", "xml.entity")
    assert "root:" not in str(e)


def test_undefined_entity_without_dtd() -> None:
    data = LEDGER.xml().replace(b"Kasa tahsilat", b"&xxe; tahsilat", 1)
    assert _err(data).rule == "xml.entity"


def test_size_depth_text_limits() -> None:
    data = LEDGER.xml()
    assert _err(data, XmlLimits(max_file_bytes=len(data) - 1, read_chunk_bytes=512)).rule == "xml.too_large"
    assert read_facts_bytes(data, name="ok", limits=XmlLimits(max_file_bytes=len(data))).size == len(data)
    assert _err(data, XmlLimits(max_depth=4)).rule == "xml.too_deep"
    assert _err(data, XmlLimits(max_text_bytes=40)).rule == "xml.text_too_large"
    deep = b'<edefter:defter xmlns:edefter="http://www.edefter.gov.tr">' + b"<a>" * 100 + b"</a>" * 100 + b"</edefter:defter>"
    assert _err(deep).rule == "xml.too_deep"


def test_small_chunks_give_the_same_facts() -> None:
    whole = read_facts_bytes(BERAT.xml(), name="b")
    for chunk in (1, 7, 64):
        assert read_facts_bytes(BERAT.xml(), name="b", limits=XmlLimits(read_chunk_bytes=chunk)) == whole


def test_schema_dir_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EDEFTER_SCHEMA_DIR", raising=False)
    assert schema_dir() is None
    monkeypatch.setenv("EDEFTER_SCHEMA_DIR", str(tmp_path))
    assert schema_dir() is None  # no edefter.xsd there
    (tmp_path / "edefter.xsd").write_text("<x/>")
    assert schema_dir() == tmp_path


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes_never_crash(data: bytes) -> None:
    try:
        read_facts_bytes(data, name="f.xml")
    except XmlReadError as e:
        assert e.rule.startswith("xml.")


@_FUZZ
@given(st.integers(0, 10_000), st.binary(min_size=0, max_size=40), st.integers(0, 40), st.integers(1, 4096))
def test_fuzz_mutated_documents_never_crash(pos: int, junk: bytes, cut: int, chunk: int) -> None:
    base = BERAT.xml() if pos % 2 else replace(BERAT, counter_signature=True).xml()
    pos %= len(base)
    data = base[:pos] + junk + base[pos + cut :]
    try:
        f = read_facts_bytes(data, name="f.xml", limits=XmlLimits(read_chunk_bytes=chunk))
    except XmlReadError as e:
        assert e.rule.startswith("xml.")
    else:
        assert isinstance(f, FileFacts)


_MEMORY_PROBE = r"""
import resource, sys, json
from lxml import etree
from include.edefter.xmlread import read_facts
from tests.edefter.handmade import Doc

class GenStream:
    # Produces the document on the fly: the test itself never holds the file.
    def __init__(self, it):
        self.it, self.buf = it, b""
    def read(self, n=-1):
        while n < 0 or len(self.buf) < n:
            try:
                self.buf += next(self.it)
            except StopIteration:
                break
        out, self.buf = (self.buf, b"") if n < 0 else (self.buf[:n], self.buf[n:])
        return out
    def close(self):
        pass

def peak_kb():
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's peak across exec.
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

mode, size = sys.argv[1], int(sys.argv[2])
doc = Doc(filler_bytes=size)
before = peak_kb()
if mode == "stream":
    f = read_facts(GenStream(iter(doc.iter_bytes())), name="big.xml")
    n = f.entry_header_count
else:  # the baseline: build the whole tree, as a naive reader would
    tree = etree.parse(GenStream(iter(doc.iter_bytes())))
    n = len(tree.getroot()[0][1])
after = peak_kb()
print(json.dumps({"growth_kb": after - before, "n": n}))
"""


def _probe(mode: str, size: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, mode, str(size)], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return json.loads(out.stdout)


def test_streaming_memory_stays_bounded_for_a_20mb_ledger() -> None:
    small, big = 4 * 1024 * 1024, 20 * 1024 * 1024
    stream_small = _probe("stream", small)
    stream_big = _probe("stream", big)
    tree_big = _probe("tree", big)
    assert stream_big["n"] > 4 * stream_small["n"] > 5_000  # the whole file was really read
    # Streaming has a fixed overhead (parser buffers, 1 MB chunks) that must not grow
    # with the file: 16 MB more XML may cost at most a few MB more peak memory ...
    assert stream_big["growth_kb"] - stream_small["growth_kb"] < 6 * 1024, (stream_small, stream_big)
    # ... while building the tree (the naive baseline, same run) costs several times more.
    assert tree_big["growth_kb"] > 3 * stream_big["growth_kb"], (stream_big, tree_big)
    assert tree_big["growth_kb"] - stream_big["growth_kb"] > 40 * 1024, (stream_big, tree_big)


def test_unused_io_import_guard() -> None:
    # read_facts accepts any object with read(); BytesIO is the common case.
    assert read_facts(io.BytesIO(LEDGER.xml()), name="x").root == "defter"


@pytest.mark.parametrize("encoding", ["UTF-16", "ISO-8859-9", "windows-1254"])
def test_declared_encodings_of_other_software(encoding: str) -> None:
    text = LEDGER.xml().decode().replace('encoding="UTF-8"', f'encoding="{encoding}"')
    f = read_facts_bytes(text.encode(encoding), name="x", limits=XmlLimits(read_chunk_bytes=333))
    assert f.company_name == "Örnek Ticaret A.Ş." and f.branch_name == "Merkez Dışı Şube"
    assert f.signature_value == fake_sig("SIG")


def test_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf" + LEDGER.xml().replace(b"\n", b"\r\n")
    assert read_facts_bytes(data, name="x").signature_value == fake_sig("SIG")


def test_header_facts_stop_at_the_first_entry() -> None:
    data = Doc(branch="7011", filler_bytes=300_000).xml()
    stream = io.BytesIO(data)
    head = read_header_facts(stream, name="x", limits=XmlLimits(read_chunk_bytes=4096))
    full = read_facts_bytes(data, name="x")
    assert full.signature_value and full.entry_header_count > 100
    assert head.size == stream.tell() < len(data) // 10  # stopped early, the rest is the caller's
    assert head == replace(
        full, size=head.size, signature_value=None, signature_count=0, entry_header_count=0, entries=None
    )
    # A berat keeps its entry count in an entryHeader: read whole, same facts as read_facts.
    assert read_header_facts(io.BytesIO(BERAT.xml()), name="b") == read_facts_bytes(BERAT.xml(), name="b")
    with pytest.raises(XmlReadError) as info:
        read_header_facts(io.BytesIO(data[:300]), name="x")
    assert info.value.rule == "xml.truncated"


def test_unknown_root_is_refused_at_once() -> None:
    # The fact-filtered parser reports nothing for a foreign document: the root probe must.
    class Endless:
        def __init__(self) -> None:
            self.sent = 0

        def read(self, n: int = -1) -> bytes:
            self.sent += 1
            return b"<Invoice><a>x</a>" if self.sent == 1 else b"<a>x</a>" * 1000

    with pytest.raises(XmlReadError) as info:
        read_facts(Endless(), name="x")  # type: ignore[arg-type]
    assert info.value.rule == "xml.wrong_root"


_ROOT_OPEN = b'<edefter:defter xmlns:edefter="http://www.edefter.gov.tr">'
_FILL = b"<e><f>x</f></e>"


def _limit_doc(before: int, after: int, inner: bytes, wrap: bool = True) -> bytes:
    mid = b"<e>" + inner + b"</e>" if wrap else inner
    return _ROOT_OPEN + _FILL * before + mid + _FILL * after + b"</edefter:defter>"


_PLACES = {
    "text": lambda t: (b"<f>" + t + b"</f>", True),
    "tail": lambda t: (b"<f>x</f>" + t, True),
    "between": lambda t: (t, False),  # a text child of the root, between two of its children
    "cdata": lambda t: (b"<f><![CDATA[" + t + b"]]></f>", True),
}
_LIMIT_FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_LIMIT_FUZZ
@given(
    st.sampled_from(sorted(_PLACES) + ["charref", "first", "last"]),
    st.integers(1, 300), st.integers(1, 300), st.integers(1, 600), st.integers(0, 40), st.integers(0, 40),
)
def test_text_cap_holds_wherever_the_text_is_and_however_it_is_chunked(
    place: str, length: int, cap: int, chunk: int, before: int, after: int
) -> None:
    # The sweep skips measuring texts that are provably shorter than the bytes fed since
    # the last sweep; a long text at any spot, cut at any chunk size, must still be caught.
    if place == "charref":  # 5 bytes per character: the cap counts characters
        data = _limit_doc(before, after, b"<f>" + b"&#65;" * length + b"</f>")
    elif place in ("first", "last"):
        t = b"a" * length
        body = _FILL * (before + after)
        data = _ROOT_OPEN + (t + body if place == "first" else body + t) + b"</edefter:defter>"
    else:
        inner, wrap = _PLACES[place](b"a" * length)
        data = _limit_doc(before, after, inner, wrap)
    limits = XmlLimits(max_text_bytes=cap, read_chunk_bytes=chunk)
    if length > cap:
        assert _err(data, limits).rule == "xml.text_too_large"
    else:
        assert read_facts_bytes(data, name="x", limits=limits).root == "defter"


@_LIMIT_FUZZ
@given(st.integers(0, 12), st.integers(3, 12), st.integers(0, 80), st.integers(3, 12), st.integers(1, 400),
       st.integers(0, 40), st.integers(0, 40))
def test_depth_and_attribute_caps_hold_in_every_batch(
    depth: int, max_depth: int, attrs: int, max_attrs: int, chunk: int, before: int, after: int
) -> None:
    nest = b"<d>" * depth + b"x" + b"</d>" * depth
    many = b"<g " + b" ".join(b'a%d="v"' % i for i in range(attrs)) + b"/>"
    data = _limit_doc(before, after, nest + many)
    limits = XmlLimits(max_depth=max_depth, max_attributes=max_attrs, read_chunk_bytes=chunk)
    deepest = max(3, 2 + depth)  # root, e, then the nest (the fillers reach 3)
    if deepest > max_depth:
        assert _err(data, limits).rule == "xml.too_deep"
    elif attrs > max_attrs:
        assert _err(data, limits).rule == "xml.too_many_attributes"
    else:
        assert read_facts_bytes(data, name="x", limits=limits).root == "defter"
