"""The status table: per company/branch and month, e-Defter statüsü (folder) and Yedekleme durumu (integrator).

``month_rows(config, integrator_lookup)`` scans each configured folder once (read-only) and
asks ``integrator_lookup(unit, period)`` for the archive's state of every month found.
``hook_lookup`` asks through the Airflow Connections (inside Airflow); scripts may pass any
callable returning an object with ``.status`` (BackupStatus) and ``.message_tr``, or None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.edefter.naming import Period
from include.edefter.status import BackupStatus
from include.pipeline.config import BackupUnit, PipelineConfig

__all__ = ["StatusRow", "client_lookup", "hook_lookup", "month_rows"]

log = logging.getLogger(__name__)

IntegratorLookup = Callable[[BackupUnit, Period], Any]


@dataclass(frozen=True)
class StatusRow:
    company: str
    branch: str | None
    month: Period
    edefter_status: str  # e-Defter statüsü, or "-" when the folder holds nothing for the month
    backup_status: str  # Yedekleme durumu
    message: str = ""
    taxpayer_id: str = ""

    def key(self) -> tuple[str, str | None, Period]:
        return (self.taxpayer_id, self.branch, self.month)

    def as_tuple(self) -> tuple[str, str, str, str, str, str]:
        return (self.company, self.branch or "-", str(self.month), self.edefter_status, self.backup_status, self.message)


def hook_lookup(unit: BackupUnit, period: Period) -> Any:
    """The integrator's month status through the unit's Airflow Connection."""
    from include.pipeline.hook import EDefterIntegratorHook

    with EDefterIntegratorHook(unit.integrator_conn_id).get_conn() as client:
        return client.month_status(unit.taxpayer_id, unit.branch, period)


def client_lookup(clients: dict[str, Any]) -> IntegratorLookup:
    """A lookup over ready-made IntegratorClients keyed by Connection id (scripts, the demo)."""

    def lookup(unit: BackupUnit, period: Period) -> Any:
        client = clients.get(unit.integrator_conn_id)
        return None if client is None else client.month_status(unit.taxpayer_id, unit.branch, period)

    return lookup


def month_rows(
    config: PipelineConfig,
    integrator_lookup: IntegratorLookup | None = hook_lookup,
    *,
    months: Iterable[Period] | None = None,
) -> list[StatusRow]:
    """Rows (company, branch, month, e-Defter statüsü, Yedekleme durumu, message), sorted.

    Months: those given, else every month of the unit found in its folder from start_month on.
    An unreachable integrator gives the row "?" with the error, never an exception: the table
    is for reading, and one bad Connection must not hide the other companies.
    """
    from include.edefter.discovery import discover

    scans: dict[Path, Any] = {}
    rows: list[StatusRow] = []
    wanted = sorted(set(months)) if months is not None else None
    for unit in config.units:
        if unit.folder not in scans:
            try:
                scans[unit.folder] = discover(unit.folder)
            except OSError as exc:
                scans[unit.folder] = exc
        disc = scans[unit.folder]
        sets = {}
        if not isinstance(disc, Exception):
            sets = {
                s.key.period: s
                for s in disc.sets
                if s.key.taxpayer_id == unit.taxpayer_id and s.key.branch == unit.branch
            }
        periods = wanted if wanted is not None else sorted(p for p in sets if p >= unit.start_month)
        for period in periods:
            ls = sets.get(period)
            edefter = ls.status.value if ls is not None and ls.status is not None else "-"
            backup, message = BackupStatus.GONDERILMEDI.value, ""
            if ls is not None and ls.missing:
                message = "eksik / missing: " + ", ".join(ls.missing)
            if integrator_lookup is not None:
                try:
                    st = integrator_lookup(unit, period)
                except Exception as exc:
                    backup, message = "?", f"entegratör sorgulanamadı / integrator unavailable: {type(exc).__name__}"
                    log.warning("%s %s: %s", unit.dag_id, period, exc)
                else:
                    if st is not None:
                        status = st.status if isinstance(st.status, BackupStatus) else BackupStatus(st.status)
                        backup = status.value
                        if status is not BackupStatus.GONDERILMEDI:
                            message = st.message_tr or message
            rows.append(
                StatusRow(
                    company=unit.display_name,
                    branch=unit.branch,
                    month=period,
                    edefter_status=edefter,
                    backup_status=backup,
                    message=message,
                    taxpayer_id=unit.taxpayer_id,
                )
            )
    rows.sort(key=lambda r: (r.company, r.branch or "", r.month))
    return rows
