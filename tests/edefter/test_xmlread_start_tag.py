"""A start tag with ~1.5 M attributes is refused from its raw bytes, before libxml2 builds it.

Before the cap, libxml2 built the whole element (~480 MB extra RSS for a 17 MB XML,
~0.9 GB in the integrator) before the attribute count could be checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.edefter.settings import XmlLimits
from include.edefter.xmlread import XmlReadError, read_facts_bytes
from tests.conftest import PROJECT_ROOT

N_ATTRS = 1_500_000
EXTRA_RSS_BOUND_MB = 100


def write_attribute_bomb(path: Path, n: int = N_ATTRS) -> Path:
    """<edefter:defter><x a0="" a1="" … (n attributes)/></edefter:defter>, written in slices."""
    with open(path, "wb") as f:
        f.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<edefter:defter xmlns:edefter="http://www.edefter.gov.tr"><x')
        for i in range(0, n, 10_000):
            f.write(b"".join(b' a%d=""' % j for j in range(i, min(n, i + 10_000))))
        f.write(b"/></edefter:defter>")
    return path


_MEASURE = """
import json, resource, sys, time
from pathlib import Path
from include.edefter.xmlread import XmlReadError, read_facts
p = Path(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.monotonic()
try:
    read_facts(p, name=p.name)
    rule = None
except XmlReadError as exc:
    rule, name = exc.rule, exc.name
extra_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"rule": rule, "name": name, "extra_mb": extra_kb / 1024, "s": time.monotonic() - t}))
"""


def test_huge_start_tag_fails_fast_with_bounded_memory(tmp_path: Path) -> None:
    xml = write_attribute_bomb(tmp_path / "bomb.xml")
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(xml)],
        cwd=PROJECT_ROOT,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rule"] == "xml.start_tag_too_large"
    assert got["name"] == "bomb.xml"
    assert got["extra_mb"] < EXTRA_RSS_BOUND_MB, got  # measured ~3 MB (was ~480 MB)
    assert got["s"] < 10, got  # measured ~0.01 s


def _doc(tag: bytes) -> bytes:
    return b'<edefter:defter xmlns:edefter="http://www.edefter.gov.tr">' + tag + b"</edefter:defter>"


def _attrs(n: int) -> bytes:
    return b"".join(b' b%d=""' % i for i in range(n))


def test_start_tag_cap_edges() -> None:
    lim = XmlLimits(max_start_tag_bytes=1024, max_attributes=10_000)
    # '>' inside a quoted value does not end the tag; long text, comments and CDATA are not tags.
    val = b"x>" * 600
    with pytest.raises(XmlReadError) as ei:
        read_facts_bytes(_doc(b'<a v="' + val + b'"/>'), name="q.xml", limits=lim)
    assert ei.value.rule == "xml.start_tag_too_large"
    for ok in (
        b'<a v="' + b"y" * 900 + b'">' + b"t" * 5000 + b"</a>",
        b"<!--" + b"c" * 5000 + b"-->",
        b"<a><![CDATA[" + b"d>" * 3000 + b"]]></a>",
    ):
        assert read_facts_bytes(_doc(ok), name="ok.xml", limits=lim).root == "defter"
    # the same tag split over many small chunks
    small = XmlLimits(max_start_tag_bytes=1024, max_attributes=10_000, read_chunk_bytes=7)
    with pytest.raises(XmlReadError) as ei:
        read_facts_bytes(_doc(b"<a" + _attrs(300) + b"/>"), name="s.xml", limits=small)
    assert ei.value.rule == "xml.start_tag_too_large"
    assert read_facts_bytes(_doc(b"<a" + _attrs(100) + b"/>"), name="s.xml", limits=small).root == "defter"


_ITEM = st.one_of(
    st.tuples(
        st.just("tag"),
        st.lists(st.sampled_from(['a="x"', "b='>'", 'c=">\'"', "d=''", " "]), max_size=12),
    ),
    st.tuples(st.just("text"), st.integers(0, 120)),
    st.tuples(st.just("end"), st.integers(0, 3)),
    st.tuples(st.just("comment"), st.integers(0, 120)),
)


def _render(item: tuple[str, object]) -> bytes:
    kind, arg = item
    if kind == "tag":
        return ("<t " + " ".join(arg) + ">").encode()  # type: ignore[arg-type]
    if kind == "text":
        return b"y>" * (int(arg) // 2) + b"z" * (int(arg) % 2)  # type: ignore[call-overload]
    if kind == "end":
        return b"</t" + b" " * int(arg) + b">"  # type: ignore[call-overload]
    return b"<!--" + b"c>" * int(arg) + b"-->"  # type: ignore[call-overload]


@settings(max_examples=300, deadline=None)
@given(st.lists(_ITEM, max_size=30), st.lists(st.integers(1, 40), min_size=1, max_size=10), st.integers(8, 60))
def test_guard_matches_a_naive_oracle(items: list[tuple[str, object]], cuts: list[int], cap: int) -> None:
    from include.edefter.xmlread import _START_TAG_REST, _StartTagGuard

    doc = b"".join(_render(i) for i in items)
    expect = False
    for i, b in enumerate(doc):
        if b == ord("<") and doc[i + 1 : i + 2] not in (b"/", b"!", b"?", b""):
            m = _START_TAG_REST.match(doc, i + 1)
            expect |= m is None or m.end() - (i + 1) > cap
    guard = _StartTagGuard("f.xml", cap)
    pos, k = 0, 0
    got = False
    try:
        while pos < len(doc):
            n = cuts[k % len(cuts)]
            guard.feed(doc[pos : pos + n])
            pos, k = pos + n, k + 1
    except XmlReadError as exc:
        assert exc.rule == "xml.start_tag_too_large"
        got = True
    assert got == expect, doc
