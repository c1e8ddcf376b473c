"""Writers for the e-Defter documents: Yevmiye (Y), Kebir (K), berats (YB/KB), Defter Raporu (DR).

All bodies are written through writer.CanonicalWriter (canonical, hashed while
written) and signed with signing.build_enveloped_signature.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .content import ACCOUNTS, TAX_DETAIL_ACCOUNTS, Entry, Line, format_amount
from .pki import CertKey
from .signing import build_enveloped_signature
from .writer import XML_DECLARATION, CanonicalWriter, escape_text, root_start_tag

__all__ = [
    "Header",
    "LedgerResult",
    "AccountTotals",
    "write_journal",
    "write_kebir",
    "write_berat",
    "write_report",
]

SOURCE_APPLICATION = "e-Defter Yedekleme Sample Generator (TEST DATA)"
SCHEMA_REF = "../xsd/2006-10-25/plt/case-c-b-m-u-t/gl-plt-all-2006-10-25.xsd"
TZ_TR = dt.timezone(dt.timedelta(hours=3))


@dataclass(frozen=True)
class Header:
    """Facts every document of a set repeats in its header."""

    taxpayer_id: str
    company_name: str
    branch: str | None
    branch_name: str | None
    year: int
    month: int
    unique_id: str | None
    entries_type: str  # journal | ledger | trialbalance
    context_id: str
    creation: dt.datetime
    entries_comment: str
    segment_uuid: str | None = None  # berats: UUID in xbrli:segment

    @property
    def period_start(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def period_end(self) -> dt.date:
        return dt.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])


@dataclass
class AccountTotals:
    debit: int = 0
    credit: int = 0
    lines: int = 0


@dataclass
class LedgerResult:
    """What a written ledger contributes to its berat and to the month's DR."""

    path: Path
    signature_value_b64: str
    signature_value_id: str
    entry_count: int
    first_entry_number: int
    last_entry_number: int
    line_count: int
    total_debit: int
    total_credit: int
    accounts: dict[str, AccountTotals] = field(default_factory=dict)
    spill_dir: Path | None = None


def _ctx(h: Header) -> dict[str, str]:
    return {"contextRef": h.context_id}


def _money(h: Header) -> dict[str, str]:
    return {"contextRef": h.context_id, "unitRef": "try", "decimals": "INF"}


def _count(h: Header) -> dict[str, str]:
    return {"contextRef": h.context_id, "unitRef": "countable", "decimals": "INF"}


