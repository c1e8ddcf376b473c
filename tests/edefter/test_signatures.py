"""Every ds:Signature evaluated: appended signatures are not tampering; a missing certificate is its own verdict."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from pathlib import Path

import pytest
from lxml import etree

from include.edefter.checks import validate_month
from include.edefter.naming import parse_name
from include.edefter.problems import Severity
from include.edefter.sample import MonthFiles, TestPKI
from include.edefter.sample.signing import build_enveloped_signature
from include.edefter.verify import TrustSettings, crypto_check, verify_bytes

TZ = dt.timezone(dt.timedelta(hours=3))


@pytest.fixture(scope="module")
def trust(sample_pki: TestPKI) -> TrustSettings:
    return TrustSettings.from_paths([sample_pki.ca_cert_path], [sample_pki.gib_cert_path])


def _append_signature(data: bytes, pki: TestPKI, root_qname: str) -> bytes:
    """Sign the whole signed document again (the first signature included), as a second enveloped signature."""
    doc = etree.fromstring(data)
    digest = hashlib.sha256(etree.tostring(doc.getroottree(), method="c14n")).digest()
    parts = build_enveloped_signature(root_qname=root_qname, doc_digest=digest,
                                      signer=pki.company("1234567801", "Örnek Ticaret A.Ş."),
                                      signing_time=dt.datetime(2019, 10, 20, 12, 0, tzinfo=TZ), sig_id="Signature-2")
    end = data.rindex(b"</" + root_qname.encode() + b">")
    return data[:end] + parts.xml + data[end:]


def _failed(v) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.check for c in v.failed}


@pytest.mark.parametrize("code,root", [("Y", "edefter:defter"), ("DR", "edefter:defterraporu")])
def test_appended_signature_is_not_tampering(approved_month: MonthFiles, sample_pki: TestPKI,
                                             trust: TrustSettings, code: str, root: str) -> None:
    p = approved_month.path(code)
    two = _append_signature(p.read_bytes(), sample_pki, root)
    v = verify_bytes(two, name=p.name, trust=trust)
    assert [s.verdict for s in v.signatures] == ["later_signature_appended", "valid"], v.failed
    assert v.verdict == "later_signature_appended"
    assert "signature.reference_digest" not in _failed(v)
    appended = [c for c in v.checks if c.check == "signature.appended"]
    assert len(appended) == 1 and appended[0].severity is Severity.WARNING
    assert "1/2" in appended[0].message_tr and "intact" in appended[0].message_en
    # GİB wants one signature per file: still not accepted, but for the right reason
    assert "signature.multiple" in _failed(v) and not v.ok


def test_tampered_two_signature_file_is_content_changed(approved_month: MonthFiles, sample_pki: TestPKI,
                                                        trust: TrustSettings) -> None:
    p = approved_month.path("DR")
    two = _append_signature(p.read_bytes(), sample_pki, "edefter:defterraporu")
    m = re.search(rb"<gl-cor:amount[^>]*>(\d)", two)
    assert m is not None
    digit = b"1" if m.group(1) != b"1" else b"2"
    tampered = two[: m.start(1)] + digit + two[m.end(1):]
    v = verify_bytes(tampered, name=p.name, trust=trust)
    assert v.verdict == "content_changed"
    assert [s.verdict for s in v.signatures] == ["content_changed", "content_changed"]
    assert "signature.appended" not in {c.check for c in v.checks}


def test_no_certificate_is_unverifiable_not_digest_mismatch(approved_month: MonthFiles, trust: TrustSettings) -> None:
    p = approved_month.path("Y")
    data = re.sub(rb"<ds:KeyInfo>.*?</ds:KeyInfo>", b"", p.read_bytes(), flags=re.S)
    v = verify_bytes(data, name=p.name, trust=trust)
    assert v.verdict == "certificate_missing"
    assert "certificate.missing" in _failed(v) and "signature.reference_digest" not in _failed(v)


def test_two_signatures_no_certificate_through_validate_month(approved_month: MonthFiles, sample_pki: TestPKI,
                                                              trust: TrustSettings, schema_dir: Path) -> None:
    """The issue's third-party journal: two signatures, no certificate, schema-invalid. Nothing hidden."""
    y = approved_month.path("Y")
    no_cert = re.sub(rb"<ds:KeyInfo>.*?</ds:KeyInfo>", b"", y.read_bytes(), flags=re.S)
    two = _append_signature(no_cert, sample_pki, "edefter:defter")  # the second signer sees no KeyInfo either
    two = re.sub(rb"<ds:KeyInfo>.*?</ds:KeyInfo>", b"", two, flags=re.S)  # and leaves its own out
    files = [(parse_name(q.name), (lambda q=q: q.open("rb"))) for q in approved_month.paths.values() if q != y]
    files.append((parse_name(y.name), lambda: io.BytesIO(two)))
    r = validate_month(files, extra_file_checks=[crypto_check(trust)], schema=schema_dir)
    mine = [p for p in r.problems if y.name in p.files]
    codes = {p.code for p in mine}
    assert {"schema.invalid", "crypto.signature.multiple", "crypto.certificate.missing",
            "crypto.signature.appended"} <= codes, codes
    assert "crypto.signature.reference_digest" not in codes
    # one certificate.missing per signature: both shown, never merged
    assert len([p for p in mine if p.code == "crypto.certificate.missing"]) == 2
