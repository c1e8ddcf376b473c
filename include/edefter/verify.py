"""Cryptographic, streaming verification of the e-Defter signature chain.

What is checked (edefter-domain.md "Signatures and the integrity chain"):

* every ledger (Y, K), berat and DR: the enveloped XMLDSig - the ``Reference
  URI=""`` digest over the canonical document minus the Signature, the XAdES
  ``SignedProperties`` reference digest, the signature over ``SignedInfo`` with
  the key of the embedded certificate, the XAdES ``SigningCertificate`` digest;
* the certificate: validity at the XAdES signing time, key usage
  (digitalSignature or nonRepudiation), a chain to configured roots;
  "güvenilmeyen sertifika" is reported apart from "bozuk imza";
* a berat: its copied ``edefter:berat/ds:SignatureValue`` equals its ledger's;
* a GİB berat: the taxpayer's signed content is the same as the local berat's
  (canonical SignedInfo, SignatureValue, document digest), and GİB's
  ``xades:CounterSignature`` is valid over the berat's SignatureValue and made
  with a configured GİB certificate;
* SHA-1 anywhere -> "SHA-1 kabul edilmez" (a warning when ``allow_sha1``).

Who does what:

* lxml/libxml2: parsing (``iterparse``, no entities, no network) and every C14N
  byte (inclusive/exclusive C14N 1.0; C14N 1.1 is treated as 1.0, which is the
  same output for documents without ``xml:id``/``xml:base``);
* cryptography: X.509 parsing, RSA/ECDSA signature verification, certificate
  signature checks (``verify_directly_issued_by``);
* hashlib: digests;
* written here: the streaming piecewise application of libxml2's C14N
  (``include/edefter/c14n_stream.py``: libxml2 only canonicalizes whole trees) -
  for ledgers the chunked path (entry runs cut into ~256 KB chunks at entry
  start tags, each parsed and canonicalized by libxml2 in a stand-in root, in two
  threads; the rest of the document streamed through the general pass), for
  anything else the general pass;
  the XMLDSig/XAdES reference processing on the small Signature tree, the
  counter-signature and chain-between-files checks, and a small certificate path
  builder (cryptography's ``PolicyBuilder`` verifiers implement the Web PKI
  server/client profiles, whose EKU rules qualified e-seals do not follow).
  signxml is not used: it needs the whole document as one tree (a 200 MB
  ledger) and knows no XAdES counter-signatures.

Public API: ``TrustSettings``, ``verify_file``, ``verify_month``, ``crypto_check``,
``FileVerdict``/``CheckResult`` (``.problems()`` -> ``Problem`` list).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from include.edefter.c14n_stream import (
    DS_NS,
    _remove_keep_tail,
    chunked_enveloped_c14n,
    stream_enveloped_c14n,
    tree_enveloped_c14n,
)
from include.edefter.naming import EDefterName, FileKind, try_parse_name
from include.edefter.problems import Problem, Severity

__all__ = [
    "CheckResult",
    "FileVerdict",
    "SignatureVerdict",
    "SignedContent",
    "TrustSettings",
    "crypto_check",
    "verify_file",
    "verify_month",
    "month_problems",
]

XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
XADES141_NS = "http://uri.etsi.org/01903/v1.4.1#"
_DS = "{" + DS_NS + "}"
_XA = "{" + XADES_NS + "}"

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
# algorithm URI -> (exclusive, with_comments)
C14N_ALGS: dict[str, tuple[bool, bool]] = {
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": (False, False),
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": (False, True),
    "http://www.w3.org/2001/10/xml-exc-c14n#": (True, False),
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": (True, True),
    "http://www.w3.org/2006/12/xml-c14n11": (False, False),
    "http://www.w3.org/2006/12/xml-c14n11#WithComments": (False, True),
}
DIGEST_ALGS: dict[str, str] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
SIG_ALGS: dict[str, tuple[str, str]] = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", "sha1"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224": ("rsa", "sha224"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", "sha256"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", "sha384"),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", "sha512"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": ("ec", "sha1"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", "sha256"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ec", "sha384"),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ec", "sha512"),
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}
TYPE_SIGNED_PROPERTIES = "http://uri.etsi.org/01903#SignedProperties"
TYPE_COUNTERSIGNED = "http://uri.etsi.org/01903#CountersignedSignature"

# Documents whose namespace layout the streaming C14N does not model are
# canonicalized as one tree; past this size that would cost too much memory.
TREE_FALLBACK_MAX_BYTES = 64 * 1024 * 1024

# Check ids. "Broken signature" and "untrusted certificate" are separate groups.
SIGNATURE_CHECKS = ("signature.reference_digest", "signature.signed_properties", "signature.value")


# --------------------------------------------------------------------------- settings

def _load_certs(items: Iterable[str | Path | x509.Certificate]) -> tuple[x509.Certificate, ...]:
    out: list[x509.Certificate] = []
    for item in items:
        if isinstance(item, x509.Certificate):
            out.append(item)
            continue
        p = Path(item)
        files = sorted(p.glob("*.pem")) + sorted(p.glob("*.crt")) if p.is_dir() else [p]
        for f in files:
            data = f.read_bytes()
            if b"-----BEGIN" in data:
                # only CERTIFICATE blocks: a directory may also hold keys
                for block in re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.S):
                    out.append(x509.load_pem_x509_certificate(block))
            else:
                out.append(x509.load_der_x509_certificate(data))
    return tuple(out)


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on", "evet")


@dataclass(frozen=True)
class TrustSettings:
    """Trust anchors and policy for verification.

    ``trusted_roots``: roots a signer's chain must end in (Kamu SM roots in
    production, the sample PKI's test CA in tests). ``intermediates``: extra
    CA certificates for path building (embedded KeyInfo certificates are used
    too). ``gib_certs``: certificates GİB seals berats with. ``allow_sha1``
    downgrades "SHA-1 kabul edilmez" to a warning (historical periods).
    ``check_time``: check certificate validity at the XAdES signing time.
    """

    trusted_roots: tuple[x509.Certificate, ...] = ()
    gib_certs: tuple[x509.Certificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    allow_sha1: bool = False
    check_time: bool = True

    @classmethod
    def from_paths(
        cls,
        trusted_roots: Iterable[str | Path | x509.Certificate] = (),
        gib_certs: Iterable[str | Path | x509.Certificate] = (),
        intermediates: Iterable[str | Path | x509.Certificate] = (),
        *,
        allow_sha1: bool = False,
        check_time: bool = True,
    ) -> TrustSettings:
        """PEM/DER files, directories of ``*.pem``/``*.crt``, or certificate objects."""
        return cls(_load_certs(trusted_roots), _load_certs(gib_certs), _load_certs(intermediates),
                   allow_sha1, check_time)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TrustSettings:
        """Read ``EDEFTER_TRUSTED_ROOTS``, ``EDEFTER_GIB_CERTS``, ``EDEFTER_INTERMEDIATE_CERTS``
        (``os.pathsep``-separated files or directories), ``EDEFTER_ALLOW_SHA1`` and
        ``EDEFTER_CHECK_CERT_TIME`` (booleans)."""
        e = os.environ if env is None else env

        def paths(key: str) -> list[str]:
            return [p for p in (e.get(key) or "").split(os.pathsep) if p.strip()]

        return cls.from_paths(
            paths("EDEFTER_TRUSTED_ROOTS"), paths("EDEFTER_GIB_CERTS"), paths("EDEFTER_INTERMEDIATE_CERTS"),
            allow_sha1=_env_bool(e.get("EDEFTER_ALLOW_SHA1"), False),
            check_time=_env_bool(e.get("EDEFTER_CHECK_CERT_TIME"), True),
        )


# --------------------------------------------------------------------------- verdicts

@dataclass(frozen=True)
class CheckResult:
    check: str
    ok: bool
    message_tr: str
    message_en: str
    severity: Severity = Severity.ERROR


@dataclass(frozen=True)
class SignedContent:
    """The taxpayer-signed content of a berat, to compare a GİB berat with."""

    signed_info_c14n: bytes
    signature_value: bytes
    document_digest: bytes


# Verdicts of one signature, most decisive first (see _classify).
VERDICT_CONTENT_CHANGED = "content_changed"  # document digest mismatch: changed after signing
VERDICT_INVALID = "signature_invalid"  # cryptographically invalid (value, SignedProperties, structure)
VERDICT_CERT_MISSING = "certificate_missing"  # no X509Certificate: unverifiable
VERDICT_SHA1 = "sha1"  # SHA-1 used (GİB rejects it)
VERDICT_UNTRUSTED = "certificate_untrusted"  # valid signature, certificate not trusted/valid/usable
VERDICT_APPENDED = "later_signature_appended"  # intact; a later signature was appended after it
VERDICT_VALID = "valid"

_INVALID_CHECKS = ("signature.value", "signature.signed_properties", "signature.structure", "signature.algorithms",
                   "certificate.signing_certificate", "certificate.parse", "signature.unsupported", "parse")
_UNTRUSTED_CHECKS = ("certificate.trust", "certificate.validity", "certificate.key_usage")


def _classify(items: Sequence[CheckResult]) -> str:
    failed = {x.check for x in items if not x.ok and x.severity is Severity.ERROR}
    warned = {x.check for x in items if not x.ok and x.severity is Severity.WARNING}
    if "signature.reference_digest" in failed:
        return VERDICT_CONTENT_CHANGED
    if "certificate.missing" in failed:
        return VERDICT_CERT_MISSING
    if failed.intersection(_INVALID_CHECKS):
        return VERDICT_INVALID
    if "signature.sha1" in failed:
        return VERDICT_SHA1
    if failed.intersection(_UNTRUSTED_CHECKS):
        return VERDICT_UNTRUSTED
    if "signature.appended" in warned:
        return VERDICT_APPENDED
    return VERDICT_VALID


@dataclass(frozen=True)
class SignatureVerdict:
    """The verdict on one top-level ds:Signature of a file (1-based ``index``)."""

    index: int
    sig_id: str | None
    verdict: str
    checks: tuple[CheckResult, ...]


@dataclass(frozen=True)
class FileVerdict:
    name: str
    ok: bool
    checks: tuple[CheckResult, ...]
    signature_value_b64: str | None = field(default=None, compare=False)
    copied_signature_value_b64: str | None = field(default=None, compare=False)
    signed: SignedContent | None = field(default=None, compare=False, repr=False)
    signatures: tuple[SignatureVerdict, ...] = field(default=(), compare=False)

    @property
    def verdict(self) -> str:
        """File-level: the most decisive signature verdict (``content_changed`` only if some
        signature's content really changed; ``later_signature_appended`` when the first
        signature is intact without the later ones and they verify)."""
        order = (VERDICT_CONTENT_CHANGED, VERDICT_INVALID, VERDICT_CERT_MISSING, VERDICT_SHA1, VERDICT_UNTRUSTED,
                 VERDICT_APPENDED, VERDICT_VALID)
        if not self.signatures:
            return "unsigned" if any(c.check == "signature.present" and not c.ok for c in self.checks) else (
                VERDICT_INVALID if not self.ok else VERDICT_VALID)
        return min((s.verdict for s in self.signatures), key=order.index)

    @property
    def signature_valid(self) -> bool:
        """The signature itself verifies (digests + signature value), trust aside."""
        rel = [c for c in self.checks if c.check in SIGNATURE_CHECKS or c.check in ("parse", "signature.present")]
        return bool(rel) and all(c.ok for c in rel) and any(c.check == "signature.value" for c in rel)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def problems(self) -> list[Problem]:
        return [
            Problem(
                code=f"crypto.{c.check}", files=(self.name,), message_tr=c.message_tr,
                message_en=c.message_en, severity=c.severity,
            )
            for c in self.checks
            if not c.ok
        ]


class _Checks:
    def __init__(self) -> None:
        self.items: list[CheckResult] = []

    def ok(self, check: str, tr: str, en: str) -> None:
        self.items.append(CheckResult(check, True, tr, en))

    def fail(self, check: str, tr: str, en: str) -> None:
        self.items.append(CheckResult(check, False, tr, en))

    def warn(self, check: str, tr: str, en: str) -> None:
        # a warning is "ok" for the verdict but still becomes a Problem
        self.items.append(CheckResult(check, False, tr, en, Severity.WARNING))

    def has(self, check: str) -> bool:
        return any(c.check == check for c in self.items)

    def verdict_ok(self) -> bool:
        return all(c.ok or c.severity is Severity.WARNING for c in self.items)


# --------------------------------------------------------------------------- signature tree

class _Bad(Exception):
    """A structural problem of the Signature: (check, tr, en)."""

    def __init__(self, check: str, tr: str, en: str) -> None:
        super().__init__(en)
        self.check, self.tr, self.en = check, tr, en


@dataclass
class _Ref:
    uri: str
    type: str | None
    transforms: list[str]
    digest_alg: str
    digest_value: bytes
    computed: bytes | None = None  # for "#id" references, computed in-tree
    inclusive_prefixes: list[str] = field(default_factory=list)  # exclusive C14N's InclusiveNamespaces


@dataclass
class _Sig:
    sig_id: str | None = None
    signed_info_c14n: bytes = b""
    c14n_alg: str = ""
    sig_alg: str = ""
    refs: list[_Ref] = field(default_factory=list)
    signature_value: bytes = b""
    signature_value_b64: str = ""
    signature_value_id: str | None = None
    certs: list[bytes] = field(default_factory=list)
    signing_time: dt.datetime | None = None
    signing_cert_digests: list[tuple[str, bytes]] = field(default_factory=list)
    qp_target_ok: bool = True
    errors: list[_Bad] = field(default_factory=list)  # structural problems found in-tree
    counter: list[_Sig] = field(default_factory=list)


def _b64decode(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Bad("signature.structure", f"{what} base64 değil", f"{what} is not valid base64") from exc


def _c14n_el(el: Any, alg: str, *, comments_allowed: bool, prefixes: Sequence[str] = ()) -> bytes:
    exclusive, with_comments = C14N_ALGS[alg]
    return etree.tostring(el, method="c14n", exclusive=exclusive, with_comments=with_comments and comments_allowed,
                          inclusive_ns_prefixes=(list(prefixes) or None) if exclusive else None)


_EXC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"


def _prefix_list(parent: Any) -> list[str]:
    inc = parent.find(f"{{{_EXC_NS}}}InclusiveNamespaces")
    return (inc.get("PrefixList") or "").split() if inc is not None else []


def _ids_in(scope: Any) -> dict[str, list[Any]]:
    ids: dict[str, list[Any]] = {}
    for el in scope.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in ("Id", "ID", "id"):
            v = el.get(attr)
            if v is not None:
                ids.setdefault(v, []).append(el)
    return ids


def _parse_signature(sig: Any, id_scope: Any) -> _Sig:
    """Read one ds:Signature while it is still in its document (namespace context)."""
    out = _Sig(sig_id=sig.get("Id"))
    si = sig.find(_DS + "SignedInfo")
    if si is None:
        raise _Bad("signature.structure", "ds:SignedInfo yok", "ds:SignedInfo is missing")
    cm = si.find(_DS + "CanonicalizationMethod")
    sm = si.find(_DS + "SignatureMethod")
    out.c14n_alg = cm.get("Algorithm", "") if cm is not None else ""
    out.sig_alg = sm.get("Algorithm", "") if sm is not None else ""
    if out.c14n_alg not in C14N_ALGS:
        raise _Bad("signature.algorithms", f"Bilinmeyen kanonikleştirme algoritması: {out.c14n_alg!r}",
                   f"unknown canonicalization algorithm {out.c14n_alg!r}")
    out.signed_info_c14n = _c14n_el(si, out.c14n_alg, comments_allowed=True, prefixes=_prefix_list(cm))
    ids = _ids_in(id_scope)
    for ref in si.findall(_DS + "Reference"):
        tr_els = ref.findall(f"{_DS}Transforms/{_DS}Transform")
        transforms = [t.get("Algorithm", "") for t in tr_els]
        prefixes = [p for t in tr_els for p in _prefix_list(t)]
        dm = ref.find(_DS + "DigestMethod")
        dv = ref.find(_DS + "DigestValue")
        r = _Ref(
            uri=ref.get("URI", "") if ref.get("URI") is not None else "\0absent",
            type=ref.get("Type"),
            transforms=transforms,
            digest_alg=dm.get("Algorithm", "") if dm is not None else "",
            digest_value=_b64decode(dv.text if dv is not None else "", "ds:DigestValue"),
            inclusive_prefixes=prefixes,
        )
        if r.uri.startswith("#"):
            targets = ids.get(r.uri[1:], [])
            if len(targets) > 1:
                out.errors.append(_Bad("signature.structure", f"{r.uri} kimliği birden çok öğede var",
                                       f"Id {r.uri} is carried by more than one element (wrapping attack?)"))
            elif targets and r.digest_alg in DIGEST_ALGS:
                alg = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
                ok_tr = True
                for t in transforms:
                    if t in C14N_ALGS:
                        alg = t
                    else:
                        ok_tr = False
                if ok_tr:
                    r.computed = hashlib.new(DIGEST_ALGS[r.digest_alg],
                                             _c14n_el(targets[0], alg, comments_allowed=False,
                                                      prefixes=prefixes)).digest()
        out.refs.append(r)
    sv = sig.find(_DS + "SignatureValue")
    if sv is None:
        raise _Bad("signature.structure", "ds:SignatureValue yok", "ds:SignatureValue is missing")
    out.signature_value_b64 = "".join((sv.text or "").split())
    out.signature_value_id = sv.get("Id")
    out.signature_value = _b64decode(sv.text, "ds:SignatureValue")
    for c in sig.findall(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate"):
        out.certs.append(_b64decode(c.text, "ds:X509Certificate"))
    qps = sig.findall(f"{_DS}Object/{_XA}QualifyingProperties")
    if qps:
        qp = qps[0]
        if out.sig_id is not None and qp.get("Target") != f"#{out.sig_id}":
            out.qp_target_ok = False
        st = qp.find(f"{_XA}SignedProperties/{_XA}SignedSignatureProperties/{_XA}SigningTime")
        if st is not None and st.text:
            try:
                t = dt.datetime.fromisoformat(st.text.strip().replace("Z", "+00:00"))
                out.signing_time = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
            except ValueError:
                out.errors.append(_Bad("signature.structure", "xades:SigningTime okunamadı",
                                       f"xades:SigningTime {st.text!r} is not a date-time"))
        ssp = qp.find(f"{_XA}SignedProperties/{_XA}SignedSignatureProperties")
        if ssp is not None:
            for cd in ssp.iter(f"{_XA}CertDigest"):
                dm = cd.find(_DS + "DigestMethod")
                dv = cd.find(_DS + "DigestValue")
                out.signing_cert_digests.append((dm.get("Algorithm", "") if dm is not None else "",
                                                 _b64decode(dv.text if dv is not None else "", "CertDigest")))
        for cs in qp.findall(f"{_XA}UnsignedProperties/{_XA}UnsignedSignatureProperties/"
                             f"{_XA}CounterSignature/{_DS}Signature"):
            try:
                out.counter.append(_parse_signature(cs, sig))
            except _Bad as exc:
                c = _Sig()
                c.errors.append(exc)
                out.counter.append(c)
    return out


# --------------------------------------------------------------------------- crypto helpers

def _der_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("DER element overruns")
    return tag, pos, pos + length


def _lenient_public_key(der: bytes) -> Any:
    """The SubjectPublicKeyInfo of a certificate that strict parsing rejects.

    OpenSSL (hence xmlsec1) accepts certificates with some damaged fields; to tell a
    damaged certificate from a broken signature we still verify with its key.
    """
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    tag, cert_v, cert_end = _der_tlv(der, 0)
    if tag != 0x30 or cert_end != len(der):
        raise ValueError("not one DER SEQUENCE")
    tag, pos, tbs_end = _der_tlv(der, cert_v)
    if tag != 0x30:
        raise ValueError("tbsCertificate is not a SEQUENCE")
    _, _, alg_end = _der_tlv(der, tbs_end)
    tag, _, sig_end = _der_tlv(der, alg_end)
    if tag != 0x03 or sig_end != cert_end:
        raise ValueError("certificate is not tbsCertificate, signatureAlgorithm, signatureValue")
    tag, _, end = _der_tlv(der, pos)
    if tag == 0xA0:  # [0] version
        pos = end
    for _ in range(5):  # serialNumber, signature, issuer, validity, subject
        _, _, pos = _der_tlv(der, pos)
    _, _, spki_end = _der_tlv(der, pos)
    if spki_end > tbs_end:
        raise ValueError("SubjectPublicKeyInfo outside tbsCertificate")
    return load_der_public_key(der[pos:spki_end])


def _verify_sig_value(key: Any, sig_alg: str, value: bytes, data: bytes) -> bool:
    kind, h = SIG_ALGS[sig_alg]
    try:
        if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, data, padding.PKCS1v15(), _HASHES[h]())
            return True
        if kind == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
            n = (key.curve.key_size + 7) // 8
            if len(value) != 2 * n:
                return False
            der = encode_dss_signature(int.from_bytes(value[:n], "big"), int.from_bytes(value[n:], "big"))
            key.verify(der, data, ec.ECDSA(_HASHES[h]()))
            return True
    except InvalidSignature:
        return False
    return False


def _valid_at(cert: x509.Certificate, when: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _build_chain(leaf: x509.Certificate, pool: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate], when: dt.datetime | None) -> tuple[bool, str]:
    """Walk issuer links from leaf to a configured root; every link's signature is checked."""
    root_ders = {r.public_bytes(_DER) for r in roots}
    cur = leaf
    for _ in range(8):
        if cur.public_bytes(_DER) in root_ders:
            return True, ""
        candidates = [c for c in (*roots, *pool) if c.subject == cur.issuer and c is not cur]
        nxt = None
        for cand in candidates:
            try:
                cur.verify_directly_issued_by(cand)
            except (ValueError, TypeError, InvalidSignature):
                continue
            try:
                bc = cand.extensions.get_extension_for_class(x509.BasicConstraints).value
                if not bc.ca:
                    continue
            except x509.ExtensionNotFound:
                continue
            if when is not None and not _valid_at(cand, when):
                return False, f"CA certificate {cand.subject.rfc4514_string()} not valid at signing time"
            nxt = cand
            break
        if nxt is None:
            return False, f"no trusted issuer found for {cur.subject.rfc4514_string()}"
        if nxt.public_bytes(_DER) in root_ders:
            return True, ""
        cur = nxt
    return False, "certificate chain too long"