def _write_header(w: CanonicalWriter, h: Header) -> None:
    c = _ctx(h)
    w.start("xbrli:xbrl")
    w.leaf("link:schemaRef", "", {"xlink:type": "simple", "xlink:href": SCHEMA_REF})
    w.start("xbrli:context", {"id": h.context_id})
    w.start("xbrli:entity")
    w.leaf("xbrli:identifier", h.taxpayer_id, {"scheme": "http://www.gib.gov.tr"})
    if h.segment_uuid:
        w.start("xbrli:segment")
        w.leaf("gl-cor:uniqueID", h.segment_uuid, c)
        w.end("xbrli:segment")
    w.end("xbrli:entity")
    w.start("xbrli:period")
    w.leaf("xbrli:instant", h.period_end.isoformat())
    w.end("xbrli:period")
    w.end("xbrli:context")
    w.start("xbrli:unit", {"id": "try"})
    w.leaf("xbrli:measure", "iso4217:TRY")
    w.end("xbrli:unit")
    w.start("xbrli:unit", {"id": "countable"})
    w.leaf("xbrli:measure", "xbrli:pure")
    w.end("xbrli:unit")
    w.start("gl-cor:accountingEntries")
    w.start("gl-cor:documentInfo")
    w.leaf("gl-cor:entriesType", h.entries_type, c)
    if h.unique_id:
        w.leaf("gl-cor:uniqueID", h.unique_id, c)
    w.leaf("gl-cor:language", "iso639:tr", c)
    w.leaf("gl-cor:creationDate", h.creation.date().isoformat(), c)
    w.leaf("gl-cor:entriesComment", h.entries_comment, c)
    w.leaf("gl-cor:periodCoveredStart", h.period_start.isoformat(), c)
    w.leaf("gl-cor:periodCoveredEnd", h.period_end.isoformat(), c)
    w.leaf("gl-bus:sourceApplication", SOURCE_APPLICATION, c)
    w.end("gl-cor:documentInfo")
    w.start("gl-cor:entityInformation")
    w.start("gl-bus:entityPhoneNumber")
    w.leaf("gl-bus:phoneNumberDescription", "main", c)
    w.leaf("gl-bus:phoneNumber", "0312 000 00 00", c)
    w.end("gl-bus:entityPhoneNumber")
    w.start("gl-bus:entityEmailAddressStructure")
    w.leaf("gl-bus:entityEmailAddress", f"muhasebe-{h.taxpayer_id}@example.com.tr", c)
    w.end("gl-bus:entityEmailAddressStructure")
    orgs = [(h.company_name, "Kurum Unvanı")]
    if h.branch is not None:
        orgs.append((h.branch, "Şube No"))
        orgs.append((h.branch_name or f"Şube {h.branch}", "Şube Adı"))
    for ident, desc in orgs:
        w.start("gl-bus:organizationIdentifiers")
        w.leaf("gl-bus:organizationIdentifier", ident, c)
        w.leaf("gl-bus:organizationDescription", desc, c)
        w.end("gl-bus:organizationIdentifiers")
    w.start("gl-bus:organizationAddress")
    w.leaf("gl-bus:organizationBuildingNumber", "12", c)
    w.leaf("gl-bus:organizationAddressStreet", "Atatürk Bulvarı", c)
    w.leaf("gl-bus:organizationAddressCity", "Ankara", c)
    w.leaf("gl-bus:organizationAddressZipOrPostalCode", "06420", c)
    w.leaf("gl-bus:organizationAddressCountry", "Türkiye", c)
    w.end("gl-bus:organizationAddress")
    w.start("gl-bus:entityWebSite")
    w.leaf("gl-bus:webSiteURL", "https://www.example.com.tr", c)
    w.end("gl-bus:entityWebSite")
    w.leaf("gl-bus:businessDescription", "Toptan ticaret (TEST VERİSİ)", c)
    w.leaf("gl-bus:fiscalYearStart", dt.date(h.year, 1, 1).isoformat(), c)
    w.leaf("gl-bus:fiscalYearEnd", dt.date(h.year, 12, 31).isoformat(), c)
    w.start("gl-bus:accountantInformation")
    w.leaf("gl-bus:accountantName", "Serbest Muhasebeci Mali Müşavir Örnek", c)
    w.leaf("gl-bus:accountantEngagementTypeDescription", "Bağımsız Muhasebeci", c)
    w.end("gl-bus:accountantInformation")
    w.end("gl-cor:entityInformation")


def _write_account(w: CanonicalWriter, h: Header, ln: Line) -> None:
    c = _ctx(h)
    w.start("gl-cor:account")
    w.leaf("gl-cor:accountMainID", ln.account, c)
    w.leaf("gl-cor:accountMainDescription", ln.account_description, c)
    w.start("gl-cor:accountSub")
    w.leaf("gl-cor:accountSubDescription", ln.sub_description, c)
    w.leaf("gl-cor:accountSubID", ln.sub_id, c)
    w.end("gl-cor:accountSub")
    w.end("gl-cor:account")


def _write_doc_fields(w: CanonicalWriter, h: Header, ln: Line) -> None:
    c = _ctx(h)
    w.leaf("gl-cor:documentType", ln.document_type, c)
    if ln.document_type == "other":
        w.leaf("gl-cor:documentTypeDescription", "Dekont", c)
    w.leaf("gl-cor:documentNumber", ln.document_number, c)
    w.leaf("gl-cor:documentDate", ln.document_date.isoformat(), c)
    if ln.payment_method:
        w.leaf("gl-bus:paymentMethod", ln.payment_method, c)


