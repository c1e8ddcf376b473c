"""GİB's business rules that the XSD cannot express, over the streamed facts of a month.

Every rule works on ``FileFacts`` (with its bounded ``EntryAggregates``) read once, streaming, by
``include.edefter.xmlread``; none re-reads a file. Each rule is a small function returning Problems
(code ``rules.*``, the file(s), Turkish + English message) and cites its source.

Sources: GİB's "e-Defter Uygulama Kılavuzu" and "e-Defter Format ve Yapısı" documents, as summarised
in ``/work/shared/design/edefter-domain.md`` (section "XML (XBRL GL 2006-10-25 inside an edefter
root)", below: *domain § XML*). That summary does not quote the documents' own section numbers, so
none are cited here. Severity policy: a rule the domain document states is an ERROR only when it is
unambiguous (a journal entry's debits equal its credits); every rule that is inferred (from the
generator, from how GİB's samples look, or from accounting practice) or whose exact form is not
documented is a WARNING — a valid file reported broken is as bad as a broken file passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

from include.edefter.naming import EDefterName, FileKind
from include.edefter.problems import Problem, Severity
from include.edefter.xmlread import EntryAggregates, FileFacts

__all__ = [
    "RULE_CODES",
    "check_journal_balance",
    "check_entry_lines",
    "check_entry_header_totals",
    "check_entry_counters",
    "check_line_counters",
    "check_unique_id_counter",
    "check_period_in_fiscal_year",
    "check_file_rules",
    "check_parts_continuity",
    "check_berat_totals",
    "check_dr_totals",
]

# code -> severity (the README's troubleshooting table lists the same codes).
RULE_CODES: dict[str, Severity] = {
    "rules.entry_unbalanced": Severity.ERROR,
    "rules.entry_too_few_lines": Severity.WARNING,
    "rules.line_invalid": Severity.WARNING,
    "rules.entry_total_mismatch": Severity.WARNING,
    "rules.entry_counter_sequence": Severity.WARNING,
    "rules.line_counter_sequence": Severity.WARNING,
    "rules.unique_id_counter": Severity.WARNING,
    "rules.period_outside_fiscal_year": Severity.WARNING,
    "rules.entry_counter_gap": Severity.WARNING,
    "rules.unique_id_gap": Severity.WARNING,
    "rules.berat_totals_mismatch": Severity.WARNING,
    "rules.berat_tax_detail_mismatch": Severity.WARNING,
    "rules.berat_entry_counter_mismatch": Severity.WARNING,
    "rules.dr_totals_mismatch": Severity.WARNING,
}

_UNIQUE_ID = re.compile(r"(YEV|KEB)(\d{6})(\d{6})")


def _p(code: str, files: tuple[str, ...], tr: str, en: str, **details: object) -> Problem:
    return Problem(code, files, tr, en, RULE_CODES[code], tuple((k, str(v)) for k, v in details.items()))


def _firsts(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "-"


def _agg(facts: FileFacts) -> EntryAggregates | None:
    return facts.entries


# --- per file -----------------------------------------------------------------------------------


def check_journal_balance(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """Journal (Y): per gl-cor:entryHeader, the amounts with debitCreditCode D sum to those with C.

    Source: domain § XML, "journal entries: gl-cor:entryHeader (entry number counter, totalDebit =
    totalCredit)" — GİB e-Defter Uygulama Kılavuzu / Format ve Yapısı (yevmiye maddesi borç = alacak;
    double entry, VUK 183). Documented and unambiguous: ERROR.
    """
    a = _agg(facts)
    if name.kind is not FileKind.Y or a is None or not a.unbalanced_entries:
        return []
    return [
        _p(
            "rules.entry_unbalanced",
            (name.filename,),
            f"{a.unbalanced_entries} yevmiye maddesinde borç toplamı alacak toplamına eşit değil "
            f"(ilkleri: {_firsts(a.first_unbalanced)})",
            f"{a.unbalanced_entries} journal entries do not balance: the debit (D) amounts differ from the "
            f"credit (C) amounts (first: {_firsts(a.first_unbalanced)})",
            count=a.unbalanced_entries,
            first=_firsts(a.first_unbalanced),
        )
    ]


def check_entry_lines(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """Journal (Y): an entry has at least 2 entryDetail lines; every ledger line's amount is a number
    > 0 with at most 2 decimals and its debitCreditCode is D or C (Y and K).

    Source: domain § XML, "with ≥ 2 gl-cor:entryDetail lines (... amount > 0 with ≤ 2 decimals,
    debitCreditCode D/C ...)". Whether GİB rejects (rather than warns about) each of these is not
    documented: WARNING.
    """
    a = _agg(facts)
    if not name.kind.is_ledger or a is None:
        return []
    out: list[Problem] = []
    if name.kind is FileKind.Y and a.short_entries:
        out.append(
            _p(
                "rules.entry_too_few_lines",
                (name.filename,),
                f"{a.short_entries} yevmiye maddesinde 2'den az satır (entryDetail) var "
                f"(ilkleri: {_firsts(a.first_short_entries)})",
                f"{a.short_entries} journal entries have fewer than 2 lines (entryDetail) "
                f"(first: {_firsts(a.first_short_entries)})",
                count=a.short_entries,
                first=_firsts(a.first_short_entries),
            )
        )
    if a.invalid_lines:
        out.append(
            _p(
                "rules.line_invalid",
                (name.filename,),
                f"{a.invalid_lines} satırda tutar (amount > 0, en çok 2 ondalık) veya borç/alacak kodu (D/C) "
                f"geçersiz (ilkleri: {_firsts(a.first_invalid_lines)})",
                f"{a.invalid_lines} lines have an invalid amount (must be > 0 with at most 2 decimals) or "
                f"debitCreditCode (must be D or C) (first: {_firsts(a.first_invalid_lines)})",
                count=a.invalid_lines,
                first=_firsts(a.first_invalid_lines),
            )
        )
    return out


def check_entry_header_totals(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """Y and K: an entryHeader's gl-bus:totalDebit / totalCredit equal the sums of its lines.

    Source: inferred from domain § XML (entryHeader carries totalDebit = totalCredit) and from the
    generator; the documents' wording on header totals is not in the domain summary: WARNING.
    """
    a = _agg(facts)
    if not name.kind.is_ledger or a is None or not a.header_total_mismatches:
        return []
    return [
        _p(
            "rules.entry_total_mismatch",
            (name.filename,),
            f"{a.header_total_mismatches} kayıtta başlıktaki totalDebit/totalCredit satırların toplamına eşit "
            f"değil (ilkleri: {_firsts(a.first_header_total_mismatches)})",
            f"{a.header_total_mismatches} entries state a header totalDebit/totalCredit different from the sum of "
            f"their lines (first: {_firsts(a.first_header_total_mismatches)})",
            count=a.header_total_mismatches,
            first=_firsts(a.first_header_total_mismatches),
        )
    ]


def check_entry_counters(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """Y and K: gl-cor:entryNumberCounter increases by 1 from entry to entry within the file.

    Source: domain § XML names the "entry number counter" of every entryHeader; that it runs
    without gaps (müteselsil yevmiye madde numarası) follows GİB's documents as practised by the
    generator, but the domain summary does not state it: WARNING.
    """
    a = _agg(facts)
    if not name.kind.is_ledger or a is None or not a.entry_counter_breaks:
        return []
    return [
        _p(
            "rules.entry_counter_sequence",
            (name.filename,),
            f"entryNumberCounter {a.entry_counter_breaks} yerde birer artmıyor "
            f"(önceki -> sonraki: {_firsts(a.first_entry_counter_breaks)})",
            f"entryNumberCounter does not increase by 1 at {a.entry_counter_breaks} places "
            f"(previous -> next: {_firsts(a.first_entry_counter_breaks)})",
            count=a.entry_counter_breaks,
            first=_firsts(a.first_entry_counter_breaks),
        )
    ]


def check_line_counters(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """Y and K: gl-cor:lineNumberCounter within an entry increases by 1 from 1 (or continues the
    file's count: both conventions are accepted, since the domain summary documents neither).

    Source: domain § XML (entryDetail lines); the counter's exact form is undocumented there: WARNING.
    """
    a = _agg(facts)
    if not name.kind.is_ledger or a is None or not a.line_counter_breaks:
        return []
    return [
        _p(
            "rules.line_counter_sequence",
            (name.filename,),
            f"lineNumberCounter {a.line_counter_breaks} satırda sırasız (1'den başlamıyor veya birer artmıyor; "
            f"ilkleri madde/sayaç: {_firsts(a.first_line_counter_breaks)})",
            f"lineNumberCounter is out of sequence on {a.line_counter_breaks} lines (neither restarting at 1 nor "
            f"increasing by 1; first entry/counter: {_firsts(a.first_line_counter_breaks)})",
            count=a.line_counter_breaks,
            first=_firsts(a.first_line_counter_breaks),
        )
    ]


def check_unique_id_counter(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """Ledgers and berats: uniqueID is YEV/KEB + YYYYMM + a 6-digit counter (15 characters).

    Source: domain § XML, "uniqueID (YEV/KEB + YYYYMM + a 6-digit counter ..., e.g. YEV201909000010)".
    The prefix and month are checked by ``consistency.check_name_content`` (content.unique_id_format,
    a warning); this adds the counter's form, only when prefix and month are right (no double report).
    WARNING, like that check.
    """
    uid = facts.unique_id
    if not uid or not (name.kind.is_ledger or name.kind.is_berat):
        return []
    if not (uid[:3] in ("YEV", "KEB") and uid[3:9] == name.period.yyyymm):
        return []  # reported by content.unique_id_format
    if _UNIQUE_ID.fullmatch(uid):
        return []
    return [
        _p(
            "rules.unique_id_counter",
            (name.filename,),
            f"uniqueID '{uid}' sonunda 6 haneli sayaç yok (beklenen {uid[:9]}NNNNNN)",
            f"uniqueID '{uid}' does not end in a 6-digit counter (expected {uid[:9]}NNNNNN)",
            found=uid,
        )
    ]


def check_period_in_fiscal_year(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """periodCoveredStart..periodCoveredEnd lies inside gl-bus:fiscalYearStart..fiscalYearEnd.

    Source: domain § XML lists documentInfo/periodCoveredStart/End and entityInformation/
    fiscalYearStart/End; that a month's period lies inside its fiscal year is inferred (the uniqueID
    and entry counters run per fiscal year), not stated: WARNING. Missing dates are left to the schema.
    """
    fs, fe, ps, pe = facts.fiscal_year_start, facts.fiscal_year_end, facts.period_start, facts.period_end
    if fs is None or fe is None or ps is None:
        return []
    end = pe or ps
    if fs <= ps <= fe and fs <= end <= fe:
        return []
    return [
        _p(
            "rules.period_outside_fiscal_year",
            (name.filename,),
            f"dönem ({ps} - {end}) hesap dönemi ({fs} - {fe}) içinde değil",
            f"the period ({ps} to {end}) is not inside the fiscal year ({fs} to {fe})",
            period=f"{ps}..{end}",
            fiscal_year=f"{fs}..{fe}",
        )
    ]


_FILE_RULES = (
    check_journal_balance,
    check_entry_lines,
    check_entry_header_totals,
    check_entry_counters,
    check_line_counters,
    check_unique_id_counter,
    check_period_in_fiscal_year,
)


def check_file_rules(name: EDefterName, facts: FileFacts) -> list[Problem]:
    """All per-file rules for one file that read cleanly."""
    out: list[Problem] = []
    for rule in _FILE_RULES:
        out.extend(rule(name, facts))
    return out


# --- across parts, ledger <-> berat, DR -----------------------------------------------------------


def check_parts_continuity(parts: Sequence[tuple[EDefterName, FileFacts]]) -> list[Problem]:
    """Consecutive parts of one ledger kind (Y, or K) in part order.

    * Y: the first entryNumberCounter of part N+1 is the last of part N + 1 (an entry never spans two
      parts, domain § "Files of one month"; the counter running on across parts is inferred: WARNING).
      The Kebir's counter is per account and restarts per part in practice: not checked across parts.
    * Y and K: the uniqueID counter of part N+1 is part N's + 1. Source: domain § XML, "a 6-digit
      counter that runs across all parts of the fiscal year"; the +1 step is inferred: WARNING.
    """
    out: list[Problem] = []
    for (pn, pf), (nn, nf) in zip(parts, parts[1:], strict=False):
        if nn.part != pn.part + 1:
            continue  # a missing part is reported by the set (set.part_gap); no counter finding across it
        files = (pn.filename, nn.filename)
        pa, na = pf.entries, nf.entries
        if (
            nn.kind is FileKind.Y
            and pa is not None
            and na is not None
            and pa.last_entry_counter is not None
            and na.first_entry_counter is not None
            and na.first_entry_counter != pa.last_entry_counter + 1
        ):
            out.append(
                _p(
                    "rules.entry_counter_gap",
                    files,
                    f"parça {nn.part:06d} entryNumberCounter {na.first_entry_counter} ile başlıyor; önceki parça "
                    f"{pa.last_entry_counter} ile bitti (beklenen {pa.last_entry_counter + 1})",
                    f"part {nn.part:06d} starts at entryNumberCounter {na.first_entry_counter}; the previous part "
                    f"ended at {pa.last_entry_counter} (expected {pa.last_entry_counter + 1})",
                    expected=pa.last_entry_counter + 1,
                    found=na.first_entry_counter,
                )
            )
        pm = _UNIQUE_ID.fullmatch(pf.unique_id or "")
        nm = _UNIQUE_ID.fullmatch(nf.unique_id or "")
        if pm and nm and int(nm.group(3)) != int(pm.group(3)) + 1:
            out.append(
                _p(
                    "rules.unique_id_gap",
                    files,
                    f"parçaların uniqueID sayacı ardışık değil: {pf.unique_id} sonra {nf.unique_id}",
                    f"the parts' uniqueID counter is not consecutive: {pf.unique_id} then {nf.unique_id}",
                    previous=pf.unique_id,
                    found=nf.unique_id,
                )
            )
    return out


def _money(d: Decimal | None) -> str:
    return "-" if d is None else f"{d:.2f}"


def check_berat_totals(
    ledger: EDefterName, ledger_facts: FileFacts, berat: EDefterName, berat_facts: FileFacts
) -> list[Problem]:
    """A berat (YB/KB, taxpayer or GİB) against its ledger part.

    * The berat's entryHeader gl-bus:totalDebit / totalCredit equal the ledger's D / C line sums.
      Source: inferred from the generator and GİB's sample berats (the domain summary lists "the
      ledger's header data, ... the entry count (YB), a 10-line tax detail"): WARNING.
    * The tax detail (D and C for accounts 191, 391, 600, 601, 602) equals the ledger's totals of
      those accounts. Source: domain § XML, "a 10-line tax detail (D and C for accounts 191, 391, 600,
      601, 602) unless VERGI_DETAYSIZ"; the equality is inferred: WARNING. Only accounts the berat lists
      are compared (a berat without the detail, VERGI_DETAYSIZ, is not a finding).
    * YB only: the berat's entryNumberCounter equals the journal part's last entryNumberCounter.
      Source: inferred from the generator (not in the domain summary): WARNING. Not checked for KB
      (its counter is the journal's, not the Kebir's own per-account count).
    The entry count (numberOfEntries) is compared by ``consistency.check_berat_ledger``
    (chain.entry_count_mismatch).
    """
    la, ba = ledger_facts.entries, berat_facts.entries
    if la is None or ba is None:
        return []
    files = (ledger.filename, berat.filename)
    out: list[Problem] = []
    bad = [
        (label, want, got)
        for label, want, got in (
            ("totalDebit", la.total_debit, ba.header_total_debit),
            ("totalCredit", la.total_credit, ba.header_total_credit),
        )
        if got is not None and got != want
    ]
    if bad:
        tr = "; ".join(f"{lbl} beratta {_money(g)}, defterde {_money(w)}" for lbl, w, g in bad)
        en = "; ".join(f"{lbl} is {_money(g)} in the berat, {_money(w)} in the ledger" for lbl, w, g in bad)
        out.append(
            _p(
                "rules.berat_totals_mismatch",
                files,
                f"beratın toplamları defterinkilerle aynı değil: {tr}",
                f"the berat's totals differ from the ledger's: {en}",
            )
        )
    if (
        ledger.kind is FileKind.Y
        and ba.entries == 1
        and ba.last_entry_counter is not None
        and la.last_entry_counter is not None
        and ba.last_entry_counter != la.last_entry_counter
    ):
        out.append(
            _p(
                "rules.berat_entry_counter_mismatch",
                files,
                f"beratın entryNumberCounter değeri {ba.last_entry_counter}, yevmiye parçasının son madde sayacı "
                f"{la.last_entry_counter}",
                f"the berat's entryNumberCounter is {ba.last_entry_counter}, the journal part's last entry counter "
                f"is {la.last_entry_counter}",
                expected=la.last_entry_counter,
                found=ba.last_entry_counter,
            )
        )
    if not la.accounts_overflow and ba.accounts:
        ledger_acc = la.account_totals()
        diffs = []
        for acct, d, c in ba.accounts:
            ld, lc = ledger_acc.get(acct, (Decimal(0), Decimal(0)))
            if (d, c) != (ld, lc):
                diffs.append(f"{acct} D {_money(d)}/{_money(ld)} C {_money(c)}/{_money(lc)}")
        if diffs:
            shown = ", ".join(diffs[:5])
            out.append(
                _p(
                    "rules.berat_tax_detail_mismatch",
                    files,
                    f"beratın vergi detayı defterin hesap toplamlarıyla aynı değil (hesap berat/defter): {shown}",
                    f"the berat's tax detail differs from the ledger's account totals (account berat/ledger): {shown}",
                    count=len(diffs),
                )
            )
    return out


def check_dr_totals(
    dr: EDefterName, dr_facts: FileFacts, journals: Sequence[tuple[EDefterName, FileFacts]]
) -> list[Problem]:
    """The Defter Raporu's per-account totals equal the month's journal totals (all parts).

    Source: domain § "Files of one month": DR is the "per-account period summary
    (entriesType=trialbalance)"; its field-level layout (per-account entryHeader totalDebit/
    totalCredit) is inferred from the generator: WARNING. Skipped (no finding) unless every journal
    part read cleanly, no per-account table overflowed, and the DR carries per-account totals.
    """
    da = dr_facts.entries
    if da is None or not da.accounts or da.accounts_overflow or not journals:
        return []
    month: dict[str, list[Decimal]] = {}
    for _, jf in journals:
        ja = jf.entries
        if ja is None or ja.accounts_overflow:
            return []
        for acct, d, c in ja.accounts:
            tot = month.setdefault(acct, [Decimal(0), Decimal(0)])
            tot[0] += d
            tot[1] += c
    dr_acc: Mapping[str, tuple[Decimal, Decimal]] = da.account_totals()
    diffs = []
    for acct in sorted(set(month) | set(dr_acc)):
        want = tuple(month.get(acct, (Decimal(0), Decimal(0))))
        got = dr_acc.get(acct, (Decimal(0), Decimal(0)))
        if tuple(got) != want:
            diffs.append(f"{acct} D {_money(got[0])}/{_money(want[0])} C {_money(got[1])}/{_money(want[1])}")
    if not diffs:
        return []
    shown = ", ".join(diffs[:5])
    return [
        _p(
            "rules.dr_totals_mismatch",
            (dr.filename, *(n.filename for n, _ in journals)),
            f"defter raporundaki hesap toplamları ayın yevmiye toplamlarıyla aynı değil (hesap rapor/yevmiye): "
            f"{shown}",
            f"the defter raporu's account totals differ from the month's journal totals (account report/journal): "
            f"{shown}",
            count=len(diffs),
        )
    ]
