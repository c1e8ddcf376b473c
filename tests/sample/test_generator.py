"""Acceptance tests of the sample generator: schema, signatures (xmlsec1), content."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lxml import etree

from include.edefter.naming import Period, parse_name
from include.edefter.sample import MonthFiles, Stage, breakage, generate, generate_month

NS = {
    "edefter": "http://www.edefter.gov.tr",
    "xbrli": "http://www.xbrl.org/2003/instance",
    "gl-cor": "http://www.xbrl.org/int/gl/cor/2006-10-25",
    "gl-bus": "http://www.xbrl.org/int/gl/bus/2006-10-25",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xades": "http://uri.etsi.org/01903/v1.3.2#",
}

# How xmlsec1 (1.2.37) verifies our files:
#   xmlsec1 --verify --trusted-pem test-certificates/ca.pem \
#       --id-attr:Id http://uri.etsi.org/01903/v1.3.2#:SignedProperties \
#       --id-attr:Id http://www.w3.org/2000/09/xmldsig#:SignatureValue \
#       [--node-xpath "//*[local-name()='CounterSignature']/*[local-name()='Signature']"] FILE.xml
# --trusted-pem makes it check the X509Certificate in KeyInfo against the test CA;
# --id-attr registers the Id attributes the same-document references point at
# (XAdES SignedProperties; the berat's SignatureValue for GİB's counter-signature);
# without --node-xpath xmlsec1 verifies the first ds:Signature in document order
# (the taxpayer's); with it, GİB's counter-signature nested in UnsignedProperties.
COUNTER_XPATH = "//*[local-name()='CounterSignature']/*[local-name()='Signature']"


def xmlsec_verify(xmlsec1: str, ca: Path, path: Path, *, counter: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [
        xmlsec1, "--verify", "--trusted-pem", str(ca),
        "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
        "--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:SignatureValue",
    ]
    if counter:
        cmd += ["--node-xpath", COUNTER_XPATH]
    return subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=60)


def _ca(mf: MonthFiles, sample_pki) -> Path:  # type: ignore[no-untyped-def]
    return sample_pki.ca_cert_path


ALL_CODES = {"Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"branch": "0042", "branch_name": "İzmir Şubesi"},
        {"parts": 3, "entries_per_part": 7},
        {"taxpayer_id": "01234567890", "period": Period(2024, 2), "parts": 2, "entries_per_part": 3},
    ],
    ids=["plain", "branch", "three-parts", "tckn-leading-zero"],
)
def test_every_generated_file_is_schema_valid_and_xmlsec1_verifies(
    make_month, edefter_schema, xmlsec1, sample_pki, kwargs  # type: ignore[no-untyped-def]
) -> None:
    mf: MonthFiles = make_month(**kwargs)
    codes = {code for code, _ in mf.paths}
    assert codes == ALL_CODES
    expected_parts = [0] if kwargs.get("parts", 1) == 1 else list(range(1, kwargs["parts"] + 1))
    assert sorted({part for code, part in mf.paths if code != "DR"}) == expected_parts
    for (code, part), path in sorted(mf.paths.items()):
        name = parse_name(path.name)
        assert name.code == code and name.part == part and name.branch == kwargs.get("branch")
        doc = etree.parse(str(path))
        assert edefter_schema.validate(doc), (path.name, str(edefter_schema.error_log))
        proc = xmlsec_verify(xmlsec1, sample_pki.ca_cert_path, path)
        assert proc.returncode == 0 and "OK" in proc.stderr, (path.name, proc.stderr)
        if code.startswith("GIB-"):
            proc = xmlsec_verify(xmlsec1, sample_pki.ca_cert_path, path, counter=True)
            assert proc.returncode == 0 and "OK" in proc.stderr, (path.name, proc.stderr)
            # Really the GİB seal that signed it, over the berat's SignatureValue.
            cs = doc.find(".//xades:CounterSignature/ds:Signature", NS)
            assert cs is not None
            ref = cs.find("ds:SignedInfo/ds:Reference", NS)
            assert ref is not None
            assert ref.get("Type") == "http://uri.etsi.org/01903#CountersignedSignature"
            sv = doc.getroot()[-1].find("ds:SignatureValue", NS)
            assert ref.get("URI") == f"#{sv.get('Id')}"
            cert = cs.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
            assert cert is not None and cert.replace("\n", "") in sample_pki.gib_cert_path.read_text().replace("\n", "")
        if kwargs.get("branch"):
            descs = doc.xpath("//gl-bus:organizationIdentifiers[gl-bus:organizationDescription='Şube No']"
                              "/gl-bus:organizationIdentifier/text()", namespaces=NS)
            assert descs == [kwargs["branch"]]


def test_xmlsec1_rejects_flipped_byte_in_ledger(approved_month, edefter_schema, xmlsec1, sample_pki) -> None:  # type: ignore[no-untyped-def]
    y = approved_month.path("Y")
    before = y.read_bytes()
    breakage.flip_byte_in_ledger_body(y)
    after = y.read_bytes()
    assert len(before) == len(after) and sum(a != b for a, b in zip(before, after, strict=True)) == 1
    # Still well-formed and schema-valid: only the digest is broken.
    assert edefter_schema.validate(etree.parse(str(y)))
    proc = xmlsec_verify(xmlsec1, sample_pki.ca_cert_path, y)
    assert proc.returncode != 0, proc.stderr
    assert "FAIL" in proc.stderr


def test_xmlsec1_rejects_counter_signature_over_other_signature_value(approved_month, xmlsec1, sample_pki) -> None:  # type: ignore[no-untyped-def]
    gib = approved_month.path("GIB-YB")
    data = gib.read_bytes()
    # Alter the berat's own SignatureValue: both the taxpayer signature and
    # GİB's counter-signature (which digests that element) must fail.
    root = etree.fromstring(data)
    sv = root[-1].find("ds:SignatureValue", NS).text
    flipped = ("A" if sv[10] != "A" else "B")
    gib.write_bytes(data.replace(sv.encode(), (sv[:10] + flipped + sv[11:]).encode(), 1))
    assert xmlsec_verify(xmlsec1, sample_pki.ca_cert_path, gib).returncode != 0
    assert xmlsec_verify(xmlsec1, sample_pki.ca_cert_path, gib, counter=True).returncode != 0


def test_gib_berat_is_taxpayer_berat_plus_unsigned_properties(approved_month) -> None:  # type: ignore[no-untyped-def]
    for code in ("YB", "KB"):
        taxpayer = approved_month.path(code).read_bytes()
        gib = approved_month.path(f"GIB-{code}").read_bytes()
        start = gib.index(b"<xades:UnsignedProperties>")
        end = gib.rindex(b"</xades:UnsignedProperties>") + len(b"</xades:UnsignedProperties>")
        assert gib[:start] + gib[end:] == taxpayer
        stripped = breakage.gib_berat_without_counter_signature(approved_month.path(f"GIB-{code}"))
        assert stripped.read_bytes() == taxpayer


def test_berat_copies_ledger_signature_value_and_unique_id(approved_month) -> None:  # type: ignore[no-untyped-def]
    for ledger_code, berat_code in (("Y", "YB"), ("K", "KB"), ("Y", "GIB-YB"), ("K", "GIB-KB")):
        ledger = etree.parse(str(approved_month.path(ledger_code))).getroot()
        berat = etree.parse(str(approved_month.path(berat_code))).getroot()
        ledger_sv = ledger[-1].find("ds:SignatureValue", NS)
        copied = berat.find("ds:SignatureValue", NS)
        assert copied is not None and copied.text == ledger_sv.text and copied.get("Id") == ledger_sv.get("Id")
        assert berat[-1].find("ds:SignatureValue", NS).get("Id") != copied.get("Id")
        uid = "xbrli:xbrl/gl-cor:accountingEntries/gl-cor:documentInfo/gl-cor:uniqueID"
        assert ledger.findtext(uid, namespaces=NS) == berat.findtext(uid, namespaces=NS)
        assert berat.findtext("xbrli:xbrl/xbrli:context/xbrli:entity/xbrli:segment/gl-cor:uniqueID",
                              namespaces=NS)
        details = berat.findall(".//gl-cor:entryDetail", NS)
        accts = [(d.findtext(".//gl-cor:accountMainID", namespaces=NS),
                  d.findtext("gl-cor:debitCreditCode", namespaces=NS)) for d in details]
        assert accts == [(a, dc) for a in ("191", "391", "600", "601", "602") for dc in ("D", "C")]


def _amount(el: etree._Element, path: str) -> int:
    text = el.findtext(path, namespaces=NS)
    assert text is not None
    units, _, kurus = text.partition(".")
    assert len(kurus) == 2
    return int(units) * 100 + int(kurus)


def test_entries_balanced_and_kebir_matches_journal(make_month) -> None:  # type: ignore[no-untyped-def]
    mf = make_month(entries_per_part=120, stage=Stage.LEDGERS, with_dr=True)
    assert {c for c, _ in mf.paths} == {"Y", "K", "DR"}
    y = etree.parse(str(mf.path("Y"))).getroot()
    journal: dict[str, list[int]] = {}
    headers = y.findall(".//gl-cor:entryHeader", NS)
    assert len(headers) == 120
    numbers = [int(h.findtext("gl-cor:entryNumberCounter", namespaces=NS)) for h in headers]
    assert numbers == list(range(1, 121))
    doc_types = set()
    for h in headers:
        details = h.findall("gl-cor:entryDetail", NS)
        assert len(details) >= 2
        d = sum(_amount(x, "gl-cor:amount") for x in details if x.findtext("gl-cor:debitCreditCode", namespaces=NS) == "D")
        c = sum(_amount(x, "gl-cor:amount") for x in details if x.findtext("gl-cor:debitCreditCode", namespaces=NS) == "C")
        assert d == c == _amount(h, "gl-bus:totalDebit") == _amount(h, "gl-bus:totalCredit")
        for x in details:
            assert _amount(x, "gl-cor:amount") > 0
            acct = x.findtext("gl-cor:account/gl-cor:accountMainID", namespaces=NS)
            dc = x.findtext("gl-cor:debitCreditCode", namespaces=NS)
            journal.setdefault(acct, [0, 0])[dc == "C"] += _amount(x, "gl-cor:amount")
            doc_types.add(x.findtext("gl-cor:documentType", namespaces=NS))
    assert {"invoice", "check", "receipt", "voucher"} <= doc_types
    k = etree.parse(str(mf.path("K"))).getroot()
    kebir: dict[str, list[int]] = {}
    order = []
    for h in k.findall(".//gl-cor:entryHeader", NS):
        acct = h.findtext("gl-cor:entryDetail/gl-cor:account/gl-cor:accountMainID", namespaces=NS)
        order.append(acct)
        tot = [0, 0]
        for x in h.findall("gl-cor:entryDetail", NS):
            assert x.findtext("gl-cor:account/gl-cor:accountMainID", namespaces=NS) == acct
            tot[x.findtext("gl-cor:debitCreditCode", namespaces=NS) == "C"] += _amount(x, "gl-cor:amount")
        assert tot == [_amount(h, "gl-bus:totalDebit"), _amount(h, "gl-bus:totalCredit")]
        kebir[acct] = tot
    assert order == sorted(order)
    assert kebir == journal
    dr = etree.parse(str(mf.path("DR"))).getroot()
    assert dr.tag == "{http://www.edefter.gov.tr}defterraporu"
    assert dr.findtext(".//gl-cor:entriesType", namespaces=NS) == "trialbalance"
    report = {h.findtext(".//gl-cor:accountMainID", namespaces=NS):
              [_amount(h, "gl-bus:totalDebit"), _amount(h, "gl-bus:totalCredit")]
              for h in dr.findall(".//gl-cor:entryHeader", NS)}
    assert report == journal
    assert {a: list(v) for a, v in mf.account_totals.items()} == journal


def test_unique_ids_and_entry_numbers_run_across_fiscal_year(tmp_path, sample_pki) -> None:  # type: ignore[no-untyped-def]
    res = generate(tmp_path, taxpayer_id="1234567801", company_name="Örnek", first=Period(2019, 11),
                   last=Period(2020, 2), pki=sample_pki, parts=2, entries_per_part=3, stage=Stage.TAXPAYER_BERATS)
    got = []
    for mf in res.months:
        for part in (1, 2):
            root = etree.parse(str(mf.path("Y", part))).getroot()
            uid = root.findtext(".//gl-cor:uniqueID", namespaces=NS)
            kuid = etree.parse(str(mf.path("K", part))).getroot().findtext(".//gl-cor:uniqueID", namespaces=NS)
            first_entry = root.findtext(".//gl-cor:entryHeader/gl-cor:entryNumberCounter", namespaces=NS)
            got.append((uid, kuid, first_entry))
    assert got == [
        ("YEV201911000001", "KEB201911000001", "1"),
        ("YEV201911000002", "KEB201911000002", "4"),
        ("YEV201912000003", "KEB201912000003", "7"),
        ("YEV201912000004", "KEB201912000004", "10"),
        ("YEV202001000001", "KEB202001000001", "1"),
        ("YEV202001000002", "KEB202001000002", "4"),
        ("YEV202002000003", "KEB202002000003", "7"),
        ("YEV202002000004", "KEB202002000004", "10"),
    ]
    assert not any(c.startswith("GIB-") for m in res.months for c, _ in m.paths)


def test_same_seed_and_pki_give_identical_bytes(tmp_path, sample_pki) -> None:  # type: ignore[no-untyped-def]
    kw = dict(taxpayer_id="1234567801", company_name="Örnek", period=Period(2021, 3), pki=sample_pki, parts=2,
              entries_per_part=5, seed=7)
    a = generate_month(tmp_path / "a", **kw)
    b = generate_month(tmp_path / "b", **kw)
    c = generate_month(tmp_path / "c", **{**kw, "seed": 8})
    for key, path in a.paths.items():
        assert path.read_bytes() == b.paths[key].read_bytes(), key
    assert a.path("Y", 1).read_bytes() != c.path("Y", 1).read_bytes()


def test_zipped_gib_layout_is_deterministic_and_holds_the_same_xml(tmp_path, sample_pki) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    kw = dict(taxpayer_id="1234567801", company_name="Örnek", period=Period(2022, 12), pki=sample_pki,
              entries_per_part=4, seed=3, branch="0101")
    plain = generate_month(tmp_path / "plain", **kw)
    z1 = generate_month(tmp_path / "z1", layout="gib", zipped=True, **kw)
    z2 = generate_month(tmp_path / "z2", layout="gib", zipped=True, **kw)
    assert z1.directory == tmp_path / "z1" / "1234567801" / "01.01.2022-31.12.2022" / "12"
    for key, zpath in z1.paths.items():
        assert zpath.suffix == ".zip" and zpath.parent == z1.directory
        assert zpath.read_bytes() == z2.paths[key].read_bytes()
        with zipfile.ZipFile(zpath) as zf:
            (member,) = zf.namelist()
            assert member == plain.paths[key].name
            assert zf.read(member) == plain.paths[key].read_bytes()
