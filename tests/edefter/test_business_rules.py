"""GİB's business rules the XSD cannot express (include/edefter/rules.py), through validate_month.

Generated months must pass every rule (no false positives, warnings included); each rule is shown to
fire on a file mutated with lxml, with its own code, severity and a Turkish + English message naming
the file. The aggregates behind the rules are bounded: a large file does not grow them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from include.edefter.checks import MonthReport, validate_month
from include.edefter.discovery import discover
from include.edefter.problems import Problem, Severity
from include.edefter.rules import RULE_CODES
from include.edefter.sample import MonthFiles
from include.edefter.xmlread import MAX_OFFENDERS, NS

COR = NS["gl-cor"]
BUS = NS["gl-bus"]


def check(mf: MonthFiles, **kw: object) -> MonthReport:
    d = discover(mf.directory)
    assert len(d.sets) == 1
    kw.setdefault("schema", "off")  # schema validation is tested elsewhere; the rules are what matters here
    return validate_month(d.month_inputs(d.sets[0]), expected=d.sets[0].key, **kw)  # type: ignore[arg-type]


def rule_problems(r: MonthReport) -> list[Problem]:
    return [p for p in r.problems if p.code.startswith("rules.")]


def only(r: MonthReport, code: str) -> Problem:
    found = [p for p in r.problems if p.code == code]
    assert len(found) == 1, (code, [str(p) for p in r.problems])
    p = found[0]
    assert p.severity is RULE_CODES[code]
    assert p.message_tr and p.message_en and p.message_tr != p.message_en
    return p


def mutate(path: Path, fn: Callable[[etree._ElementTree], None]) -> None:
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    fn(tree)
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")


def xp(tree: etree._ElementTree, expr: str) -> list[etree._Element]:
    return tree.xpath(expr, namespaces=NS)


@pytest.fixture
def two_parts(make_month: Callable[..., MonthFiles]) -> MonthFiles:
    return make_month(parts=2, entries_per_part=12, seed=3)


# --- no false positives ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"parts": 3, "entries_per_part": 15, "branch": "0042", "branch_name": "Kadıköy"},
        {"unique_id_start": 27, "entry_number_start": 1201, "seed": 9},
    ],
)
def test_generated_months_pass_every_rule(make_month: Callable[..., MonthFiles], kwargs: dict[str, object]) -> None:
    mf = make_month(**kwargs)
    r = check(mf, schema="auto")  # the full check, as the scanner and the pipeline run it
    assert r.ok, [str(p) for p in r.errors]
    assert rule_problems(r) == [], [str(p) for p in rule_problems(r)]
    y = next(f for n, f in r.facts.items() if n.code == "Y")
    assert y.entries is not None and y.entries.lines >= 2 * y.entries.entries and y.entries.unbalanced_entries == 0
    assert y.entries.total_debit == y.entries.total_credit > 0


def test_facts_carry_the_aggregates_in_json(two_parts: MonthFiles) -> None:
    r = check(two_parts)
    d = r.to_dict()
    json.dumps(d)  # Decimals are serialised as text
    y1 = d["files"][two_parts.path("Y", 1).name]["entries"]
    stats = two_parts.parts[0]
    assert (y1["first_entry_counter"], y1["last_entry_counter"]) == (stats.first_entry_number, stats.last_entry_number)
    assert y1["total_debit"] == f"{stats.total_debit_kurus / 100:.2f}"


# --- each rule fires on a mutated file --------------------------------------------------------------


def test_unbalanced_journal_entry_is_an_error_naming_the_entry(two_parts: MonthFiles) -> None:
    y = two_parts.path("Y", 1)

    def fn(t: etree._ElementTree) -> None:
        amount = xp(t, "//gl-cor:entryHeader[3]/gl-cor:entryDetail[1]/gl-cor:amount")[0]
        amount.text = f"{float(amount.text) + 0.01:.2f}"

    mutate(y, fn)
    r = check(two_parts)
    p = only(r, "rules.entry_unbalanced")
    assert p.severity is Severity.ERROR and not r.ok
    assert p.files == (y.name,)
    assert dict(p.details)["count"] == "1"
    assert dict(p.details)["first"].startswith(str(two_parts.parts[0].first_entry_number + 2))
    assert "borç" in p.message_tr and "debit" in p.message_en
    # the changed line also makes the header total and the berat's total differ (warnings)
    only(r, "rules.entry_total_mismatch")
    assert any(q.code == "rules.berat_totals_mismatch" for q in r.problems)


def test_entry_with_one_line_and_invalid_amount(two_parts: MonthFiles) -> None:
    y = two_parts.path("Y", 2)

    def fn(t: etree._ElementTree) -> None:
        header = xp(t, "//gl-cor:entryHeader[2]")[0]
        details = header.findall(f"{{{COR}}}entryDetail")
        for d in details[1:]:
            header.remove(d)
        xp(t, "//gl-cor:entryHeader[5]/gl-cor:entryDetail[1]/gl-cor:amount")[0].text = "12.345"

    mutate(y, fn)
    r = check(two_parts)
    assert only(r, "rules.entry_too_few_lines").files == (y.name,)
    assert only(r, "rules.line_invalid").files == (y.name,)
    assert only(r, "rules.entry_unbalanced").files == (y.name,)


def test_entry_counter_break_within_a_file(two_parts: MonthFiles) -> None:
    y = two_parts.path("Y", 1)

    def fn(t: etree._ElementTree) -> None:
        c = xp(t, "//gl-cor:entryHeader[5]/gl-cor:entryNumberCounter")[0]
        c.text = str(int(c.text) + 2)

    mutate(y, fn)
    r = check(two_parts)
    p = only(r, "rules.entry_counter_sequence")
    assert p.files == (y.name,) and p.severity is Severity.WARNING and r.ok
    assert dict(p.details)["count"] == "2"  # into the jump and out of it


def test_line_counter_break(two_parts: MonthFiles) -> None:
    y = two_parts.path("Y", 1)

    def fn(t: etree._ElementTree) -> None:
        xp(t, "//gl-cor:entryHeader[4]/gl-cor:entryDetail[2]/gl-cor:lineNumberCounter")[0].text = "5"

    mutate(y, fn)
    r = check(two_parts)
    assert only(r, "rules.line_counter_sequence").files == (y.name,)


def test_kebir_file_wide_line_counter_is_accepted_but_a_jump_is_not(two_parts: MonthFiles) -> None:
    # the generator's Kebir numbers lines across the file; its journal restarts per entry: both pass
    assert rule_problems(check(two_parts)) == []
    k = two_parts.path("K", 2)

    def fn(t: etree._ElementTree) -> None:
        c = xp(t, "//gl-cor:entryHeader[2]/gl-cor:entryDetail[1]/gl-cor:lineNumberCounter")[0]
        c.text = str(int(c.text) + 10)

    mutate(k, fn)
    assert only(check(two_parts), "rules.line_counter_sequence").files == (k.name,)


def test_entry_counter_must_continue_across_parts(two_parts: MonthFiles) -> None:
    y2 = two_parts.path("Y", 2)

    def fn(t: etree._ElementTree) -> None:
        for c in xp(t, "//gl-cor:entryHeader/gl-cor:entryNumberCounter"):
            c.text = str(int(c.text) + 1)

    mutate(y2, fn)
    r = check(two_parts)
    p = only(r, "rules.entry_counter_gap")
    assert p.files == (two_parts.path("Y", 1).name, y2.name)
    last = two_parts.parts[0].last_entry_number
    assert dict(p.details) == {"expected": str(last + 1), "found": str(last + 2)}
    assert not any(q.code == "rules.entry_counter_sequence" for q in r.problems)


def test_unique_id_gap_across_parts_and_counter_form(two_parts: MonthFiles) -> None:
    y2, k1 = two_parts.path("Y", 2), two_parts.path("K", 1)

    def set_uid(value: str) -> Callable[[etree._ElementTree], None]:
        def fn(t: etree._ElementTree) -> None:
            xp(t, "//gl-cor:documentInfo/gl-cor:uniqueID")[0].text = value

        return fn

    mutate(y2, set_uid("YEV201909000005"))
    mutate(k1, set_uid("KEB20190900001X"))
    r = check(two_parts)
    gap = only(r, "rules.unique_id_gap")
    assert gap.files == (two_parts.path("Y", 1).name, y2.name)
    assert "YEV201909000005" in gap.message_tr and "YEV201909000005" in gap.message_en
    form = only(r, "rules.unique_id_counter")
    assert form.files == (k1.name,)


def test_period_outside_the_fiscal_year(two_parts: MonthFiles) -> None:
    y = two_parts.path("Y", 1)

    def fn(t: etree._ElementTree) -> None:
        xp(t, "//gl-bus:fiscalYearStart")[0].text = "2019-10-01"
        xp(t, "//gl-bus:fiscalYearEnd")[0].text = "2020-09-30"

    mutate(y, fn)
    p = only(check(two_parts), "rules.period_outside_fiscal_year")
    assert p.files == (y.name,) and "2019-10-01" in p.message_en and "hesap dönemi" in p.message_tr


def test_berat_totals_and_tax_detail_must_equal_the_ledger(two_parts: MonthFiles) -> None:
    yb = two_parts.path("YB", 2)

    def fn(t: etree._ElementTree) -> None:
        xp(t, "//gl-cor:entryHeader/gl-bus:totalDebit")[0].text = "1.00"
        xp(t, "//gl-cor:entryDetail[gl-cor:account/gl-cor:accountMainID='391' and gl-cor:debitCreditCode='C']"
              "/gl-cor:amount")[0].text = "999999.99"

    mutate(yb, fn)
    r = check(two_parts)
    tot = only(r, "rules.berat_totals_mismatch")
    assert tot.files == (two_parts.path("Y", 2).name, yb.name)
    assert "totalDebit" in tot.message_en and "1.00" in tot.message_tr
    tax = only(r, "rules.berat_tax_detail_mismatch")
    assert "391" in tax.message_en and tax.files == tot.files


def test_defter_raporu_totals_must_equal_the_journals(two_parts: MonthFiles) -> None:
    dr = two_parts.path("DR")

    def fn(t: etree._ElementTree) -> None:
        h = xp(t, "//gl-cor:entryHeader[gl-cor:entryDetail/gl-cor:account/gl-cor:accountMainID='600']")[0]
        h.find(f"{{{BUS}}}totalCredit").text = "0.01"

    mutate(dr, fn)
    p = only(check(two_parts), "rules.dr_totals_mismatch")
    assert p.files[0] == dr.name and "600" in p.message_tr and "600" in p.message_en


def test_dr_is_not_compared_when_a_journal_part_is_missing(two_parts: MonthFiles) -> None:
    two_parts.path("Y", 2).unlink()
    r = check(two_parts)
    assert not any(p.code == "rules.dr_totals_mismatch" for p in r.problems)


def test_require_schema_turns_a_skipped_schema_into_an_error(
    two_parts: MonthFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDEFTER_SCHEMA_DIR", str(tmp_path / "no-such-dir"))
    auto = [p for p in check(two_parts, schema="auto").problems if p.code == "schema.skipped"]
    req = [p for p in check(two_parts, schema="require").problems if p.code == "schema.skipped"]
    assert auto and all(p.severity is Severity.WARNING for p in auto)
    assert req and all(p.severity is Severity.ERROR for p in req)


# --- bounded memory ---------------------------------------------------------------------------------

_PROBE = r"""
import json, sys
from include.edefter.xmlread import read_facts

HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<edefter:defter xmlns:edefter="http://www.edefter.gov.tr" '
        b'xmlns:xbrli="http://www.xbrl.org/2003/instance" xmlns:gl-cor="http://www.xbrl.org/int/gl/cor/2006-10-25" '
        b'xmlns:gl-bus="http://www.xbrl.org/int/gl/bus/2006-10-25"><xbrli:xbrl><gl-cor:accountingEntries>'
        b'<gl-cor:documentInfo><gl-cor:entriesType>journal</gl-cor:entriesType></gl-cor:documentInfo>')
TAIL = b'</gl-cor:accountingEntries></xbrli:xbrl></edefter:defter>'

def entry(i):
    # every entry is unbalanced, its counter jumps, and it posts to an account of its own
    return (f'<gl-cor:entryHeader><gl-cor:entryNumberCounter>{2 * i}</gl-cor:entryNumberCounter>'
            f'<gl-cor:entryDetail><gl-cor:lineNumberCounter>1</gl-cor:lineNumberCounter><gl-cor:account>'
            f'<gl-cor:accountMainID>{i}</gl-cor:accountMainID></gl-cor:account><gl-cor:amount>10.00</gl-cor:amount>'
            f'<gl-cor:debitCreditCode>D</gl-cor:debitCreditCode></gl-cor:entryDetail>'
            f'<gl-cor:entryDetail><gl-cor:lineNumberCounter>2</gl-cor:lineNumberCounter><gl-cor:account>'
            f'<gl-cor:accountMainID>{i}</gl-cor:accountMainID></gl-cor:account><gl-cor:amount>9.99</gl-cor:amount>'
            f'<gl-cor:debitCreditCode>C</gl-cor:debitCreditCode></gl-cor:entryDetail></gl-cor:entryHeader>').encode()