from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

_DER = Encoding.DER


# --------------------------------------------------------------------------- verification of one signature

def _sha1_finding(c: _Checks, trust: TrustSettings, prefix: str, where: str) -> None:
    tr = f"SHA-1 kabul edilmez ({where})"
    en = f"SHA-1 is not accepted ({where})"
    if trust.allow_sha1:
        c.warn(prefix + "signature.sha1", tr + " — ayar gereği uyarı", en + " — downgraded to a warning by settings")
    else:
        c.fail(prefix + "signature.sha1", tr, en)


def _check_signature_core(c: _Checks, s: _Sig, trust: TrustSettings, *, doc_digest: dict[str, bytes] | None,
                          prefix: str, signed_target_uri: str | None = None) -> x509.Certificate | None:
    """Digests, SignedInfo signature and signing certificate digest of one signature.

    ``doc_digest`` maps digest name -> digest of the enveloped document (main
    signature); for a counter-signature ``signed_target_uri`` is the expected
    ``#Id`` of the countersigned SignatureValue.
    """
    for bad in s.errors:
        c.fail(prefix + bad.check, bad.tr, bad.en)
    if s.sig_alg not in SIG_ALGS:
        c.fail(prefix + "signature.algorithms", f"Bilinmeyen imza algoritması: {s.sig_alg!r}",
               f"unknown signature algorithm {s.sig_alg!r}")
        return None
    sha1_places = ["SignatureMethod"] if SIG_ALGS[s.sig_alg][1] == "sha1" else []
    # references
    sp = [r for r in s.refs if r.type == TYPE_SIGNED_PROPERTIES]
    wanted = "" if doc_digest is not None else signed_target_uri
    main = [r for r in s.refs if r.type != TYPE_SIGNED_PROPERTIES and r.uri == wanted]
    # other same-document references (some signers also sign KeyInfo): each must verify
    others = [r for r in s.refs if r.type != TYPE_SIGNED_PROPERTIES and r.uri != wanted]
    for r in s.refs:
        if r.digest_alg not in DIGEST_ALGS:
            c.fail(prefix + "signature.algorithms", f"Bilinmeyen özet algoritması: {r.digest_alg!r}",
                   f"unknown digest algorithm {r.digest_alg!r}")
            return None
        if DIGEST_ALGS[r.digest_alg] == "sha1" and "DigestMethod" not in sha1_places:
            sha1_places.append("DigestMethod")
    if sha1_places:
        _sha1_finding(c, trust, prefix, ", ".join(sha1_places))
    if len(main) != 1:
        what = 'URI=""' if doc_digest is not None else f"URI={signed_target_uri!r}"
        c.fail(prefix + "signature.structure",
               f"{what} olan referans sayısı {len(main)} (tam 1 olmalı); diğer URI'ler: "
               f"{[r.uri for r in others]}",
               f"{len(main)} references with {what} (exactly one required); other URIs: {[r.uri for r in others]}")
        return None
    for r in others:
        if not r.uri.startswith("#"):
            c.fail(prefix + "signature.structure", f"Desteklenmeyen referans URI: {r.uri!r}",
                   f"unsupported reference URI {r.uri!r} (only the document and same-signature #Id)")
        elif r.computed is None or r.computed != r.digest_value:
            c.fail(prefix + "signature.reference_digest", f"{r.uri} referansının özeti tutmuyor veya hedefi yok",
                   f"digest of reference {r.uri} does not match (or its target is missing)")
    ref = main[0]
    if doc_digest is not None:
        extra = [t for t in ref.transforms if t != ENVELOPED and t not in C14N_ALGS]
        if ENVELOPED not in ref.transforms or extra or ref.transforms[0] != ENVELOPED or len(ref.transforms) > 2:
            c.fail(prefix + "signature.algorithms", f"Desteklenmeyen dönüşümler: {ref.transforms}",
                   f"unsupported transforms {ref.transforms} (enveloped-signature, then at most one C14N)")
            return None
        got = doc_digest.get(DIGEST_ALGS[ref.digest_alg])
        if got is None or got != ref.digest_value:
            c.fail(prefix + "signature.reference_digest", "Belge özeti tutmuyor: belge imzadan sonra değişmiş",
                   "document digest mismatch: the document changed after signing")
        else:
            c.ok(prefix + "signature.reference_digest", "Belge özeti doğru", "document digest matches")
    else:
        if ref.computed is None or ref.computed != ref.digest_value:
            c.fail(prefix + "signature.reference_digest", "Karşı imza özeti tutmuyor",
                   "counter-signature digest over the berat's SignatureValue does not match")
        else:
            c.ok(prefix + "signature.reference_digest", "Karşı imza özeti doğru", "counter-signature digest matches")
    if len(sp) != 1:
        c.fail(prefix + "signature.signed_properties", "XAdES SignedProperties referansı yok veya birden çok",
               "missing or repeated XAdES SignedProperties reference")
    elif sp[0].computed is None or sp[0].computed != sp[0].digest_value:
        c.fail(prefix + "signature.signed_properties", "XAdES SignedProperties özeti tutmuyor",
               "XAdES SignedProperties digest mismatch (or its target is missing)")
    else:
        c.ok(prefix + "signature.signed_properties", "XAdES SignedProperties özeti doğru",
             "XAdES SignedProperties digest matches")
    if not s.qp_target_ok:
        c.fail(prefix + "signature.structure", "QualifyingProperties Target bu imzayı göstermiyor",
               "xades:QualifyingProperties/@Target does not point at this signature")
    # key and signature value
    if not s.certs:
        c.fail(prefix + "certificate.missing",
               "İmzada sertifika yok (ds:KeyInfo/X509Data/X509Certificate): imza doğrulanamaz",
               "no certificate in the signature (ds:KeyInfo/X509Data/X509Certificate): the signature "
               "cannot be verified")
        return None
    cert: x509.Certificate | None
    try:
        cert = x509.load_der_x509_certificate(s.certs[0])
        key = cert.public_key()
    except Exception:  # noqa: BLE001 - ValueError, UnsupportedAlgorithm (unknown key type), ...
        cert = None
        c.fail(prefix + "certificate.parse", "Gömülü sertifika bozuk, okunamadı: güvenilmeyen sertifika",
               "the embedded certificate is damaged and cannot be parsed: untrusted certificate")
        try:
            key = _lenient_public_key(s.certs[0])
        except Exception:  # noqa: BLE001 - damaged bytes raise ValueError, UnsupportedAlgorithm, ...
            c.fail(prefix + "signature.value", "Sertifikadan açık anahtar alınamadı: imza doğrulanamadı",
                   "no public key can be read from the certificate: the signature cannot be verified")
            return None
    if _verify_sig_value(key, s.sig_alg, s.signature_value, s.signed_info_c14n):
        c.ok(prefix + "signature.value", "İmza değeri doğru", "signature value verifies")
    else:
        c.fail(prefix + "signature.value", "İmza değeri doğrulanamadı: bozuk imza",
               "signature value does not verify with the embedded certificate: broken signature")
    # XAdES SigningCertificate
    if not s.signing_cert_digests:
        c.fail(prefix + "certificate.signing_certificate", "xades:SigningCertificate yok",
               "xades:SigningCertificate is missing")
    else:
        der = s.certs[0]
        matched = False
        for alg, value in s.signing_cert_digests:
            if alg in DIGEST_ALGS and hashlib.new(DIGEST_ALGS[alg], der).digest() == value:
                matched = True
        if matched:
            c.ok(prefix + "certificate.signing_certificate", "SigningCertificate özeti doğru",
                 "SigningCertificate digest matches the embedded certificate")
        else:
            c.fail(prefix + "certificate.signing_certificate",
                   "SigningCertificate özeti gömülü sertifikaya uymuyor",
                   "SigningCertificate digest does not match the embedded certificate")
    return cert


