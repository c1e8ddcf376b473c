"""One-pass, bounded-memory canonicalization of an enveloped-signed XML document.

XMLDSig's enveloped signature with ``Reference URI=""`` digests the canonical
form (C14N 1.0, inclusive or exclusive) of the whole document minus the
``ds:Signature`` element, comments excluded. libxml2 (through lxml) canonicalizes
whole trees only, and a 200 MB ledger must not be built as a tree, so this module
streams the document with ``lxml.etree.iterparse`` and applies libxml2's C14N
piecewise:

* "flush" elements (by default XBRL GL ``entryHeader``/``entryDetail``: the bulk
  of a ledger) are canonicalized by libxml2 as soon as they end, then cleared;
* libxml2 canonicalizes a subtree as the apex of a document subset, i.e. it
  re-declares on its first tag every namespace in scope (inclusive) or every one
  listed (exclusive). We remove, on that first tag only, the declarations that
  the already-written ancestors rendered with the same value, which is exactly
  what C14N does inside a document (hand-written, ``_fix_first_tag``);
* ancestors of flushed elements ("opened" elements) are written by hand: their
  start tag comes from libxml2 C14N of a shallow copy (same fix-up), their text,
  tails, end tag and document-level PIs are escaped here per C14N 1.0;
* for inclusive C14N, a subtree written while no namespace was declared since
  the previous flush is canonicalized with libxml2's *exclusive* C14N and its
  (then all redundant) declarations removed: same bytes, about twice as fast;
* the enveloped ``ds:Signature`` is handed to a callback while it is still in
  its tree (its ``SignedInfo`` and ``#id`` references need their namespace
  context) and is written as nothing.

libxml2's subtree C14N mis-renders namespace declarations more than one level
below the apex (redundant ones repeated, spurious ``xmlns=""``); a subtree whose
output declares any namespace below its first tag is therefore redone by
whole-document C14N of a small stand-in document (exact, slower, rare in ledgers).
The fix-up is exact when no prefix is bound to two namespace URIs (or one URI to
two prefixes) and, for exclusive C14N, no default namespace is declared. When a
document breaks that, ``StreamResult.complex_namespaces`` is set and the caller
falls back to whole-tree C14N (``tree_digest``), which is size-capped.

``chunked_enveloped_c14n`` is the faster path for ledgers (inclusive C14N only):
the long run of ``entryHeader`` siblings is cut, right before entry start tags,
into chunks that libxml2 parses and canonicalizes whole (in a stand-in root
declaring the namespaces in scope, with exclusive C14N - 2.5x cheaper - made
equal to inclusive by a root that renders every namespace), in worker threads,
since libxml2 runs without the GIL; a kebir account larger than 1 MB has
its ``entryDetail`` run cut likewise. The markup around the run (the start of
the document, the closing tags and the Signature) goes through
``stream_enveloped_c14n`` as a small skeleton with a placeholder for the run.
Documents it does not model are declined (None) and done by the general pass.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from lxml import etree

__all__ = [
    "DS_NS",
    "DEFAULT_FLUSH_TAGS",
    "StreamResult",
    "chunked_enveloped_c14n",
    "escape_text",
    "stream_enveloped_c14n",
    "tree_enveloped_c14n",
]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
GL_COR = "http://www.xbrl.org/int/gl/cor/2006-10-25"
SIG_TAG = f"{{{DS_NS}}}Signature"
SV_TAG = f"{{{DS_NS}}}SignatureValue"
ENTRY_HEADER = f"{{{GL_COR}}}entryHeader"
ENTRY_DETAIL = f"{{{GL_COR}}}entryDetail"
DEFAULT_FLUSH_TAGS: tuple[str, ...] = (ENTRY_HEADER, ENTRY_DETAIL)
# A ledger (K) holds one entryHeader per account, which may carry tens of
# thousands of lines: past this many complete lines we write them one by one.
_DETAIL_BATCH = 256
_HEADER_BATCH = 32

_FIRST_TAG = re.compile(rb'<([^\s>]+)((?: [^\s=]+="[^"]*")*)>')
_ATTR = re.compile(rb' ([^\s=]+)="([^"]*)"')
_DECL = re.compile(rb' xmlns(?::([^\s="]+))?="([^"]*)"')


def escape_text(s: str) -> bytes:
    """C14N 1.0 text-node escaping."""
    return (
        s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")
    ).encode("utf-8")


def _qname(el: Any) -> bytes:
    local = etree.QName(el).localname
    return (f"{el.prefix}:{local}" if el.prefix else local).encode("utf-8")


@dataclass
class StreamResult:
    """What one pass learnt besides the canonical bytes (which went to ``write``)."""

    signature: Any = None  # whatever the callback returned for the enveloped Signature
    signature_count: int = 0  # ds:Signature elements not nested in another one
    signature_parent_is_root: bool = False
    content_after_signature: bool = False
    root_tag: str | None = None
    root_signature_values: list[str] = field(default_factory=list)  # berat's copied ds:SignatureValue
    complex_namespaces: bool = False


@dataclass
class _Open:
    elem: Any
    ctx: dict[bytes, bytes]  # prefix -> escaped URI rendered by this element and its ancestors
    pending: Any = None  # last written child whose tail is not written yet


class _Emitter:
    def __init__(self, write: Callable[[bytes], None], exclusive: bool, prefixes: Sequence[str]) -> None:
        self.write = write
        self.exclusive = exclusive
        self.prefixes = list(prefixes)
        self.opened: list[_Open] = []
        self.sig: Any = None
        self.sig_seen = False
        self.content_after_signature = False
        # A namespace was declared since the last flush: the subtrees written next may
        # declare namespaces themselves, so the exclusive-C14N shortcut is not used.
        self.ns_dirty = True
        self._tag_cache: dict[tuple[bytes, int, bool], tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]] = {}

    # -- C14N pieces -------------------------------------------------------
    def _c14n(self, el: Any, ctx: dict[bytes, bytes]) -> bytes:
        incl = self.prefixes
        if self.exclusive and ctx:
            incl = sorted({*self.prefixes, *(p.decode() for p in ctx if p)})
        return etree.tostring(
            el, method="c14n", exclusive=self.exclusive, with_comments=False,
            inclusive_ns_prefixes=incl or None,
        )

    def _fix_first_tag(self, raw: bytes, el: Any, ctx: dict[bytes, bytes]) -> tuple[bytes, int, dict[bytes, bytes]]:
        """Return (new first tag, end offset of the old one in raw, ctx after el)."""
        m = _FIRST_TAG.match(raw)
        if m is None:  # pragma: no cover - libxml2 C14N always starts with a tag
            raise ValueError("unexpected C14N output")
        old_tag = m.group(0)
        empty_default = False
        if ctx.get(b"") and not el.nsmap.get(None):
            empty_default = not self.exclusive or not etree.QName(el).namespace
        key = (old_tag, id(ctx), empty_default)
        hit = self._tag_cache.get(key)
        if hit is not None and hit[2] is ctx:
            return hit[0], m.end(), hit[1]
        decls: list[tuple[bytes, bytes]] = []
        others: list[bytes] = []
        for am in _ATTR.finditer(m.group(2)):
            name = am.group(1)
            if name == b"xmlns":
                decls.append((b"", am.group(2)))
            elif name.startswith(b"xmlns:"):
                decls.append((name[6:], am.group(2)))
            else:
                others.append(am.group(0))
        kept = [(p, v) for p, v in decls if ctx.get(p) != v]
        new_ctx = dict(ctx)
        new_ctx.update(decls)
        if empty_default and not any(p == b"" for p, _ in decls):
            kept.insert(0, (b"", b""))
            new_ctx[b""] = b""
        parts = [b"<", m.group(1)]
        for p, v in kept:
            parts.append(b' xmlns="' + v + b'"' if not p else b" xmlns:" + p + b'="' + v + b'"')
        parts.extend(others)
        parts.append(b">")
        tag = b"".join(parts)
        if len(self._tag_cache) > 4096:
            self._tag_cache.clear()
        self._tag_cache[key] = (tag, new_ctx, ctx)
        return tag, m.end(), new_ctx

    def _write_element(self, el: Any, ctx: dict[bytes, bytes]) -> None:
        if el is self.sig:
            return
        if not self.exclusive and not self.ns_dirty:
            fast = self._inclusive_via_exclusive(el, ctx)
            if fast is not None:
                self.write(fast)
                return
        raw = self._c14n(el, ctx)
        tag, end, _ = self._fix_first_tag(raw, el, ctx)
        if raw.find(b" xmlns", end) != -1:
            # A namespace declaration below the apex: libxml2's subtree C14N (lxml's fake
            # root document) re-renders redundant ones deeper than one level, and writes a
            # spurious xmlns="" under default namespaces. Rare in ledgers: take the exact path.
            self.write(self._c14n_wrapped(el, ctx))
            return
        self.write(tag)
        self.write(memoryview(raw)[end:])

    def _inclusive_via_exclusive(self, el: Any, ctx: dict[bytes, bytes]) -> bytes | None:
        """Inclusive in-document C14N of a subtree that declares no namespace itself.

        Inside the document such a subtree renders no namespace declaration at all
        (every namespace in scope was rendered by a written ancestor), so its inclusive
        C14N equals libxml2's exclusive C14N with the declarations removed - and
        exclusive C14N is about twice as fast, since inclusive C14N walks every
        namespace in scope (eleven in e-Defter) at every element. Each removed
        declaration is checked to sit inside a start tag and to match what the
        ancestors rendered; anything else returns None (the general path is used).
        """
        raw = etree.tostring(el, method="c14n", exclusive=True, with_comments=False)
        i = raw.find(b" xmlns")
        if i < 0:
            return raw
        pieces: list[bytes] = []
        last = 0
        while i >= 0:
            j = raw.rfind(b"<", last, i)
            if j < 0:
                return None
            outside = raw[j:i].split(b'"')
            if len(outside) % 2 == 0 or any(b">" in part for part in outside[0::2]):
                return None  # not between the attributes of a start tag
            m = _DECL.match(raw, i)
            if m is None or ctx.get(m.group(1) or b"") != m.group(2):
                return None
            pieces.append(raw[last:i])
            last = m.end()
            i = raw.find(b" xmlns", last)
        pieces.append(raw[last:])
        return b"".join(pieces)

    def _c14n_wrapped(self, el: Any, ctx: dict[bytes, bytes]) -> bytes:
        """C14N of ``el`` in its context via whole-document C14N of a small stand-in document.

        The stand-in root declares exactly what the written ancestors rendered, so
        whole-document C14N (which libxml2 gets right) renders ``el`` as in place.
        """
        # libxml2 writes namespace URIs unescaped in C14N output; escape them for re-parsing
        esc = {p: v.replace(b"&", b"&amp;").replace(b"<", b"&lt;") for p, v in ctx.items()}
        decls = b"".join(
            (b' xmlns="' + v + b'"') if not p else (b" xmlns:" + p + b'="' + v + b'"') for p, v in esc.items()
        )
        doc = b"<w" + decls + b">" + etree.tostring(el, with_tail=False) + b"</w>"
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
        wrapper = etree.fromstring(doc, parser)
        prefixes = self.prefixes
        if self.exclusive and ctx:
            prefixes = sorted({*self.prefixes, *(p.decode() for p in ctx if p)})
        out = etree.tostring(
            wrapper.getroottree(), method="c14n", exclusive=self.exclusive, with_comments=False,
            inclusive_ns_prefixes=prefixes or None,
        )
        m = _FIRST_TAG.match(out)
        assert m is not None and out.endswith(b"</w>")
        return out[m.end(): -len(b"</w>")]

    def _write_node(self, node: Any, ctx: dict[bytes, bytes]) -> None:
        if isinstance(node.tag, str):
            self._write_element(node, ctx)
        elif node.tag is etree.PI:
            self.write(_pi(node))
        # comments are not in the URI="" node-set; entities are never resolved

    def _write_tail(self, node: Any) -> None:
        if node.tail:
            self.write(escape_text(node.tail))

    # -- tree walking ------------------------------------------------------
    def _write_before(self, op: _Open, stop: Any) -> None:
        if op.pending is not None:
            self._write_tail(op.pending)
            op.elem.remove(op.pending)
            op.pending = None
        for child in list(op.elem):
            if child is stop:
                break
            if len(self.opened) == 1 and self.sig_seen and isinstance(child.tag, str) and child is not self.sig:
                self.content_after_signature = True
            self._write_node(child, op.ctx)
            self._write_tail(child)
            op.elem.remove(child)

    def _open(self, el: Any) -> None:
        if self.opened:
            parent = self.opened[-1]
            self._write_before(parent, el)
            ctx = parent.ctx
            if len(self.opened) == 1 and self.sig_seen and el is not self.sig:
                self.content_after_signature = True
        else:
            ctx = {}
            for prev in reversed(list(el.itersiblings(preceding=True))):
                if prev.tag is etree.PI:
                    self.write(_pi(prev) + b"\n")
        shallow = etree.Element(el.tag, attrib=dict(el.attrib), nsmap=el.nsmap)
        raw = self._c14n(shallow, ctx)
        tag, _, new_ctx = self._fix_first_tag(raw, el, ctx)
        self.write(tag)
        if el.text:
            self.write(escape_text(el.text))
        self.opened.append(_Open(el, new_ctx))

    def _close_to(self, depth: int) -> None:
        while len(self.opened) > depth:
            op = self.opened[-1]
            self._write_before(op, None)
            self.write(b"</" + _qname(op.elem) + b">")
            self.opened.pop()
            if self.opened:
                self.opened[-1].pending = op.elem

    def flush(self, el: Any, path: list[Any]) -> None:
        """``el`` has just ended; ``path`` is its ancestors, root first."""
        i = 0
        while i < len(self.opened) and i < len(path) and self.opened[i].elem is path[i]:
            i += 1
        if i < len(self.opened) and self.opened[i].elem is el:
            self._close_to(i)
            self.ns_dirty = False
            return
        self._close_to(i)
        for a in path[i:]:
            self._open(a)
        op = self.opened[-1]
        self._write_before(op, el)
        if len(self.opened) == 1 and self.sig_seen and el is not self.sig:
            self.content_after_signature = True
        self._write_element(el, op.ctx)
        # el's tail may still be growing in the parser: write it later
        if el is not self.sig:
            el.clear(keep_tail=True)
        op.pending = el
        self.ns_dirty = False

    def finish(self, root: Any) -> None:
        if not self.opened or self.opened[0].elem is not root:
            self._close_to(0)
            self._open(root)
        self._close_to(0)
        for nxt in root.itersiblings():
            if nxt.tag is etree.PI:
                self.write(b"\n" + _pi(nxt))


def _pi(node: Any) -> bytes:
    body = node.text or ""
    return f"<?{node.target}{' ' + body if body else ''}?>".encode()


def _path(el: Any) -> list[Any]:
    out = []
    a = el.getparent()
    while a is not None:
        out.append(a)
        a = a.getparent()
    out.reverse()
    return out


def stream_enveloped_c14n(
    source: BinaryIO,
    write: Callable[[bytes], None],
    *,
    exclusive: bool = False,
    inclusive_prefixes: Sequence[str] = (),
    on_signature: Callable[[Any], Any] | None = None,
    flush_tags: Iterable[str] = DEFAULT_FLUSH_TAGS,
) -> StreamResult:
    """Canonicalize ``source`` minus its first top-level ``ds:Signature`` into ``write``.

    ``on_signature(elem)`` is called once, while the Signature is still in its
    tree, and its return value is kept in ``StreamResult.signature``.
    Raises ``etree.XMLSyntaxError`` for malformed XML.
    """
    flush_set = set(flush_tags)
    result = StreamResult()
    em = _Emitter(write, exclusive, inclusive_prefixes)
    seen_ns: dict[str, str] = {}
    seen_uri: dict[str, str] = {}
    tags = [*flush_set, SIG_TAG, SV_TAG]
    it = etree.iterparse(
        source, events=("start-ns", "end"), tag=tags, resolve_entities=False, no_network=True,
        load_dtd=False, huge_tree=True, remove_comments=False,
    )
    details_pending = 0
    headers_pending = 0
    for ev, el in it:
        if ev == "start-ns":
            prefix, uri = el
            em.ns_dirty = True
            if seen_ns.setdefault(prefix, uri) != uri or seen_uri.setdefault(uri, prefix) != prefix:
                result.complex_namespaces = True
            if exclusive and prefix == "" and uri:
                # exclusive C14N's "#default" inclusive prefix is not honoured by libxml2
                result.complex_namespaces = True
            continue
        tag = el.tag
        if tag == ENTRY_DETAIL:
            details_pending += 1
            if details_pending < _DETAIL_BATCH:
                continue
        path = _path(el)
        if not path:
            continue  # the document element itself: written by finish()
        if any(a.tag == SIG_TAG for a in path):
            continue  # inside a signature: part of it, never flushed separately
        if tag == SIG_TAG:
            result.signature_count += 1
            if result.signature_count == 1:
                result.signature_parent_is_root = len(path) == 1
                if on_signature is not None:
                    result.signature = on_signature(el)
                em.sig = el
                em.flush(el, path)
                em.sig_seen = True
            else:
                em.flush(el, path)
            continue
        if tag == SV_TAG:
            if len(path) == 1:
                result.root_signature_values.append("".join((el.text or "").split()))
            continue
        if tag == ENTRY_HEADER:
            details_pending = 0
            headers_pending += 1
            # Complete headers wait in the tree and are written together: the bookkeeping
            # per flush (ancestor walk, opened-stack compare) is paid once per batch.
            if headers_pending < _HEADER_BATCH and not (em.opened and em.opened[-1].elem is el):
                continue
            headers_pending = 0
        em.flush(el, path)
    root = it.root
    if root is None:  # pragma: no cover - iterparse raises first
        raise etree.XMLSyntaxError("no root element", None, 0, 0)
    result.root_tag = root.tag
    em.finish(root)
    result.content_after_signature = em.content_after_signature
    return result


def tree_enveloped_c14n(
    data: bytes, *, exclusive: bool = False, inclusive_prefixes: Sequence[str] = ()
) -> bytes:
    """Whole-tree reference: C14N of the document minus its first top-level ds:Signature.

    Used as the fallback for namespace layouts the streaming fix-up does not model,
    and by tests as the oracle for the streaming path.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    root = etree.fromstring(data, parser)
    doc = root.getroottree()
    sig = next(iter(root.iter(SIG_TAG)), None)
    if sig is not None:
        parent = sig.getparent()
        if parent is not None:
            _remove_keep_tail(sig)
        else:
            raise ValueError("the Signature is the document element")
    return etree.tostring(
        doc, method="c14n", exclusive=exclusive, with_comments=False,
        inclusive_ns_prefixes=list(inclusive_prefixes) or None,
    )


