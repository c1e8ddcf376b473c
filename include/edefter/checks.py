"""The one entry point that validates a month: used by the pipeline, the integrator and the scanner.

``validate_month`` takes names with openers (so it works on a folder, on uploaded
zips or on archived objects alike), reads each file once, streaming, and returns
a frozen ``MonthReport``. It never raises for bad input: every finding is a Problem.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, Literal

from include.edefter.consistency import check_berat_ledger, check_gib_berat, check_name_content
from include.edefter.ledger_set import LedgerSet, SetKey, build_set
from include.edefter.naming import EDefterName
from include.edefter.problems import Problem, Severity
from include.edefter.rules import (
    check_berat_totals,
    check_dr_totals,
    check_file_rules,
    check_parts_continuity,
)
from include.edefter.settings import XmlLimits
from include.edefter.status import EDefterStatus
from include.edefter.xmlread import FileFacts, XmlReadError, read_facts
from include.edefter.xsd import (
    SchemaUnavailable,
    XsdValidator,
    load_validator,
    schema_problems,
    skipped_problem,
)

__all__ = ["FileCheck", "MonthReport", "Opener", "SchemaMode", "validate_month"]

# "auto": validate against GİB's XSD when EDEFTER_SCHEMA_DIR names a usable package, else a
# ``schema.skipped`` warning; "require": the same, but no usable schema is an error;
# "off": no schema validation and no finding (the caller decided, e.g. tests of handmade XML);
# a Path: that schema directory, required.
SchemaMode = Literal["auto", "require", "off"]

log = logging.getLogger(__name__)

Opener = Callable[[], BinaryIO]
FileCheck = Callable[[EDefterName, Opener], list[Problem]]


@dataclass(frozen=True)
class MonthReport:
    """The verdict on one month's set."""

    key: SetKey | None
    status: EDefterStatus | None
    problems: tuple[Problem, ...]
    facts: Mapping[EDefterName, FileFacts] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    missing: tuple[str, ...] = ()
    ledger_set: LedgerSet | None = field(default=None, compare=False)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def ok(self) -> bool:
        """True when no ERROR-severity problem was found (warnings do not block)."""
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {
            "taxpayer_id": self.key.taxpayer_id if self.key else None,
            "branch": self.key.branch if self.key else None,
            "period": self.key.period.yyyymm if self.key else None,
            "status": self.status.value if self.status else None,
            "status_en": self.status.english if self.status else None,
            "missing": list(self.missing),
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "files": {n.filename: f.to_dict() for n, f in self.facts.items()},
        }


def _dedupe(problems: list[Problem]) -> tuple[Problem, ...]:
    """Merge exact repeats only (same code, files, messages, severity and details), counting them.

    Distinct problems are never merged, even when they share a code and a file: e.g. "two
    ds:Signature elements" and "no certificate" of one file, or one finding per signature.
    """
    counts: Counter[Problem] = Counter()
    order: list[Problem] = []
    for p in problems:
        key = replace(p, files=tuple(sorted(p.files)))
        if key not in counts:
            order.append(p)
        counts[key] += 1
    out: list[Problem] = []
    for p in order:
        n = counts[replace(p, files=tuple(sorted(p.files)))]
        if n > 1:
            p = replace(
                p,
                message_tr=f"{p.message_tr} ({n} kez)",
                message_en=f"{p.message_en} ({n} times)",
                details=(*p.details, ("count", str(n))),
            )
        out.append(p)
    return tuple(out)