def _open(path: Path, root_qname: str) -> tuple[object, CanonicalWriter]:
    fh = open(path, "wb")  # noqa: SIM115 - closed by _finish
    fh.write(XML_DECLARATION)  # outside the canonical form (C14N drops it)
    w = CanonicalWriter(fh)
    w.write(root_start_tag(root_qname) + "\n")
    return fh, w


def _finish(fh: object, w: CanonicalWriter, root_qname: str, *, signer: CertKey, signing_time: dt.datetime,
            sig_id: str) -> tuple[str, str]:
    closing = f"</{root_qname}>"
    digest = w.digest_with_suffix(closing)
    parts = build_enveloped_signature(root_qname=root_qname, doc_digest=digest, signer=signer,
                                      signing_time=signing_time, sig_id=sig_id)
    w.write_unhashed(parts.xml)
    w.write(closing)
    w.flush()
    fh.close()  # type: ignore[attr-defined]
    return parts.signature_value_b64, parts.signature_value_id


def _spill_record(ln: Line, entry: Entry) -> str:
    # Tab-separated; the fields never contain tabs or newlines.
    return "\t".join(
        (str(entry.number), entry.date.isoformat(), ln.sub_id, ln.sub_description, str(ln.amount_kurus), ln.dc,
         ln.document_type, ln.document_number, ln.comment, str(ln.line_number))
    ) + "\n"


def write_journal(path: Path, h: Header, entries: Iterator[Entry], *, signer: CertKey, signing_time: dt.datetime,
                  sig_id: str, max_entries: int | None, target_bytes: int | None) -> LedgerResult:
    """Write a Yevmiye part, streaming; spill lines per account for the Kebir.

    Stops after ``max_entries`` entries or once the file body reaches
    ``target_bytes`` (whole entries only: an entry never spans two parts).
    """
    spill_dir = Path(tempfile.mkdtemp(prefix="edefter-kebir-spill-"))
    spills: dict[str, object] = {}
    accounts: dict[str, AccountTotals] = {}
    fh, w = _open(path, "edefter:defter")
    _write_header(w, h)
    c = _ctx(h)
    m = _money(h)
    n = _count(h)
    count = 0
    lines = 0
    first = last = 0
    total_d = total_c = 0
    for entry in entries:
        if count == 0:
            first = entry.number
        last = entry.number
        count += 1
        w.start("gl-cor:entryHeader")
        w.leaf("gl-cor:enteredBy", entry.entered_by, c)
        w.leaf("gl-cor:enteredDate", entry.date.isoformat(), c)
        w.leaf("gl-cor:entryNumber", str(entry.number), c)
        w.leaf("gl-cor:entryComment", entry.comment, c)
        w.leaf("gl-bus:totalDebit", format_amount(entry.total_debit), m)
        w.leaf("gl-bus:totalCredit", format_amount(entry.total_credit), m)
        w.leaf("gl-cor:entryNumberCounter", str(entry.number), n)
        for ln in entry.lines:
            lines += 1
            w.start("gl-cor:entryDetail")
            w.leaf("gl-cor:lineNumber", str(ln.line_number), c)
            w.leaf("gl-cor:lineNumberCounter", str(ln.line_number), n)
            _write_account(w, h, ln)
            w.leaf("gl-cor:amount", format_amount(ln.amount_kurus), m)
            w.leaf("gl-cor:debitCreditCode", ln.dc, c)
            w.leaf("gl-cor:postingDate", entry.date.isoformat(), c)
            _write_doc_fields(w, h, ln)
            w.leaf("gl-cor:detailComment", ln.comment, c)
            w.end("gl-cor:entryDetail")
            tot = accounts.setdefault(ln.account, AccountTotals())
            tot.lines += 1
            if ln.dc == "D":
                tot.debit += ln.amount_kurus
                total_d += ln.amount_kurus
            else:
                tot.credit += ln.amount_kurus
                total_c += ln.amount_kurus
            sp = spills.get(ln.account)
            if sp is None:
                sp = spills[ln.account] = open(spill_dir / ln.account, "w", encoding="utf-8")  # noqa: SIM115
            sp.write(_spill_record(ln, entry))  # type: ignore[attr-defined]
        w.end("gl-cor:entryHeader")
        if max_entries is not None and count >= max_entries:
            break
        if target_bytes is not None and w.bytes_written + w._buf_len >= target_bytes:
            break
    for sp in spills.values():
        sp.close()  # type: ignore[attr-defined]
    w.end("gl-cor:accountingEntries")
    w.end("xbrli:xbrl")
    sv, sv_id = _finish(fh, w, "edefter:defter", signer=signer, signing_time=signing_time, sig_id=sig_id)
    return LedgerResult(path, sv, sv_id, count, first, last, lines, total_d, total_c, accounts, spill_dir)


