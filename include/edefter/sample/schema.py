"""Load GİB's e-Defter XSD package offline (for checking generated samples).

The one loader is ``include.edefter.xsd.load_validator`` (local XBRL copies, no network, GİB's
package checked, compiled once per directory); this module only keeps the generator's entry point.
"""

from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

__all__ = ["load_schema", "schema_dir_from_env"]


def schema_dir_from_env() -> Path:
    value = os.environ.get("EDEFTER_SCHEMA_DIR")
    if not value:
        raise RuntimeError("EDEFTER_SCHEMA_DIR is not set (folder holding GİB's edefter.xsd)")
    return Path(value)


def load_schema(schema_dir: Path | None = None) -> etree.XMLSchema:
    """edefter.xsd and everything it imports, compiled (cached by the domain's loader)."""
    from include.edefter.xsd import load_validator

    d = Path(schema_dir) if schema_dir is not None else schema_dir_from_env()
    return load_validator(d, use_xmllint=False).schema