def _check_certificate(c: _Checks, cert: x509.Certificate, s: _Sig, trust: TrustSettings, prefix: str) -> None:
    try:
        with warnings.catch_warnings():  # cryptography warns on malformed names; the finding says it
            warnings.simplefilter("ignore")
            _check_certificate_fields(c, cert, s, trust, prefix)
    except Exception as exc:  # noqa: BLE001 - cryptography parses fields lazily; damage shows up here
        c.fail(prefix + "certificate.parse", f"Gömülü sertifika bozuk: {exc}: güvenilmeyen sertifika",
               f"the embedded certificate is damaged: {exc}: untrusted certificate")


def _check_certificate_fields(c: _Checks, cert: x509.Certificate, s: _Sig, trust: TrustSettings,
                              prefix: str) -> None:
    when = s.signing_time
    if when is None:
        c.fail(prefix + "signature.structure", "xades:SigningTime yok", "xades:SigningTime is missing")
    if trust.check_time and when is not None:
        if _valid_at(cert, when):
            c.ok(prefix + "certificate.validity", "Sertifika imza zamanında geçerli",
                 "certificate valid at signing time")
        else:
            c.fail(prefix + "certificate.validity",
                   f"Sertifika imza zamanında ({when.isoformat()}) geçerli değil: güvenilmeyen sertifika",
                   f"certificate not valid at the signing time {when.isoformat()}: untrusted certificate")
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        ku_ok = ku.digital_signature or ku.content_commitment
    except x509.ExtensionNotFound:
        ku_ok = True  # no restriction
    if ku_ok:
        c.ok(prefix + "certificate.key_usage", "Anahtar kullanımı uygun", "key usage allows signing")
    else:
        c.fail(prefix + "certificate.key_usage", "Sertifikanın anahtar kullanımı imzaya izin vermiyor",
               "certificate key usage allows neither digitalSignature nor nonRepudiation")
    pool: list[x509.Certificate] = list(trust.intermediates)
    for der in s.certs[1:]:
        try:
            pool.append(x509.load_der_x509_certificate(der))
        except ValueError:
            pass
    ok, why = _build_chain(cert, pool, trust.trusted_roots, when if trust.check_time else None)
    if ok:
        c.ok(prefix + "certificate.trust", "Sertifika zinciri güvenilir köke ulaşıyor",
             "certificate chains to a configured root")
    else:
        c.fail(prefix + "certificate.trust", f"Güvenilmeyen sertifika: yapılandırılmış köke zincir yok ({why})",
               f"untrusted certificate: no chain to a configured root ({why})")