def _remove_keep_tail(el: Any) -> None:
    parent = el.getparent()
    tail = el.tail
    prev = el.getprevious()
    if tail:
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


# --------------------------------------------------------------------------- chunked fast path

_READ_BYTES = 1 << 20
CHUNK_BYTES = 1 << 18
MAX_PREFIX_BYTES = 1 << 20  # markup before the first entry, held as a tree (a few KB in a ledger)
MAX_ENTRY_BYTES = 1 << 20  # an entry larger than this has its entryDetail run cut into chunks (a tree is ~10x)
MAX_LINE_BYTES = 1 << 20  # one entryDetail (or an entry's end) larger than this: the chunked path gives up
_ENTRY_START = re.compile(rb"<((?:[A-Za-z_][\w.\-]*:)?entryHeader)[\s>/]")
_XML_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")
_TAG_END = frozenset(b"> \t\r\n/")


class _GiveUp(Exception):
    """The chunked path does not apply to this document; the caller uses the general path."""


class _ChunkCanon:
    """C14N of a balanced run of sibling elements, in the namespace context of their parent.

    The run is parsed inside a stand-in root ``<w>`` that declares exactly the
    namespaces in scope at the real parent, and the stand-in document is given to
    libxml2's whole-document C14N (which it gets right); ``<w ...>``/``</w>`` are
    cut off. In place, inclusive C14N renders no namespace declaration inside a run
    that declares none itself: every element has its parent's namespace axis. The
    same holds for exclusive C14N when the stand-in root visibly uses every
    namespace in scope (one attribute per prefix): it renders them all, and the run
    below finds each one already rendered. libxml2's exclusive C14N is about 2.5x
    faster than its inclusive C14N, which walks every namespace in scope at every
    element; runs that declare a namespace (raw bytes holding ``xmlns``) take the
    inclusive C14N, which is exact for any layout.
    """

    def __init__(self, nsmap: dict[str | None, str]) -> None:
        def esc(u: str) -> str:
            return u.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")

        decls = "".join(f' xmlns="{esc(u)}"' if p is None else f' xmlns:{p}="{esc(u)}"' for p, u in nsmap.items())
        uses = "".join(f' {p}:w=""' for p in nsmap if p is not None)
        self.open_raw = f"<w{decls}{uses}>".encode()
        self._local = threading.local()
        empty = etree.fromstring(self.open_raw + b"</w>", self.parser)
        self.open_c14n = {mode: self._c14n(empty, mode)[:-4] for mode in (False, True)}

    @property
    def parser(self) -> Any:
        """This thread's parser: an lxml parser serializes the threads that share it."""
        parser = getattr(self._local, "parser", None)
        if parser is None:
            parser = self._local.parser = etree.XMLParser(
                resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
        return parser

    @staticmethod
    def _c14n(root: Any, exclusive: bool) -> bytes:
        return etree.tostring(root.getroottree(), method="c14n", exclusive=exclusive, with_comments=False)

    def __call__(self, chunk: bytes) -> bytes:
        root = etree.fromstring(self.open_raw + chunk + b"</w>", self.parser)
        if b"Signature" in chunk and next(root.iter(SIG_TAG, SV_TAG), None) is not None:
            raise _GiveUp("a signature element among the entries")
        exclusive = b"xmlns" not in chunk
        out = self._c14n(root, exclusive)
        start = self.open_c14n[exclusive]
        if not out.startswith(start) or not out.endswith(b"</w>"):  # pragma: no cover - libxml2 invariant
            raise _GiveUp("unexpected C14N output for the stand-in root")
        return out[len(start):-4]


def _split_before(buf: bytes, pat: bytes, lo: int, hi: int) -> int:
    """Offset of the last ``pat`` start tag in ``buf[lo:hi]`` (the tag may run past hi), or -1."""
    while True:
        k = buf.rfind(pat, lo, hi)
        if k < 0:
            return -1
        nxt = k + len(pat)
        if nxt < len(buf) and buf[nxt] in _TAG_END:
            return k
        hi = k + len(pat) - 1
        if hi <= lo:
            return -1


def _split_after(buf: bytes, pat: bytes, lo: int, hi: int) -> int:
    """Offset of the first ``pat`` start tag in ``buf[lo:hi]`` (the tag may run past hi), or -1."""
    while True:
        k = buf.find(pat, lo, hi)
        if k < 0:
            return -1
        nxt = k + len(pat)
        if nxt < len(buf) and buf[nxt] in _TAG_END:
            return k
        lo = k + 1


def chunked_enveloped_c14n(
    source: BinaryIO,
    write: Callable[[bytes], None],
    *,
    on_signature: Callable[[Any], Any] | None = None,
    workers: int = 0,
    chunk_bytes: int = CHUNK_BYTES,
) -> StreamResult | None:
    """Inclusive C14N of ``source`` minus its first top-level ``ds:Signature``, by entry chunks.

    The fast path for ledgers: the long run of ``entryHeader`` siblings is cut
    into chunks of about ``chunk_bytes`` right before an entry's start tag, each
    chunk is parsed and canonicalized on its own (``_ChunkCanon``, optionally in
    ``workers`` threads - libxml2 parses and canonicalizes without the GIL), and
    the rest of the document - the markup before the first entry, then a
    placeholder element standing for the run, then everything after it (the
    closing tags and the Signature) - is a "skeleton" streamed through the general
    pass ``stream_enveloped_c14n``, whose output after the placeholder follows the
    chunks' output.

    Why the bytes are exactly the document's canonical form: every chunk parses
    as balanced content, so no cut is inside a tag, comment, CDATA section or PI,
    and the document's parse is the skeleton's with the placeholder replaced by
    the chunks' nodes; the placeholder (a random name) must come out of the
    skeleton's C14N as an element; the canonical bytes before it are written first
    from a stand-in (the prefix with its open elements closed) and must equal the
    skeleton's.

    An entry larger than ``MAX_ENTRY_BYTES`` (a kebir account with many lines) has
    its ``entryDetail`` run cut into chunks the same way, its start and end being
    canonicalized in a stand-in; an entry without that shape ends the chunks: the
    general pass, which writes such an entry in pieces, streams the rest of the
    document after the placeholder. Returns None when the
    document does not fit (no entries, a DOCTYPE, an encoding other than UTF-8, a
    Signature among the entries, an entry tag inside a comment or CDATA section,
    malformed XML...). Then what was already given to ``write`` is meaningless and
    the caller must start over with ``stream_enveloped_c14n`` (which also reports
    malformed XML properly).
    """
    try:
        return _chunked(source, write, on_signature, workers, chunk_bytes)
    except (_GiveUp, etree.LxmlError, ValueError):
        return None  # the general pass gives the verdict (and the error with its line)


def _chunked(source: BinaryIO, write: Callable[[bytes], None], on_signature: Callable[[Any], Any] | None,
             workers: int, chunk_bytes: int) -> StreamResult | None:
    # 1. the prefix: everything before the first entry start tag
    buf = b""
    eof = False
    m = None
    while m is None:
        block = source.read(_READ_BYTES)
        if not block:
            raise _GiveUp("no entry")
        buf += block
        m = _ENTRY_START.search(buf)
        if m is None and len(buf) > MAX_PREFIX_BYTES:
            raise _GiveUp("no entry near the start")
    prefix = buf[: m.start()]
    buf = buf[m.start():]
    if buf.startswith((b"\xff\xfe", b"\xfe\xff")) or prefix.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _GiveUp("UTF-16")
    enc = _XML_ENCODING.match(prefix)
    if enc is not None and enc.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        raise _GiveUp("not UTF-8")
    if b"<!DOCTYPE" in prefix or b"<!ENTITY" in prefix:
        raise _GiveUp("DTD")
    qname = m.group(1)
    pat = b"<" + qname
    end_pat = b"</" + qname + b">"

    # 2. the placeholder, its namespace context, and the canonical bytes before it
    token = secrets.token_hex(8)
    ph_raw = f"<ph-{token}/>".encode()
    ph_c14n = f"<ph-{token}></ph-{token}>".encode()
    pull = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True, load_dtd=False,
                               huge_tree=True, remove_comments=True)
    pull.feed(prefix + ph_raw)
    ph_el = None
    for _, el in pull.read_events():
        if el.prefix is None and etree.QName(el).localname == f"ph-{token}":  # in a default namespace, too
            ph_el = el
    if ph_el is None:
        raise _GiveUp("the first entry is not in element content")
    ancestors = list(ph_el.iterancestors())
    if not ancestors:
        raise _GiveUp("no parent element")
    closing = b"".join(b"</" + _qname(a) + b">" for a in ancestors)
    canon = _ChunkCanon(dict(ph_el.nsmap))
    del pull, ph_el, ancestors
    stand_in: list[bytes] = []
    stream_enveloped_c14n(io.BytesIO(prefix + ph_raw + closing), stand_in.append)
    head = b"".join(bytes(b) for b in stand_in)
    if head.count(ph_c14n) != 1:
        raise _GiveUp("placeholder not found once")
    head = head[: head.index(ph_c14n)]
    write(head)
    head_digest = hashlib.sha256(head).digest()
    del stand_in, head

    # 3. the entries, in chunks cut right before an entry start tag
    pool = ThreadPoolExecutor(workers) if workers > 0 else None
    pending: deque[Future[bytes] | bytes] = deque()

    def emit(x: Future[bytes] | bytes) -> None:
        write(x if isinstance(x, bytes) else x.result())

    def submit(fn: Callable[[bytes], bytes], chunk: bytes) -> None:
        if pool is None:
            write(fn(chunk))
            return
        pending.append(pool.submit(fn, chunk))
        while len(pending) > 2 * workers:
            emit(pending.popleft())

    def put(data: bytes) -> None:  # canonical bytes made here, in order with the chunks
        if pool is None:
            write(data)
        else:
            pending.append(data)

    def cut_run(data: bytes, start: int, end: int, spat: bytes, fn: Callable[[bytes], bytes]) -> None:
        """Submit data[start:end], a balanced run, in chunks of about chunk_bytes cut before spat."""
        while end - start > chunk_bytes:
            k = _split_before(data, spat, start + 1, min(start + chunk_bytes, end))
            if k < 0:
                break
            submit(fn, data[start:k])
            start = k
        if end > start:
            submit(fn, data[start:end])

    detail_pat = b"<" + qname[: len(qname) - len(b"entryHeader")] + b"entryDetail"
    detail_end = b"</" + detail_pat[1:] + b">"

    def big_entry(buf: bytes, pos: int, eof: bool) -> tuple[bytes, int, bool, bool] | None:
        """An entry too large for one tree (a kebir account): cut its lines into chunks.

        The entry's start (up to its first entryDetail) and its end (after its last
        entryDetail) are canonicalized in a stand-in (``<w>`` + the start + a
        placeholder + the end); its entryDetail run in chunks like the entries.
        Returns (buf, pos, eof, last) with pos at the next entry (or, when last, at
        the end of this last entry), or None before anything is written if the
        entry does not have that shape.
        """
        d0 = _split_after(buf, detail_pat, pos + 1, pos + MAX_ENTRY_BYTES)
        if d0 < 0:
            return None
        head_raw = buf[pos:d0]
        pull = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True, load_dtd=False,
                                   huge_tree=True)
        pull.feed(canon.open_raw + head_raw + ph_raw)
        ph = next((el for _, el in pull.read_events()
                   if el.prefix is None and etree.QName(el).localname == f"ph-{token}"), None)
        if ph is None:
            return None
        opens = list(ph.iterancestors())[:-1]  # the entry's open elements, innermost first
        if not opens:
            return None
        inner = _ChunkCanon(dict(ph.nsmap))
        stand_in = canon.open_raw + head_raw + ph_raw
        whole = _ChunkCanon._c14n(etree.fromstring(
            stand_in + b"".join(b"</" + _qname(o) + b">" for o in opens) + b"</w>", canon.parser), False)
        start = canon.open_c14n[False]
        i = whole.find(ph_c14n)
        if not whole.startswith(start) or i < 0:
            return None
        head_c14n = whole[len(start):i + len(ph_c14n)]
        put(whole[len(start):i])
        del pull, ph, opens, whole
        pos = d0
        while True:
            h = _split_after(buf, pat, pos + 1, len(buf))
            if h < 0 and not eof:
                k = _split_before(buf, detail_pat, pos + 1, len(buf))
                if k > pos:
                    cut_run(buf, pos, k, detail_pat, inner)
                    pos = k
                elif len(buf) - pos > MAX_LINE_BYTES:
                    raise _GiveUp("an entry line too large")
                block = source.read(_READ_BYTES)
                if block:
                    buf = buf[pos:] + block
                    pos = 0
                else:
                    eof = True
                continue
            if h >= 0:
                end = h
            else:  # the last entry: it ends with the last entry end tag of the document
                end = buf.rfind(end_pat, pos)
                if end < 0:
                    raise _GiveUp("no end tag of the last entry")
                end += len(end_pat)
            de = buf.rfind(detail_end, pos, end)
            if de < 0:
                raise _GiveUp("no entry line end")
            de += len(detail_end)
            cut_run(buf, pos, de, detail_pat, inner)
            whole = _ChunkCanon._c14n(etree.fromstring(stand_in + buf[de:end] + b"</w>", canon.parser), False)
            if not whole.startswith(start + head_c14n) or not whole.endswith(b"</w>"):
                raise _GiveUp("the entry's end does not close its start")
            put(whole[len(start) + len(head_c14n):-4])
            return buf, end, eof, h < 0

    try:
        pos = 0  # buf[pos:] is not submitted yet; buf is compacted only when read into
        rest: bytes | None = None  # what the general pass takes over after the chunks
        while True:
            if not eof and len(buf) - pos <= chunk_bytes:
                block = source.read(max(_READ_BYTES, chunk_bytes))
                if block:
                    buf = buf[pos:] + block
                    pos = 0
                    continue
                eof = True
            if eof:
                break
            k = _split_before(buf, pat, pos + 1, pos + chunk_bytes)
            if k < 0:
                k = _split_before(buf, pat, pos + 1, len(buf))
            if k > 0:
                submit(canon, buf[pos:k])
                pos = k
            elif len(buf) - pos > MAX_ENTRY_BYTES:
                big = big_entry(buf, pos, eof)
                if big is None:
                    # not shaped like a kebir account: the general pass, which writes
                    # such an entry in pieces, does the rest of the document
                    rest = buf[pos:]
                    break
                buf, pos, eof, last = big
                if last:
                    rest = buf[pos:]
                    break
            else:
                block = source.read(_READ_BYTES)
                if block:
                    buf = buf[pos:] + block
                    pos = 0
                else:
                    eof = True
        if rest is None:
            # the final piece: the last entries, then the closing tags, the Signature, ...
            e = buf.rfind(end_pat, pos)
            if e < 0:
                raise _GiveUp("no end tag of the last entry")
            e += len(end_pat)
            cut_run(buf, pos, e, pat, canon)
            rest = buf[e:]
        del buf
        while pending:
            emit(pending.popleft())
    finally:
        if pool is not None:
            for f in pending:
                if not isinstance(f, bytes):
                    f.cancel()
            pool.shutdown(wait=True)

    # 4. the general pass over the skeleton: the prefix, the placeholder, then the rest of
    # the document (streamed); its output up to the placeholder must be the stand-in's
    after = _AfterPlaceholder(write, ph_c14n, head_digest)
    res = stream_enveloped_c14n(_Joined(prefix + ph_raw + rest, source), after, on_signature=on_signature)
    if not after.found:
        raise _GiveUp("placeholder not found in the skeleton")
    return res


