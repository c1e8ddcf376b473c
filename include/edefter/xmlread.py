"""Safe, streaming reading of the header facts of one e-Defter XML file.

The files come from other people's software and may be hostile or broken, and a
ledger part can be 200 MB, so this module:

* never resolves entities, never loads a DTD, never touches the network, and
  rejects any document that carries a DOCTYPE at all (e-Defter never does);
* parses incrementally (lxml's pull parser fed in chunks) and frees every
  element once it has ended, so memory stays bounded by the nesting depth,
  not by the file size;
* caps bytes, depth, text size, attribute count and the size of one start tag
  (``XmlLimits``); the start tag is measured on the raw bytes before they reach
  libxml2, which would otherwise build every attribute of a huge tag first;
* reports every failure as ``XmlReadError`` naming the file and the rule.

Only facts are extracted; the bytes are never rewritten (signatures).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from include.edefter.naming import Period
from include.edefter.problems import Problem
from include.edefter.settings import XmlLimits

__all__ = [
    "NS",
    "EntryAggregates",
    "FileFacts",
    "XmlReadError",
    "read_facts",
    "read_facts_bytes",
    "read_header_facts",
]

NS = {
    "edefter": "http://www.edefter.gov.tr",
    "xbrli": "http://www.xbrl.org/2003/instance",
    "gl-cor": "http://www.xbrl.org/int/gl/cor/2006-10-25",
    "gl-bus": "http://www.xbrl.org/int/gl/bus/2006-10-25",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xades": "http://uri.etsi.org/01903/v1.3.2#",
    "xades141": "http://uri.etsi.org/01903/v1.4.1#",
}


def _q(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


_ROOTS = {
    _q("edefter", "defter"): "defter",
    _q("edefter", "berat"): "berat",
    _q("edefter", "defterraporu"): "defterraporu",
    # Some software writes the camel-case form; GİB's XSD says lower case.
    _q("edefter", "defterRaporu"): "defterraporu",
}

_DS_SIGNATURE = _q("ds", "Signature")
_DS_SIGNATURE_VALUE = _q("ds", "SignatureValue")
_COUNTER_SIGNATURES = {_q("xades", "CounterSignature"), _q("xades141", "CounterSignature")}
_XBRL_CONTEXT = _q("xbrli", "context")
_XBRL_ENTITY = _q("xbrli", "entity")
_XBRL_IDENTIFIER = _q("xbrli", "identifier")
_XBRL_SEGMENT = _q("xbrli", "segment")
_DOCUMENT_INFO = _q("gl-cor", "documentInfo")
_ENTRY_HEADER = _q("gl-cor", "entryHeader")
_ORG_IDS = _q("gl-bus", "organizationIdentifiers")
_ORG_ID = _q("gl-bus", "organizationIdentifier")
_ORG_DESC = _q("gl-bus", "organizationDescription")

_DOCINFO_FIELDS = {
    _q("gl-cor", "entriesType"): "entries_type",
    _q("gl-cor", "uniqueID"): "unique_id",
    _q("gl-cor", "creationDate"): "creation_date",
    _q("gl-cor", "periodCoveredStart"): "period_start",
    _q("gl-cor", "periodCoveredEnd"): "period_end",
    _q("gl-bus", "sourceApplication"): "source_application",
}
_FISCAL_FIELDS = {
    _q("gl-bus", "fiscalYearStart"): "fiscal_year_start",
    _q("gl-bus", "fiscalYearEnd"): "fiscal_year_end",
}
_ENTRY_COUNTER = _q("gl-bus", "numberOfEntries")
# Entry-level facts for the business rules (include/edefter/rules.py), aggregated while streaming.
_ENTRY_DETAIL = _q("gl-cor", "entryDetail")
_AMOUNT = _q("gl-cor", "amount")
_DC_CODE = _q("gl-cor", "debitCreditCode")
_ACCOUNT_MAIN_ID = _q("gl-cor", "accountMainID")
_ENTRY_NUMBER = _q("gl-cor", "entryNumber")
_ENTRY_NUMBER_COUNTER = _q("gl-cor", "entryNumberCounter")
_LINE_NUMBER_COUNTER = _q("gl-cor", "lineNumberCounter")
_TOTAL_DEBIT = _q("gl-bus", "totalDebit")
_TOTAL_CREDIT = _q("gl-bus", "totalCredit")
_ENTRY_LEAVES = frozenset(
    {_AMOUNT, _DC_CODE, _ACCOUNT_MAIN_ID, _ENTRY_NUMBER, _ENTRY_NUMBER_COUNTER, _LINE_NUMBER_COUNTER,
     _TOTAL_DEBIT, _TOTAL_CREDIT}
)
_LINE_SIDE = frozenset({_AMOUNT, _DC_CODE})
# Bounds of the aggregates: they never grow with the file size.
MAX_OFFENDERS = 5  # first offenders kept per rule (the count is exact)
MAX_ACCOUNTS = 2000  # distinct main accounts totalled (Tekdüzen main accounts are 3 digits)

_WS = re.compile(rb"\s+")
# libxml2's wording for entity trouble (not tag names such as entityInformation).
_ENTITY_MSG = re.compile(r"(?i)entity '|entityref|entity reference|entity loop|amplification|entities")
# A reference to anything but the five predefined entities (and char refs).
_ENTITY_REF = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);|#)[A-Za-z_:][\w.:-]*;")


class XmlReadError(Exception):
    """The file could not be read as a safe e-Defter XML document.

    ``rule`` is a stable id (``xml.not_xml``, ``xml.truncated``, ``xml.dtd``,
    ``xml.entity``, ``xml.too_large``, ``xml.too_deep``, ``xml.text_too_large``,
    ``xml.too_many_attributes``, ``xml.start_tag_too_large``, ``xml.malformed``, ``xml.wrong_root``,
    ``file.unreadable``).
    """

    def __init__(self, name: str, rule: str, message_en: str, message_tr: str) -> None:
        self.name = name
        self.rule = rule
        self.message_en = message_en
        self.message_tr = message_tr
        super().__init__(f"{name}: [{rule}] {message_en} / {message_tr}")

    def to_problem(self) -> Problem:
        return Problem(self.rule, (self.name,), self.message_tr, self.message_en)


@dataclass(frozen=True)
class EntryAggregates:
    """Compact aggregates over a file's gl-cor:entryHeader/entryDetail elements, built while streaming.

    Sizes are bounded whatever the file size: counts and totals are exact; offender lists keep the
    first ``MAX_OFFENDERS``; per-account totals keep at most ``MAX_ACCOUNTS`` main accounts
    (``accounts_overflow`` says when more were seen). Amounts are ``Decimal`` (never float).
    Entries are labelled by entryNumberCounter, else entryNumber, else their ordinal ("#n").
    """

    entries: int = 0
    lines: int = 0
    total_debit: Decimal = Decimal(0)  # sum of gl-cor:amount with debitCreditCode D
    total_credit: Decimal = Decimal(0)
    header_total_debit: Decimal | None = None  # sum of entryHeader/gl-bus:totalDebit (None: never present)
    header_total_credit: Decimal | None = None
    unbalanced_entries: int = 0  # ledger entries whose D lines do not sum to their C lines
    first_unbalanced: tuple[str, ...] = ()
    header_total_mismatches: int = 0  # entryHeader totalDebit/totalCredit differ from the lines' sums
    first_header_total_mismatches: tuple[str, ...] = ()
    short_entries: int = 0  # entries with fewer than 2 entryDetail lines
    first_short_entries: tuple[str, ...] = ()
    # amount not a number (> 0, at most 2 decimals in ledgers) or code not D/C (debit/credit count as D/C);
    # an entry with a line lacking a usable amount or code is not judged for balance
    invalid_lines: int = 0
    first_invalid_lines: tuple[str, ...] = ()
    first_entry_counter: int | None = None  # entryNumberCounter of the first / last entry
    last_entry_counter: int | None = None
    entry_counter_breaks: int = 0  # entryNumberCounter not previous + 1 (or not an integer)
    first_entry_counter_breaks: tuple[str, ...] = ()
    line_counter_breaks: int = 0  # lineNumberCounter neither restarting at 1 nor previous + 1
    first_line_counter_breaks: tuple[str, ...] = ()
    accounts: tuple[tuple[str, Decimal, Decimal], ...] = ()  # (accountMainID, debit, credit), sorted
    accounts_overflow: bool = False

    def account_totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {a: (d, c) for a, d, c in self.accounts}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Decimal):
                v = str(v)
            elif f.name == "accounts":
                v = [[a, str(d), str(c)] for a, d, c in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


class _EntryAgg:
    """Mutable state behind ``EntryAggregates`` (one per file; O(1) memory per event)."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.entries = 0
        self.lines = 0
        self.total_d = Decimal(0)
        self.total_c = Decimal(0)
        self.hdr_d: Decimal | None = None
        self.hdr_c: Decimal | None = None
        self.counts: dict[str, int] = {}
        self.firsts: dict[str, list[str]] = {}
        self.first_counter: int | None = None
        self.last_counter: int | None = None
        self.prev_line_counter: int | None = None
        self.accounts: dict[str, list[Decimal]] = {}
        self.accounts_overflow = False
        self._reset_entry()
        self._reset_line()

    def _reset_entry(self) -> None:
        self.e_number: str | None = None
        self.e_counter: str | None = None
        self.e_total_d: str | None = None
        self.e_total_c: str | None = None
        self.e_d = Decimal(0)
        self.e_c = Decimal(0)
        self.e_lines = 0
        self.e_accounts: set[str] = set()
        self.e_prev_line_counter: int | None = None
        self.e_indeterminate = False  # a line without a usable amount or D/C code: no balance verdict
        self.in_entry = False

    def _reset_line(self) -> None:
        self.l_amount: str | None = None
        self.l_dc: str | None = None
        self.l_account: str | None = None
        self.l_counter: str | None = None
        self.in_line = False

    def _offend(self, rule: str, label: str) -> None:
        self.counts[rule] = self.counts.get(rule, 0) + 1
        first = self.firsts.setdefault(rule, [])
        if len(first) < MAX_OFFENDERS:
            first.append(label)

    def _label(self) -> str:
        return (self.e_counter or self.e_number or f"#{self.entries}").strip()[:40]

    def _add_account(self, account: str, d: Decimal, c: Decimal) -> None:
        tot = self.accounts.get(account)
        if tot is None:
            if len(self.accounts) >= MAX_ACCOUNTS:
                self.accounts_overflow = True
                return
            tot = self.accounts[account] = [Decimal(0), Decimal(0)]
        tot[0] += d
        tot[1] += c

    def leaf(self, tag: str, text: str | None) -> None:
        value = (text or "").strip()
        if self.in_line:
            if tag == _AMOUNT:
                self.l_amount = value
            elif tag == _DC_CODE:
                self.l_dc = value
            elif tag == _ACCOUNT_MAIN_ID:
                self.l_account = value
            elif tag == _LINE_NUMBER_COUNTER:
                self.l_counter = value
        elif self.in_entry:
            if tag == _ENTRY_NUMBER_COUNTER:
                self.e_counter = value
            elif tag == _ENTRY_NUMBER:
                self.e_number = value
            elif tag == _TOTAL_DEBIT:
                self.e_total_d = value
            elif tag == _TOTAL_CREDIT:
                self.e_total_c = value

    def start_entry(self) -> None:
        self._reset_entry()
        self.in_entry = True
        self.entries += 1

    def start_line(self) -> None:
        self._reset_line()
        self.in_line = True

    def end_line(self) -> None:
        if not self.in_line:
            return
        self.in_line = False
        self.lines += 1
        self.e_lines += 1
        amount = _decimal(self.l_amount)
        dc = _DC.get((self.l_dc or "").strip().lower(), "")
        if amount is None or not dc:
            self.e_indeterminate = True
        if (
            amount is None
            or dc not in ("D", "C")
            or (self.root == "defter" and (amount <= 0 or _too_many_decimals(self.l_amount or "", amount)))
        ):
            self._offend(
                "invalid_lines", f"{self._label()}/{self.e_lines}: amount={self.l_amount!r} code={self.l_dc!r}"
            )
        if amount is not None and dc:
            d, c = (amount, Decimal(0)) if dc == "D" else (Decimal(0), amount)
            self.e_d += d
            self.e_c += c
            self.total_d += d
            self.total_c += c
            if self.l_account:
                self.e_accounts.add(self.l_account)
                if self.root != "defterraporu":
                    self._add_account(self.l_account, d, c)
        # lineNumberCounter: the first line of an entry restarts at 1 or continues the file's count;
        # every other line is the previous one + 1 (both conventions are seen; see rules.py).
        if self.l_counter is not None:
            n = int(self.l_counter) if self.l_counter.isdigit() else None
            if self.e_prev_line_counter is None:
                ok = n is not None and (n == 1 or (self.prev_line_counter is not None and n == self.prev_line_counter + 1))
            else:
                ok = n is not None and n == self.e_prev_line_counter + 1
            if not ok:
                self._offend("line_counter_breaks", f"{self._label()}/{self.l_counter}")
            if n is not None:
                self.e_prev_line_counter = self.prev_line_counter = n

    def end_entry(self) -> None:
        if not self.in_entry:
            return
        self.end_line()
        self.in_entry = False
        label = self._label()
        hd, hc = _decimal(self.e_total_d), _decimal(self.e_total_c)
        if hd is not None:
            self.hdr_d = (self.hdr_d or Decimal(0)) + hd
        if hc is not None:
            self.hdr_c = (self.hdr_c or Decimal(0)) + hc
        if self.root == "defter":
            if self.e_d != self.e_c and not self.e_indeterminate:
                self._offend("unbalanced", f"{label} (D {self.e_d} / C {self.e_c})")
            if self.e_lines < 2:
                self._offend("short", label)
            if (hd is not None and hd != self.e_d) or (hc is not None and hc != self.e_c):
                self._offend("header_totals", f"{label} (totalDebit {self.e_total_d} / totalCredit {self.e_total_c}; "
                             f"lines D {self.e_d} / C {self.e_c})")
        elif self.root == "defterraporu" and len(self.e_accounts) == 1:
            self._add_account(next(iter(self.e_accounts)), hd or Decimal(0), hc or Decimal(0))
        if self.e_counter is not None:
            n = int(self.e_counter) if self.e_counter.isdigit() else None
            if n is None or (self.last_counter is not None and n != self.last_counter + 1):
                self._offend("entry_counter_breaks", f"{self.last_counter} -> {self.e_counter}")
            if n is not None:
                if self.first_counter is None:
                    self.first_counter = n
                self.last_counter = n

    def result(self) -> EntryAggregates:
        def n(rule: str) -> int:
            return self.counts.get(rule, 0)

        def f(rule: str) -> tuple[str, ...]:
            return tuple(self.firsts.get(rule, ()))

        return EntryAggregates(
            entries=self.entries,
            lines=self.lines,
            total_debit=self.total_d,
            total_credit=self.total_c,
            header_total_debit=self.hdr_d,
            header_total_credit=self.hdr_c,
            unbalanced_entries=n("unbalanced"),
            first_unbalanced=f("unbalanced"),
            header_total_mismatches=n("header_totals"),
            first_header_total_mismatches=f("header_totals"),
            short_entries=n("short"),
            first_short_entries=f("short"),
            invalid_lines=n("invalid_lines"),
            first_invalid_lines=f("invalid_lines"),
            first_entry_counter=self.first_counter,
            last_entry_counter=self.last_counter,
            entry_counter_breaks=n("entry_counter_breaks"),
            first_entry_counter_breaks=f("entry_counter_breaks"),
            line_counter_breaks=n("line_counter_breaks"),
            first_line_counter_breaks=f("line_counter_breaks"),
            accounts=tuple((a, t[0], t[1]) for a, t in sorted(self.accounts.items())),
            accounts_overflow=self.accounts_overflow,
        )


