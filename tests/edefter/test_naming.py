"""The e-Defter file-name grammar: round-trips and every kind of malformed name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.edefter.naming import EDefterName, FileKind, InvalidFileName, Period, parse_name, try_parse_name

taxpayer_ids = st.one_of(st.from_regex(r"\A[0-9]{10}\Z"), st.from_regex(r"\A[0-9]{11}\Z"))
periods = st.builds(Period, st.integers(2000, 9999), st.integers(1, 12))
branches = st.one_of(st.none(), st.integers(1, 9999).map(lambda n: f"{n:04d}"))


@st.composite
def names(draw: st.DrawFn) -> EDefterName:
    kind = draw(st.sampled_from(list(FileKind)))
    gib = draw(st.booleans()) if not kind.is_ledger else False
    return EDefterName(
        draw(taxpayer_ids),
        draw(periods),
        kind,
        draw(st.integers(0, 999_999)),
        draw(branches),
        gib,
        draw(st.sampled_from(["xml", "zip"])),
    )


@given(names())
def test_format_parse_round_trip(name: EDefterName) -> None:
    assert parse_name(name.filename) == name
    assert parse_name(name.filename).filename == name.filename
    assert name.with_ext("zip").logical_key == name.with_ext("xml").logical_key
    assert name.filename.startswith(name.stem)


@given(names())
def test_taxpayer_id_stays_a_string_with_leading_zeros(name: EDefterName) -> None:
    zero = EDefterName("0" + name.taxpayer_id[1:], name.period, name.kind, name.part, name.branch, name.gib)
    parsed = parse_name(zero.filename)
    assert parsed.taxpayer_id.startswith("0") and isinstance(parsed.taxpayer_id, str)
    assert len(parsed.taxpayer_id) == len(name.taxpayer_id)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_arbitrary_text_is_either_a_name_or_a_clear_error(text: str) -> None:
    try:
        parsed = parse_name(text)
    except InvalidFileName as exc:
        assert exc.name == text
        assert exc.field in {"prefix", "taxpayer_id", "period", "kind", "part", "branch", "extension", "structure"}
        assert exc.message_en and exc.message_tr
        assert try_parse_name(text) is None
    else:
        assert parsed.filename.lower() == text.lower()


@settings(max_examples=200)
@given(names(), st.integers(0, 40), st.characters(codec="utf-8"))
def test_one_character_mutation_never_crashes(name: EDefterName, pos: int, ch: str) -> None:
    s = name.filename
    pos = pos % len(s)
    mutated = s[:pos] + ch + s[pos + 1 :]
    result = try_parse_name(mutated)
    assert result is None or result.filename.lower() == mutated.lower()


def test_examples_from_the_domain_doc() -> None:
    n = parse_name("GIB-1234567801-201909-KB-000000.zip")
    assert (n.taxpayer_id, n.period, n.kind, n.part, n.branch, n.gib, n.ext) == (
        "1234567801", Period(2019, 9), FileKind.KB, 0, None, True, "zip"
    )
    assert n.code == "GIB-KB"
    b = parse_name("1234567801-202001-K-000000-7011.zip")
    assert b.branch == "7011" and b.kind is FileKind.K
    t = parse_name("01234567890-201905-DR-000000.xml")  # TCKN with a leading zero
    assert t.taxpayer_id == "01234567890" and t.kind is FileKind.DR
    assert parse_name("1234567801-201909-Y-000003.XML").ext == "xml"


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("1234567801-201909-Y-000000.txt", "extension"),
        ("1234567801-201909-Y-000000", "extension"),
        (".xml", "extension"),
        ("gib-1234567801-201909-YB-000000.xml", "prefix"),
        ("GIB_1234567801-201909-YB-000000.xml", "prefix"),
        ("GIB-1234567801-201909-Y-000000.xml", "prefix"),  # ledgers are never GİB-stamped
        ("GIB-1234567801-201909-K-000000.xml", "prefix"),
        ("123456789-201909-Y-000000.xml", "taxpayer_id"),  # 9 digits
        ("123456789012-201909-Y-000000.xml", "taxpayer_id"),  # 12 digits
        ("12345678AB-201909-Y-000000.xml", "taxpayer_id"),
        ("１２３４５６７８０１-201909-Y-000000.xml", "taxpayer_id"),  # full-width digits
        ("1234567801-201913-Y-000000.xml", "period"),
        ("1234567801-201900-Y-000000.xml", "period"),
        ("1234567801-20199-Y-000000.xml", "period"),
        ("1234567801-199912-Y-000000.xml", "period"),  # before e-Defter
        ("1234567801-2019-09-Y-000000.xml", "period"),
        ("1234567801-201909-X-000000.xml", "kind"),
        ("1234567801-201909-yb-000000.xml", "kind"),
        ("1234567801-201909-GIB-000000.xml", "kind"),
        ("1234567801-201909-Y-00000.xml", "part"),
        ("1234567801-201909-Y-0000001.xml", "part"),
        ("1234567801-201909-Y-00000A.xml", "part"),
        ("1234567801-201909-Y-000000-0000.xml", "branch"),
        ("1234567801-201909-Y-000000-701.xml", "branch"),
        ("1234567801-201909-Y-000000-70A1.xml", "branch"),
        ("1234567801-201909-Y.xml", "structure"),
        ("1234567801-201909-Y-000000-7011-1.xml", "structure"),
        ("a/1234567801-201909-Y-000000.xml", "structure"),
        ("..\\1234567801-201909-Y-000000.xml", "structure"),
    ],
)
def test_malformed_names_say_which_part_is_wrong(name: str, field: str) -> None:
    with pytest.raises(InvalidFileName) as info:
        parse_name(name)
    assert info.value.field == field
    assert info.value.name == name
    assert repr(name) in str(info.value)
    assert info.value.message_tr and info.value.message_en
    assert try_parse_name(name) is None


def test_invalid_name_objects_cannot_be_constructed() -> None:
    with pytest.raises(InvalidFileName):
        EDefterName("1234567801", Period(2019, 9), FileKind.Y, 0, gib=True)
    with pytest.raises(InvalidFileName):
        EDefterName("1234567801", Period(2019, 9), FileKind.Y, 0, branch="0000")


def test_period_helpers() -> None:
    assert Period(2019, 12).next() == Period(2020, 1)
    assert Period(2020, 1).previous() == Period(2019, 12)
    assert Period(2019, 9).label_tr == "Eylül-2019"
    assert Period.parse("201909") == Period(2019, 9)
    with pytest.raises(ValueError):
        Period.parse("2019-9")
