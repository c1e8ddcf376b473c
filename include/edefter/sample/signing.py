"""XMLDSig + XAdES-BES signatures for sample files, and GİB's counter-signature.

Built with lxml (tree for the small Signature element, libxml2's C14N for
SignedInfo/SignedProperties) and cryptography (RSA PKCS#1 v1.5 with SHA-256,
which is deterministic: same key + same input -> same signature bytes).
signxml is not used: it wants the whole document as a tree, which a 200 MB
ledger must not become, and it has no XAdES counter-signature.

Canonical forms are computed inside a stand-in root element that carries the
very same namespace declarations as the real root (see writer.ROOT_NSMAP), so
inclusive C14N sees the same in-scope namespaces a verifier will see in the
real file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from .pki import CertKey
from .writer import NS, ROOT_NSMAP

__all__ = [
    "ALG_C14N",
    "ALG_ENVELOPED",
    "ALG_RSA_SHA256",
    "ALG_SHA256",
    "TYPE_SIGNED_PROPERTIES",
    "TYPE_COUNTERSIGNED",
    "build_enveloped_signature",
    "add_counter_signature",
    "SignatureParts",
]

ALG_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ALG_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ALG_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
TYPE_SIGNED_PROPERTIES = "http://uri.etsi.org/01903#SignedProperties"
TYPE_COUNTERSIGNED = "http://uri.etsi.org/01903#CountersignedSignature"

_DS = "{" + NS["ds"] + "}"
_XADES = "{" + NS["xades"] + "}"


def _q(qname: str) -> str:
    prefix, local = qname.split(":", 1)
    return f"{{{NS[prefix]}}}{local}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sub(parent: etree._Element, qname: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, _q(qname), {k: v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _c14n(el: etree._Element) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=False, with_comments=False)


def _xades_time(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


@dataclass(frozen=True)
class SignatureParts:
    """What callers need from a finished signature."""

    xml: bytes
    signature_value_b64: str
    signature_value_id: str


def _reference(signed_info: etree._Element, uri: str, transforms: list[str], ref_type: str | None,
               ref_id: str | None) -> etree._Element:
    attrs: dict[str, str] = {}
    if ref_id:
        attrs["Id"] = ref_id
    if ref_type:
        attrs["Type"] = ref_type
    attrs["URI"] = uri
    ref = _sub(signed_info, "ds:Reference", **attrs)
    if transforms:
        tr = _sub(ref, "ds:Transforms")
        for alg in transforms:
            _sub(tr, "ds:Transform", Algorithm=alg)
    _sub(ref, "ds:DigestMethod", Algorithm=ALG_SHA256)
    _sub(ref, "ds:DigestValue")
    return ref


def _fill_signature(parent: etree._Element, *, sig_id: str, signer: CertKey, signing_time: dt.datetime,
                    main_ref: tuple[str, list[str], str | None, bytes | None],
                    main_target: etree._Element | None) -> etree._Element:
    """Append a complete ds:Signature (XAdES-BES) under ``parent`` and sign it.

    main_ref = (uri, transforms, type, precomputed digest). If the digest is
    None it is computed as the C14N of ``main_target`` (same-document #Id).
    """
    sig = _sub(parent, "ds:Signature", Id=sig_id)
    si = _sub(sig, "ds:SignedInfo")
    _sub(si, "ds:CanonicalizationMethod", Algorithm=ALG_C14N)
    _sub(si, "ds:SignatureMethod", Algorithm=ALG_RSA_SHA256)
    uri, transforms, ref_type, digest = main_ref
    ref_main = _reference(si, uri, transforms, ref_type, f"{sig_id}-Reference-Document")
    sp_id = f"{sig_id}-SignedProperties"
    ref_sp = _reference(si, f"#{sp_id}", [ALG_C14N], TYPE_SIGNED_PROPERTIES, f"{sig_id}-Reference-SignedProperties")
    sv = _sub(sig, "ds:SignatureValue", Id=f"{sig_id}-SignatureValue")
    ki = _sub(sig, "ds:KeyInfo")
    x509data = _sub(ki, "ds:X509Data")
    _sub(x509data, "ds:X509Certificate", _b64(signer.cert_der))
    obj = _sub(sig, "ds:Object")
    qp = _sub(obj, "xades:QualifyingProperties", Target=f"#{sig_id}")
    sp = _sub(qp, "xades:SignedProperties", Id=sp_id)
    ssp = _sub(sp, "xades:SignedSignatureProperties")
    _sub(ssp, "xades:SigningTime", _xades_time(signing_time))
    sc = _sub(ssp, "xades:SigningCertificate")
    cert = _sub(sc, "xades:Cert")
    cd = _sub(cert, "xades:CertDigest")
    _sub(cd, "ds:DigestMethod", Algorithm=ALG_SHA256)
    _sub(cd, "ds:DigestValue", _b64(signer.cert_sha256))
    iss = _sub(cert, "xades:IssuerSerial")
    _sub(iss, "ds:X509IssuerName", signer.issuer_name)
    _sub(iss, "ds:X509SerialNumber", str(signer.serial_number))
    sdop = _sub(sp, "xades:SignedDataObjectProperties")
    dof = _sub(sdop, "xades:DataObjectFormat", ObjectReference=f"#{sig_id}-Reference-Document")
    _sub(dof, "xades:MimeType", "text/xml")

    if digest is None:
        assert main_target is not None
        digest = hashlib.sha256(_c14n(main_target)).digest()
    ref_main.find(_DS + "DigestValue").text = _b64(digest)  # type: ignore[union-attr]
    ref_sp.find(_DS + "DigestValue").text = _b64(hashlib.sha256(_c14n(sp)).digest())  # type: ignore[union-attr]
    signature = signer.key.sign(_c14n(si), padding.PKCS1v15(), hashes.SHA256())
    sv.text = _b64(signature)
    return sig


def _slice(serialized: bytes, start_marker: bytes, end_marker: bytes) -> bytes:
    start = serialized.index(start_marker)
    end = serialized.rindex(end_marker) + len(end_marker)
    return serialized[start:end]


def build_enveloped_signature(*, root_qname: str, doc_digest: bytes, signer: CertKey,
                              signing_time: dt.datetime, sig_id: str) -> SignatureParts:
    """The ds:Signature bytes to append as the root's last child.

    ``doc_digest`` is SHA-256 over the canonical document without the
    Signature (enveloped-signature transform of Reference URI="").
    """
    root = etree.Element(_q(root_qname), nsmap=ROOT_NSMAP)  # type: ignore[arg-type]
    sig = _fill_signature(
        root,
        sig_id=sig_id,
        signer=signer,
        signing_time=signing_time,
        main_ref=("", [ALG_ENVELOPED], None, doc_digest),
        main_target=None,
    )
    xml = _slice(etree.tostring(root, encoding="utf-8"), b"<ds:Signature", b"</ds:Signature>")
    sv = sig.find(_DS + "SignatureValue")
    assert sv is not None and sv.text is not None
    return SignatureParts(xml, sv.text, sv.get("Id", ""))


def add_counter_signature(berat: bytes, *, signer: CertKey, signing_time: dt.datetime, sig_id: str) -> bytes:
    """GİB's seal over a taxpayer berat: returns the GIB- berat bytes.

    The counter-signature (xades:UnsignedProperties/UnsignedSignatureProperties/
    CounterSignature/ds:Signature) signs the berat's own ds:SignatureValue
    element (Reference URI="#<its Id>", Type CountersignedSignature). The new
    bytes are spliced in before </xades:QualifyingProperties>: everything else,
    including all signed content, stays byte-identical, so the taxpayer's
    signature still verifies.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
    root = etree.fromstring(berat, parser)
    outer = root[-1]
    if outer.tag != _DS + "Signature":
        raise ValueError("berat's last child is not ds:Signature")
    sv = outer.find(_DS + "SignatureValue")
    qp = outer.find(f"{_DS}Object/{_XADES}QualifyingProperties")
    if sv is None or qp is None or not sv.get("Id"):
        raise ValueError("berat signature lacks SignatureValue Id or QualifyingProperties")
    if qp.find(_XADES + "UnsignedProperties") is not None:
        raise ValueError("berat already has unsigned properties")
    up = _sub(qp, "xades:UnsignedProperties")
    usp = _sub(up, "xades:UnsignedSignatureProperties")
    cs = _sub(usp, "xades:CounterSignature")
    _fill_signature(
        cs,
        sig_id=sig_id,
        signer=signer,
        signing_time=signing_time,
        main_ref=(f"#{sv.get('Id')}", [ALG_C14N], TYPE_COUNTERSIGNED, None),
        main_target=sv,
    )
    piece = _slice(etree.tostring(root, encoding="utf-8"), b"<xades:UnsignedProperties>",
                   b"</xades:UnsignedProperties>")
    marker = b"</xades:QualifyingProperties>"
    at = berat.rindex(marker)
    return berat[:at] + piece + berat[at:]