class _Joined:
    """A read-only stream: ``first``, then what is left of ``rest``."""

    def __init__(self, first: bytes, rest: BinaryIO) -> None:
        self.first = first
        self.pos = 0
        self.rest = rest

    def read(self, n: int = -1) -> bytes:
        if self.pos < len(self.first):
            end = len(self.first) if n is None or n < 0 else self.pos + n
            out = self.first[self.pos:end]
            self.pos += len(out)
            if self.pos >= len(self.first):
                self.first = b""
                self.pos = 0
            return out
        return self.rest.read(n)


class _AfterPlaceholder:
    """Passes on what comes after the placeholder's canonical form; checks what came before."""

    def __init__(self, write: Callable[[bytes], None], ph: bytes, head_digest: bytes) -> None:
        self.write = write
        self.ph = ph
        self.head_digest = head_digest
        self.head = bytearray()
        self.found = False

    def __call__(self, b: bytes | memoryview) -> None:
        if self.found:
            self.write(b)
            return
        start = max(0, len(self.head) - len(self.ph) + 1)
        self.head += b
        i = self.head.find(self.ph, start)
        if i < 0:
            if len(self.head) > 2 * MAX_PREFIX_BYTES:
                raise _GiveUp("placeholder not found")
            return
        if hashlib.sha256(self.head[:i]).digest() != self.head_digest:
            raise _GiveUp("the skeleton's head differs from the stand-in's")
        self.found = True
        tail = bytes(self.head[i + len(self.ph):])
        self.head = bytearray()
        if tail:
            self.write(tail)
