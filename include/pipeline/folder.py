"""The one place the pipeline looks at an e-Defter folder (through the domain's discovery).

Used by the berat trigger (in a thread, in the triggerer), the sensor's first check, the
verify task and the status table. Read-only: nothing here writes to the folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from include.edefter.discovery import Discovery, discover
from include.edefter.ledger_set import LedgerSet, SetKey
from include.edefter.naming import Period
from include.edefter.problems import Problem
from include.edefter.status import EDefterStatus

__all__ = ["FolderError", "MonthScan", "check_folder", "scan_month"]


class FolderError(Exception):
    """The e-Defter folder is missing or unreadable (a run-time, usually operator, problem)."""

    def __init__(self, folder: Path, message_en: str, message_tr: str) -> None:
        self.folder = folder
        self.message_en = message_en
        self.message_tr = message_tr
        super().__init__(f"e-Defter klasörü {folder}: {message_tr} / e-Defter folder {folder}: {message_en}")


@dataclass(frozen=True)
class MonthScan:
    """What the folder holds for one month of one unit."""

    key: SetKey
    status: EDefterStatus | None
    missing: tuple[str, ...]
    files: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def approved(self) -> bool:
        return self.status is EDefterStatus.ONAYLI_BERAT_INDIRILDI and not self.missing

    def missing_text(self) -> str:
        if not self.files:
            return f"{self.key.period} ayına ait dosya yok / no files for {self.key.period} yet"
        return ", ".join(self.missing) if self.missing else "-"

    def to_dict(self) -> dict[str, object]:
        return {
            "month": str(self.key.period),
            "edefter_status": self.status.value if self.status else None,
            "missing": list(self.missing),
            "files": list(self.files),
            "problems": [str(p) for p in self.problems],
        }


def check_folder(folder: Path) -> None:
    """Raise FolderError unless ``folder`` is a directory we can list and read."""
    folder = Path(folder)
    if not folder.exists():
        raise FolderError(folder, "does not exist", "bulunamadı")
    if not folder.is_dir():
        raise FolderError(folder, "is not a directory", "bir klasör değil")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise FolderError(folder, "is not readable by this user", "bu kullanıcı tarafından okunamıyor")
    try:
        next(os.scandir(folder), None)
    except OSError as exc:
        raise FolderError(folder, f"cannot be listed: {exc.strerror}", f"listelenemiyor: {exc.strerror}") from exc


def scan_month(folder: Path, taxpayer_id: str, branch: str | None, period: Period) -> tuple[MonthScan, Discovery, LedgerSet | None]:
    check_folder(folder)
    disc = discover(Path(folder))
    key = SetKey(taxpayer_id, branch, period)
    ledger_set = disc.set_for(key)
    if ledger_set is None:
        scan = MonthScan(key, None, (), (), ())
    else:
        scan = MonthScan(
            key,
            ledger_set.status,
            tuple(ledger_set.missing),
            tuple(n.filename for n in ledger_set.ordered_files()),
            tuple(ledger_set.problems) + tuple(disc.problems_for(ledger_set)),
        )
    return scan, disc, ledger_set
