"""A per-file check plugged into the service with --extra-file-checks (stands in for the crypto verifier)."""

from __future__ import annotations

from include.edefter.naming import EDefterName, FileKind
from include.edefter.problems import Problem


def reject_dr(name: EDefterName, opener) -> list[Problem]:  # type: ignore[no-untyped-def]
    with opener() as fh:  # the hook gets a working opener of the archived XML
        head = fh.read(64)
    if name.kind is FileKind.DR and head.startswith(b"<"):
        return [Problem("test.extra_check", (name.filename,), "ek kontrol reddetti", "the extra check rejected it")]
    return []