# --------------------------------------------------------------------------- one file

Opener = Callable[[], BinaryIO]
# threads canonicalizing entry chunks (libxml2 parses and canonicalizes without the GIL);
# _CHUNKED = False forces the general streaming pass (the benchmark compares both)
_CHUNKED = True
_WORKERS = 2 if (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) >= 2 else 0


class _MultiHash:
    def __init__(self, names: Iterable[str]) -> None:
        self.h = {n: hashlib.new(n) for n in names}

    def update(self, b: bytes | memoryview) -> None:
        for h in self.h.values():
            h.update(b)

    def digests(self) -> dict[str, bytes]:
        return {n: h.digest() for n, h in self.h.items()}


def _opener_of(source: Path | Opener) -> Opener:
    if isinstance(source, (str, Path)):
        p = Path(source)
        return lambda: p.open("rb")
    return source


def _on_signature(el: Any) -> _Sig | _Bad:
    try:
        return _parse_signature(el, el)
    except _Bad as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - hostile input must give a verdict, not a crash
        return _Bad("signature.structure", f"İmza okunamadı: {exc}", f"signature cannot be read: {exc}")


def _run_pass(opener: Opener, digests: Iterable[str], exclusive: bool, prefixes: Sequence[str]
              ) -> tuple[dict[str, bytes], Any]:
    digests = tuple(digests)
    if _CHUNKED and not exclusive and not prefixes:
        # the e-Defter norm: ledgers take the chunked path (parallel, ~2x less CPU); any
        # document it does not fit is done again by the general streaming pass below
        mh = _MultiHash(digests)
        with opener() as fh:
            res = chunked_enveloped_c14n(fh, mh.update, on_signature=_on_signature, workers=_WORKERS)
        if res is not None:
            return mh.digests(), res
    mh = _MultiHash(digests)
    with opener() as fh:
        res = stream_enveloped_c14n(fh, mh.update, exclusive=exclusive, inclusive_prefixes=prefixes,
                                    on_signature=_on_signature)
    return mh.digests(), res