def write_kebir(path: Path, h: Header, journal: LedgerResult, *, signer: CertKey, signing_time: dt.datetime,
                sig_id: str) -> LedgerResult:
    """Write the Kebir of one part from the journal's per-account spill files.

    One entryHeader per main account, sorted by account code; its lines in
    journal order. Consumes (deletes) the spill directory.
    """
    assert journal.spill_dir is not None
    fh, w = _open(path, "edefter:defter")
    _write_header(w, h)
    c = _ctx(h)
    m = _money(h)
    n = _count(h)
    total_d = total_c = 0
    lines = 0
    counter = 0
    for account in sorted(journal.accounts):
        tot = journal.accounts[account]
        counter += 1
        w.start("gl-cor:entryHeader")
        w.leaf("gl-cor:entryNumber", account, c)
        w.leaf("gl-cor:entryComment", f"{account} {ACCOUNTS[account]}", c)
        w.leaf("gl-bus:totalDebit", format_amount(tot.debit), m)
        w.leaf("gl-bus:totalCredit", format_amount(tot.credit), m)
        w.leaf("gl-cor:entryNumberCounter", str(counter), n)
        spill = journal.spill_dir / account
        with open(spill, encoding="utf-8") as sp:
            for rec in sp:
                (num, date, sub_id, sub_desc, amount, dc, doctype, docno, comment, line_no) = rec.rstrip(
                    "\n"
                ).split("\t")
                lines += 1
                ln = Line(int(line_no), account, sub_id, sub_desc, int(amount), dc, doctype, docno,
                          dt.date.fromisoformat(date), comment)
                w.start("gl-cor:entryDetail")
                # In the Kebir, lineNumber carries the journal entry (yevmiye madde) number.
                w.leaf("gl-cor:lineNumber", num, c)
                w.leaf("gl-cor:lineNumberCounter", str(lines), n)
                _write_account(w, h, ln)
                w.leaf("gl-cor:amount", format_amount(ln.amount_kurus), m)
                w.leaf("gl-cor:debitCreditCode", dc, c)
                w.leaf("gl-cor:postingDate", date, c)
                _write_doc_fields(w, h, ln)
                w.leaf("gl-cor:detailComment", comment, c)
                w.end("gl-cor:entryDetail")
                if dc == "D":
                    total_d += ln.amount_kurus
                else:
                    total_c += ln.amount_kurus
        os.unlink(spill)
        w.end("gl-cor:entryHeader")
    os.rmdir(journal.spill_dir)
    w.end("gl-cor:accountingEntries")
    w.end("xbrli:xbrl")
    sv, sv_id = _finish(fh, w, "edefter:defter", signer=signer, signing_time=signing_time, sig_id=sig_id)
    return LedgerResult(path, sv, sv_id, counter, journal.first_entry_number, journal.last_entry_number, lines,
                        total_d, total_c, dict(journal.accounts), None)


