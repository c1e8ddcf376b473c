"""Berat and secondary-copy deadlines by rule version."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from include.edefter.deadlines import ISTANBUL, TaxpayerKind, berat_deadline, secondary_copy_deadline
from include.edefter.naming import Period


def test_edgt5_tenth_and_fourteenth_of_fourth_month() -> None:
    gelir = berat_deadline(Period(2025, 1), TaxpayerKind.GELIR)
    kurum = berat_deadline(Period(2025, 1), "kurumlar")
    assert (gelir.date, gelir.rule) == (dt.date(2025, 5, 10), "EDGT-5")
    assert (kurum.date, kurum.rule) == (dt.date(2025, 5, 14), "EDGT-5")
    dec = berat_deadline(Period(2025, 12), TaxpayerKind.KURUMLAR)
    assert dec.date == dt.date(2026, 4, 14)


def test_earlier_rule_is_end_of_third_month() -> None:
    sep = berat_deadline(Period(2019, 9), TaxpayerKind.KURUMLAR)
    assert (sep.date, sep.rule) == (dt.date(2019, 12, 31), "EDGT-1")
    nov = berat_deadline(Period(2023, 11), TaxpayerKind.GELIR)
    assert nov.date == dt.date(2024, 2, 29)  # leap year end of February


def test_secondary_copy_is_fifteen_days_later_with_rule() -> None:
    d = secondary_copy_deadline(Period(2025, 1), TaxpayerKind.KURUMLAR)
    assert d.date == dt.date(2025, 5, 29)
    assert d.rule == "EDGT-3+EDGT-5" and d.legal_duty
    assert d.end == dt.datetime(2025, 5, 30, tzinfo=ISTANBUL)
    old = secondary_copy_deadline(Period(2019, 9), TaxpayerKind.KURUMLAR)
    assert old.date == dt.date(2020, 1, 15) and not old.legal_duty
    assert "15" in d.description_tr and d.to_dict()["rule"] == "EDGT-3+EDGT-5"


@given(st.integers(2000, 2100), st.integers(1, 12), st.sampled_from(list(TaxpayerKind)))
def test_deadlines_are_after_the_period_and_ordered(year: int, month: int, kind: TaxpayerKind) -> None:
    p = Period(year, month)
    b = berat_deadline(p, kind)
    s = secondary_copy_deadline(p, kind)
    assert b.date > dt.date(year, month, 28)
    assert 80 <= (b.date - dt.date(year, month, 1)).days <= 160
    assert (s.date - b.date).days == 15
