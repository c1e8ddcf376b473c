"""Deferrable sensors: wait for GİB's approved berats, then for the integrator's verdict.

Both check once synchronously (most re-runs and backfills of old months are already
done, so no trigger round-trip is needed) and otherwise defer to a trigger that polls.
A sensor timeout reports what is still missing; a "Yedeklenemedi" verdict fails with the
integrator's reasons as AirflowFailException (a verdict is never retried).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from include.edefter.deadlines import TaxpayerKind, secondary_copy_deadline
from include.edefter.naming import Period
from include.pipeline.months import MonthNotGiven, parse_month, resolve_month
from include.pipeline.triggers import ApprovedBeratsTrigger, BackupStatusTrigger

__all__ = ["WaitForApprovedBeratsSensor", "WaitForBackupConfirmationSensor", "reasons_text"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _month_of(op: Any, context: Any) -> Period:
    try:
        return parse_month(op.month) if op.month else resolve_month(context, op.automatic)
    except (MonthNotGiven, ValueError) as exc:
        raise AirflowFailException(str(exc)) from exc


def reasons_text(month_status: dict[str, Any]) -> str:
    """The integrator's reasons for a verdict, one per line, Turkish / English."""
    lines: list[str] = []
    for p in month_status.get("problems") or []:
        where = ", ".join(p.get("files") or ([p["file"]] if p.get("file") else []))
        lines.append(f"- [{p.get('code', '?')}] {where}: {p.get('message_tr', '')} / {p.get('message_en', '')}")
    for f in month_status.get("files") or []:
        for p in f.get("problems") or []:
            lines.append(f"- [{p.get('code', '?')}] {f.get('name')}: {p.get('message_tr', '')} / {p.get('message_en', '')}")
    return "\n".join(dict.fromkeys(lines))


