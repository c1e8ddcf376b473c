"""Ledger sets: the files of one taxpayer (or branch) for one month, with their parts.

Works on names only, so the integrator can validate uploaded names without a
folder and discovery can group what it finds. Content checks live in
``consistency``; the one entry point combining both is ``checks.validate_month``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from include.edefter.naming import EDefterName, FileKind, Period
from include.edefter.problems import Problem, Severity
from include.edefter.status import EDefterStatus

__all__ = [
    "LEDGER_CODES",
    "BERAT_CODES",
    "GIB_CODES",
    "UPLOAD_ORDER",
    "SetKey",
    "LedgerSet",
    "assess",
    "build_set",
    "expected_stem",
]

LEDGER_CODES = ("Y", "K")
BERAT_CODES = ("YB", "KB")
GIB_CODES = ("GIB-YB", "GIB-KB")
# Per part; DR (part 000000) and a GİB-stamped DR, if any, come after the last part.
UPLOAD_ORDER = ("Y", "K", "YB", "KB", "GIB-YB", "GIB-KB")
_DR_ORDER = ("DR", "GIB-DR")
# What must exist before a file can legitimately exist (the approval chain).
_PREREQUISITE = {"YB": "Y", "KB": "K", "GIB-YB": "YB", "GIB-KB": "KB", "GIB-DR": "DR"}


@dataclass(frozen=True, order=True)
class SetKey:
    """Identity of one ledger set: taxpayer id, branch (None = company-wide), month."""

    taxpayer_id: str
    branch: str | None
    period: Period

    @classmethod
    def of(cls, name: EDefterName) -> SetKey:
        return cls(name.taxpayer_id, name.branch, name.period)

    def __str__(self) -> str:
        branch = f" şube {self.branch}" if self.branch else ""
        return f"{self.taxpayer_id}{branch} {self.period.label_tr}"

    def sort_key(self) -> tuple[str, str, Period]:
        return (self.taxpayer_id, self.branch or "", self.period)


def expected_stem(key: SetKey, code: str, part: int) -> str:
    """The stem of a file of ``key`` (e.g. for 'missing' lists)."""
    gib = code.startswith("GIB-")
    kind = FileKind(code.removeprefix("GIB-"))
    return EDefterName(key.taxpayer_id, key.period, kind, part, key.branch, gib).stem


@dataclass(frozen=True)
class LedgerSet:
    """The files found (or uploaded) for one SetKey, with completeness and status.

    ``status`` is the highest e-Defter statüsü every part satisfies (None when
    even the ledgers are incomplete); ``missing`` lists the stems of the files
    needed to reach the next status (empty once approved).
    """

    key: SetKey
    names: tuple[EDefterName, ...]  # in upload order
    parts: tuple[int, ...]
    status: EDefterStatus | None
    missing: tuple[str, ...]
    problems: tuple[Problem, ...]

    def file(self, code: str, part: int = 0) -> EDefterName | None:
        for n in self.names:
            if n.code == code and n.part == part:
                return n
        return None

    @property
    def files(self) -> dict[tuple[str, int], EDefterName]:
        """(code, part) -> name."""
        return {(n.code, n.part): n for n in self.names}

    @property
    def has_dr(self) -> bool:
        return any(n.kind is FileKind.DR for n in self.names)

    @property
    def is_approved(self) -> bool:
        return self.status is EDefterStatus.ONAYLI_BERAT_INDIRILDI

    def ordered_files(self) -> tuple[EDefterName, ...]:
        """Upload order: per part Y, K, YB, KB, GIB-YB, GIB-KB; then DR."""
        return self.names

    def to_dict(self) -> dict[str, object]:
        return {
            "taxpayer_id": self.key.taxpayer_id,
            "branch": self.key.branch,
            "period": self.key.period.yyyymm,
            "period_label": self.key.period.label_tr,
            "parts": [f"{p:06d}" for p in self.parts],
            "files": [n.filename for n in self.names],
            "status": self.status.value if self.status else None,
            "status_en": self.status.english if self.status else None,
            "missing": list(self.missing),
            "problems": [p.to_dict() for p in self.problems],
        }


def _order_key(n: EDefterName) -> tuple[int, int, int, str]:
    if n.kind is FileKind.DR:
        return (1, n.part, _DR_ORDER.index(n.code), n.ext)
    return (0, n.part, UPLOAD_ORDER.index(n.code), n.ext)


def build_set(key: SetKey, names: Iterable[EDefterName]) -> LedgerSet:
    """Assess one set from its names. Names of another key are reported, not used."""
    problems: list[Problem] = []
    by_logical: dict[tuple[str, int], list[EDefterName]] = defaultdict(list)
    for n in names:
        if SetKey.of(n) != key:
            problems.append(
                Problem(
                    "set.foreign_file",
                    (n.filename,),
                    f"dosya bu defter takımına ait değil (beklenen {key})",
                    f"the file does not belong to this ledger set (expected {key.taxpayer_id} "
                    f"{key.branch or '-'} {key.period})",
                )
            )
            continue
        by_logical[(n.code, n.part)].append(n)
    chosen: list[EDefterName] = []
    for _logical, group in sorted(by_logical.items()):
        group.sort(key=lambda n: n.ext)  # xml before zip: the same file, no need to unzip
        if len(group) > 1:
            problems.append(
                Problem(
                    "set.duplicate_file",
                    tuple(n.filename for n in group),
                    "aynı dosya birden fazla kez var",
                    "the same logical file is present more than once",
                    Severity.WARNING,
                )
            )
        chosen.append(group[0])
    chosen.sort(key=_order_key)

    present = {(n.code, n.part) for n in chosen}
    ledger_parts = sorted({n.part for n in chosen if n.kind is not FileKind.DR})

    # Part numbering: 000000 alone, or 000001..n without gaps.
    parts = list(ledger_parts)
    if 0 in parts and len(parts) > 1:
        problems.append(
            Problem(
                "set.part_numbering",
                tuple(n.filename for n in chosen if n.kind is not FileKind.DR and n.part in (0, parts[1])),
                "000000 (bölünmemiş defter) ile 000001 ve sonrası (parçalı defter) birlikte olamaz",
                "part 000000 (unsplit ledger) and parts 000001.. (split ledger) cannot coexist",
            )
        )
    gap_parts: list[int] = []
    if parts and 0 not in parts:
        gap_parts = [p for p in range(1, parts[-1] + 1) if p not in parts]
        if gap_parts:
            problems.append(
                Problem(
                    "set.part_gap",
                    tuple(n.filename for n in chosen if n.kind is not FileKind.DR),
                    "parça numaraları boşluklu: eksik parça(lar) "
                    + ", ".join(f"{p:06d}" for p in gap_parts),
                    "part numbers have a gap: missing part(s) " + ", ".join(f"{p:06d}" for p in gap_parts),
                    details=(("missing_parts", ",".join(f"{p:06d}" for p in gap_parts)),),
                )
            )
    for n in chosen:
        if n.kind is FileKind.DR and n.part != 0:
            problems.append(
                Problem(
                    "set.dr_part",
                    (n.filename,),
                    "Defter Raporu (DR) parça numarası 000000 olmalı",
                    "a Defter Raporu (DR) must have part number 000000",
                )
            )
    # A file whose predecessor in the approval chain is absent: e.g. a berat without its ledger.
    for n in chosen:
        pre = _PREREQUISITE.get(n.code)
        if pre and (pre, n.part) not in present:
            problems.append(
                Problem(
                    "set.missing_prerequisite",
                    (n.filename,),
                    f"{n.code} dosyası var ama ait olduğu {pre} dosyası ({expected_stem(key, pre, n.part)}) yok",
                    f"{n.code} is present but its {pre} file ({expected_stem(key, pre, n.part)}) is missing",
                )
            )

    all_parts = sorted(set(parts) | set(gap_parts))
    if not all_parts and any(n.kind is FileKind.DR for n in chosen):
        all_parts = [0]  # only a DR: the unsplit ledger is what is missing

    def missing_for(codes: tuple[str, ...]) -> list[str]:
        return [expected_stem(key, c, p) for p in all_parts for c in codes if (c, p) not in present]

    status: EDefterStatus | None
    missing: list[str]
    if not all_parts:
        status, missing = None, []
    elif missing_for(LEDGER_CODES):
        status, missing = None, missing_for(LEDGER_CODES)
    elif missing_for(BERAT_CODES):
        status, missing = EDefterStatus.DOSYA_OLUSTURULDU, missing_for(BERAT_CODES)
    elif missing_for(GIB_CODES):
        status, missing = EDefterStatus.GIBE_GONDERILDI, missing_for(GIB_CODES)
    else:
        status, missing = EDefterStatus.ONAYLI_BERAT_INDIRILDI, []
    return LedgerSet(key, tuple(chosen), tuple(all_parts), status, tuple(missing), tuple(problems))


def assess(names: Iterable[EDefterName]) -> tuple[LedgerSet, ...]:
    """Group names by SetKey and assess each set (sorted by taxpayer, branch, month)."""
    groups: dict[SetKey, list[EDefterName]] = defaultdict(list)
    for n in names:
        groups[SetKey.of(n)].append(n)
    return tuple(build_set(k, groups[k]) for k in sorted(groups, key=SetKey.sort_key))