def _read(name: EDefterName, opener: Opener, limits: XmlLimits) -> FileFacts | Problem:
    try:
        stream = opener()
    except Exception as exc:  # noqa: BLE001 - any failure to open is a finding about this file
        return Problem(
            "file.unreadable",
            (name.filename,),
            f"dosya açılamadı: {exc}",
            f"cannot open the file: {exc}",
        )
    try:
        return read_facts(stream, name=name.filename, limits=limits)
    except XmlReadError as exc:
        return exc.to_problem()
    except Exception as exc:  # noqa: BLE001 - e.g. a corrupt zip stream (BadZipFile, CRC error)
        return Problem(
            "file.unreadable",
            (name.filename,),
            f"dosya okunamadı: {type(exc).__name__}: {exc}",
            f"cannot read the file: {type(exc).__name__}: {exc}",
        )
    finally:
        try:
            stream.close()
        except Exception:  # noqa: BLE001
            log.debug("close failed for %s", name.filename, exc_info=True)


def _schema_validator(schema: SchemaMode | Path) -> tuple[XsdValidator | None, Problem | None]:
    if schema == "off":
        return None, None
    try:
        return load_validator(schema if isinstance(schema, Path) else None), None
    except SchemaUnavailable as exc:
        return None, skipped_problem(str(exc), required=schema != "auto")


def _schema_check(validator: XsdValidator, name: EDefterName, opener: Opener, *, required: bool) -> list[Problem]:
    try:
        return schema_problems(validator.validate(opener, name=name.filename))
    except SchemaUnavailable as exc:
        p = skipped_problem(str(exc), required=required)
        return [Problem(p.code, (name.filename,), p.message_tr, p.message_en, p.severity, p.details)]
    except Exception as exc:  # noqa: BLE001 - a failing validator is a finding, not a crash
        log.exception("schema validation failed on %s", name.filename)
        return [
            Problem(
                "check.failed",
                (name.filename,),
                f"XSD şema doğrulaması çalışırken hata oluştu: {type(exc).__name__}: {exc}",
                f"XSD schema validation failed while running: {type(exc).__name__}: {exc}",
            )
        ]


def _month_rules(ledger_set: LedgerSet, facts: Mapping[EDefterName, FileFacts]) -> list[Problem]:
    """Business rules across the parts of the month and the DR (include/edefter/rules.py)."""
    out: list[Problem] = []
    journals: list[tuple[EDefterName, FileFacts]] = []
    all_journals_read = True
    for code in ("Y", "K"):
        parts: list[tuple[EDefterName, FileFacts]] = []
        for part in ledger_set.parts:
            n = ledger_set.file(code, part)
            f = facts.get(n) if n else None
            if n and f and f.root == "defter":
                parts.append((n, f))
            elif code == "Y":
                all_journals_read = False
        out.extend(check_parts_continuity(parts))
        if code == "Y":
            journals = parts
    dr = ledger_set.file("DR", 0)
    df = facts.get(dr) if dr else None
    if dr and df and df.root == "defterraporu" and all_journals_read:
        out.extend(check_dr_totals(dr, df, journals))
    return out


