"""Triggers (run in the triggerer, or inline under dag.test): poll without holding a worker slot.

Both poll with blocking code (a folder walk, an HTTP call) moved to a thread with
asyncio.to_thread so the triggerer's event loop stays free for the other triggers.
Each trigger owns its deadline (an absolute instant, serialized), so a triggerer restart
neither extends nor shortens the wait, and a timeout can say what was still missing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = ["ApprovedBeratsTrigger", "BackupStatusTrigger", "status_to_dict"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _period(month: str):  # -> Period (lazy import keeps trigger serialization cheap)
    from include.edefter.naming import Period

    year, mon = month.split("-")
    return Period(int(year), int(mon))


class ApprovedBeratsTrigger(BaseTrigger):
    """Fires when every part of the month has Y, K, YB, KB, GIB-YB, GIB-KB (+ DR when present)."""

    def __init__(
        self,
        folder: str,
        taxpayer_id: str,
        branch: str | None,
        month: str,
        poll_interval: float,
        deadline: str,
        warn_at: str | None = None,
    ) -> None:
        super().__init__()
        self.warn_at = warn_at  # ISO instant: emit one "deadline_warning" event from then on
        self.folder = folder
        self.taxpayer_id = taxpayer_id
        self.branch = branch
        self.month = month
        self.poll_interval = poll_interval
        self.deadline = deadline  # ISO 8601 instant, aware

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "include.pipeline.triggers.ApprovedBeratsTrigger",
            {
                "folder": self.folder,
                "taxpayer_id": self.taxpayer_id,
                "branch": self.branch,
                "month": self.month,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "warn_at": self.warn_at,
            },
        )

    def _scan(self) -> dict[str, Any]:
        from include.pipeline.folder import FolderError, scan_month

        try:
            scan, _disc, _set = scan_month(Path(self.folder), self.taxpayer_id, self.branch, _period(self.month))
        except FolderError as exc:
            return {"status": "folder_error", "message": str(exc)}
        out = scan.to_dict()
        out["status"] = "ready" if scan.approved else "waiting"
        out["missing_text"] = scan.missing_text()
        return out

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = dt.datetime.fromisoformat(self.deadline)
        while True:
            result = await asyncio.to_thread(self._scan)
            if result["status"] == "ready":
                yield TriggerEvent(result)
                return
            if _now() >= deadline:
                result["status"] = "timeout"
                result["deadline"] = self.deadline
                yield TriggerEvent(result)
                return
            if self.warn_at and _now() >= dt.datetime.fromisoformat(self.warn_at) and result["status"] == "waiting":
                # The sensor alerts and defers again without warn_at, so this fires once per run.
                result["status"] = "deadline_warning"
                result["deadline"] = self.deadline
                yield TriggerEvent(result)
                return
            # A missing/unreadable folder may be a share that is not mounted yet: keep waiting
            # until the deadline, and say so in the log.
            self.log.info(
                "e-Defter %s %s: %s; sonraki kontrol %ss sonra / next check in %ss",
                self.taxpayer_id,
                self.month,
                result.get("message") or f"eksik / missing: {result.get('missing_text')}",
                self.poll_interval,
                self.poll_interval,
            )
            await asyncio.sleep(self.poll_interval)


def status_to_dict(status: Any) -> dict[str, Any]:
    """A JSON-safe view of the client's MonthStatus (nothing secret is in it)."""
    return _jsonable(status)


def _jsonable(value: Any) -> Any:
    import dataclasses

    from include.edefter.naming import Period

    if isinstance(value, Period):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):
        return value.value  # enums (BackupStatus): the Turkish word
    return value


class BackupStatusTrigger(BaseTrigger):
    """Polls the integrator's month status until Yedeklendi or Yedeklenemedi (or the deadline)."""

    def __init__(
        self,
        conn_id: str,
        taxpayer_id: str,
        branch: str | None,
        month: str,
        poll_interval: float,
        deadline: str,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.taxpayer_id = taxpayer_id
        self.branch = branch
        self.month = month
        self.poll_interval = poll_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "include.pipeline.triggers.BackupStatusTrigger",
            {
                "conn_id": self.conn_id,
                "taxpayer_id": self.taxpayer_id,
                "branch": self.branch,
                "month": self.month,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    def _query(self) -> dict[str, Any]:
        from include.edefter.status import BackupStatus
        from include.integrator.client import AuthError
        from include.pipeline.hook import EDefterIntegratorHook

        try:
            client = EDefterIntegratorHook(self.conn_id).get_conn()
            status = client.month_status(self.taxpayer_id, self.branch, _period(self.month))
        except AuthError as exc:
            return {"status": "error", "message": str(exc)}
        except Exception as exc:  # transient: network, 5xx; keep polling until the deadline
            return {"status": "unreachable", "message": f"{type(exc).__name__}: {exc}"}
        data = status_to_dict(status)
        backup = BackupStatus(data["status"])
        data["final"] = backup.is_final
        return {"status": "final" if backup.is_final else "pending", "month_status": data}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = dt.datetime.fromisoformat(self.deadline)
        while True:
            result = await asyncio.to_thread(self._query)
            if result["status"] in ("final", "error"):
                yield TriggerEvent(result)
                return
            if _now() >= deadline:
                result["status"] = "timeout"
                result["deadline"] = self.deadline
                yield TriggerEvent(result)
                return
            self.log.info("entegratör durumu / integrator status: %s", result.get("month_status", result.get("message")))
            await asyncio.sleep(self.poll_interval)
