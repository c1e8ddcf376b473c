"""Test helpers for the verifier: an independent re-signer (lxml tree + cryptography)
and xmlsec1 invocation, so tests can produce files the sample generator does not
(SHA-1, exclusive C14N, expired certificates, foreign counter-signatures)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
DIGESTS = {"sha256": "http://www.w3.org/2001/04/xmlenc#sha256", "sha1": "http://www.w3.org/2000/09/xmldsig#sha1"}
SIGS = {
    "sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
}
HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}

XMLSEC_ID_ARGS = [
    "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
    "--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:SignatureValue",
]


def xmlsec_valid(xmlsec1: str, path: Path) -> bool:
    """xmlsec1's verdict on the signature itself (certificate trust not checked)."""
    proc = subprocess.run([xmlsec1, "--verify", "--insecure", *XMLSEC_ID_ARGS, str(path)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode == 0


def issue_cert(ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, *, cn: str,
               not_before: dt.datetime, not_after: dt.datetime,
               key_usage_sign: bool = True) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=key_usage_sign, content_commitment=key_usage_sign,
                key_encipherment=not key_usage_sign, data_encipherment=False, key_agreement=False,
                key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _sub(parent: etree._Element, ns: str, local: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{local}", attrs)
    if text is not None:
        el.text = text
    return el


def resign(data: bytes, key: rsa.RSAPrivateKey, cert: x509.Certificate, *, digest: str = "sha256",
           sig_hash: str = "sha256", c14n: str = C14N, signing_time: dt.datetime | None = None,
           doc_ref_uri: str = "", sign_keyinfo: bool = False) -> bytes:
    """Strip the first ds:Signature of ``data`` and sign the document again (XAdES-BES shaped)."""
    parser = etree.XMLParser(resolve_entities=False, remove_blank_text=False)
    root = etree.fromstring(data, parser)
    old = next(iter(root.iter(f"{{{DS}}}Signature")), None)
    if old is not None:
        old.getparent().remove(old)
    exclusive = c14n == EXC_C14N
    doc_digest = hashlib.new(digest, etree.tostring(root.getroottree(), method="c14n", exclusive=exclusive)).digest()
    sig = _sub(root, DS, "Signature", Id="S1")
    si = _sub(sig, DS, "SignedInfo")
    _sub(si, DS, "CanonicalizationMethod", Algorithm=c14n)
    _sub(si, DS, "SignatureMethod", Algorithm=SIGS[sig_hash])
    r1 = _sub(si, DS, "Reference", URI=doc_ref_uri)
    trs = _sub(r1, DS, "Transforms")
    _sub(trs, DS, "Transform", Algorithm=ENVELOPED)
    _sub(trs, DS, "Transform", Algorithm=c14n)
    _sub(r1, DS, "DigestMethod", Algorithm=DIGESTS[digest])
    _sub(r1, DS, "DigestValue", base64.b64encode(doc_digest).decode())
    r2 = _sub(si, DS, "Reference", URI="#S1-SP", Type="http://uri.etsi.org/01903#SignedProperties")
    trs2 = _sub(r2, DS, "Transforms")
    _sub(trs2, DS, "Transform", Algorithm=c14n)
    _sub(r2, DS, "DigestMethod", Algorithm=DIGESTS[digest])
    dv2 = _sub(r2, DS, "DigestValue")
    dv3 = None
    if sign_keyinfo:  # some signers also sign KeyInfo (one more same-document reference)
        r3 = _sub(si, DS, "Reference", URI="#S1-KI")
        _sub(r3, DS, "DigestMethod", Algorithm=DIGESTS[digest])
        dv3 = _sub(r3, DS, "DigestValue")
    sv = _sub(sig, DS, "SignatureValue", Id="S1-SV")
    ki = _sub(sig, DS, "KeyInfo", Id="S1-KI") if sign_keyinfo else _sub(sig, DS, "KeyInfo")
    _sub(_sub(ki, DS, "X509Data"), DS, "X509Certificate", base64.b64encode(cert.public_bytes(Encoding.DER)).decode())
    obj = _sub(sig, DS, "Object")
    qp = _sub(obj, XADES, "QualifyingProperties", Target="#S1")
    sp = _sub(qp, XADES, "SignedProperties", Id="S1-SP")
    ssp = _sub(sp, XADES, "SignedSignatureProperties")
    when = signing_time or dt.datetime(2019, 10, 5, 10, 0, tzinfo=dt.UTC)
    _sub(ssp, XADES, "SigningTime", when.isoformat(timespec="seconds"))
    cd = _sub(_sub(_sub(ssp, XADES, "SigningCertificate"), XADES, "Cert"), XADES, "CertDigest")
    _sub(cd, DS, "DigestMethod", Algorithm=DIGESTS[digest])
    _sub(cd, DS, "DigestValue", base64.b64encode(
        hashlib.new(digest, cert.public_bytes(Encoding.DER)).digest()).decode())
    dv2.text = base64.b64encode(hashlib.new(digest, etree.tostring(sp, method="c14n", exclusive=exclusive)).digest()
                                ).decode()
    if dv3 is not None:
        dv3.text = base64.b64encode(hashlib.new(digest, etree.tostring(ki, method="c14n", exclusive=exclusive)
                                                ).digest()).decode()
    sv.text = base64.b64encode(key.sign(etree.tostring(si, method="c14n", exclusive=exclusive), padding.PKCS1v15(),
                                        HASHES[sig_hash]())).decode()
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