def _doc_ref_params(s: _Sig) -> tuple[str, bool, list[str]]:
    """(digest name, exclusive, InclusiveNamespaces prefixes) the document reference declares."""
    for r in s.refs:
        if r.type != TYPE_SIGNED_PROPERTIES and r.uri == "":
            exclusive = any(C14N_ALGS.get(t, (False, False))[0] for t in r.transforms)
            return DIGEST_ALGS.get(r.digest_alg, "sha256"), exclusive, r.inclusive_prefixes
    return "sha256", False, []


def _name_str(name: EDefterName | str) -> str:
    return name.filename if isinstance(name, EDefterName) else str(name)


def verify_file(
    source: Path | Opener,
    *,
    name: EDefterName | str,
    trust: TrustSettings,
    ledger_signature_value: str | None = None,
    taxpayer_berat: SignedContent | FileVerdict | None = None,
) -> FileVerdict:
    """Verify one file; never raises for bad input (any failure becomes a check)."""
    fname = _name_str(name)
    parsed = name if isinstance(name, EDefterName) else try_parse_name(fname)
    c = _Checks()
    try:
        return _verify_file(source, fname, parsed, trust, c, ledger_signature_value, taxpayer_berat)
    except Exception as exc:  # noqa: BLE001 - any failure is a verdict
        c.fail("internal", f"Doğrulama tamamlanamadı: {type(exc).__name__}: {exc}",
               f"verification could not complete: {type(exc).__name__}: {exc}")
        return FileVerdict(fname, False, tuple(c.items))


