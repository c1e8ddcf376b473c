"""Property: what CanonicalWriter emits is already the C14N form (lxml/libxml2 agrees),
and the digest it computes is SHA-256 of that form. This is the trick that lets
200 MB ledgers be signed without building a tree."""

from __future__ import annotations

import hashlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from include.edefter.sample.writer import XML_DECLARATION, CanonicalWriter, root_start_tag

# Characters allowed in XML 1.0 text, biased toward the ones C14N escapes.
_xml_char = st.one_of(
    st.sampled_from(list("&<>\"'\r\n\t ]]>çğıöşüÇĞİÖŞÜ€")),
    st.characters(min_codepoint=0x20, max_codepoint=0xD7FF),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFD),
)
_text = st.text(_xml_char, max_size=30)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(st.tuples(_text, _text), min_size=0, max_size=6))
def test_written_bytes_equal_lxml_c14n(items: list[tuple[str, str]]) -> None:
    buf = io.BytesIO()
    buf.write(XML_DECLARATION)
    w = CanonicalWriter(buf, flush_at=7)  # tiny buffer: exercise flushing
    w.write(root_start_tag("edefter:defter") + "\n")
    w.start("xbrli:xbrl")
    for text, attr in items:
        w.leaf("gl-cor:detailComment", text, {"contextRef": attr, "decimals": "INF", "xlink:type": attr})
        w.leaf("gl-cor:entryComment", "", None)
    w.end("xbrli:xbrl")
    digest = w.digest_with_suffix("</edefter:defter>")
    w.write("</edefter:defter>")
    w.flush()
    data = buf.getvalue()
    body = data[len(XML_DECLARATION):]
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, remove_blank_text=False))
    canonical = etree.tostring(root.getroottree(), method="c14n", exclusive=False, with_comments=False)
    assert canonical == body
    assert hashlib.sha256(canonical).digest() == digest
    assert w.bytes_written == len(body)
