"""The folder scanner behind ``python -m include.edefter scan``.

Read-only: discovery plus ``validate_month`` (not requiring approval) per set.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.edefter.checks import FileCheck, MonthReport, SchemaMode, validate_month
from include.edefter.discovery import Discovery, discover
from include.edefter.ledger_set import LedgerSet
from include.edefter.problems import Problem, Severity
from include.edefter.settings import XmlLimits

__all__ = [
    "INCOMPLETE_EN",
    "INCOMPLETE_TR",
    "ScanResult",
    "company_name",
    "load_crypto_check_with_reason",
    "scan_folder",
    "status_texts",
]

# A set without every ledger file has no e-Defter statüsü; text and --json both say so.
INCOMPLETE_TR = "eksik defter dosyaları"
INCOMPLETE_EN = "ledger files incomplete"


def status_texts(s: LedgerSet) -> tuple[str, str]:
    """(Turkish, English) status of a set as the report shows it; never empty."""
    return (s.status.value, s.status.english) if s.status else (INCOMPLETE_TR, INCOMPLETE_EN)


def company_name(report: MonthReport) -> str | None:
    """The Kurum Unvanı / Adı Soyadı the set's files state (first one found)."""
    for f in report.facts.values():
        if f.company_name:
            return f.company_name
    return None


@dataclass(frozen=True)
class ScanResult:
    discovery: Discovery
    reports: tuple[tuple[LedgerSet, MonthReport], ...]
    folder_problems: tuple[Problem, ...]  # not tied to a ledger set (bad names, links, empty folder)
    verified: bool  # cryptographic verification ran

    @property
    def all_problems(self) -> tuple[Problem, ...]:
        return self.folder_problems + tuple(p for _, r in self.reports for p in r.problems)

    @property
    def has_errors(self) -> bool:
        return any(p.severity is Severity.ERROR for p in self.all_problems)

    def to_dict(self) -> dict[str, Any]:
        sets = []
        for s, r in self.reports:
            d = s.to_dict()
            d["status"], d["status_en"] = status_texts(s)
            d["complete"] = s.status is not None
            d["problems"] = [p.to_dict() for p in r.problems]
            d["ok"] = r.ok
            d["company_name"] = company_name(r)
            d["paths"] = {n.filename: self.discovery.found(n).rel_path for n in s.names}
            d["facts"] = {n.filename: f.to_dict() for n, f in r.facts.items()}
            sets.append(d)
        return {
            "root": str(self.discovery.root),
            "file_count": len(self.discovery.files),
            "cryptographic_verification": self.verified,
            "sets": sets,
            "folder_problems": [p.to_dict() for p in self.folder_problems],
            "ok": not self.has_errors,
        }


def load_crypto_check_with_reason() -> tuple[FileCheck | None, str]:
    """The verifier's per-file check and a human reason when it is not available.

    ``crypto_check`` may take the trust anchors (``trust``): they are read with
    ``TrustSettings.from_env()`` (EDEFTER_TRUSTED_ROOTS, EDEFTER_GIB_CERTS, ...).
    """
    try:
        mod = importlib.import_module("include.edefter.verify")
    except ImportError as exc:
        # Missing, or its own dependencies are missing: the caller says "not available".
        return None, f"include.edefter.verify cannot be imported: {exc}"
    factory = getattr(mod, "crypto_check", None)
    if factory is None:
        return None, "include.edefter.verify has no crypto_check()"
    try:
        params = inspect.signature(factory).parameters
        trust_param = params.get("trust")
        if trust_param is not None and trust_param.default is inspect.Parameter.empty:
            trust_cls = getattr(mod, "TrustSettings", None)
            if trust_cls is None or not hasattr(trust_cls, "from_env"):
                return None, "crypto_check needs trust settings and TrustSettings.from_env is missing"
            return factory(trust=trust_cls.from_env()), ""
        return factory(), ""
    except Exception as exc:  # noqa: BLE001 - a broken verifier must not crash the scanner
        return None, f"crypto_check could not be set up: {type(exc).__name__}: {exc}"


def scan_folder(
    root: Path,
    *,
    limits: XmlLimits = XmlLimits.DEFAULT,
    extra_file_checks: Sequence[FileCheck] = (),
    schema: SchemaMode | Path = "auto",
) -> ScanResult:
    disc = discover(root, limits=limits)
    reports: list[tuple[LedgerSet, MonthReport]] = []
    set_rels: set[str] = set()
    for s in disc.sets:
        report = validate_month(
            disc.month_inputs(s),
            expected=s.key,
            require_approved=False,
            limits=limits,
            extra_file_checks=extra_file_checks,
            schema=schema,
        )
        extra = disc.problems_for(s)
        if extra:
            report = MonthReport(
                report.key, report.status, extra + report.problems, report.facts, report.missing, report.ledger_set
            )
        reports.append((s, report))
        set_rels.update(disc.found(n).rel_path for n in s.names)
    folder_problems = tuple(p for p in disc.problems if not set_rels.intersection(p.files))
    return ScanResult(disc, tuple(reports), folder_problems, bool(extra_file_checks))