def _verify_file(source: Path | Opener, fname: str, parsed: EDefterName | None, trust: TrustSettings,
                 c: _Checks, ledger_sv: str | None, taxpayer_berat: SignedContent | FileVerdict | None
                 ) -> FileVerdict:
    opener = _opener_of(source)
    try:
        digests, res = _run_pass(opener, ("sha256",), False, [])
    except etree.XMLSyntaxError as exc:
        c.fail("parse", f"XML okunamadı: {exc}", f"XML is not well-formed: {exc}")
        return FileVerdict(fname, False, tuple(c.items))
    s = res.signature
    if res.signature_count == 0 or s is None:
        c.fail("signature.present", "ds:Signature yok: dosya imzasız", "no ds:Signature: the file is not signed")
        return FileVerdict(fname, False, tuple(c.items))
    if isinstance(s, _Bad):
        c.fail(s.check, s.tr, s.en)
        return FileVerdict(fname, False, tuple(c.items))
    c.ok("signature.present", "İmza var", "signature present")
    if res.signature_count > 1:
        c.fail("signature.multiple",
               f"{res.signature_count} ds:Signature öğesi var; GİB dosya başına tek imza bekler",
               f"{res.signature_count} ds:Signature elements; GİB expects exactly one per file")
    if not res.signature_parent_is_root or (res.content_after_signature and res.signature_count == 1):
        c.fail("signature.misplaced", "ds:Signature kök öğenin son çocuğu değil",
               "ds:Signature is not the last child of the root element")
    dname, exclusive, prefixes = _doc_ref_params(s)
    if res.signature_count > 1:
        # several enveloped signatures: each one is evaluated in a tree (see _verify_signatures)
        got = _verify_signatures(opener, c, trust)
        if got is None:
            return FileVerdict(fname, False, tuple(c.items))
        cert, digests, sig_verdicts = got
    else:
        cert, sig_verdicts = None, ()
    # the first pass assumed inclusive C14N + SHA-256, the e-Defter norm; otherwise a second pass
    if res.signature_count > 1:
        pass
    elif res.complex_namespaces or exclusive or dname != "sha256":
        need_tree = res.complex_namespaces
        if not need_tree:
            digests, res2 = _run_pass(opener, (dname,), exclusive, prefixes)
            need_tree = res2.complex_namespaces
        if need_tree:
            with opener() as fh:
                data = fh.read(TREE_FALLBACK_MAX_BYTES + 1)
            if len(data) > TREE_FALLBACK_MAX_BYTES:
                c.fail("signature.unsupported",
                       "Ad alanı düzeni akışlı doğrulamaya uygun değil ve dosya ağaç olarak doğrulanamayacak kadar büyük",
                       "namespace layout not supported by streaming C14N and the file is too large for tree C14N")
                return FileVerdict(fname, False, tuple(c.items))
            digests = {dname: hashlib.new(dname, tree_enveloped_c14n(
                data, exclusive=exclusive, inclusive_prefixes=prefixes)).digest()}
    if res.signature_count <= 1:
        start = len(c.items)
        cert = _check_signature_core(c, s, trust, doc_digest=digests, prefix="")
        if cert is not None:
            _check_certificate(c, cert, s, trust, "")
        sig_verdicts = (SignatureVerdict(1, s.sig_id, _classify(c.items[start:]), tuple(c.items[start:])),)
    copied = res.root_signature_values[0] if res.root_signature_values else None
    is_berat = parsed.kind.is_berat if parsed is not None else (res.root_tag or "").endswith("}berat")
    if is_berat:
        if copied is None:
            c.fail("berat.ledger_signature_value", "Beratta defterin ds:SignatureValue kopyası yok",
                   "the berat holds no copy of its ledger's ds:SignatureValue")
        elif ledger_sv is not None:
            if copied == "".join(ledger_sv.split()):
                c.ok("berat.ledger_signature_value", "Berattaki imza değeri defterinkiyle aynı",
                     "the berat's copied SignatureValue equals the ledger's")
            else:
                c.fail("berat.ledger_signature_value",
                       "Berattaki imza değeri defterin imza değeriyle aynı değil (Çapraz Doğrulama Kontrolü Hatalıdır)",
                       "the berat's copied SignatureValue differs from the ledger's")
    signed = SignedContent(s.signed_info_c14n, s.signature_value, digests.get(dname, b""))
    is_gib = parsed.gib if parsed is not None else bool(s.counter)
    if is_gib:
        _check_gib(c, s, trust, taxpayer_berat, signed)
    return FileVerdict(fname, c.verdict_ok(), tuple(c.items), s.signature_value_b64, copied, signed, sig_verdicts)


