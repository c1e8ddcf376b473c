"""Legal deadlines of an e-Defter month: the GİB berat upload and the secondary copy.

Pure functions over dates. Every deadline carries the rule version it was computed
with, because the rules changed several times and a stored deadline must stay
explainable after the next change.

Rules encoded (see docs/edefter-domain.md):
- ``EDGT-1``: periods up to 2024-12: berats by the last day of the 3rd month after the period.
- ``EDGT-5``: e-Defter Genel Tebliği Sıra No 5 (RG 08.11.2024), periods from 2025-01:
  by the 10th (income-tax payers) or the 14th (corporate-tax payers) of the 4th month
  after the period.
- ``EDGT-3``: secondary copies (ikincil kopya) are due 15 days after the berat deadline;
  the duty exists from 01.01.2020 (EDGT Sıra No 3), earlier months get the same date
  with ``legal_duty=False``.
Not modelled: the quarterly (üç aylık) berat option and shifting a deadline that falls on
a public holiday (VUK 18); both only move the date later, so a sensor timeout computed
here errs on the early side by at most a few days.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from include.edefter.naming import Period

__all__ = [
    "EDGT5_FIRST_PERIOD",
    "ISTANBUL",
    "SECONDARY_COPY_DAYS",
    "SECONDARY_COPY_DUTY_FROM",
    "Deadline",
    "TaxpayerKind",
    "berat_deadline",
    "end_of_day",
    "secondary_copy_deadline",
]

ISTANBUL = ZoneInfo("Europe/Istanbul")
EDGT5_FIRST_PERIOD = Period(2025, 1)
SECONDARY_COPY_DUTY_FROM = Period(2020, 1)
SECONDARY_COPY_DAYS = 15


class TaxpayerKind(enum.Enum):
    GELIR = "gelir"  # income-tax payer: 10th day under EDGT-5
    KURUMLAR = "kurumlar"  # corporate-tax payer: 14th day under EDGT-5


@dataclass(frozen=True)
class Deadline:
    """A due date (inclusive: the whole day counts) and the rule it came from."""

    date: dt.date
    rule: str
    description_tr: str
    description_en: str
    legal_duty: bool = True

    @property
    def end(self) -> dt.datetime:
        """The instant the deadline passes: midnight after ``date`` in Istanbul (aware)."""
        return end_of_day(self.date)

    def to_dict(self) -> dict[str, object]:
        return {
            "date": self.date.isoformat(),
            "rule": self.rule,
            "description_tr": self.description_tr,
            "description_en": self.description_en,
            "legal_duty": self.legal_duty,
        }


def _add_months(period: Period, months: int) -> Period:
    index = period.year * 12 + (period.month - 1) + months
    return Period(index // 12, index % 12 + 1)


def end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=ISTANBUL)


def berat_deadline(period: Period, kind: TaxpayerKind | str) -> Deadline:
    """Last day to upload the month's berats to GİB, by the rule in force for ``period``."""
    kind = TaxpayerKind(kind) if isinstance(kind, str) else kind
    if period >= EDGT5_FIRST_PERIOD:
        target = _add_months(period, 4)
        day = 10 if kind is TaxpayerKind.GELIR else 14
        who_tr = "gelir vergisi mükellefi" if kind is TaxpayerKind.GELIR else "kurumlar vergisi mükellefi"
        who_en = "income-tax payer" if kind is TaxpayerKind.GELIR else "corporate-tax payer"
        return Deadline(
            dt.date(target.year, target.month, day),
            "EDGT-5",
            f"EDGT Sıra No 5 (RG 08.11.2024): dönemi izleyen 4. ayın {day}. günü ({who_tr})",
            f"e-Defter communiqué No 5 (OG 08.11.2024): day {day} of the 4th month after the period ({who_en})",
        )
    target = _add_months(period, 3)
    last = calendar.monthrange(target.year, target.month)[1]
    return Deadline(
        dt.date(target.year, target.month, last),
        "EDGT-1",
        "e-Defter Genel Tebliği: dönemi izleyen 3. ayın sonu",
        "e-Defter communiqué: end of the 3rd month after the period",
    )


def secondary_copy_deadline(period: Period, kind: TaxpayerKind | str) -> Deadline:
    """Last day the secondary copy (ikincil kopya) must be stored: berat deadline + 15 days."""
    berat = berat_deadline(period, kind)
    duty = period >= SECONDARY_COPY_DUTY_FROM
    return Deadline(
        berat.date + dt.timedelta(days=SECONDARY_COPY_DAYS),
        f"EDGT-3+{berat.rule}",
        f"İkincil kopya: berat yükleme süresinden ({berat.date:%d.%m.%Y}, {berat.rule}) 15 gün sonra"
        + ("" if duty else " (2020 öncesi dönem: yasal zorunluluk yok)"),
        f"Secondary copy: 15 days after the berat deadline ({berat.date.isoformat()}, {berat.rule})"
        + ("" if duty else " (period before 2020: no legal duty)"),
        legal_duty=duty,
    )