# gl-gen:debitCreditCodeItemType allows D, C, debit, credit (and "undefined", which is no side).
_DC = {"d": "D", "debit": "D", "c": "C", "credit": "C"}


def _too_many_decimals(text: str, amount: Decimal) -> bool:
    """More than 2 decimals (cheap on the plain form "123.45"; exponent forms go through Decimal)."""
    if "e" in text or "E" in text:
        exp = amount.as_tuple().exponent
        return isinstance(exp, int) and exp < -2
    _, dot, frac = text.strip().partition(".")
    return bool(dot) and len(frac) > 2


def _decimal(text: str | None) -> Decimal | None:
    if not text or len(text) > 40:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


@dataclass(frozen=True)
class FileFacts:
    """What one e-Defter XML says about itself (all optional: real files are messy)."""

    root: str  # 'defter' | 'berat' | 'defterraporu'
    entries_type: str | None = None  # journal | ledger | trialbalance (as written)
    taxpayer_id: str | None = None  # xbrli:identifier
    period: Period | None = None  # month of periodCoveredStart
    period_start: date | None = None
    period_end: date | None = None
    unique_id: str | None = None  # documentInfo uniqueID, e.g. YEV201909000010
    berat_uuid: str | None = None  # xbrli:segment/gl-cor:uniqueID (berats)
    branch_no: str | None = None  # organizationIdentifiers "Şube No"
    branch_name: str | None = None  # "Şube Adı"
    company_name: str | None = None  # "Kurum Unvanı" or "Adı Soyadı"
    creation_date: date | None = None
    source_application: str | None = None
    fiscal_year_start: date | None = None
    fiscal_year_end: date | None = None
    entry_count: int | None = None  # berat: entryHeader/gl-bus:numberOfEntries
    entry_header_count: int = 0  # number of gl-cor:entryHeader elements
    context_id: str | None = None  # first xbrli:context/@id (journal_context, ledger_context, ...)
    signature_value: str | None = None  # this file's own ds:SignatureValue, whitespace removed
    copied_signature_value: str | None = None  # berat: edefter:berat/ds:SignatureValue
    signature_count: int = 0  # ds:Signature elements anywhere (incl. counter-signatures)
    has_counter_signature: bool = False  # xades:CounterSignature present
    counter_signature_value: str | None = None
    size: int = 0  # XML bytes read
    # Aggregates over the entries (ledgers, berats, DR); None from read_header_facts.
    entries: EntryAggregates | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, EntryAggregates):
                out[f.name] = v.to_dict()
                continue
            out[f.name] = v.isoformat() if isinstance(v, date) else str(v) if isinstance(v, Period) else v
        return out


