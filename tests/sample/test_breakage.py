"""The breakage helpers really produce the broken sets tests rely on."""

from __future__ import annotations

import pytest
from lxml import etree

from include.edefter.naming import Period
from include.edefter.sample import breakage
from tests.sample.test_generator import NS, xmlsec_verify


def test_remove_file(approved_month) -> None:  # type: ignore[no-untyped-def]
    kb = approved_month.path("KB")
    assert breakage.remove_file(kb) == kb
    assert not kb.exists()
    assert approved_month.path("GIB-KB").exists()


def test_approved_month_copies_are_independent(approved_month, _approved_month_master) -> None:  # type: ignore[no-untyped-def]
    root, master = _approved_month_master
    breakage.remove_file(approved_month.path("Y"))
    assert master.path("Y").exists()
    assert approved_month.directory != master.directory


def test_berat_of_other_month(approved_month, sample_pki, xmlsec1) -> None:  # type: ignore[no-untyped-def]
    yb = approved_month.path("GIB-YB")
    original = yb.read_bytes()
    assert breakage.berat_of_other_month(yb, pki=sample_pki) == yb
    root = etree.parse(str(yb)).getroot()
    assert root.findtext(".//gl-cor:periodCoveredStart", namespaces=NS) == "2019-08-01"
    assert root.findtext(".//gl-cor:documentInfo/gl-cor:uniqueID", namespaces=NS).startswith("YEV201908")
    ledger_sv = etree.parse(str(approved_month.path("Y"))).getroot()[-1].findtext("ds:SignatureValue", namespaces=NS)
    assert root.findtext("ds:SignatureValue", namespaces=NS) != ledger_sv
    assert yb.read_bytes() != original
    # A genuine berat in itself: its signatures verify.
    assert xmlsec_verify(xmlsec1, sample_pki.ca_cert_path, yb).returncode == 0
    assert xmlsec_verify(xmlsec1, sample_pki.ca_cert_path, yb, counter=True).returncode == 0


def test_berat_of_other_month_for_split_part(make_month, sample_pki) -> None:  # type: ignore[no-untyped-def]
    mf = make_month(parts=2, entries_per_part=3)
    kb = mf.path("KB", 1)
    breakage.berat_of_other_month(kb, pki=sample_pki, other=Period(2019, 12))
    root = etree.parse(str(kb)).getroot()
    assert root.findtext(".//gl-cor:documentInfo/gl-cor:uniqueID", namespaces=NS).startswith("KEB201912")


def test_wrong_taxpayer_inside(approved_month, edefter_schema) -> None:  # type: ignore[no-untyped-def]
    k = approved_month.path("K")
    breakage.wrong_taxpayer_inside(k, other_taxpayer_id="9876543210")
    doc = etree.parse(str(k))
    assert doc.findtext(".//xbrli:identifier", namespaces=NS) == "9876543210"
    assert edefter_schema.validate(doc)
    assert k.name.startswith("1234567801-")


def test_truncate_xml(approved_month) -> None:  # type: ignore[no-untyped-def]
    y = approved_month.path("Y")
    size = y.stat().st_size
    breakage.truncate_xml(y, keep_fraction=0.3)
    assert 0 < y.stat().st_size < size
    with pytest.raises(etree.XMLSyntaxError):
        etree.parse(str(y))


def test_gib_berat_without_counter_signature(approved_month, xmlsec1, sample_pki, edefter_schema) -> None:  # type: ignore[no-untyped-def]
    g = approved_month.path("GIB-KB")
    breakage.gib_berat_without_counter_signature(g)
    doc = etree.parse(str(g))
    assert doc.find(".//xades:CounterSignature", NS) is None
    assert edefter_schema.validate(doc)
    assert xmlsec_verify(xmlsec1, sample_pki.ca_cert_path, g).returncode == 0
    with pytest.raises(ValueError, match="no counter-signature"):
        breakage.gib_berat_without_counter_signature(g)


def test_flip_byte_only_touches_text(approved_month) -> None:  # type: ignore[no-untyped-def]
    k = approved_month.path("K")
    before = etree.parse(str(k)).getroot()
    breakage.flip_byte_in_ledger_body(k)
    after = etree.parse(str(k)).getroot()
    b = before.findtext(".//gl-cor:detailComment", namespaces=NS)
    a = after.findtext(".//gl-cor:detailComment", namespaces=NS)
    assert a != b and len(a) == len(b)
