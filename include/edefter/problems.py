"""Typed problems: every finding names the file(s) and the rule, in Turkish and English."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Problem", "Severity"]


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding.

    ``code`` is a stable machine id (e.g. ``name.invalid``, ``set.missing_file``,
    ``chain.signature_value_mismatch``); ``files`` are the file names (not paths
    outside the scanned root) the problem is about.
    """

    code: str
    files: tuple[str, ...]
    message_tr: str
    message_en: str
    severity: Severity = Severity.ERROR
    details: tuple[tuple[str, str], ...] = field(default=())

    def __str__(self) -> str:
        where = ", ".join(self.files) if self.files else "-"
        return f"[{self.code}] {where}: {self.message_tr} / {self.message_en}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "files": list(self.files),
            "message_tr": self.message_tr,
            "message_en": self.message_en,
            "severity": self.severity.value,
            "details": dict(self.details),
        }