def _parent_tag(el: etree._Element) -> object:
    par = el.getparent()
    return par.tag if par is not None else None


def _norm_label(text: str) -> str:
    """'Şube No', 'SUBE NO', 'şube_no' -> 'subeno' (labels vary between vendors)."""
    table = str.maketrans("şŞıİüÜğĞöÖçÇ", "ssiiuuggoocc")
    return re.sub(r"[\s_.:-]+", "", text.translate(table).casefold())


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _clean_b64(text: str | None) -> str | None:
    if text is None:
        return None
    cleaned = _WS.sub(b"", text.encode("utf-8", "replace")).decode("ascii", "replace")
    return cleaned or None


@contextmanager
def _as_stream(source: Path | BinaryIO, name: str) -> Generator[BinaryIO, None, None]:
    if isinstance(source, (str, Path)):
        try:
            fh = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise XmlReadError(
                name,
                "file.unreadable",
                f"cannot open the file: {exc.strerror or exc}",
                f"dosya açılamadı: {exc.strerror or exc}",
            ) from exc
        try:
            yield fh
        finally:
            fh.close()
    else:
        yield source


_FACT_TAGS = (
    *_ROOTS,
    _DS_SIGNATURE,
    _DS_SIGNATURE_VALUE,
    *_COUNTER_SIGNATURES,
    _XBRL_CONTEXT,
    _XBRL_IDENTIFIER,
    _ENTRY_HEADER,
    _ORG_IDS,
    _ORG_ID,
    _ORG_DESC,
    *_DOCINFO_FIELDS,
    *_FISCAL_FIELDS,
    _ENTRY_COUNTER,
    _ENTRY_DETAIL,
    *_ENTRY_LEAVES,
)