class WaitForApprovedBeratsSensor(BaseSensorOperator):
    """Waits until the month's set is complete with GİB-approved berats ("Onaylı Berat İndirildi").

    ``timeout_seconds=None`` waits until the month's secondary-copy deadline (berat deadline
    + 15 days, by the rule version in force; the rule is logged and returned).

    With ``integrator_conn_id``, a month that is not complete in the folder but that the archive
    already confirmed (Yedeklendi: the local files were lost or removed after the backup) is not
    waited for: the task is skipped as "Arşivde — klasörde yok", and so is the rest of the run.
    """

    template_fields: Sequence[str] = ("folder", "taxpayer_id", "branch", "month")

    def __init__(
        self,
        *,
        folder: str,
        taxpayer_id: str,
        branch: str | None = None,
        month: str | None = None,
        automatic: bool = True,
        taxpayer_kind: str = TaxpayerKind.KURUMLAR.value,
        poll_interval_seconds: float = 3600,
        timeout_seconds: float | None = None,
        deadline_warning_days: int = 7,
        deadline_notifier: Any = None,
        deferrable: bool = True,
        integrator_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval_seconds)
        super().__init__(**kwargs)
        self.integrator_conn_id = integrator_conn_id
        self.deadline_warning_days = deadline_warning_days
        self.deadline_notifier = deadline_notifier  # EDefterAlertNotifier-like: .warn(context, reason)
        self.folder = str(folder)
        self.taxpayer_id = taxpayer_id
        self.branch = branch
        self.month = month
        self.automatic = automatic
        self.taxpayer_kind = taxpayer_kind
        self.poll_interval_seconds = poll_interval_seconds
        self.timeout_seconds = timeout_seconds
        self.deferrable = deferrable

    def _deadline(self, period: Period, context: Any) -> tuple[dt.datetime, dict[str, Any]]:
        legal = secondary_copy_deadline(period, self.taxpayer_kind)
        if self.timeout_seconds is None:
            return legal.end.astimezone(dt.UTC), legal.to_dict()
        # Counted from the first check of this try; resumed deferrals carry the absolute
        # deadline in the trigger event instead of recomputing it here.
        return _now() + dt.timedelta(seconds=self.timeout_seconds), legal.to_dict()

    def _scan(self, period: Period) -> dict[str, Any]:
        from include.pipeline.folder import FolderError, scan_month

        try:
            scan, _disc, _set = scan_month(Path(self.folder), self.taxpayer_id, self.branch, period)
        except FolderError as exc:
            # Retryable on purpose: a share that is not mounted yet is an operator problem.
            raise AirflowException(str(exc)) from exc
        out = scan.to_dict()
        out["status"] = "ready" if scan.approved else "waiting"
        out["missing_text"] = scan.missing_text()
        return out

    def poke(self, context: Any) -> bool:  # reschedule/poke mode (deferrable=False)
        return self._scan(_month_of(self, context))["status"] == "ready"

    def execute(self, context: Any) -> Any:
        period = _month_of(self, context)
        deadline, legal = self._deadline(period, context)
        self.log.info(
            "%s %s: bekleme sonu / wait until %s (ikincil kopya süresi / secondary-copy deadline %s, kural / rule %s)",
            self.taxpayer_id,
            period,
            deadline.isoformat(),
            legal["date"],
            legal["rule"],
        )
        first = self._scan(period)
        if first["status"] == "ready":
            return self._done(first, period, legal)
        self._skip_if_archived(period, first)
        if _now() >= deadline:
            self._timeout(first, period, deadline)
        if not self.deferrable:
            super().execute(context)
            return self._done(self._scan(period), period, legal)
        self.log.info("%s %s bekleniyor, eksik / waiting, missing: %s", self.taxpayer_id, period, first["missing_text"])
        self._defer(period, deadline, self._warn_at(legal))

    def _skip_if_archived(self, period: Period, scan: dict[str, Any]) -> None:
        """Archive first: never wait for berats of a month the archive already confirmed."""
        if not self.integrator_conn_id:
            return
        from include.edefter.status import BackupStatus
        from include.integrator.client import IntegratorError
        from include.pipeline.hook import EDefterIntegratorHook

        try:
            with EDefterIntegratorHook(self.integrator_conn_id).get_conn() as client:
                st = client.month_status(self.taxpayer_id, self.branch, period)
        except IntegratorError as exc:
            # The archive being away must not stop the wait for the folder.
            self.log.warning("arşiv sorgulanamadı / archive not reachable: %s", exc)
            return
        if st.status is BackupStatus.YEDEKLENDI:
            raise AirflowSkipException(
                f"{period.label_tr}: Arşivde — klasörde yok (arşiv bu ayı yedeklendi olarak doğruladı, gönderim "
                f"{st.submission_id}; klasörde eksik: {scan.get('missing_text')}) / archived, not in the folder: "
                f"the archive already confirmed this month; nothing to wait for"
            )

    def _warn_at(self, legal: dict[str, Any]) -> dt.datetime | None:
        if not self.deadline_warning_days or self.deadline_notifier is None:
            return None
        from include.edefter.deadlines import end_of_day

        legal_end = end_of_day(dt.date.fromisoformat(legal["date"])).astimezone(dt.UTC)
        return legal_end - dt.timedelta(days=self.deadline_warning_days)

    def _defer(self, period: Period, deadline: dt.datetime, warn_at: dt.datetime | None) -> None:
        self.defer(
            trigger=ApprovedBeratsTrigger(
                folder=self.folder,
                taxpayer_id=self.taxpayer_id,
                branch=self.branch,
                month=str(period),
                poll_interval=self.poll_interval_seconds,
                deadline=deadline.isoformat(),
                warn_at=warn_at.isoformat() if warn_at else None,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        period = _month_of(self, context)
        _deadline, legal = self._deadline(period, context)
        if event.get("status") == "ready":
            return self._done(event, period, legal)
        if event.get("status") == "deadline_warning":
            from include.edefter.deadlines import end_of_day

            passed = _now() >= end_of_day(dt.date.fromisoformat(legal["date"]))
            verb_tr, verb_en = ("geçti", "has passed") if passed else ("yaklaşıyor", "is near")
            reason = (
                f"{period.label_tr} için ikincil kopya süresi {legal['date']} ({legal['rule']}) {verb_tr}, "
                f"onaylı beratlar hâlâ eksik: {event.get('missing_text')} / the secondary-copy deadline of "
                f"{period} ({legal['date']}) {verb_en} and approved berats are still missing"
            )
            self.log.warning("%s", reason)
            try:
                self.deadline_notifier.warn(context, reason, passed=passed)
            except Exception as exc:  # an alert channel failing must not end the wait
                self.log.error("uyarı gönderilemedi / warning not delivered: %s", exc)
            deadline = dt.datetime.fromisoformat(event.get("deadline") or _deadline.isoformat())
            self._defer(period, deadline, None)  # same deadline as before, no second warning
            return None
        self._timeout(event, period, dt.datetime.fromisoformat(event.get("deadline") or _deadline.isoformat()))

    def _timeout(self, event: dict[str, Any], period: Period, deadline: dt.datetime) -> None:
        extra = f" ({event['message']})" if event.get("message") else ""
        raise AirflowSensorTimeout(
            f"{period.label_tr}: onaylı beratlar {deadline.isoformat()} zamanına kadar gelmedi, eksik: "
            f"{event.get('missing_text')}{extra} / approved berats did not arrive by {deadline.isoformat()}, "
            f"still missing: {event.get('missing_text')}"
        )

    def _done(self, event: dict[str, Any], period: Period, legal: dict[str, Any]) -> dict[str, Any]:
        self.log.info("%s: Onaylı Berat İndirildi (%d dosya / files)", period.label_tr, len(event.get("files") or []))
        return {
            "month": str(period),
            "edefter_status": event.get("edefter_status"),
            "files": len(event.get("files") or []),
            "ready_at": _now().isoformat(),
            "secondary_copy_deadline": legal,
        }


class WaitForBackupConfirmationSensor(BaseSensorOperator):
    """Waits for the integrator's verdict on the submitted month."""

    template_fields: Sequence[str] = ("integrator_conn_id", "taxpayer_id", "branch", "month")

    def __init__(
        self,
        *,
        integrator_conn_id: str,
        taxpayer_id: str,
        branch: str | None = None,
        month: str | None = None,
        automatic: bool = True,
        poll_interval_seconds: float = 60,
        timeout_seconds: float = 6 * 3600,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval_seconds)
        super().__init__(**kwargs)
        self.integrator_conn_id = integrator_conn_id
        self.taxpayer_id = taxpayer_id
        self.branch = branch
        self.month = month
        self.automatic = automatic
        self.poll_interval_seconds = poll_interval_seconds
        self.timeout_seconds = timeout_seconds
        self.deferrable = deferrable

    def _trigger(self, period: Period, deadline: dt.datetime) -> BackupStatusTrigger:
        return BackupStatusTrigger(
            conn_id=self.integrator_conn_id,
            taxpayer_id=self.taxpayer_id,
            branch=self.branch,
            month=str(period),
            poll_interval=self.poll_interval_seconds,
            deadline=deadline.isoformat(),
        )

    def poke(self, context: Any) -> bool:
        period = _month_of(self, context)
        result = self._trigger(period, _now())._query()
        if result["status"] == "error":
            raise AirflowFailException(result["message"])
        if result["status"] == "final":
            self._verdict(result["month_status"], period)
            return True
        return False

    def execute(self, context: Any) -> Any:
        period = _month_of(self, context)
        deadline = _now() + dt.timedelta(seconds=self.timeout_seconds)
        trigger = self._trigger(period, deadline)
        first = trigger._query()
        if first["status"] in ("final", "error"):
            return self.execute_complete(context, first)
        if not self.deferrable:
            return super().execute(context)
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        period = _month_of(self, context)
        if event.get("status") == "error":
            raise AirflowFailException(
                f"Entegratör erişimi reddedildi / integrator refused access: {event.get('message')}"
            )
        if event.get("status") == "timeout":
            last = event.get("month_status") or {}
            raise AirflowSensorTimeout(
                f"{period.label_tr}: entegratör {event.get('deadline')} zamanına kadar sonuç vermedi "
                f"(son durum: {last.get('status') or event.get('message')}) / the integrator gave no verdict by "
                f"{event.get('deadline')} (last state: {last.get('status_en') or event.get('message')})"
            )
        return self._verdict(event["month_status"], period)

    def _verdict(self, ms: dict[str, Any], period: Period) -> dict[str, Any]:
        from include.edefter.status import BackupStatus

        status = BackupStatus(ms["status"])
        if status is BackupStatus.YEDEKLENEMEDI:
            reasons = reasons_text(ms)
            self.log.error("%s: Yedeklenemedi\n%s", period.label_tr, reasons)
            raise AirflowFailException(
                f"Yedeklenemedi: {ms.get('message_tr', '')} / backup failed: {ms.get('message_en', '')}\n{reasons}"
            )
        self.log.info("%s / %s", ms.get("message_tr"), ms.get("message_en"))
        return {
            "backup_status": status.value,
            "message": ms.get("message_tr"),
            "message_en": ms.get("message_en"),
            "confirmed_at": _now().isoformat(),
            "retention_until": ms.get("retention_until"),
            "description": ms.get("description"),
            "submission_id": ms.get("submission_id"),
        }
