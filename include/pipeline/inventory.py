"""Archive-first inventory: what the folder and the archive hold, side by side, per configured unit.

Lists, for every configured company/branch:

* months in the folder that the archive never confirmed (present locally, not Yedeklendi there);
* months the archive holds that the companies file does not cover any more (before the unit's
  ``start_month``, or of a branch no longer configured — an account sees all of its taxpayer's
  branches when it is company-wide);
* months archived whose files are gone from the folder ("Arşivde — klasörde yok").

    python -m include.pipeline.inventory [--json]

Credentials come from each unit's Airflow Connection, as for the pipeline and the restore.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from include.edefter.naming import Period
from include.edefter.status import BackupStatus
from include.pipeline.config import BackupUnit, PipelineConfig, load_config

__all__ = ["UnitInventory", "inventory", "main"]

log = logging.getLogger(__name__)


@dataclass
class UnitInventory:
    unit: str
    local_not_archived: list[str] = field(default_factory=list)  # "2025-04 (Entegratör'e Gönderilmedi)"
    archived_not_in_folder: list[str] = field(default_factory=list)
    archived_not_configured: list[str] = field(default_factory=list)  # "2024-12" or "2025-01 şube 0003"
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "local_not_archived": self.local_not_archived,
            "archived_not_in_folder": self.archived_not_in_folder,
            "archived_not_configured": self.archived_not_configured,
            "error": self.error,
        }


def _folder_months(unit: BackupUnit) -> set[Period]:
    from include.edefter.discovery import discover

    try:
        disc = discover(unit.folder)
    except OSError:
        return set()
    return {s.key.period for s in disc.sets if s.key.taxpayer_id == unit.taxpayer_id and s.key.branch == unit.branch}


def inventory(config: PipelineConfig, client_factory: Callable[[BackupUnit], Any]) -> list[UnitInventory]:
    configured = {(u.taxpayer_id, u.branch) for u in config.units}
    seen_accounts: set[tuple[str, str | None]] = set()
    out: list[UnitInventory] = []
    for unit in config.units:
        inv = UnitInventory(unit.dag_id)
        out.append(inv)
        try:
            with client_factory(unit) as client:
                # No branch filter: a company-wide account sees every branch, a branch account its own.
                files = client.list_files(unit.taxpayer_id)
                archived: dict[tuple[str | None, Period], int] = {}
                for f in files:
                    key = (f.branch or None, f.period)
                    archived[key] = archived.get(key, 0) + 1
                mine = {p for (b, p) in archived if b == unit.branch}
                local = _folder_months(unit)
                for p in sorted(local - mine):
                    if p < unit.start_month:
                        continue
                    st = client.month_status(unit.taxpayer_id, unit.branch, p)
                    if st.status is not BackupStatus.YEDEKLENDI:
                        inv.local_not_archived.append(f"{p} ({st.status.value})")
                inv.archived_not_in_folder = [str(p) for p in sorted(mine - local)]
                inv.archived_not_configured = [str(p) for p in sorted(mine) if p < unit.start_month]
                # Other branches visible to a company-wide account, reported once per taxpayer.
                account = (unit.taxpayer_id, None if unit.branch is None else unit.branch)
                if account not in seen_accounts:
                    seen_accounts.add(account)
                    for b, p in sorted(archived, key=lambda k: (k[0] or "", k[1])):
                        if b != unit.branch and (unit.taxpayer_id, b) not in configured:
                            inv.archived_not_configured.append(f"{p} şube {b}" if b else f"{p} (şubesiz / company-level)")
        except Exception as exc:  # noqa: BLE001 - one unit's problem never hides the others
            inv.error = f"{type(exc).__name__}: {exc}"
    return out


def render(items: Sequence[UnitInventory]) -> str:
    lines: list[str] = []
    for inv in items:
        lines.append(inv.unit)
        if inv.error:
            lines.append(f"  hata / error: {inv.error}")
            continue
        for title, values in (
            ("klasörde var, arşivde yok / in the folder, not archived", inv.local_not_archived),
            ("Arşivde — klasörde yok / archived, not in the folder", inv.archived_not_in_folder),
            ("arşivde, yapılandırmada yok / archived, not configured", inv.archived_not_configured),
        ):
            lines.append(f"  {title}: {', '.join(values) if values else '-'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m include.pipeline.inventory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from include.pipeline.restore import client_for

    items = inventory(load_config(), client_for)
    print(json.dumps([i.to_dict() for i in items], ensure_ascii=False, indent=2) if a.json else render(items))
    return 1 if any(i.error for i in items) else 0


if __name__ == "__main__":
    sys.exit(main())