_local = threading.local()


def _xpath(expr: str) -> etree.XPath:
    # One compiled expression per thread: lxml serializes calls of one XPath object
    # with a lock, and these run without the GIL, so threads must not share them.
    cache: dict[str, etree.XPath] | None = getattr(_local, "xpaths", None)
    if cache is None:
        cache = _local.xpaths = {}
    x = cache.get(expr)
    if x is None:
        x = cache[expr] = etree.XPath(expr)
    return x


def _attr_check(limit: int, scope: str) -> etree.XPath:
    """True if an element in ``scope`` has more than ``limit`` attributes (xmlns are not attributes)."""
    return _xpath(f"boolean({scope}descendant-or-self::*[@*[{limit + 1}]])")


def _text_check(limit: int, scope: str) -> etree.XPath:
    """True if a text node in ``scope`` (or a tail among the batch roots) is longer than ``limit`` chars."""
    tails = f" | preceding-sibling::text()[string-length() > {limit}]" if scope else ""
    return _xpath(f"boolean({scope}descendant-or-self::text()[string-length() > {limit}]{tails})")


def _depth_check(steps: int) -> etree.XPath:
    """True if an element ``steps`` levels below a batch root (a preceding sibling) exists."""
    return _xpath("boolean(preceding-sibling::*" + "/*" * steps + ")")


