"""The e-Defter file-name grammar.

``[GIB-]{VKN|TCKN}-{YYYYMM}-{Y|K|YB|KB|DR}-{NNNNNN}[-{SSSS}].{xml|zip}``

Names are parsed field by field so a rejected name says which part is wrong
(accountants fix names by hand; "invalid name" alone does not help them).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "TURKISH_MONTHS",
    "FileKind",
    "InvalidFileName",
    "EDefterName",
    "Period",
    "parse_name",
    "try_parse_name",
]

TURKISH_MONTHS = (
    "Ocak",
    "Şubat",
    "Mart",
    "Nisan",
    "Mayıs",
    "Haziran",
    "Temmuz",
    "Ağustos",
    "Eylül",
    "Ekim",
    "Kasım",
    "Aralık",
)


class FileKind(enum.Enum):
    """The file type code in a name."""

    Y = "Y"  # Yevmiye Defteri (journal)
    K = "K"  # Büyük Defter / Defter-i Kebir (general ledger)
    YB = "YB"  # Yevmiye Defteri Beratı
    KB = "KB"  # Kebir Beratı
    DR = "DR"  # Defter Raporu

    @property
    def is_berat(self) -> bool:
        return self in (FileKind.YB, FileKind.KB)

    @property
    def is_ledger(self) -> bool:
        return self in (FileKind.Y, FileKind.K)

    @property
    def label_tr(self) -> str:
        return {
            FileKind.Y: "Yevmiye Defteri",
            FileKind.K: "Büyük Defter",
            FileKind.YB: "Yevmiye Defteri Beratı",
            FileKind.KB: "Büyük Defter Beratı",
            FileKind.DR: "Defter Raporu",
        }[self]


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month, the unit of one ledger set."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1..12, got {self.month}")
        if not 1900 <= self.year <= 9999:
            raise ValueError(f"year out of range: {self.year}")

    @classmethod
    def parse(cls, yyyymm: str) -> Period:
        if len(yyyymm) != 6 or not yyyymm.isascii() or not yyyymm.isdigit():
            raise ValueError(f"period must be YYYYMM, got {yyyymm!r}")
        return cls(int(yyyymm[:4]), int(yyyymm[4:]))

    @property
    def yyyymm(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    @property
    def label_tr(self) -> str:
        """'Eylül-2019', the form the integrator's messages use."""
        return f"{TURKISH_MONTHS[self.month - 1]}-{self.year}"

    def next(self) -> Period:
        return Period(self.year + (self.month == 12), self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


class InvalidFileName(ValueError):
    """A name that does not follow the e-Defter grammar.

    ``field`` names the offending part: prefix, taxpayer_id, period, kind, part,
    branch, extension or structure.
    """

    def __init__(self, name: str, field: str, message_en: str, message_tr: str) -> None:
        self.name = name
        self.field = field
        self.message_en = message_en
        self.message_tr = message_tr
        super().__init__(f"{name!r}: {message_en} / {message_tr}")


_EXTENSIONS = ("xml", "zip")


@dataclass(frozen=True, order=True)
class EDefterName:
    """One parsed e-Defter file name."""

    taxpayer_id: str
    period: Period
    kind: FileKind
    part: int
    branch: str | None = None
    gib: bool = False
    ext: str = "xml"

    def __post_init__(self) -> None:
        # Validate by formatting and re-parsing: one grammar, one place.
        _parse(self._format(), check_only=True)

    def _format(self) -> str:
        prefix = "GIB-" if self.gib else ""
        suffix = f"-{self.branch}" if self.branch is not None else ""
        return (
            f"{prefix}{self.taxpayer_id}-{self.period.yyyymm}-{self.kind.value}-"
            f"{self.part:06d}{suffix}.{self.ext}"
        )

    @property
    def filename(self) -> str:
        return self._format()

    @property
    def stem(self) -> str:
        return self._format().rsplit(".", 1)[0]

    @property
    def code(self) -> str:
        """The type code as users see it: Y, K, YB, KB, GIB-YB, GIB-KB, DR."""
        return f"GIB-{self.kind.value}" if self.gib else self.kind.value

    def with_ext(self, ext: str) -> EDefterName:
        return EDefterName(
            self.taxpayer_id, self.period, self.kind, self.part, self.branch, self.gib, ext
        )

    @property
    def logical_key(self) -> tuple[str, str | None, Period, str, int]:
        """Identity regardless of xml/zip: the same logical file in either container."""
        return (self.taxpayer_id, self.branch, self.period, self.code, self.part)

    def __str__(self) -> str:
        return self._format()


_TAXPAYER_RE = re.compile(r"[0-9]{10,11}")
_PART_RE = re.compile(r"[0-9]{6}")
_BRANCH_RE = re.compile(r"[0-9]{4}")
_KINDS = {k.value: k for k in FileKind}


def _bad(name: str, field: str, en: str, tr: str) -> InvalidFileName:
    return InvalidFileName(name, field, en, tr)


def _parse(name: str, check_only: bool = False) -> EDefterName | None:
    if "/" in name or "\\" in name:
        raise _bad(name, "structure", "a file name must not contain a path", "dosya adı yol içeremez")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        raise _bad(name, "extension", "missing extension (.xml or .zip)", "uzantı eksik (.xml veya .zip)")
    if ext.lower() not in _EXTENSIONS:
        raise _bad(
            name,
            "extension",
            f"extension must be .xml or .zip, got .{ext}",
            f"uzantı .xml veya .zip olmalı, .{ext} bulundu",
        )
    gib = False
    if stem.startswith("GIB-"):
        gib = True
        stem = stem[4:]
    elif stem.upper().startswith("GIB") and not stem[:1].isdigit():
        raise _bad(name, "prefix", "the GİB prefix must be exactly 'GIB-'", "GİB öneki tam olarak 'GIB-' olmalı")
    fields = stem.split("-")
    if len(fields) not in (4, 5):
        raise _bad(
            name,
            "structure",
            "expected TAXPAYERID-YYYYMM-TYPE-PART[-BRANCH]",
            "beklenen biçim VKN/TCKN-YYYYAA-TÜR-PARÇA[-ŞUBE]",
        )
    taxpayer, yyyymm, kind_s, part_s = fields[:4]
    if not _TAXPAYER_RE.fullmatch(taxpayer):
        raise _bad(
            name,
            "taxpayer_id",
            f"taxpayer id must be a 10-digit VKN or 11-digit TCKN, got {taxpayer!r}",
            f"vergi kimlik numarası 10 haneli VKN veya 11 haneli TCKN olmalı, {taxpayer!r} bulundu",
        )
    if not _PART_RE.fullmatch(yyyymm) or yyyymm != yyyymm.strip():
        raise _bad(
            name, "period", f"period must be YYYYMM, got {yyyymm!r}", f"dönem YYYYAA olmalı, {yyyymm!r} bulundu"
        )
    year, month = int(yyyymm[:4]), int(yyyymm[4:])
    if not 1 <= month <= 12:
        raise _bad(name, "period", f"month must be 01..12, got {yyyymm[4:]}", f"ay 01..12 olmalı, {yyyymm[4:]} bulundu")
    if year < 2000:
        raise _bad(name, "period", f"year {year} is before e-Defter existed", f"{year} yılı e-Defter öncesi")
    kind = _KINDS.get(kind_s)
    if kind is None:
        raise _bad(
            name,
            "kind",
            f"type must be one of Y, K, YB, KB, DR, got {kind_s!r}",
            f"tür Y, K, YB, KB, DR olmalı, {kind_s!r} bulundu",
        )
    if gib and kind.is_ledger:
        raise _bad(
            name,
            "prefix",
            "only berats (YB, KB) or DR carry the GİB prefix",
            "GIB- öneki yalnızca beratlarda (YB, KB) veya DR'de olur",
        )
    if not _PART_RE.fullmatch(part_s):
        raise _bad(
            name, "part", f"part must be 6 digits, got {part_s!r}", f"parça numarası 6 haneli olmalı, {part_s!r} bulundu"
        )
    branch: str | None = None
    if len(fields) == 5:
        branch = fields[4]
        if not _BRANCH_RE.fullmatch(branch) or branch == "0000":
            raise _bad(
                name,
                "branch",
                f"branch must be 4 digits other than 0000, got {branch!r}",
                f"şube numarası 0000 dışında 4 haneli olmalı, {branch!r} bulundu",
            )
    if check_only:
        return None
    return EDefterName(taxpayer, Period(year, month), kind, int(part_s), branch, gib, ext.lower())


def parse_name(name: str) -> EDefterName:
    """Parse a bare file name; raise InvalidFileName naming the wrong part."""
    result = _parse(name)
    assert result is not None
    return result


def try_parse_name(name: str) -> EDefterName | None:
    """Parse or return None; for discovery, where unrelated files are ignored."""
    try:
        return parse_name(name)
    except InvalidFileName:
        return None
