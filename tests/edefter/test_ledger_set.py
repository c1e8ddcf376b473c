"""Ledger sets from names only: completeness, part numbering, e-Defter statüsü, upload order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.edefter.ledger_set import SetKey, assess, build_set
from include.edefter.naming import EDefterName, FileKind, Period, parse_name
from include.edefter.status import EDefterStatus

P = Period(2019, 9)
KEY = SetKey("1234567801", None, P)


def names(*codes: str, parts: tuple[int, ...] = (0,), branch: str | None = None) -> list[EDefterName]:
    out = []
    for part in parts:
        for code in codes:
            gib = code.startswith("GIB-")
            out.append(EDefterName("1234567801", P, FileKind(code.removeprefix("GIB-")), part, branch, gib))
    return out


SIX = ("Y", "K", "YB", "KB", "GIB-YB", "GIB-KB")


def test_status_dosya_olusturuldu_with_missing() -> None:
    s = build_set(KEY, names("Y", "K"))
    assert s.status is EDefterStatus.DOSYA_OLUSTURULDU and s.status.value == "Dosya Oluşturuldu"
    assert s.missing == ("1234567801-201909-YB-000000", "1234567801-201909-KB-000000")
    assert not s.problems and not s.is_approved


def test_status_gibe_gonderildi_with_missing() -> None:
    s = build_set(KEY, names("Y", "K", "YB", "KB"))
    assert s.status is EDefterStatus.GIBE_GONDERILDI and s.status.value == "GİB'e Gönderildi"
    assert s.missing == ("GIB-1234567801-201909-YB-000000", "GIB-1234567801-201909-KB-000000")


def test_status_onayli_berat_indirildi() -> None:
    s = build_set(KEY, names(*SIX))
    assert s.status is EDefterStatus.ONAYLI_BERAT_INDIRILDI and s.status.value == "Onaylı Berat İndirildi"
    assert s.missing == () and s.is_approved and not s.problems


def test_half_way_stage_lists_only_what_is_missing() -> None:
    s = build_set(KEY, names("Y", "K", "YB", "KB", "GIB-YB"))
    assert s.status is EDefterStatus.GIBE_GONDERILDI
    assert s.missing == ("GIB-1234567801-201909-KB-000000",)


def test_no_ledgers_no_status_and_prerequisites_reported() -> None:
    s = build_set(KEY, names("YB", "GIB-YB"))
    assert s.status is None
    assert s.missing == ("1234567801-201909-Y-000000", "1234567801-201909-K-000000")
    codes = {(p.code, p.files) for p in s.problems}
    assert ("set.missing_prerequisite", ("1234567801-201909-YB-000000.xml",)) in codes


def test_multi_part_status_needs_every_part() -> None:
    s = build_set(KEY, names(*SIX, parts=(1, 2)) + names("Y", "K", "YB", "KB", parts=(3,)))
    assert s.parts == (1, 2, 3) and s.status is EDefterStatus.GIBE_GONDERILDI
    assert s.missing == ("GIB-1234567801-201909-YB-000003", "GIB-1234567801-201909-KB-000003")
    assert not s.problems


def test_part_gap_is_a_problem_and_the_gap_is_missing() -> None:
    s = build_set(KEY, names(*SIX, parts=(1, 3)))
    gap = [p for p in s.problems if p.code == "set.part_gap"]
    assert gap and "000002" in gap[0].message_tr and "000002" in gap[0].message_en
    assert "1234567801-201909-Y-000002" in s.missing and s.status is None


def test_part_000000_and_000001_together_is_a_problem() -> None:
    s = build_set(KEY, names(*SIX, parts=(0, 1)))
    p = [p for p in s.problems if p.code == "set.part_numbering"]
    assert p and "1234567801-201909-Y-000000.xml" in p[0].files and "1234567801-201909-Y-000001.xml" in p[0].files


def test_dr_belongs_to_the_set_and_comes_last() -> None:
    s = build_set(KEY, names(*SIX, "DR", parts=(0,)))
    assert s.has_dr and s.is_approved
    assert [n.code for n in s.ordered_files()] == ["Y", "K", "YB", "KB", "GIB-YB", "GIB-KB", "DR"]
    bad = build_set(KEY, names(*SIX) + [EDefterName("1234567801", P, FileKind.DR, 1)])
    assert any(p.code == "set.dr_part" for p in bad.problems)


def test_upload_order_per_part() -> None:
    s = build_set(KEY, list(reversed(names(*SIX, parts=(1, 2)))) + names("DR"))
    assert [f"{n.code}:{n.part}" for n in s.ordered_files()] == [
        *(f"{c}:1" for c in SIX), *(f"{c}:2" for c in SIX), "DR:0"
    ]


def test_assess_groups_by_taxpayer_branch_month() -> None:
    raw = [
        "1234567801-201909-Y-000000.xml",
        "1234567801-201909-K-000000.zip",
        "1234567801-201910-Y-000000.xml",
        "1234567801-201909-Y-000000-7011.xml",
        "9876543210-201909-Y-000000.xml",
    ]
    sets = assess(parse_name(n) for n in raw)
    assert [str(s.key) for s in sets] == [
        "1234567801 Eylül-2019",
        "1234567801 Ekim-2019",
        "1234567801 şube 7011 Eylül-2019",
        "9876543210 Eylül-2019",
    ]


def test_same_file_as_xml_and_zip_counts_once() -> None:
    s = build_set(KEY, names("Y", "K") + [n.with_ext("zip") for n in names("Y")])
    assert len(s.names) == 2 and s.file("Y").ext == "xml"
    assert any(p.code == "set.duplicate_file" for p in s.problems)


def test_foreign_file_is_reported() -> None:
    other = EDefterName("1234567801", Period(2019, 10), FileKind.Y, 0)
    s = build_set(KEY, names("Y", "K") + [other])
    assert any(p.code == "set.foreign_file" and p.files == (other.filename,) for p in s.problems)
    assert other not in s.names


@given(st.sets(st.sampled_from(SIX + ("DR",))), st.integers(1, 3))
def test_status_is_monotone_in_the_files_present(codes: set[str], nparts: int) -> None:
    parts = (0,) if nparts == 1 else tuple(range(1, nparts + 1))
    s = build_set(KEY, names(*sorted(codes), parts=parts))
    order = [None, EDefterStatus.DOSYA_OLUSTURULDU, EDefterStatus.GIBE_GONDERILDI, EDefterStatus.ONAYLI_BERAT_INDIRILDI]
    full = build_set(KEY, names(*SIX, *sorted(codes), parts=parts))
    assert full.is_approved and full.missing == ()
    assert order.index(s.status) <= order.index(full.status)
    # Adding the missing files reaches the next status.
    if s.missing:
        more = build_set(KEY, list(s.names) + [parse_name(m + ".xml") for m in s.missing])
        assert order.index(more.status) >= order.index(s.status) + 1


@pytest.mark.parametrize("branch", [None, "0001"])
def test_missing_names_carry_the_branch(branch: str | None) -> None:
    key = SetKey("1234567801", branch, P)
    s = build_set(key, names("Y", "K", branch=branch))
    assert all((m.endswith(f"-{branch}") if branch else m.endswith("-000000")) for m in s.missing)