class _Collector:
    """Turns the parser's filtered events into facts, and sweeps finished elements away.

    The parser only reports the elements that carry facts (``_FACT_TAGS``); every other
    element is built by libxml2 in C and never seen by Python one by one. After each fed
    chunk, ``sweep`` removes every finished element (all but the last child along the
    tree's rightmost path, which is the path of open elements) after checking the limits
    on that whole batch with compiled XPath (C), so memory stays bounded by one chunk plus
    the open path, and per-element Python work is gone.
    """

    def __init__(self, name: str, limits: XmlLimits) -> None:
        self.name = name
        self.limits = limits
        self.root: str | None = None
        self.root_el: etree._Element | None = None
        self.v: dict[str, Any] = {}
        self.signature_count = 0
        self.entry_header_count = 0
        self.org: dict[str, str] = {}
        self.agg = _EntryAgg()
        # The open path at the previous sweep: the only elements whose text may have
        # grown over more than one chunk (see sweep).
        self.prev_path: list[etree._Element] = []
        self._attrs_in_batch = _attr_check(limits.max_attributes, "preceding-sibling::*/")
        self._text_in_batch = _text_check(limits.max_text_bytes, "preceding-sibling::*/")

    def _err(self, rule: str, en: str, tr: str) -> XmlReadError:
        return XmlReadError(self.name, rule, en, tr)

    def _too_deep(self) -> XmlReadError:
        return self._err(
            "xml.too_deep",
            f"elements nest deeper than {self.limits.max_depth} levels",
            f"elemanlar {self.limits.max_depth} seviyeden derin iç içe",
        )

    def _too_many_attributes(self) -> XmlReadError:
        return self._err(
            "xml.too_many_attributes",
            f"an element has more than {self.limits.max_attributes} attributes",
            f"bir elemanın {self.limits.max_attributes} taneden fazla özniteliği var",
        )

    def _text_too_large(self) -> XmlReadError:
        return self._err(
            "xml.text_too_large",
            f"a text node is larger than {self.limits.max_text_bytes} bytes",
            f"bir metin düğümü {self.limits.max_text_bytes} bayttan büyük",
        )

    def set_root(self, el: etree._Element) -> None:
        kind = _ROOTS.get(el.tag) if isinstance(el.tag, str) else None
        if kind is None:
            raise self._err(
                "xml.wrong_root",
                f"root element must be edefter:defter, edefter:berat or edefter:defterraporu, got {el.tag}",
                f"kök eleman edefter:defter, edefter:berat veya edefter:defterraporu olmalı, {el.tag} bulundu",
            )
        self.root = kind
        self.root_el = el
        self.agg.root = kind

    def event(self, event: str, el: etree._Element) -> None:
        tag = el.tag
        if tag in _ENTRY_LEAVES:
            # Leaves: their text is complete at "end" (never swept before its end event). An amount
            # or D/C code counts only as a direct child of entryDetail (not of nested structures).
            if event == "end" and (tag not in _LINE_SIDE or _parent_tag(el) == _ENTRY_DETAIL):
                self.agg.leaf(tag, el.text)
            return
        if tag == _ENTRY_DETAIL:
            if event == "start":
                self.agg.start_line()
            else:
                self.agg.end_line()
            return
        if event == "start":
            if tag == _ENTRY_HEADER:
                self.entry_header_count += 1
                self.agg.start_entry()
            elif tag == _DS_SIGNATURE:
                self.signature_count += 1
            elif tag in _COUNTER_SIGNATURES:
                self.v["has_counter_signature"] = True
            elif tag == _XBRL_CONTEXT and "context_id" not in self.v:
                cid = el.get("id")
                if cid:
                    self.v["context_id"] = cid
            elif tag == _ORG_IDS:
                self.org = {}
            return
        if tag == _ENTRY_HEADER:
            self.agg.end_entry()
            return
        if tag in _ROOTS:
            return
        par = el.getparent()
        parent = par.tag if par is not None else None
        v = self.v
        # Text sizes are checked by the sweep; reading a fact's text is bounded by then
        # only for the few fact elements, which is why they are read here, not checked.
        text = el.text
        if tag == _DS_SIGNATURE_VALUE:
            if any(a.tag in _COUNTER_SIGNATURES for a in el.iterancestors()):
                v.setdefault("counter_signature_value", _clean_b64(text))
            elif par is not None and par is self.root_el:
                v.setdefault("copied_signature_value", _clean_b64(text))
            elif parent == _DS_SIGNATURE and par is not None and par.getparent() is self.root_el:
                v.setdefault("signature_value", _clean_b64(text))
        elif parent == _DOCUMENT_INFO and tag in _DOCINFO_FIELDS:
            v.setdefault(_DOCINFO_FIELDS[tag], (text or "").strip())
        elif tag in _FISCAL_FIELDS:
            v.setdefault(_FISCAL_FIELDS[tag], (text or "").strip())
        elif tag == _XBRL_IDENTIFIER and parent == _XBRL_ENTITY:
            v.setdefault("taxpayer_id", (text or "").strip())
        elif tag == _q("gl-cor", "uniqueID") and parent == _XBRL_SEGMENT:
            v.setdefault("berat_uuid", (text or "").strip())
        elif tag == _ENTRY_COUNTER and parent == _ENTRY_HEADER and self.root == "berat":
            v.setdefault("entry_count", (text or "").strip())
        elif tag == _ORG_ID and parent == _ORG_IDS:
            self.org["id"] = (text or "").strip()
        elif tag == _ORG_DESC and parent == _ORG_IDS:
            self.org["desc"] = (text or "").strip()
        elif tag == _ORG_IDS:
            label = _norm_label(self.org.get("desc", ""))
            value = self.org.get("id") or None
            key = {
                "kurumunvani": "company_name",
                "adisoyadi": "company_name",
                "subeno": "branch_no",
                "subeadi": "branch_name",
            }.get(label)
            if key and value:
                v.setdefault(key, value)

    def facts(self, size: int) -> FileFacts:
        assert self.root is not None
        v = self.v
        start = _parse_date(v.get("period_start"))
        entry_count: int | None = None
        raw_count = v.get("entry_count")
        if raw_count and raw_count.isdigit():
            entry_count = int(raw_count)
        period: Period | None = None
        if start is not None:
            try:
                period = Period(start.year, start.month)
            except ValueError:
                period = None
        return FileFacts(
            root=self.root,
            entries_type=v.get("entries_type") or None,
            taxpayer_id=v.get("taxpayer_id") or None,
            period=period,
            period_start=start,
            period_end=_parse_date(v.get("period_end")),
            unique_id=v.get("unique_id") or None,
            berat_uuid=v.get("berat_uuid") or None,
            branch_no=v.get("branch_no"),
            branch_name=v.get("branch_name"),
            company_name=v.get("company_name"),
            creation_date=_parse_date(v.get("creation_date")),
            source_application=v.get("source_application") or None,
            fiscal_year_start=_parse_date(v.get("fiscal_year_start")),
            fiscal_year_end=_parse_date(v.get("fiscal_year_end")),
            entry_count=entry_count,
            entry_header_count=self.entry_header_count,
            context_id=v.get("context_id"),
            signature_value=v.get("signature_value"),
            copied_signature_value=v.get("copied_signature_value"),
            signature_count=self.signature_count,
            has_counter_signature=bool(v.get("has_counter_signature")),
            counter_signature_value=v.get("counter_signature_value"),
            size=size,
            entries=self.agg.result(),
        )

    def sweep(self, fed: int) -> None:
        """Check and drop every finished element; ``fed`` = bytes fed since the last sweep.

        After a sweep the tree is only the open path (rightmost path from the root), so
        at the next sweep every element off that path was created, and finished, from
        the bytes fed in between. A text node of such an element is therefore at most
        ``fed`` characters long (no entities: every character costs at least one byte);
        only the text that was growing at the previous sweep (the last text child of
        an element on the old open path: its ``text`` or the ``tail`` of its child on
        the path) can be longer, and is measured directly. Depth and attribute count
        have no such bound and are checked by XPath on each finished batch.
        """
        root = self.root_el
        if root is None:
            return
        limits = self.limits
        text_by_xpath = fed > limits.max_text_bytes
        if not text_by_xpath:
            cap = limits.max_text_bytes
            for el in self.prev_path:
                t = el.text
                if t is not None and len(t) > cap:
                    raise self._text_too_large()
                t = el.tail
                if t is not None and len(t) > cap:
                    raise self._text_too_large()
        path: list[etree._Element] = []
        n = root
        level = 1  # depth of n (the root is at depth 1)
        while True:
            path.append(n)
            if level > limits.max_depth:
                raise self._too_deep()
            k = len(n)
            if k == 0:
                break
            last = n[k - 1]
            if k > 1:
                if level + 1 > limits.max_depth or _depth_check(limits.max_depth - level)(last):
                    raise self._too_deep()
                if self._attrs_in_batch(last):
                    raise self._too_many_attributes()
                if text_by_xpath and self._text_in_batch(last):
                    raise self._text_too_large()
                # Free memory: the finished children (with their tails) go.
                del n[: k - 1]
            n = last
            level += 1
        self.prev_path = path

    def finish(self) -> None:
        """The document is complete: check what is left (the last chunk and the open path)."""
        root = self.root_el
        if root is None:
            return
        limits = self.limits
        if _xpath(f"boolean(descendant-or-self::*[ancestor::*[{limits.max_depth}]])")(root):
            raise self._too_deep()
        if _attr_check(limits.max_attributes, "")(root):
            raise self._too_many_attributes()
        if _text_check(limits.max_text_bytes, "")(root):
            raise self._text_too_large()
        self.prev_path = []


