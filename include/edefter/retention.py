"""Retention end of archived e-Defter files.

EDGT Sıra No 3 and TTK 82 ask for at least 10 years; VUK 253 asks 5 years from the
year after. The archive therefore keeps a file until 31 December of
(fiscal-year-end year + years), with ``years`` never below 10.
"""

from __future__ import annotations

import datetime as dt

from include.edefter.naming import Period

__all__ = ["MIN_RETENTION_YEARS", "retention_end", "conservative_fiscal_year_end"]

MIN_RETENTION_YEARS = 10


def retention_end(fiscal_year_end: dt.date, years: int = MIN_RETENTION_YEARS) -> dt.date:
    """31 December of (fiscal year end's year + years); ``years`` may be longer, never shorter."""
    if not isinstance(years, int) or isinstance(years, bool):
        raise TypeError(f"years must be an int, got {type(years).__name__}")
    if years < MIN_RETENTION_YEARS:
        raise ValueError(
            f"retention must be at least {MIN_RETENTION_YEARS} years (EDGT Sıra No 3, TTK 82), got {years}"
        )
    return dt.date(fiscal_year_end.year + years, 12, 31)


def conservative_fiscal_year_end(period: Period) -> dt.date:
    """The latest fiscal-year end a month can belong to, when the XML does not say.

    A fiscal year (also a special one, "özel hesap dönemi") is 12 months, so the
    month's fiscal year ends at the latest 11 months later. Erring late only makes
    retention longer, which the law allows; erring early would make it shorter.
    """
    p = period
    for _ in range(11):
        p = p.next()
    # Last day of that month.
    nxt = p.next()
    return dt.date(nxt.year, nxt.month, 1) - dt.timedelta(days=1)
