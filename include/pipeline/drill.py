"""Restore drills: prove, month after month, that the archive can give the ledgers back.

Each run re-downloads a rotating slice of every unit's archived months into a throw-away
directory, checks every SHA-256 against the archive's record and re-runs the full verification
(the restore's own code), stores the drill's result with the month in the archive (an evidence
document, kind "Geri yükleme tatbikatı") and fails — alerting the unit's channels — on any
problem. The practice of ``restic check --read-data-subset``.

Rotation: the unit's archived months, oldest first, are cut into slices; run number ``k``
(months since year 0 of the run's logical date) takes slice ``k mod n``. With one run a month
and at least ``ceil(months / 12)`` months per slice, every archived month is drilled at least
once a year; the slice size is raised to that floor automatically.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.edefter.naming import Period
from include.pipeline.config import BackupUnit, PipelineConfig, load_config, work_dir

__all__ = ["DrillResult", "archived_months", "choose_slice", "drill_unit", "run_drills"]

log = logging.getLogger(__name__)

DEFAULT_SLICE = 2
DRILL_KIND = "Geri yükleme tatbikatı / restore drill"


def choose_slice(months: Sequence[Period], run_index: int, slice_size: int) -> list[Period]:
    """The months this run drills: a rotating window over ``months`` (sorted, unique)."""
    ordered = sorted(set(months))
    if not ordered:
        return []
    size = max(1, slice_size, math.ceil(len(ordered) / 12))
    slices = math.ceil(len(ordered) / size)
    start = (run_index % slices) * size
    return ordered[start : start + size]


def run_index_of(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def archived_months(client: Any, unit: BackupUnit) -> list[Period]:
    """Months with committed files in the archive for the unit (its branch only, for a branch unit)."""
    files = client.list_files(unit.taxpayer_id, unit.branch)
    return sorted({f.period for f in files if (f.branch or None) == (unit.branch or None)})


@dataclass
class DrillResult:
    unit: str
    months: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "2025-03: <file> <verdict>" lines
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "months": self.months, "files": self.files, "ok": self.ok, "failed": self.failed}


def drill_unit(
    client: Any,
    unit: BackupUnit,
    *,
    run_index: int,
    slice_size: int = DEFAULT_SLICE,
    scratch: Path | None = None,
    trust: Any = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> DrillResult:
    """Restore and verify this run's slice of the unit's archived months; record each month's result."""
    from include.pipeline.restore import RestoreError, RestoreRequest, restore

    result = DrillResult(unit.dag_id)
    months = choose_slice(archived_months(client, unit), run_index, slice_size)
    for period in months:
        result.months.append(str(period))
        tmp = Path(tempfile.mkdtemp(prefix="edefter-drill-", dir=scratch))
        try:
            req = RestoreRequest.for_unit(unit, period, period, tmp, "flat")
            try:
                report = restore(client, req, trust=trust, progress=lambda m: log.info("%s", m))
            except RestoreError as exc:
                result.failed.append(f"{period}: {exc}")
                _record(client, unit, period, False, [], str(exc), now())
                continue
            lines = [
                {"name": f.name, "sha256": f.sha256, "verdict": f.verdict}
                for m in report.months
                for f in m.files
            ]
            result.files += len(lines)
            bad = [f"{period}: {x['name']} {x['verdict']}" for x in lines if x["verdict"] != "ok"]
            bad += [
                f"{period}: [{p.get('code')}] {p.get('message_tr', '')} / {p.get('message_en', '')}"
                for m in report.months
                for p in m.problems
                if p.get("severity", "error") == "error"
            ]
            if not lines:
                bad.append(f"{period}: arşivde dosya yok / no files in the archive")
            result.failed.extend(bad)
            _record(client, unit, period, not bad, lines, "; ".join(bad), now())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def _record(client: Any, unit: BackupUnit, period: Period, ok: bool, files: list[dict[str, Any]], reason: str,
            at: dt.datetime) -> None:
    doc = {
        "kind": DRILL_KIND,
        "taxpayer_id": unit.taxpayer_id,
        "branch": unit.branch,
        "month": str(period),
        "checked_at": at.isoformat(),
        "ok": ok,
        "result": "Geri yüklendi ve doğrulandı / restored and verified" if ok else f"BAŞARISIZ / FAILED: {reason}",
        "files": files,
    }
    data = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    try:
        client.put_evidence(unit.taxpayer_id, unit.branch, period, data)
    except Exception as exc:  # the drill's verdict stands even if recording it failed; say so
        log.error("tatbikat sonucu arşive yazılamadı / drill result not recorded for %s %s: %s", unit.dag_id, period, exc)


def run_drills(
    *,
    day: dt.date,
    slice_size: int = DEFAULT_SLICE,
    config: PipelineConfig | None = None,
    client_factory: Callable[[BackupUnit], Any] | None = None,
) -> list[DrillResult]:
    """Every configured unit's drill for the run of ``day`` (one failing unit never hides another)."""
    from include.pipeline.restore import client_for

    cfg = config if config is not None else load_config()
    scratch = work_dir()
    scratch.mkdir(parents=True, exist_ok=True)
    out: list[DrillResult] = []
    for unit in cfg.units:
        try:
            with (client_factory or client_for)(unit) as client:
                out.append(drill_unit(client, unit, run_index=run_index_of(day), slice_size=slice_size, scratch=scratch))
        except Exception as exc:  # noqa: BLE001 - reported per unit, the others still run
            log.exception("drill of %s failed", unit.dag_id)
            out.append(DrillResult(unit.dag_id, failed=[f"tatbikat çalışmadı / drill did not run: {type(exc).__name__}: {exc}"]))
    return out