def _syntax_error(
    name: str, exc: etree.XMLSyntaxError, seen_root: bool, at_eof: bool, tail: bytes, pos: _Position
) -> XmlReadError:
    msg = str(exc)
    low = msg.lower()
    # "Truncated" = the parser failed at the very end of the bytes of a document
    # that started like XML; libxml2's wording for that varies with the cut point.
    if not seen_root and pos.doctype_seen:
        # libxml2 choked inside the DTD (e.g. its entity-amplification guard): the DTD is the rule broken.
        return _dtd_error(name)
    line, col = getattr(exc, "position", None) or (0, 0)
    at_end = at_eof and pos.xml_start and "mismatch" not in low and (
        line == 0 or (line >= pos.lines and (pos.last_line_len is None or col >= pos.last_line_len - 8))
    )
    # With resolve_entities=False lxml's pull parser reports an undefined entity
    # only as "no element found"; look at the bytes to name the real rule.
    if _ENTITY_MSG.search(msg) or ("no element found" in low and _ENTITY_REF.search(tail)):
        return XmlReadError(
            name,
            "xml.entity",
            f"entity references are not allowed in e-Defter XML ({msg})",
            f"e-Defter XML'inde varlık (entity) referansına izin verilmez ({msg})",
        )
    if at_end:
        return XmlReadError(
            name,
            "xml.truncated",
            f"the XML ends before its root element is closed: the file is truncated or incomplete ({msg})",
            f"XML kök eleman kapanmadan bitiyor: dosya kesik veya eksik ({msg})",
        )
    if not seen_root:
        return XmlReadError(
            name,
            "xml.not_xml",
            f"the file is not an XML document ({msg})",
            f"dosya bir XML belgesi değil ({msg})",
        )
    return XmlReadError(
        name,
        "xml.malformed",
        f"the XML is not well-formed ({msg})",
        f"XML iyi biçimli (well-formed) değil ({msg})",
    )


