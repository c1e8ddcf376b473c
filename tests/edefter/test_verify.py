"""Cryptographic verification of the signature chain (include/edefter/verify.py).

Real files from the sample generator, real xmlsec1 as the differential oracle.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.edefter import c14n_stream
from include.edefter.c14n_stream import (
    CHUNK_BYTES,
    MAX_ENTRY_BYTES,
    chunked_enveloped_c14n,
    stream_enveloped_c14n,
)
from include.edefter.naming import EDefterName, Period, parse_name
from include.edefter.problems import Severity
from include.edefter.sample import TestPKI, generate_month
from include.edefter.sample.signing import add_counter_signature
from include.edefter.verify import (
    SignedContent,
    TrustSettings,
    crypto_check,
    month_problems,
    verify_bytes,
    verify_file,
    verify_month,
)
from tests.edefter.verify_helpers import EXC_C14N, issue_cert, resign, xmlsec_valid

MUTATION_EXAMPLES = 25


@pytest.fixture(scope="module")
def month(sample_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("verify-month")
    mf = generate_month(out, taxpayer_id="1234567801", company_name="Örnek Ticaret A.Ş.",
                        period=Period(2019, 9), pki=sample_pki, entries_per_part=12)
    return {p.name: p.read_bytes() for p in mf.files}


@pytest.fixture(scope="module")
def trust(sample_pki: TestPKI) -> TrustSettings:
    return TrustSettings.from_paths([sample_pki.ca_cert_path], [sample_pki.gib_cert_path])


def _name(month: dict[str, bytes], code: str) -> str:
    pat = re.compile(rf"^(GIB-)?\d+-\d{{6}}-{code.removeprefix('GIB-')}-\d{{6}}\.xml$")
    names = [n for n in month if pat.match(n) and n.startswith("GIB-") == code.startswith("GIB-")]
    assert len(names) == 1, (code, list(month))
    return names[0]


def _tamper(data: bytes, qname: bytes) -> bytes:
    """Prepend a character to the first text of element ``qname``."""
    m = re.search(rb"<" + re.escape(qname) + rb"[^>]*>", data)
    assert m is not None, qname
    return data[: m.end()] + b"X" + data[m.end():]


def _failed(v) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.check for c in v.checks if not c.ok and c.severity is Severity.ERROR}


# --------------------------------------------------------------------------- valid sets

def test_generated_month_verifies_completely(month: dict[str, bytes], trust: TrustSettings, tmp_path: Path) -> None:
    files = []
    for n, data in month.items():
        p = tmp_path / n
        p.write_bytes(data)
        files.append((parse_name(n), p))
    verdicts = verify_month(files, trust)
    assert len(verdicts) == 7
    for v in verdicts:
        assert v.ok, (v.name, v.failed)
        assert v.signature_valid
        checks = {c.check for c in v.checks}
        assert {"signature.reference_digest", "signature.signed_properties", "signature.value",
                "certificate.signing_certificate", "certificate.validity", "certificate.trust"} <= checks
        if "B-" in v.name and not v.name.startswith("GIB-"):
            assert "berat.ledger_signature_value" in checks
        if v.name.startswith("GIB-"):
            assert {"gib.same_content", "gib.countersignature", "gib.certificate"} <= checks
    assert month_problems(files, trust) == []


def test_generated_ledgers_take_the_chunked_path_with_the_same_digest(month: dict[str, bytes]) -> None:
    """Ledgers (Y, K, DR) go through the chunked fast path, small chunks and threads included,
    and its digest is the general streaming pass's (berats too, when it takes them)."""
    for n, data in month.items():
        ref = hashlib.sha256()
        stream_enveloped_c14n(io.BytesIO(data), ref.update)
        # (300, 2, 2000): small chunks in threads, and every entry over 2 KB cut into its lines
        for chunk_bytes, workers, max_entry in ((CHUNK_BYTES, 0, MAX_ENTRY_BYTES), (300, 2, 2000)):
            h = hashlib.sha256()
            with patch.object(c14n_stream, "MAX_ENTRY_BYTES", max_entry), patch.object(c14n_stream, "_READ_BYTES", 4096):
                res = chunked_enveloped_c14n(io.BytesIO(data), h.update, chunk_bytes=chunk_bytes, workers=workers)
            if "B-" not in n:
                assert res is not None, n
            if res is not None:
                assert h.digest() == ref.digest(), n