# --------------------------------------------------------------------------- several signatures

def _top_signatures(root: Any) -> list[Any]:
    return [el for el in root.iter(_DS + "Signature")
            if not any(a.tag == _DS + "Signature" for a in el.iterancestors())]


def _c14n_without(data: bytes, drop: set[int], exclusive: bool, prefixes: Sequence[str]) -> bytes:
    """C14N of the document without the top-level signatures numbered ``drop`` (0-based)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    root = etree.fromstring(data, parser)
    sigs = _top_signatures(root)
    for i in sorted(drop, reverse=True):
        _remove_keep_tail(sigs[i])
    return etree.tostring(root.getroottree(), method="c14n", exclusive=exclusive, with_comments=False,
                          inclusive_ns_prefixes=list(prefixes) or None)


def _verify_signatures(opener: Opener, c: _Checks, trust: TrustSettings
                       ) -> tuple[x509.Certificate | None, dict[str, bytes], tuple[SignatureVerdict, ...]] | None:
    """Evaluate every top-level ds:Signature of a file that carries several.

    Signature i's enveloped-signature transform removes only itself, so its
    reference digest is checked against the document without it (all other
    signatures in place). When that fails but the digest matches the document
    without it *and every later signature*, the later signature(s) were appended
    after i was made and the content it signed is intact: ``signature.appended``
    (a warning), not "the document changed after signing". Done in a tree: files
    with several signatures are not the e-Defter norm; past ``TREE_FALLBACK_MAX_BYTES``
    the file is reported as unsupported. Returns (first signature's certificate,
    first signature's document digests, per-signature verdicts), or None when the
    file is too large.
    """
    with opener() as fh:
        data = fh.read(TREE_FALLBACK_MAX_BYTES + 1)
    if len(data) > TREE_FALLBACK_MAX_BYTES:
        c.fail("signature.unsupported",
               "Birden çok imzalı dosya ağaç olarak doğrulanamayacak kadar büyük",
               "a file with several signatures is too large to verify as one tree")
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    root = etree.fromstring(data, parser)
    sigs = [_on_signature(el) for el in _top_signatures(root)]
    n = len(sigs)
    first_cert: x509.Certificate | None = None
    first_digests: dict[str, bytes] = {}
    verdicts: list[SignatureVerdict] = []
    for i, s in enumerate(sigs):
        sub = _Checks()
        label_tr, label_en = f"{i + 1}/{n}. imza", f"signature {i + 1} of {n}"
        cert = None
        if isinstance(s, _Bad):
            sub.fail(s.check, s.tr, s.en)
            sig_id = None
        else:
            sig_id = s.sig_id
            dname, exclusive, prefixes = _doc_ref_params(s)
            digests = {dname: hashlib.new(dname, _c14n_without(data, {i}, exclusive, prefixes)).digest()}
            cert = _check_signature_core(sub, s, trust, doc_digest=digests, prefix="")
            failed_ref = [k for k, x in enumerate(sub.items) if x.check == "signature.reference_digest" and not x.ok]
            main = [r for r in s.refs if r.type != TYPE_SIGNED_PROPERTIES and r.uri == ""]
            # the document as it was when this signature was made: without the later signatures
            # (appended after it), or without every signature (signatures added side by side)
            candidates = [set(range(i, n))] if i < n - 1 else []
            if i > 0:
                candidates.append(set(range(n)))
            for drop in candidates if failed_ref and main else ():
                before = hashlib.new(dname, _c14n_without(data, drop, exclusive, prefixes)).digest()
                if before != main[0].digest_value:
                    continue
                others = ", ".join(str(j + 1) for j in sorted(drop - {i}))
                sub.items[failed_ref[0]] = CheckResult(
                    "signature.appended",
                    False,
                    f"Bu imza atıldıktan sonra başka imza eklenmiş ({others}. imza); imzalanan içerik değişmemiş "
                    "(özet, sonradan eklenen imza(lar) olmadan belgeyle eşleşiyor)",
                    f"another signature was appended after this one was made (signature {others}); the signed "
                    "content is intact (the digest matches the document without the appended signature(s))",
                    Severity.WARNING,
                )
                break
            if cert is not None:
                _check_certificate(sub, cert, s, trust, "")
            if i == 0:
                first_cert, first_digests = cert, digests
        items = tuple(
            CheckResult(x.check, x.ok, f"{label_tr}: {x.message_tr}", f"{label_en}: {x.message_en}", x.severity)
            for x in sub.items
        )
        c.items.extend(items)
        verdicts.append(SignatureVerdict(i + 1, sig_id, _classify(sub.items), items))
    return first_cert, first_digests, tuple(verdicts)


def _check_gib(c: _Checks, s: _Sig, trust: TrustSettings, local: SignedContent | FileVerdict | None,
               signed: SignedContent) -> None:
    if isinstance(local, FileVerdict):
        local = local.signed
    if local is not None:
        if (local.signed_info_c14n, local.signature_value, local.document_digest) == (
                signed.signed_info_c14n, signed.signature_value, signed.document_digest):
            c.ok("gib.same_content", "GİB beratı yerel beratla aynı imzalı içeriği taşıyor",
                 "the GİB berat carries the same signed content as the local berat")
        else:
            c.fail("gib.same_content", "GİB beratındaki imzalı içerik yerel beratla aynı değil",
                   "the GİB berat's signed content differs from the local berat")
    if not s.counter:
        c.fail("gib.countersignature", "GİB karşı imzası (xades:CounterSignature) yok",
               "no GİB counter-signature (xades:CounterSignature)")
        return
    # the counter-signature must sign this signature's own SignatureValue element
    target = f"#{s.signature_value_id}" if s.signature_value_id else None
    sub = _Checks()
    cert = _check_signature_core(sub, s.counter[0], trust, doc_digest=None, prefix="gib.",
                                 signed_target_uri=target)
    if cert is not None:
        _check_certificate(sub, cert, s.counter[0], trust, "gib.")
    bad = [x for x in sub.items if not x.ok and x.severity is Severity.ERROR]
    if bad:
        c.fail("gib.countersignature", "GİB karşı imzası geçersiz: " + "; ".join(x.message_tr for x in bad),
               "GİB counter-signature invalid: " + "; ".join(x.message_en for x in bad))
    else:
        c.ok("gib.countersignature", "GİB karşı imzası geçerli", "GİB counter-signature valid")
    if cert is not None:
        der = cert.public_bytes(_DER)
        if any(g.public_bytes(_DER) == der for g in trust.gib_certs):
            c.ok("gib.certificate", "Karşı imza yapılandırılmış GİB sertifikasıyla atılmış",
                 "counter-signature made with a configured GİB certificate")
        else:
            c.fail("gib.certificate", "Karşı imza yapılandırılmış bir GİB sertifikasıyla atılmamış",
                   "counter-signature not made with a configured GİB certificate")


# --------------------------------------------------------------------------- month and plug-in

def _pair_key(n: EDefterName) -> tuple[Any, ...]:
    return (n.taxpayer_id, n.period, n.part, n.branch)


def verify_month(files: Sequence[tuple[EDefterName, Opener | Path]], trust: TrustSettings) -> list[FileVerdict]:
    """Verify every file and the chain between them (ledger -> berat -> GİB berat)."""
    ledgers: dict[tuple[Any, ...], FileVerdict] = {}
    berats: dict[tuple[Any, ...], FileVerdict] = {}
    out: list[FileVerdict] = []
    order = sorted(files, key=lambda f: (f[0].kind.is_berat, f[0].gib))
    berat_of = {FileKind.YB: FileKind.Y, FileKind.KB: FileKind.K}
    for n, opener in order:
        sv = None
        local = None
        if n.kind.is_berat and not n.gib:
            led = ledgers.get((*_pair_key(n), berat_of.get(n.kind)))
            sv = led.signature_value_b64 if led is not None else None
        if n.gib:
            local = berats.get((*_pair_key(n), n.kind))
        v = verify_file(opener, name=n, trust=trust, ledger_signature_value=sv, taxpayer_berat=local)
        if n.kind.is_ledger:
            ledgers[(*_pair_key(n), n.kind)] = v
        elif n.kind.is_berat and not n.gib:
            berats[(*_pair_key(n), n.kind)] = v
        out.append(v)
    return out


def month_problems(files: Sequence[tuple[EDefterName, Opener | Path]], trust: TrustSettings) -> list[Problem]:
    return [p for v in verify_month(files, trust) for p in v.problems()]


def crypto_check(trust: TrustSettings) -> Callable[[EDefterName, Opener], list[Problem]]:
    """A per-file check for ``validate_month(extra_file_checks=[...])``.

    Each file is verified on its own (signature, XAdES, certificate, GİB
    counter-signature). The check also remembers the taxpayer-signed content of
    the berats it has seen, so a GİB berat and its local berat are compared
    whichever comes first (the finding is reported with the second one). The
    berat's copied SignatureValue vs its ledger is checked by ``validate_month``
    itself; ``verify_month`` does the whole chain in one call.
    """
    local: dict[tuple[Any, ...], tuple[str, SignedContent]] = {}
    gib: dict[tuple[Any, ...], tuple[str, SignedContent]] = {}

    def check(name: EDefterName, opener: Opener) -> list[Problem]:
        key = (*_pair_key(name), name.kind)
        taxpayer = local[key][1] if name.gib and key in local else None
        v = verify_file(opener, name=name, trust=trust, taxpayer_berat=taxpayer)
        problems = v.problems()
        if name.kind.is_berat and v.signed is not None:
            if name.gib:
                gib[key] = (name.filename, v.signed)
            else:
                local[key] = (name.filename, v.signed)
                other = gib.get(key)
                if other is not None and other[1] != v.signed:
                    problems.append(Problem(
                        code="crypto.gib.same_content", files=(other[0], name.filename),
                        message_tr="GİB beratındaki imzalı içerik yerel beratla aynı değil",
                        message_en="the GİB berat's signed content differs from the local berat",
                    ))
        return problems

    return check


def verify_bytes(data: bytes, *, name: str, trust: TrustSettings, **kw: Any) -> FileVerdict:
    """Convenience for tests and small files."""
    return verify_file(lambda: io.BytesIO(data), name=name, trust=trust, **kw)