@dataclass
class _Position:
    """Where the bytes read so far end: line count and length of the last line."""

    lines: int = 1
    last_line_len: int | None = 0
    xml_start: bool = False
    doctype_seen: bool = False  # "<!DOCTYPE" in the bytes before the root element was reached

    def update(self, chunk: bytes, first: bool, before_root: bool) -> None:
        if before_root and not self.doctype_seen:
            self.doctype_seen = b"<!DOCTYPE" in chunk or b"<\x00!\x00D\x00O\x00C" in chunk
        if first:
            head = chunk.lstrip(b"\xef\xbb\xbf \t\r\n")
            self.xml_start = head.startswith(b"<") or chunk.startswith((b"\xff\xfe", b"\xfe\xff"))
        # libxml2 counts columns in characters: measure the last line decoded.
        nl = chunk.count(b"\n")
        if nl:
            self.lines += nl
            self.last_line_len = len(chunk[chunk.rindex(b"\n") + 1 :].decode("utf-8", "ignore"))
        elif self.last_line_len is not None:
            self.last_line_len += len(chunk.decode("utf-8", "ignore"))


def _dtd_error(name: str) -> XmlReadError:
    return XmlReadError(
        name,
        "xml.dtd",
        "the XML declares a DTD (<!DOCTYPE>); e-Defter files never do and DTDs enable entity attacks",
        "XML bir DTD (<!DOCTYPE>) içeriyor; e-Defter dosyalarında DTD olmaz ve varlık saldırılarına yol açar",
    )


# libxml2 (without XML_PARSE_HUGE) refuses a single push of more than ~10 MB, and the
# tree built from one push (then checked and freed) stays cache-sized in ~256 KB slices
# (measured ~5 % faster than 1 MB pushes on a 200 MB journal).
_MAX_FEED = 256 * 1024


# The rest of a start tag after its '<': up to the '>' outside quoted attribute values
# ('>' is allowed inside them, '<' is not). Possessive: linear time, no backtracking.
_START_TAG_REST = re.compile(rb"""[^>"']*+(?:(?:"[^"]*+"|'[^']*+')[^>"']*+)*+>""")


class _StartTagGuard:
    """Refuses a start tag longer than ``max_start_tag_bytes`` before libxml2 sees its end.

    libxml2 buffers a start tag until its '>' and then builds the element with all its
    attributes at once (~30x their bytes: 1.5 M attributes took ~0.9 GB), so the attribute
    cap checked on built elements comes too late. Inside a (well-formed) start tag there
    is no '<', so a tag longer than the cap lies in a run of more than cap bytes without
    '<'; only such runs (long texts, comments, huge tags) are examined, on their first
    cap + 1 bytes. Fed every slice before the parser. (A '<' inside a quoted value is
    malformed: libxml2 stops at that attribute, so such a tag never reaches the build.)
    """

    def __init__(self, name: str, cap: int) -> None:
        self.name = name
        self.cap = cap
        self.open: bytes | None = None  # first bytes after the last '<' while the run is short

    def _check(self, run: bytes) -> None:
        # run: > cap bytes right after a '<' with no '<' among them
        if not run or run[:1] in (b"/", b"!", b"?"):
            return  # end tag, comment, CDATA, DOCTYPE (refused elsewhere), PI: no attributes
        m = _START_TAG_REST.match(run, 0, self.cap)
        if m is None:
            raise XmlReadError(
                self.name,
                "xml.start_tag_too_large",
                f"a start tag is longer than {self.cap} bytes (refused before it is parsed)",
                f"bir başlangıç etiketi {self.cap} bayttan uzun (ayrıştırılmadan reddedildi)",
            )

    def feed(self, piece: bytes) -> None:
        cap = self.cap
        n = len(piece)
        first = piece.find(b"<")
        if self.open is not None:  # the run after the previous slice's last '<' goes on
            end = n if first < 0 else first
            run = self.open + piece[: min(end, cap + 1 - len(self.open))]
            self.open = None
            if len(run) > cap:
                self._check(run)
            elif first < 0:
                self.open = run
        if first < 0:
            return
        # Probe the slice in blocks of cap/2 from its first '<': a run of more than cap bytes
        # without '<' holds a whole block without '<'. Real XML has a '<' within a few
        # bytes of every block start, so this is a handful of memchr calls per slice.
        step = max(1, cap // 2)
        pos = first
        while pos < n:
            if piece.find(b"<", pos, pos + step) != -1:
                pos += step
                continue
            j = piece.rfind(b"<", 0, pos)
            k = piece.find(b"<", pos + step)
            end = n if k < 0 else k
            if end - (j + 1) > cap:
                self._check(piece[j + 1 : j + 2 + cap])
                if k < 0:
                    return  # the run reaches the end and was checked: nothing left open
            elif k < 0:
                break
            pos = end
        last = piece.rfind(b"<")
        if n - last - 1 <= cap:
            self.open = piece[last + 1 :]


def _safe_parser(**kw: Any) -> etree.XMLPullParser:
    return etree.XMLPullParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        **kw,
    )