def validate_month(
    files: Sequence[tuple[EDefterName, Opener]],
    *,
    expected: SetKey | None = None,
    require_approved: bool = True,
    limits: XmlLimits = XmlLimits.DEFAULT,
    extra_file_checks: Sequence[FileCheck] = (),
    schema: SchemaMode | Path = "auto",
) -> MonthReport:
    """Validate one month's files: completeness, name↔content, the signature-value chain.

    ``expected`` pins the set (files of another taxpayer/branch/month are problems);
    without it the most common key among the names is used. ``require_approved``
    adds a problem unless every part has its GİB berats. ``extra_file_checks`` run
    per file after it read cleanly (the cryptographic verifier plugs in here).
    ``schema`` chooses XSD validation (see ``SchemaMode``): each file that read
    cleanly is validated against GİB's ``edefter.xsd`` (``schema.invalid`` with the
    first errors, their lines and the count); without a usable schema directory the
    report carries ``schema.skipped`` (a warning, an error when required).
    GİB's business rules the schema cannot express (``include.edefter.rules``: entry balance,
    counters, uniqueID, period in the fiscal year, berat and DR totals) run on the facts each file's
    single streaming read aggregated (``rules.*`` codes).
    """
    problems: list[Problem] = []
    if not files:
        problems.append(
            Problem(
                "set.empty",
                (),
                "doğrulanacak e-Defter dosyası yok" + (f" ({expected})" if expected else ""),
                "no e-Defter files to validate",
            )
        )
        return MonthReport(expected, None, _dedupe(problems))

    key = expected or Counter(SetKey.of(n) for n, _ in files).most_common(1)[0][0]
    openers: dict[EDefterName, Opener] = {}
    for n, op in files:
        if n in openers:
            problems.append(
                Problem("set.duplicate_file", (n.filename,), "aynı dosya iki kez verildi", "the same file was given twice")
            )
            continue
        openers[n] = op
    ledger_set = build_set(key, openers)
    problems.extend(ledger_set.problems)
    if require_approved and not ledger_set.is_approved:
        state = ledger_set.status.value if ledger_set.status else "eksik defter dosyaları"
        state_en = ledger_set.status.english if ledger_set.status else "ledger files incomplete"
        miss = ", ".join(ledger_set.missing) or "-"
        problems.append(
            Problem(
                "set.not_approved",
                ledger_set.missing,
                f"{key} için onaylı beratlar tamam değil (durum: {state}); eksik: {miss}",
                f"approved berats are not complete for {key.taxpayer_id} {key.period} (status: {state_en}); "
                f"missing: {miss}",
                details=(("missing", ",".join(ledger_set.missing)),),
            )
        )

    validator, schema_skip = _schema_validator(schema)
    if schema_skip is not None and ledger_set.names:
        problems.append(schema_skip)
    facts: dict[EDefterName, FileFacts] = {}
    for n in ledger_set.names:
        got = _read(n, openers[n], limits)
        if isinstance(got, Problem):
            problems.append(got)
            continue
        facts[n] = got
        per_file = check_name_content(n, got)
        problems.extend(per_file)
        # GİB's business rules the XSD cannot express (include/edefter/rules.py), on the streamed facts.
        problems.extend(check_file_rules(n, got))
        if validator is not None:
            problems.extend(_schema_check(validator, n, openers[n], required=schema != "auto"))
        for check in extra_file_checks:
            try:
                problems.extend(check(n, openers[n]))
            except Exception as exc:  # noqa: BLE001 - a crashing checker is a finding, not a crash
                log.exception("extra check failed on %s", n.filename)
                problems.append(
                    Problem(
                        "check.failed",
                        (n.filename,),
                        f"ek kontrol çalışırken hata oluştu: {type(exc).__name__}: {exc}",
                        f"an extra check failed while running: {type(exc).__name__}: {exc}",
                    )
                )

    # The chain, per part: ledger -> (taxpayer berat, GİB berat); taxpayer berat -> GİB berat.
    for part in ledger_set.parts:
        for ledger_code, berat_code in (("Y", "YB"), ("K", "KB")):
            ledger = ledger_set.file(ledger_code, part)
            berat = ledger_set.file(berat_code, part)
            gib = ledger_set.file(f"GIB-{berat_code}", part)
            lf = facts.get(ledger) if ledger else None
            bf = facts.get(berat) if berat else None
            gf = facts.get(gib) if gib else None
            if ledger and lf:
                for b, f in ((berat, bf), (gib, gf)):
                    if b and f and f.root == "berat" and lf.root == "defter":
                        problems.extend(check_berat_ledger(ledger, lf, b, f))
                        problems.extend(check_berat_totals(ledger, lf, b, f))
            if berat and bf and gib and gf and bf.root == "berat" and gf.root == "berat":
                problems.extend(check_gib_berat(berat, bf, gib, gf))

    problems.extend(_month_rules(ledger_set, facts))

    return MonthReport(
        key=key,
        status=ledger_set.status,
        problems=_dedupe(problems),
        facts=MappingProxyType(facts),
        missing=ledger_set.missing,
        ledger_set=ledger_set,
    )
