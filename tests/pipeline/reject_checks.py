"""An integrator-side policy used by the rejection test: the archive refuses every DR file.

Loaded by the integrator service through INTEGRATOR_EXTRA_FILE_CHECKS, so the rejection comes
from the real service's asynchronous validation, over HTTP, like a real integrator's verdict.
"""

from __future__ import annotations

from include.edefter.naming import EDefterName, FileKind
from include.edefter.problems import Problem

REASON_TR = "test politikası: Defter Raporu kabul edilmiyor"
REASON_EN = "test policy: Defter Raporu files are not accepted"


def reject_dr(name: EDefterName, opener) -> list[Problem]:  # type: ignore[no-untyped-def]
    if name.kind is FileKind.DR:
        return [Problem("policy.dr_refused", (name.filename,), REASON_TR, REASON_EN)]
    return []