class Gen:
    def __init__(self, n):
        self.parts, self.buf = self._it(n), b""
    def _it(self, n):
        yield HEAD
        batch = []
        for i in range(1, n + 1):
            batch.append(entry(i))
            if len(batch) == 2000:
                yield b"".join(batch); batch = []
        yield b"".join(batch) + TAIL
    def read(self, size=-1):
        while len(self.buf) < size:
            nxt = next(self.parts, None)
            if nxt is None:
                break
            self.buf += nxt
        out, self.buf = self.buf[:size], self.buf[size:]
        return out
    def close(self):
        pass

def peak_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

n = int(sys.argv[1])
before = peak_kb()
f = read_facts(Gen(n), name="big.xml")
a = f.entries
print(json.dumps({"growth_kb": peak_kb() - before, "entries": a.entries, "unbalanced": a.unbalanced_entries,
                  "first_unbalanced": len(a.first_unbalanced), "breaks": a.entry_counter_breaks,
                  "first_breaks": len(a.first_entry_counter_breaks), "accounts": len(a.accounts),
                  "overflow": a.accounts_overflow, "size": f.size}))
"""


def _probe(n: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(n)], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return json.loads(out.stdout)


def test_aggregates_and_memory_stay_bounded_on_a_large_broken_journal() -> None:
    from include.edefter.xmlread import MAX_ACCOUNTS

    small, big = _probe(10_000), _probe(60_000)
    assert big["size"] > 5 * small["size"] > 5_000_000  # ~40 MB of journal really read
    for got, n in ((small, 10_000), (big, 60_000)):
        assert got["entries"] == got["unbalanced"] == n  # counts stay exact
        assert got["breaks"] == n - 1
        assert got["first_unbalanced"] == got["first_breaks"] == MAX_OFFENDERS  # offender lists do not grow
        assert got["accounts"] == MAX_ACCOUNTS and got["overflow"]  # nor does the account table
    # 50,000 more broken entries may cost at most a few MB more peak memory
    assert big["growth_kb"] - small["growth_kb"] < 6 * 1024, (small, big)


def test_readme_troubleshooting_lists_every_rule_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for code, severity in RULE_CODES.items():
        row = next((ln for ln in readme.splitlines() if ln.startswith(f"| `{code}` ({severity.value})")), None)
        assert row is not None, code


def test_schema_allowed_debit_credit_words_pass_and_undefined_is_not_called_unbalanced(two_parts: MonthFiles) -> None:
    y = two_parts.path("Y", 1)

    def fn(t: etree._ElementTree) -> None:
        for code in xp(t, "//gl-cor:entryHeader[position() <= 3]/gl-cor:entryDetail/gl-cor:debitCreditCode"):
            code.text = {"D": "debit", "C": "credit"}[code.text]  # gl-gen:debitCreditCodeItemType allows both
        xp(t, "//gl-cor:entryHeader[6]/gl-cor:entryDetail[1]/gl-cor:debitCreditCode")[0].text = "undefined"

    mutate(y, fn)
    r = check(two_parts)
    assert only(r, "rules.line_invalid").files == (y.name,)
    assert dict(only(r, "rules.line_invalid").details)["count"] == "1"
    assert not any(p.code == "rules.entry_unbalanced" for p in r.problems), [str(p) for p in r.problems]


def test_journal_berat_entry_counter_must_be_the_parts_last(two_parts: MonthFiles) -> None:
    yb = two_parts.path("YB", 1)

    def fn(t: etree._ElementTree) -> None:
        xp(t, "//gl-cor:entryHeader/gl-cor:entryNumberCounter")[0].text = "999"

    mutate(yb, fn)
    p = only(check(two_parts), "rules.berat_entry_counter_mismatch")
    assert p.files == (two_parts.path("Y", 1).name, yb.name)
    assert dict(p.details) == {"expected": str(two_parts.parts[0].last_entry_number), "found": "999"}
