"""Deterministic, realistic accounting content for sample ledgers.

Journal entries are balanced (sum of debits == sum of credits, in kuruş, so
no float rounding) and use Tekdüzen Hesap Planı accounts with the document
types the e-Defter rules allow. Everything is drawn from a ``random.Random``
seeded by the caller, so the same seed gives the same entries.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "ACCOUNTS",
    "DOCUMENT_TYPES",
    "TAX_DETAIL_ACCOUNTS",
    "Line",
    "Entry",
    "iter_entries",
    "format_amount",
]

# Tekdüzen Hesap Planı main accounts used by the generator.
ACCOUNTS: dict[str, str] = {
    "100": "KASA",
    "102": "BANKALAR",
    "120": "ALICILAR",
    "153": "TİCARİ MALLAR",
    "191": "İNDİRİLECEK KDV",
    "320": "SATICILAR",
    "335": "PERSONELE BORÇLAR",
    "360": "ÖDENECEK VERGİ VE FONLAR",
    "391": "HESAPLANAN KDV",
    "600": "YURTİÇİ SATIŞLAR",
    "601": "YURTDIŞI SATIŞLAR",
    "602": "DİĞER GELİRLER",
    "621": "SATILAN TİCARİ MALLAR MALİYETİ",
    "770": "GENEL YÖNETİM GİDERLERİ",
}

SUB_ACCOUNTS: dict[str, tuple[tuple[str, str], ...]] = {
    "100": (("100.01", "MERKEZ KASA TL"),),
    "102": (("102.01", "ZİRAAT BANKASI TL"), ("102.02", "İŞ BANKASI TL")),
    "120": (("120.01.001", "ÇAĞLAR GIDA LTD. ŞTİ."), ("120.01.002", "ÖZDEMİR İNŞAAT A.Ş."),
            ("120.01.003", "GÜNEŞ TEKSTİL SAN. TİC. A.Ş.")),
    "153": (("153.01", "TİCARİ MALLAR"),),
    "191": (("191.01", "İNDİRİLECEK KDV %20"),),
    "320": (("320.01.001", "IŞIK KIRTASİYE LTD. ŞTİ."), ("320.01.002", "ŞAHİN LOJİSTİK A.Ş.")),
    "335": (("335.01", "PERSONELE BORÇLAR"),),
    "360": (("360.01", "ÖDENECEK GELİR VERGİSİ STOPAJI"),),
    "391": (("391.01", "HESAPLANAN KDV %20"),),
    "600": (("600.01", "YURTİÇİ MAL SATIŞLARI"),),
    "601": (("601.01", "İHRACAT"),),
    "602": (("602.01", "KİRA GELİRLERİ"),),
    "621": (("621.01", "SATILAN TİCARİ MALLAR MALİYETİ"),),
    "770": (("770.01", "KIRTASİYE GİDERLERİ"), ("770.02", "ELEKTRİK GİDERLERİ")),
}

DOCUMENT_TYPES = (
    "invoice",
    "check",
    "voucher",
    "receipt",
    "shipment",
    "order-vendor",
    "order-customer",
    "other",
)

# The berat's tax detail: debit and credit totals of these accounts (10 lines).
TAX_DETAIL_ACCOUNTS = ("191", "391", "600", "601", "602")

KDV_RATE_PERCENT = 20


@dataclass(frozen=True)
class Line:
    """One journal line (entryDetail). Amount in kuruş, always > 0."""

    line_number: int
    account: str
    sub_id: str
    sub_description: str
    amount_kurus: int
    dc: str  # "D" or "C"
    document_type: str
    document_number: str
    document_date: dt.date
    comment: str
    payment_method: str | None = None

    @property
    def account_description(self) -> str:
        return ACCOUNTS[self.account]


@dataclass(frozen=True)
class Entry:
    """One journal entry (yevmiye maddesi)."""

    number: int  # entryNumberCounter: runs across the fiscal year
    date: dt.date
    comment: str
    entered_by: str
    lines: tuple[Line, ...]

    @property
    def total_debit(self) -> int:
        return sum(ln.amount_kurus for ln in self.lines if ln.dc == "D")

    @property
    def total_credit(self) -> int:
        return sum(ln.amount_kurus for ln in self.lines if ln.dc == "C")


def format_amount(kurus: int) -> str:
    """Kuruş to the decimal string used in the XML: 1234 -> '12.34'."""
    sign = "-" if kurus < 0 else ""
    kurus = abs(kurus)
    return f"{sign}{kurus // 100}.{kurus % 100:02d}"


_CLERKS = ("Ayşe Yılmaz", "Mehmet Öztürk", "Şükrü Çelik", "Gülşen Doğan")


def _sub(rng: random.Random, account: str) -> tuple[str, str]:
    return rng.choice(SUB_ACCOUNTS[account])


def iter_entries(
    rng: random.Random, year: int, month: int, *, first_number: int = 1
) -> Iterator[Entry]:
    """An endless stream of balanced entries dated within the month, in date order.

    Dates advance slowly through the month and stay on the last day once it is
    reached, so any number of entries stays inside the period.
    """
    last_day = calendar.monthrange(year, month)[1]
    number = first_number
    doc_counter = 0
    day = 1
    while True:
        if day < last_day and rng.random() < 0.08:
            day += 1
        date = dt.date(year, month, day)
        doc_counter += 1
        kind = rng.random()
        lines: list[tuple[str, int, str, str, str | None]] = []  # account, kurus, dc, doctype, paymethod
        net = rng.randrange(10_000, 5_000_000)  # 100.00 .. 50,000.00 TL
        kdv = net * KDV_RATE_PERCENT // 100
        if kind < 0.30:
            comment = "Yurtiçi satış faturası"
            doctype = "invoice"
            lines = [("120", net + kdv, "D", doctype, None), ("600", net, "C", doctype, None),
                     ("391", kdv, "C", doctype, None)]
        elif kind < 0.38:
            comment = "İhracat faturası"
            doctype = "invoice"
            lines = [("120", net, "D", doctype, None), ("601", net, "C", doctype, None)]
        elif kind < 0.43:
            comment = "Kira geliri faturası"
            doctype = "invoice"
            lines = [("102", net + kdv, "D", doctype, None), ("602", net, "C", doctype, None),
                     ("391", kdv, "C", doctype, None)]
        elif kind < 0.63:
            comment = "Alış faturası"
            doctype = rng.choice(("invoice", "shipment", "order-vendor"))
            lines = [("153", net, "D", doctype, None), ("191", kdv, "D", doctype, None),
                     ("320", net + kdv, "C", doctype, None)]
        elif kind < 0.73:
            comment = "Gider faturası"
            doctype = "invoice"
            lines = [("770", net, "D", doctype, None), ("191", kdv, "D", doctype, None),
                     ("100", net + kdv, "C", doctype, "cash")]
        elif kind < 0.83:
            comment = "Müşteri tahsilatı"
            doctype = rng.choice(("receipt", "check", "order-customer"))
            lines = [("102", net, "D", doctype, "check" if doctype == "check" else "transfer"),
                     ("120", net, "C", doctype, None)]
        elif kind < 0.93:
            comment = "Satıcıya ödeme"
            doctype = rng.choice(("voucher", "check"))
            lines = [("320", net, "D", doctype, None),
                     ("102", net, "C", doctype, "check" if doctype == "check" else "transfer")]
        else:
            comment = "Maaş tahakkuku"
            doctype = "other"
            stopaj = net * 15 // 100
            lines = [("770", net, "D", doctype, None), ("335", net - stopaj, "C", doctype, None),
                     ("360", stopaj, "C", doctype, None)]
        prefix = {"invoice": "FTR", "check": "ÇEK", "voucher": "TDY", "receipt": "MKB", "shipment": "İRS",
                  "order-vendor": "SAS", "order-customer": "SSP", "other": "DKN"}[doctype]
        doc_no = f"{prefix}{year}{doc_counter:08d}"
        built = tuple(
            Line(
                line_number=i,
                account=acct,
                sub_id=sub[0],
                sub_description=sub[1],
                amount_kurus=amt,
                dc=dc,
                document_type=dt_,
                document_number=doc_no,
                document_date=date,
                comment=f"{comment} {doc_no}",
                payment_method=pm,
            )
            for i, (acct, amt, dc, dt_, pm) in enumerate(lines, start=1)
            for sub in (_sub(rng, acct),)
        )
        entry = Entry(number=number, date=date, comment=comment, entered_by=rng.choice(_CLERKS), lines=built)
        assert entry.total_debit == entry.total_credit  # the generator's own invariant
        yield entry
        number += 1