def test_verify_file_accepts_opener_and_crypto_check_plugs_in(month: dict[str, bytes], trust: TrustSettings) -> None:
    n = _name(month, "Y")
    v = verify_file(lambda: io.BytesIO(month[n]), name=parse_name(n), trust=trust)
    assert v.ok and v.signature_value_b64
    check = crypto_check(trust)
    assert check(parse_name(n), lambda: io.BytesIO(month[n])) == []
    broken = _tamper(month[n], b"gl-cor:detailComment")
    probs = check(parse_name(n), lambda: io.BytesIO(broken))
    assert [p.code for p in probs] == ["crypto.signature.reference_digest"]
    assert probs[0].files == (n,) and "özet" in probs[0].message_tr


def test_crypto_check_in_validate_month(month: dict[str, bytes], trust: TrustSettings) -> None:
    from include.edefter.checks import validate_month

    n = _name(month, "K")
    data = dict(month)
    data[n] = _tamper(data[n], b"gl-cor:accountMainDescription")
    files = [(parse_name(k), (lambda b=v: io.BytesIO(b))) for k, v in data.items()]
    report = validate_month(files, extra_file_checks=[crypto_check(trust)])
    codes = {(p.code, p.files) for p in report.problems}
    assert ("crypto.signature.reference_digest", (n,)) in codes


# --------------------------------------------------------------------------- differential vs xmlsec1

