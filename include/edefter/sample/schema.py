"""Load GİB's e-Defter XSD package offline (for checking generated samples).

The XBRL GL schemas import ``http://www.xbrl.org/2003/xbrl-instance-2003-12-31.xsd``
by URL; the package ships that file next to edefter.xsd, so URLs under
http://www.xbrl.org/2003/ are mapped to the local copy and the network is never used.
"""

from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

__all__ = ["load_schema", "schema_dir_from_env"]

_XBRL_2003 = "http://www.xbrl.org/2003/"


class _LocalXbrlResolver(etree.Resolver):
    def __init__(self, schema_dir: Path) -> None:
        super().__init__()
        self._dir = schema_dir

    def resolve(self, system_url: str, public_id: str, context: object):  # type: ignore[no-untyped-def]
        if system_url.startswith(_XBRL_2003):
            local = self._dir / system_url.rsplit("/", 1)[1]
            if local.is_file():
                return self.resolve_filename(str(local), context)
        return None


def schema_dir_from_env() -> Path:
    value = os.environ.get("EDEFTER_SCHEMA_DIR")
    if not value:
        raise RuntimeError("EDEFTER_SCHEMA_DIR is not set (folder holding GİB's edefter.xsd)")
    return Path(value)


def load_schema(schema_dir: Path | None = None) -> etree.XMLSchema:
    """Parse edefter.xsd and everything it imports (about 1 s; cache the result)."""
    schema_dir = Path(schema_dir) if schema_dir is not None else schema_dir_from_env()
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalXbrlResolver(schema_dir))
    return etree.XMLSchema(etree.parse(str(schema_dir / "edefter.xsd"), parser))
