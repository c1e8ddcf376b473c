"""Streaming writer that emits XML directly in canonical (C14N 1.0) form.

Why: a ledger's enveloped signature has one Reference URI="" whose digest is
SHA-256 over the canonical form of the whole document minus the Signature.
Building a 200 MB document in memory to canonicalize it is what we must not
do, so the body is written *already canonical*: every namespace is declared
once on the root (so no descendant needs a declaration), attributes are
written in C14N order, no self-closing tags, C14N escaping. The bytes written
are then exactly the canonical bytes, hashed while they go to disk. The XML
declaration and the Signature element are the only bytes outside the hash
(C14N drops the declaration; the enveloped-signature transform drops the
Signature). Tests verify the result with xmlsec1, an independent C14N.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

__all__ = ["NS", "ROOT_NSMAP", "XML_DECLARATION", "CanonicalWriter", "root_start_tag", "escape_text"]

NS = {
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "edefter": "http://www.edefter.gov.tr",
    "gl-bus": "http://www.xbrl.org/int/gl/bus/2006-10-25",
    "gl-cor": "http://www.xbrl.org/int/gl/cor/2006-10-25",
    "gl-muc": "http://www.xbrl.org/int/gl/muc/2006-10-25",
    "iso4217": "http://www.xbrl.org/2003/iso4217",
    "iso639": "http://www.xbrl.org/2005/iso639",
    "link": "http://www.xbrl.org/2003/linkbase",
    "xades": "http://uri.etsi.org/01903/v1.3.2#",
    "xbrli": "http://www.xbrl.org/2003/instance",
    "xlink": "http://www.w3.org/1999/xlink",
}

# Namespaces declared on every generated root element (and only there).
ROOT_NSMAP = dict(sorted(NS.items()))

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def escape_text(s: str) -> str:
    """C14N text-node escaping."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def escape_attr(s: str) -> str:
    """C14N attribute-value escaping."""
    return (
        s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def _attr_key(name: str) -> tuple[str, str]:
    # C14N order: unqualified attributes first (empty namespace URI), then by URI, then local name.
    if ":" in name:
        prefix, local = name.split(":", 1)
        return (NS[prefix], local)
    return ("", name)


def format_attrs(attrs: dict[str, str] | None) -> str:
    if not attrs:
        return ""
    return "".join(f' {k}="{escape_attr(v)}"' for k, v in sorted(attrs.items(), key=lambda kv: _attr_key(kv[0])))


def root_start_tag(qname: str) -> str:
    decls = "".join(f' xmlns:{p}="{uri}"' for p, uri in ROOT_NSMAP.items())
    return f"<{qname}{decls}>"


class CanonicalWriter:
    """Write canonical XML to a binary file while hashing it (SHA-256).

    Buffered: small writes are joined in memory up to ``flush_at`` bytes, so
    memory stays bounded regardless of document size.
    """

    def __init__(self, fh: BinaryIO, *, flush_at: int = 1 << 20) -> None:
        self._fh = fh
        self._hash = hashlib.sha256()
        self._buf: list[str] = []
        self._buf_len = 0
        self._flush_at = flush_at
        self.bytes_written = 0

    def write(self, s: str) -> None:
        self._buf.append(s)
        self._buf_len += len(s)
        if self._buf_len >= self._flush_at:
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        data = "".join(self._buf).encode("utf-8")
        self._buf.clear()
        self._buf_len = 0
        self._hash.update(data)
        self._fh.write(data)
        self.bytes_written += len(data)

    def write_unhashed(self, data: bytes) -> None:
        """Bytes outside the signed canonical form (the Signature element)."""
        self.flush()
        self._fh.write(data)
        self.bytes_written += len(data)

    def digest_with_suffix(self, suffix: str) -> bytes:
        """SHA-256 of everything hashed so far plus ``suffix`` (the closing root tag)."""
        self.flush()
        h = self._hash.copy()
        h.update(suffix.encode("utf-8"))
        return h.digest()

    # Element helpers. Newlines between elements are plain text nodes and are
    # part of the canonical form like any other text.
    def start(self, qname: str, attrs: dict[str, str] | None = None) -> None:
        self.write(f"<{qname}{format_attrs(attrs)}>\n")

    def end(self, qname: str) -> None:
        self.write(f"</{qname}>\n")

    def leaf(self, qname: str, text: str, attrs: dict[str, str] | None = None) -> None:
        self.write(f"<{qname}{format_attrs(attrs)}>{escape_text(text)}</{qname}>\n")