def _mutations() -> dict[str, Callable[[bytes, int], tuple[bytes, bool | None]]]:
    """name -> f(data, seed) -> (mutated bytes, expected signature validity or None=ask xmlsec1 only)."""

    def nth(data: bytes, pattern: bytes, seed: int) -> re.Match[bytes]:
        ms = list(re.finditer(pattern, data))
        return ms[seed % len(ms)]

    def body_end(data: bytes) -> int:
        return data.index(b"<ds:Signature")

    def flip_text(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        m = nth(data[: body_end(data)], rb">([A-Za-z0-9][^<]*)<", seed)
        i = m.start(1)
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:], False

    def flip_attr(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        m = nth(data[: body_end(data)], rb' (?:contextRef|unitRef|decimals|id)="([A-Za-z0-9])', seed)
        i = m.start(1)
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:], False

    def flip_b64(tag: bytes) -> Callable[[bytes, int], tuple[bytes, bool | None]]:
        def f(data: bytes, seed: int) -> tuple[bytes, bool | None]:
            start = data.index(b">", data.index(b"<ds:" + tag, body_end(data))) + 1
            end = data.index(b"<", start)
            i = start + 4 + seed % (end - start - 8)
            c = data[i:i + 1]
            new = b"B" if c != b"B" else b"C"
            return data[:i] + new + data[i + 1:], None  # a certificate byte may hit unsigned fields

        return f

    def ws_in_text(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        m = nth(data[: body_end(data)], rb">([A-Za-z0-9][^<]*)<", seed)
        return data[:m.start(1)] + b" " + data[m.start(1):], False

    def ws_between_attrs(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        m = nth(data[: body_end(data)], rb'(<[a-z-]+:[A-Za-z]+ [^>]*?") ([A-Za-z])', seed)
        return data[:m.end(1)] + b" \n\t " + data[m.end(1) + 1:], True

    def reorder_attrs(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        m = nth(data[: body_end(data)], rb'<([a-z-]+:[A-Za-z]+) ([^ >=]+="[^"]*") ([^ >=]+="[^"]*")', seed)
        return data[:m.start()] + b"<" + m.group(1) + b" " + m.group(3) + b" " + m.group(2) + data[m.end():], True

    def ns_added(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        m = nth(data[: body_end(data)], rb"<gl-cor:[A-Za-z]+", seed)
        return data[:m.end()] + b' xmlns:zz="urn:zz"' + data[m.end():], False

    def ns_redundant(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        m = nth(data[: body_end(data)], rb"<gl-cor:[A-Za-z]+", seed)
        return data[:m.end()] + b' xmlns:gl-cor="http://www.xbrl.org/int/gl/cor/2006-10-25"' + data[m.end():], True

    def sig_moved(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        s = data.index(b"<ds:Signature")
        e = data.rindex(b"</ds:Signature>") + len(b"</ds:Signature>")
        sig, rest = data[s:e], data[:s] + data[e:]
        m = nth(rest, rb"</gl-cor:[A-Za-z]+>", seed)
        return rest[:m.end()] + sig + rest[m.end():], None

    def second_sig(data: bytes, seed: int) -> tuple[bytes, bool | None]:
        s = data.index(b"<ds:Signature")
        e = data.rindex(b"</ds:Signature>") + len(b"</ds:Signature>")
        return data[:e] + data[s:e] + data[e:], False

    return {
        "flip_text": flip_text, "flip_attr": flip_attr,
        "flip_signature_value": flip_b64(b"SignatureValue"), "flip_certificate": flip_b64(b"X509Certificate"),
        "ws_in_text": ws_in_text, "ws_between_attrs": ws_between_attrs, "reorder_attrs": reorder_attrs,
        "ns_added": ns_added, "ns_redundant": ns_redundant, "sig_moved": sig_moved, "second_sig": second_sig,
    }


MUTATIONS = _mutations()


@settings(max_examples=MUTATION_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(MUTATIONS)), code=st.sampled_from(["Y", "K", "YB", "DR", "GIB-KB"]),
       seed=st.integers(0, 10_000))
def test_mutations_match_xmlsec1(kind: str, code: str, seed: int, month: dict[str, bytes], trust: TrustSettings,
                                 xmlsec1: str, tmp_path: Path) -> None:
    n = _name(month, code)
    mutated, expected = MUTATIONS[kind](month[n], seed)
    p = tmp_path / f"{kind}-{seed}-{n}"
    p.write_bytes(mutated)
    ours = verify_file(p, name=n, trust=trust)
    theirs = xmlsec_valid(xmlsec1, p)
    assert "internal" not in _failed(ours), ours.failed
    if kind == "second_sig":  # see test_every_mutation_kind_once (in a berat the copy also repeats the
        # copied ds:SignatureValue, a real content change; in the others: intact content, a signature added)
        assert not theirs and not ours.ok and "signature.multiple" in _failed(ours)
        if code in ("Y", "K", "DR"):
            assert "signature.reference_digest" not in _failed(ours), (seed, ours.failed)
        return
    if kind == "flip_certificate":
        # The XAdES SigningCertificate digest covers the certificate bytes: a damaged
        # certificate never passes. Whether the signature "itself" verifies then depends
        # on how leniently each library parses the damaged DER (OpenSSL and cryptography
        # differ both ways), so parity is only required when xmlsec1 accepts and we
        # could parse the certificate.
        assert not ours.ok
        if theirs and "certificate.parse" not in _failed(ours):
            assert ours.signature_valid, (seed, ours.failed)
        return
    assert ours.signature_valid == theirs, (kind, seed, ours.failed)
    if expected is not None:
        assert theirs == expected, (kind, seed)


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
def test_every_mutation_kind_once(kind: str, month: dict[str, bytes], trust: TrustSettings, xmlsec1: str,
                                  tmp_path: Path) -> None:
    """Each mutation kind at least once regardless of what hypothesis picks."""
    n = _name(month, "Y")
    mutated, expected = MUTATIONS[kind](month[n], 3)
    p = tmp_path / n
    p.write_bytes(mutated)
    ours = verify_file(p, name=n, trust=trust)
    if kind == "second_sig":
        # xmlsec1 checks the first signature only, with the copy in place (strict XMLDSig: invalid); we
        # evaluate every signature: the content is intact, a signature was added; never "tampered"
        assert not xmlsec_valid(xmlsec1, p)
        assert not ours.ok and "signature.multiple" in _failed(ours)
        assert "signature.reference_digest" not in _failed(ours), ours.failed
        assert [s.verdict for s in ours.signatures] == ["later_signature_appended"] * 2
        return
    if kind == "flip_certificate":
        assert not ours.ok  # parity for damaged certificates: see test_mutations_match_xmlsec1
    else:
        assert ours.signature_valid == xmlsec_valid(xmlsec1, p), ours.failed
    if expected is not None:
        assert ours.signature_valid == expected
    if kind == "sig_moved":
        assert "signature.misplaced" in _failed(ours)  # e-Defter wants one Signature, last child of the root


# --------------------------------------------------------------------------- bad inputs

def _verify(data: bytes, name: str, trust: TrustSettings, **kw):  # type: ignore[no-untyped-def]
    v = verify_bytes(data, name=name, trust=trust, **kw)
    assert "internal" not in _failed(v), v.failed
    return v


def test_missing_keyinfo(month: dict[str, bytes], trust: TrustSettings) -> None:
    n = _name(month, "Y")
    data = re.sub(rb"<ds:KeyInfo>.*?</ds:KeyInfo>", b"", month[n], flags=re.S)
    v = _verify(data, n, trust)
    assert not v.ok and "certificate.missing" in _failed(v)
    assert "signature.reference_digest" not in _failed(v) and v.verdict == "certificate_missing"
    assert any("KeyInfo" in c.message_en for c in v.failed)


def test_reference_uri_other_than_empty(month: dict[str, bytes], trust: TrustSettings) -> None:
    n = _name(month, "YB")
    data = month[n].replace(b'URI=""', b'URI="#other"', 1)
    v = _verify(data, n, trust)
    assert not v.ok and "signature.structure" in _failed(v)
    assert not v.signature_valid


def test_unknown_algorithm(month: dict[str, bytes], trust: TrustSettings) -> None:
    n = _name(month, "Y")
    data = month[n].replace(b"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", b"urn:unknown:sig", 1)
    v = _verify(data, n, trust)
    assert "signature.algorithms" in _failed(v) and not v.ok


def test_not_xml_empty_truncated_and_unsigned(month: dict[str, bytes], trust: TrustSettings) -> None:
    n = _name(month, "Y")
    assert "parse" in _failed(_verify(b"", n, trust))
    assert "parse" in _failed(_verify(b"not xml at all", n, trust))
    assert "parse" in _failed(_verify(month[n][: len(month[n]) // 2], n, trust))
    unsigned = re.sub(rb"<ds:Signature.*</ds:Signature>", b"", month[n], flags=re.S)
    assert "signature.present" in _failed(_verify(unsigned, n, trust))
    garbage = re.sub(rb"(<ds:SignatureValue[^>]*>)[^<]*", rb"\1!!notbase64!!", month[n], count=1)
    v = _verify(garbage, n, trust)
    assert not v.ok and any("base64" in c.message_en for c in v.failed)


def _pki_keys(sample_pki: TestPKI):  # type: ignore[no-untyped-def]
    return sample_pki.ca.key, sample_pki.ca.cert


def test_sha1_rejected_or_warned(month: dict[str, bytes], sample_pki: TestPKI, trust: TrustSettings,
                                 xmlsec1: str, tmp_path: Path) -> None:
    n = _name(month, "Y")
    ck = sample_pki.company("1234567801", "Örnek Ticaret A.Ş.")
    data = resign(month[n], ck.key, ck.cert, digest="sha1", sig_hash="sha1")
    v = _verify(data, n, trust)
    assert v.signature_valid and not v.ok
    assert any(c.check == "signature.sha1" and "SHA-1 kabul edilmez" in c.message_tr for c in v.failed)
    lenient = TrustSettings(trust.trusted_roots, trust.gib_certs, allow_sha1=True)
    w = _verify(data, n, lenient)
    assert w.ok and [p.severity for p in w.problems()] == [Severity.WARNING]
    p = tmp_path / n
    p.write_bytes(data)
    assert xmlsec_valid(xmlsec1, p)


def test_exclusive_c14n_signature(month: dict[str, bytes], sample_pki: TestPKI, trust: TrustSettings,
                                  xmlsec1: str, tmp_path: Path) -> None:
    n = _name(month, "K")
    ck = sample_pki.company("1234567801", "Örnek Ticaret A.Ş.")
    data = resign(month[n], ck.key, ck.cert, c14n=EXC_C14N)
    v = _verify(data, n, trust)
    assert v.ok, v.failed
    broken = _tamper(data, b"gl-cor:accountMainID")
    p = tmp_path / n
    p.write_bytes(broken)
    assert not verify_file(p, name=n, trust=trust).signature_valid
    assert not xmlsec_valid(xmlsec1, p)


def test_certificate_expired_at_signing_time(month: dict[str, bytes], sample_pki: TestPKI,
                                              trust: TrustSettings) -> None:
    n = _name(month, "Y")
    key, cert = issue_cert(sample_pki.ca.key, sample_pki.ca.cert, cn="expired",
                           not_before=dt.datetime(2015, 1, 1, tzinfo=dt.UTC),
                           not_after=dt.datetime(2016, 1, 1, tzinfo=dt.UTC))
    v = _verify(resign(month[n], key, cert), n, trust)
    assert v.signature_valid  # broken signature and untrusted certificate are different findings
    assert _failed(v) == {"certificate.validity"} or _failed(v) <= {"certificate.validity", "certificate.trust"}
    assert "certificate.validity" in _failed(v)


def test_key_usage_and_untrusted_root(month: dict[str, bytes], sample_pki: TestPKI, trust: TrustSettings) -> None:
    n = _name(month, "Y")
    key, cert = issue_cert(sample_pki.ca.key, sample_pki.ca.cert, cn="enc-only",
                           not_before=dt.datetime(2018, 1, 1, tzinfo=dt.UTC),
                           not_after=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), key_usage_sign=False)
    v = _verify(resign(month[n], key, cert), n, trust)
    assert v.signature_valid and _failed(v) == {"certificate.key_usage"}
    nobody = TrustSettings()
    u = _verify(month[n], n, nobody)
    assert u.signature_valid and _failed(u) == {"certificate.trust"}
    assert "Güvenilmeyen sertifika" in u.failed[0].message_tr


def test_counter_signature_by_non_gib_certificate(month: dict[str, bytes], sample_pki: TestPKI,
                                                  trust: TrustSettings) -> None:
    local = _name(month, "YB")
    gib = _name(month, "GIB-YB")
    ck = sample_pki.company("1234567801", "Örnek Ticaret A.Ş.")
    fake = add_counter_signature(month[local], signer=ck, signing_time=dt.datetime(2019, 12, 1, tzinfo=dt.UTC),
                                 sig_id="Fake-GIB")
    lv = _verify(month[local], local, trust)
    v = _verify(fake, gib, trust, taxpayer_berat=lv)
    assert _failed(v) == {"gib.certificate"}
    assert v.signature_valid
    broken = re.sub(rb"(<xades:CounterSignature>.*?<ds:SignatureValue[^>]*>)(.)",
                    lambda m: m.group(1) + (b"A" if m.group(2) != b"A" else b"B"), month[gib], count=1, flags=re.S)
    b = _verify(broken, gib, trust, taxpayer_berat=lv)
    assert "gib.countersignature" in _failed(b) and b.signature_valid


def test_gib_berat_differs_from_local_berat(month: dict[str, bytes], trust: TrustSettings) -> None:
    gib = _name(month, "GIB-YB")
    other_local = _verify(month[_name(month, "KB")], _name(month, "KB"), trust)
    v = _verify(month[gib], gib, trust, taxpayer_berat=other_local)
    assert _failed(v) == {"gib.same_content"}
    same = _verify(month[gib], gib, trust, taxpayer_berat=_verify(month[_name(month, "YB")], "x", trust).signed)
    assert same.ok


def test_berat_copied_signature_value_mismatch(month: dict[str, bytes], trust: TrustSettings, tmp_path: Path) -> None:
    yb = _name(month, "YB")
    k = _verify(month[_name(month, "K")], _name(month, "K"), trust)
    v = _verify(month[yb], yb, trust, ledger_signature_value=k.signature_value_b64)
    assert _failed(v) == {"berat.ledger_signature_value"}
    assert "Çapraz Doğrulama" in v.failed[0].message_tr
    # and inside verify_month: a berat of another ledger breaks the chain
    files = []
    for code in ("Y", "YB"):
        p = tmp_path / _name(month, code)
        p.write_bytes(month[_name(month, code)] if code == "Y" else month[_name(month, "KB")].replace(
            b"-KB-", b"-YB-"))
        files.append((parse_name(p.name), p))
    codes = {p.code for p in month_problems(files, trust)}
    assert "crypto.berat.ledger_signature_value" in codes


def test_two_signatures_and_wrapping(month: dict[str, bytes], trust: TrustSettings, xmlsec1: str,
                                     tmp_path: Path) -> None:
    n = _name(month, "YB")
    data = month[n]
    # a second element carrying the signed SignedProperties Id
    sp = re.search(rb"<xades:SignedProperties .*?</xades:SignedProperties>", data, flags=re.S)
    assert sp is not None
    wrapped = data.replace(b"</ds:Object>", b"</ds:Object><ds:Object>" + sp.group(0) + b"</ds:Object>", 1)
    v = _verify(wrapped, n, trust)
    assert not v.ok and any("more than one element" in c.message_en for c in v.failed)
    # signed content moved into an Object, other content in its place
    body = re.search(rb"<xbrli:xbrl.*</xbrli:xbrl>", data, flags=re.S)
    assert body is not None
    evil_body = body.group(0).replace(b"<gl-cor:", b"<gl-cor:", 1)
    evil_body = re.sub(rb"(<gl-cor:uniqueID[^>]*>)[^<]*", rb"\1EVIL", evil_body, count=1)
    moved = data.replace(body.group(0), evil_body).replace(
        b"</ds:Signature>", b"<ds:Object>" + body.group(0) + b"</ds:Object></ds:Signature>")
    m = _verify(moved, n, trust)
    p = tmp_path / n
    p.write_bytes(moved)
    assert not m.signature_valid and not xmlsec_valid(xmlsec1, p)


def test_trust_settings_from_env(sample_pki: TestPKI, tmp_path: Path) -> None:
    gib_dir = tmp_path / "gib"
    gib_dir.mkdir()
    (gib_dir / "seal.pem").write_bytes(sample_pki.gib_cert_path.read_bytes())
    (gib_dir / "seal-key.pem").write_bytes(sample_pki.gib_key_path.read_bytes())  # keys are skipped
    t = TrustSettings.from_env({
        "EDEFTER_TRUSTED_ROOTS": str(sample_pki.ca_cert_path),
        "EDEFTER_GIB_CERTS": str(gib_dir),  # a directory: the certificates of every *.pem in it
        "EDEFTER_ALLOW_SHA1": "evet",
    })
    assert len(t.trusted_roots) == 1 and t.allow_sha1 and t.check_time
    assert t.gib_certs == (sample_pki.gib.cert,)
    assert TrustSettings.from_env({}) == TrustSettings()


def test_never_crashes_on_random_bytes(trust: TrustSettings) -> None:
    @settings(max_examples=40, deadline=None)
    @given(st.binary(max_size=300))
    def inner(data: bytes) -> None:
        v = verify_bytes(data, name="1234567801-201909-Y-000000.xml", trust=trust)
        assert not v.ok and "internal" not in _failed(v)

    inner()


def test_signed_content_type_roundtrip(month: dict[str, bytes], trust: TrustSettings) -> None:
    v = _verify(month[_name(month, "YB")], _name(month, "YB"), trust)
    assert isinstance(v.signed, SignedContent) and len(v.signed.document_digest) == 32
    assert isinstance(parse_name(_name(month, "YB")), EDefterName)


def test_default_namespace_streaming_and_tree_fallback(month: dict[str, bytes], sample_pki: TestPKI,
                                                        trust: TrustSettings, monkeypatch: pytest.MonkeyPatch,
                                                        xmlsec1: str, tmp_path: Path) -> None:
    import include.edefter.verify as verify_mod

    n = _name(month, "Y")
    ck = sample_pki.company("1234567801", "Örnek Ticaret A.Ş.")
    data = re.sub(rb"<gl-cor:entryHeader", b'<gl-cor:entryHeader xmlns="urn:zz"', month[n], count=1)
    inclusive = resign(data, ck.key, ck.cert)  # streamed (inclusive C14N handles default namespaces)
    exclusive = resign(data, ck.key, ck.cert, c14n=EXC_C14N)  # whole-tree fallback
    for signed in (inclusive, exclusive):
        assert _verify(signed, n, trust).ok
        tampered = _tamper(signed, b"gl-cor:entryHeader")
        p = tmp_path / n
        p.write_bytes(tampered)
        assert not _verify(tampered, n, trust).signature_valid and not xmlsec_valid(xmlsec1, p)
    monkeypatch.setattr(verify_mod, "TREE_FALLBACK_MAX_BYTES", 1000)
    v = _verify(exclusive, n, trust)
    assert _failed(v) == {"signature.unsupported"} and not v.signature_valid
    assert _verify(inclusive, n, trust).ok


def test_crypto_check_compares_gib_berat_with_local_in_any_order(month: dict[str, bytes],
                                                                  trust: TrustSettings) -> None:
    gib, yb, kb = _name(month, "GIB-YB"), _name(month, "YB"), _name(month, "KB")
    impostor = month[kb]  # another berat's signed content under the YB name

    for order in ((yb, gib), (gib, yb)):
        check = crypto_check(trust)
        found = []
        for n in order:
            data = impostor if n == yb else month[n]
            found += check(parse_name(n), lambda d=data: io.BytesIO(d))
        assert [p.code for p in found] == ["crypto.gib.same_content"], order
        assert set(found[0].files) <= {gib, yb} and gib in found[0].files
        good = crypto_check(trust)
        assert [p for n in order for p in good(parse_name(n), lambda n=n: io.BytesIO(month[n]))] == []


def test_extra_same_document_reference_to_keyinfo(month: dict[str, bytes], sample_pki: TestPKI,
                                                  trust: TrustSettings, xmlsec1: str, tmp_path: Path) -> None:
    n = _name(month, "Y")
    ck = sample_pki.company("1234567801", "Örnek Ticaret A.Ş.")
    signed = resign(month[n], ck.key, ck.cert, sign_keyinfo=True)
    assert _verify(signed, n, trust).ok
    # the KeyInfo reference is checked too: swap in another certificate
    other = issue_cert(sample_pki.ca.key, sample_pki.ca.cert, cn="other",
                       not_before=dt.datetime(2018, 1, 1, tzinfo=dt.UTC),
                       not_after=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))[1]
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    swapped = re.sub(rb"(<ds:X509Certificate>)[^<]*", lambda m: m.group(1) + base64.b64encode(
        other.public_bytes(Encoding.DER)), signed, count=1)
    v = _verify(swapped, n, trust)
    assert "signature.reference_digest" in _failed(v) and not v.signature_valid
    p = tmp_path / n
    p.write_bytes(swapped)
    assert not xmlsec_valid(xmlsec1, p)