def _read(source: Path | BinaryIO, name: str, limits: XmlLimits, header_only: bool) -> FileFacts:
    # Python sees only the fact-bearing elements; ignorable whitespace between
    # elements is not even built (fewer nodes to build, check and free).
    parser = _safe_parser(events=("start", "end"), tag=_FACT_TAGS, huge_tree=limits.huge_tree, remove_blank_text=True)
    # Fed the same bytes until the root is known, only when the root is not one of
    # ours (then the filtered parser above reports nothing): finds it at once.
    probe: etree.XMLPullParser | None = None
    probe_dead = False
    col = _Collector(name, limits)
    guard = _StartTagGuard(name, limits.max_start_tag_bytes)
    total = 0
    last_chunk = b""
    pos = _Position()

    def found_root(root: etree._Element) -> None:
        # libxml2 has parsed any DOCTYPE by now (without expanding entities:
        # resolve_entities=False); refuse the document.
        if root.getroottree().docinfo.doctype:
            raise _dtd_error(name)
        col.set_root(root)

    def header_facts() -> FileFacts:
        col.finish()
        return replace(
            col.facts(total),
            entry_header_count=0,
            signature_value=None,
            copied_signature_value=None,
            signature_count=0,
            has_counter_signature=False,
            counter_signature_value=None,
            entries=None,
        )

    with _as_stream(source, name) as stream:
        while True:
            try:
                chunk = stream.read(limits.read_chunk_bytes)
            except OSError as exc:
                raise XmlReadError(
                    name, "file.unreadable", f"read failed: {exc}", f"okuma başarısız: {exc}"
                ) from exc
            if not chunk:
                break
            total += len(chunk)
            if total > limits.max_file_bytes:
                raise XmlReadError(
                    name,
                    "xml.too_large",
                    f"the XML is larger than the limit of {limits.max_file_bytes} bytes",
                    f"XML {limits.max_file_bytes} baytlık sınırdan büyük",
                )
            last_chunk = chunk
            pos.update(chunk, first=total == len(chunk), before_root=col.root_el is None)
            try:
                for off in range(0, len(chunk), _MAX_FEED):
                    piece = chunk if len(chunk) <= _MAX_FEED else chunk[off : off + _MAX_FEED]
                    guard.feed(piece)
                    parser.feed(piece)
                    for event, el in parser.read_events():
                        if col.root_el is None:
                            found_root(el.getroottree().getroot())
                        if header_only and el.tag == _ENTRY_HEADER and col.root == "defter":
                            return header_facts()
                        col.event(event, el)
                    if col.root_el is None and not probe_dead:
                        if probe is None:
                            probe = _safe_parser(events=("start",), huge_tree=limits.huge_tree)
                        try:
                            probe.feed(piece)
                            first = next(iter(probe.read_events()), None)
                        except etree.XMLSyntaxError:
                            probe_dead = True  # the main parser reports the error
                            first = None
                        if first is not None:
                            found_root(first[1])  # raises: ours would have been reported
                            probe_dead = True
                    if col.root_el is not None:
                        probe = None
                    col.sweep(len(piece))
            except etree.XMLSyntaxError as exc:
                # Was this the last chunk? Then the error may be the file's premature end.
                try:
                    at_eof = not stream.read(1)
                except OSError:
                    at_eof = False
                raise _syntax_error(
                    name, exc, col.root_el is not None, at_eof=at_eof, tail=chunk, pos=pos
                ) from exc
        if total == 0:
            raise XmlReadError(name, "xml.not_xml", "the file is empty", "dosya boş")
        try:
            root = parser.close()
            if col.root_el is None and root is not None:
                found_root(root)
            for event, el in parser.read_events():
                col.event(event, el)
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(name, exc, col.root_el is not None, at_eof=True, tail=last_chunk, pos=pos) from exc
    if col.root is None:
        raise XmlReadError(name, "xml.not_xml", "no root element found", "kök eleman bulunamadı")
    col.finish()
    return col.facts(total)


def read_facts(source: Path | BinaryIO, *, name: str, limits: XmlLimits = XmlLimits.DEFAULT) -> FileFacts:
    """Stream one XML file and return its header facts, or raise ``XmlReadError``.

    ``name`` is how the file is named in errors (its file name or rel path).
    A DOCTYPE anywhere before the root is rejected outright.
    """
    return _read(source, name, limits, header_only=False)


def read_header_facts(source: Path | BinaryIO, *, name: str, limits: XmlLimits = XmlLimits.DEFAULT) -> FileFacts:
    """Like ``read_facts`` but stops a ledger (``edefter:defter``) at its first ``gl-cor:entryHeader``.

    Everything before the first entry (identity, period, branch, fiscal year, document
    info) is read with the same safety rules; the source is left positioned after the
    bytes read (``size``). The facts only the rest of the file can tell are left unset:
    ``signature_value``, ``copied_signature_value`` and ``counter_signature_value`` are
    None, ``signature_count`` and ``entry_header_count`` 0, ``has_counter_signature``
    False, ``entries`` (the entry aggregates) None. Other roots (a berat carries its entry count in an entryHeader) and a ledger
    without any entry are read to the end, with complete facts as from ``read_facts``.
    """
    return _read(source, name, limits, header_only=True)


def read_facts_bytes(data: bytes, *, name: str, limits: XmlLimits = XmlLimits.DEFAULT) -> FileFacts:
    """Convenience for small in-memory documents (tests, uploaded berats)."""
    return read_facts(io.BytesIO(data), name=name, limits=limits)
