"""Make broken sample sets for tests. Each function changes files in place
(callers work on a copy) and returns the path(s) it changed or created.

Every breakage mirrors something seen in practice: a file missing from the
set, a byte flipped in transit, a berat of another month, a ledger of another
taxpayer, a file cut short by a full disk, a GİB berat saved before GİB's seal.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from include.edefter.naming import Period, parse_name

from .generator import Stage, generate_month
from .pki import TestPKI

__all__ = [
    "copy_set",
    "remove_file",
    "flip_byte_in_ledger_body",
    "berat_of_other_month",
    "wrong_taxpayer_inside",
    "truncate_xml",
    "gib_berat_without_counter_signature",
]


def copy_set(src_dir: Path, dst_dir: Path) -> Path:
    """Copy a generated set (whole tree) so a test can break the copy."""
    shutil.copytree(src_dir, dst_dir, dirs_exist_ok=True)
    return dst_dir


def remove_file(path: Path) -> Path:
    """Delete one file of the set (e.g. the KB berat)."""
    path.unlink()
    return path


def flip_byte_in_ledger_body(path: Path, *, occurrence: int = 0) -> Path:
    """Change one character inside a text node of the body (a detailComment).

    The XML stays well-formed and schema-valid, only the Reference digest
    breaks. The flipped character is ASCII and replaced by another ASCII
    letter, so the file stays valid UTF-8.
    """
    data = bytearray(path.read_bytes())
    marker = b"<gl-cor:detailComment"
    at = -1
    for _ in range(occurrence + 1):
        at = data.index(marker, at + 1)
    start = data.index(b">", at) + 1
    end = data.index(b"<", start)
    for i in range(start, end):
        ch = data[i]
        if 0x61 <= ch <= 0x7A:  # a-z
            data[i] = 0x61 + (ch - 0x61 + 1) % 26
            break
    else:
        raise ValueError(f"{path.name}: no ASCII letter to flip in the first detailComment")
    path.write_bytes(bytes(data))
    return path


def berat_of_other_month(berat_path: Path, *, pki: TestPKI, company_name: str = "Örnek Ticaret A.Ş.",
                         other: Period | None = None, seed: int = 0) -> Path:
    """Replace a berat (YB/KB, GIB- or not) by the same berat generated for another month.

    The file keeps its name, so its content says another period and its
    copied SignatureValue matches no ledger of this set.
    """
    name = parse_name(berat_path.name)
    if not name.kind.is_berat:
        raise ValueError(f"{berat_path.name} is not a berat")
    other = other or name.period.previous()
    with tempfile.TemporaryDirectory(prefix="edefter-other-month-") as tmp:
        mf = generate_month(
            Path(tmp), taxpayer_id=name.taxpayer_id, company_name=company_name, period=other, pki=pki,
            branch=name.branch, parts=1 if name.part == 0 else max(name.part, 2), seed=seed,
            stage=Stage.GIB_BERATS, with_dr=False,
        )
        donor = mf.paths[(name.code, name.part)]
        berat_path.write_bytes(donor.read_bytes())
    return berat_path


def wrong_taxpayer_inside(path: Path, *, other_taxpayer_id: str = "9876543210") -> Path:
    """Replace the taxpayer id inside xbrli:identifier (the name keeps the real one).

    This breaks the file's signature too, like any edit; tests of name/content
    consistency see the mismatch first.
    """
    data = path.read_bytes()
    name = parse_name(path.name)
    old = f'scheme="http://www.gib.gov.tr">{name.taxpayer_id}</xbrli:identifier>'.encode()
    new = f'scheme="http://www.gib.gov.tr">{other_taxpayer_id}</xbrli:identifier>'.encode()
    if old not in data:
        raise ValueError(f"{path.name}: identifier {name.taxpayer_id} not found")
    path.write_bytes(data.replace(old, new, 1))
    return path


def truncate_xml(path: Path, *, keep_fraction: float = 0.5) -> Path:
    """Cut the file short (not well-formed any more)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return path


def gib_berat_without_counter_signature(path: Path) -> Path:
    """Strip GİB's seal (xades:UnsignedProperties) from a GIB- berat.

    What remains is byte-identical to the taxpayer berat: its signature still
    verifies, but GİB's counter-signature is missing.
    """
    data = path.read_bytes()
    start = data.find(b"<xades:UnsignedProperties>")
    end_marker = b"</xades:UnsignedProperties>"
    end = data.rfind(end_marker)
    if start < 0 or end < 0:
        raise ValueError(f"{path.name}: no counter-signature to remove")
    path.write_bytes(data[:start] + data[end + len(end_marker):])
    return path