def write_berat(path: Path, h: Header, ledger: LedgerResult, *, signer: CertKey, signing_time: dt.datetime,
                sig_id: str) -> tuple[str, str]:
    """Write a taxpayer berat (YB or KB): header, entry count, 10-line tax detail, copied SignatureValue."""
    fh, w = _open(path, "edefter:berat")
    _write_header(w, h)
    c = _ctx(h)
    m = _money(h)
    n = _count(h)
    w.start("gl-cor:entryHeader")
    w.leaf("gl-bus:numberOfEntries", str(ledger.entry_count), n)
    w.leaf("gl-bus:totalDebit", format_amount(ledger.total_debit), m)
    w.leaf("gl-bus:totalCredit", format_amount(ledger.total_credit), m)
    w.leaf("gl-cor:entryNumberCounter", str(ledger.last_entry_number), n)
    line = 0
    for account in TAX_DETAIL_ACCOUNTS:
        tot = ledger.accounts.get(account, AccountTotals())
        for dc, amount in (("D", tot.debit), ("C", tot.credit)):
            line += 1
            w.start("gl-cor:entryDetail")
            w.leaf("gl-cor:lineNumber", str(line), c)
            w.start("gl-cor:account")
            w.leaf("gl-cor:accountMainID", account, c)
            w.leaf("gl-cor:accountMainDescription", ACCOUNTS[account], c)
            w.end("gl-cor:account")
            w.leaf("gl-cor:amount", format_amount(amount), m)
            w.leaf("gl-cor:debitCreditCode", dc, c)
            w.end("gl-cor:entryDetail")
    w.end("gl-cor:entryHeader")
    w.end("gl-cor:accountingEntries")
    w.end("xbrli:xbrl")
    # The chain's link: the ledger's SignatureValue, copied with its Id.
    w.write(f'<ds:SignatureValue Id="{ledger.signature_value_id}">{escape_text(ledger.signature_value_b64)}'
            "</ds:SignatureValue>\n")
    return _finish(fh, w, "edefter:berat", signer=signer, signing_time=signing_time, sig_id=sig_id)


def write_report(path: Path, h: Header, accounts: dict[str, AccountTotals], *, signer: CertKey,
                 signing_time: dt.datetime, sig_id: str) -> tuple[str, str]:
    """Write the Defter Raporu: one entryHeader per account with the period's debit/credit totals."""
    fh, w = _open(path, "edefter:defterraporu")
    _write_header(w, h)
    c = _ctx(h)
    m = _money(h)
    n = _count(h)
    for account in sorted(accounts):
        tot = accounts[account]
        w.start("gl-cor:entryHeader")
        w.leaf("gl-bus:numberOfEntries", str(tot.lines), n)
        w.leaf("gl-bus:totalDebit", format_amount(tot.debit), m)
        w.leaf("gl-bus:totalCredit", format_amount(tot.credit), m)
        balance = tot.debit - tot.credit
        w.start("gl-cor:entryDetail")
        w.start("gl-cor:account")
        w.leaf("gl-cor:accountMainID", account, c)
        w.leaf("gl-cor:accountMainDescription", ACCOUNTS[account], c)
        w.end("gl-cor:account")
        w.leaf("gl-cor:amount", format_amount(abs(balance)), m)
        w.leaf("gl-cor:debitCreditCode", "D" if balance >= 0 else "C", c)
        w.leaf("gl-cor:detailComment", "Dönem bakiyesi", c)
        w.end("gl-cor:entryDetail")
        w.end("gl-cor:entryHeader")
    w.end("gl-cor:accountingEntries")
    w.end("xbrli:xbrl")
    return _finish(fh, w, "edefter:defterraporu", signer=signer, signing_time=signing_time, sig_id=sig_id)
