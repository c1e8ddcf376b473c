"""Settings of the e-Defter domain: XML safety limits and where the GİB schemas live.

Kept free of Airflow and of any config framework so the scanner, the integrator
and the pipeline all read the same values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

__all__ = ["SCHEMA_DIR_ENV", "XmlLimits", "schema_dir"]

SCHEMA_DIR_ENV = "EDEFTER_SCHEMA_DIR"

_MIB = 1024 * 1024


@dataclass(frozen=True)
class XmlLimits:
    """Caps applied while reading untrusted e-Defter XML (and the zips holding it).

    A ledger part is split by the software at about 200 MB, so the default file
    cap leaves generous room for other vendors' sizes without letting a runaway
    file exhaust the disk or the clock.
    """

    max_file_bytes: int = 2048 * _MIB  # uncompressed XML bytes per file
    max_depth: int = 64  # XBRL GL + XAdES nest ~20 deep; deeper is not e-Defter
    max_text_bytes: int = 8 * _MIB  # one text node (certificates, base64 blobs)
    max_attributes: int = 64  # per element
    # One start tag, '<' to '>' (checked on the raw bytes before libxml2 builds the element,
    # whose attributes cost ~30x their bytes): a real e-Defter start tag is well under 1 KiB.
    max_start_tag_bytes: int = 64 * 1024
    max_zip_members: int = 16  # a one-per-file zip holds one member; a few extras are reported
    max_zip_ratio: int = 200  # uncompressed/compressed: XML compresses ~10-30x, bombs far more
    read_chunk_bytes: int = 1 * _MIB

    DEFAULT: ClassVar[XmlLimits]

    @property
    def huge_tree(self) -> bool:
        """libxml2's own default text cap is 10 MB; lift it only if our limit is higher."""
        return self.max_text_bytes > 10 * _MIB or self.max_depth > 256


XmlLimits.DEFAULT = XmlLimits()


def schema_dir() -> Path | None:
    """The GİB XSD package directory from env EDEFTER_SCHEMA_DIR, or None if unset/missing."""
    value = os.environ.get(SCHEMA_DIR_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.joinpath("edefter.xsd").is_file() else None
