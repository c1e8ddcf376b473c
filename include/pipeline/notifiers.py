"""Failure alerts: e-mail (Airflow's SmtpNotifier) and a generic JSON webhook (Slack/Teams).

Attached per task as ``on_failure_callback`` (DAG-level notifiers crash under dag.test,
apache/airflow#64649). Every message names the company, the month, the task and the
reason; one channel failing never stops the other.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook, BaseNotifier

from include.pipeline.status import REASON_XCOM_KEY, TASK_LABELS

__all__ = [
    "Alert",
    "EDefterAlertNotifier",
    "WebhookNotifier",
    "build_alert",
    "record_failure_reason",
    "webhook_url_of",
]

log = logging.getLogger(__name__)

_TASK_LABELS = TASK_LABELS


@dataclass(frozen=True)
class Alert:
    subject: str
    text: str
    fields: dict[str, Any]

    def html(self) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.fields.items()
            if k != "reason"
        )
        reason = html.escape(str(self.fields.get("reason", ""))).replace("\n", "<br>")
        return f"<p>{html.escape(self.subject)}</p><table>{rows}</table><p><b>Neden / Reason:</b><br>{reason}</p>"

    def payload(self) -> dict[str, Any]:
        """Slack and Teams incoming webhooks both render ``text``; the rest is for machines."""
        return {"text": self.text, **self.fields}


def build_alert(context: Any, unit: dict[str, Any]) -> Alert:
    """The message of a failed task, from the Airflow context and the unit's description."""
    from include.pipeline.months import resolve_month

    ti = context.get("ti") or context.get("task_instance")
    task_id = getattr(ti, "task_id", None) or "?"
    dag_run = context.get("dag_run")
    try:
        period = resolve_month(context, bool(unit.get("automatic", True)))
        month, month_label = str(period), period.label_tr
    except Exception:
        month = month_label = "?"
    exc = context.get("exception")
    reason = str(exc) if exc is not None else context.get("reason") or "bilinmiyor / unknown"
    label_tr, label_en = _TASK_LABELS.get(task_id, (task_id, task_id))
    status = "Onaylı beratlar gelmedi" if task_id == "wait_for_approved_berats" else "Yedeklenemedi"
    if context.get("edefter_alert_status"):
        status = context["edefter_alert_status"]
    who = unit["company"] + (f" / şube {unit['branch']}" if unit.get("branch") else "")
    subject = f"[e-Defter] {status}: {who}, {month_label} ({label_tr})"
    text = (
        f"*e-Defter yedekleme uyarısı / backup alert*\n"
        f"Firma / company: {who} (VKN/TCKN {unit['taxpayer_id']})\n"
        f"Ay / month: {month_label} ({month})\n"
        f"Adım / task: {task_id} ({label_tr} / {label_en})\n"
        f"Durum / status: {status}\n"
        f"Neden / reason: {reason}"
    )
    fields = {
        "status": status,
        "company": unit["company"],
        "taxpayer_id": unit["taxpayer_id"],
        "branch": unit.get("branch"),
        "month": month,
        "month_label": month_label,
        "dag_id": getattr(dag_run, "dag_id", None) or unit.get("dag_id"),
        "run_id": getattr(dag_run, "run_id", None),
        "task_id": task_id,
        "try_number": getattr(ti, "try_number", None),
        "reason": reason,
    }
    return Alert(subject, text, fields)


MAX_REASON_CHARS = 2000


def record_failure_reason(context: Any) -> None:
    """on_failure_callback: keep the failed task's reason as its XCom ``edefter_reason``.

    The status table (include.pipeline.status) reads it to show "Yedeklenemedi" with the reason
    for a month that failed before anything reached the integrator. Never raises: an alert must
    not be lost because the reason could not be stored.
    """
    exc = context.get("exception")
    if exc is None:
        return
    ti = context.get("ti") or context.get("task_instance")
    try:
        ti.xcom_push(key=REASON_XCOM_KEY, value=str(exc)[:MAX_REASON_CHARS] or type(exc).__name__)
    except Exception as push_error:
        log.warning("failure reason not stored as XCom: %s", push_error)


def webhook_url_of(conn: Any) -> str:
    """extra {"url": ...} wins; else host if it is a full URL; else scheme://host[:port][/schema]."""
    extra = conn.extra_dejson or {}
    if extra.get("url"):
        return str(extra["url"])
    host = (conn.host or "").strip()
    if "://" in host:
        return host
    if not host:
        raise ValueError(f"webhook Connection {conn.conn_id!r} has no url/host")
    scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema.lstrip('/')}" if conn.schema else ""
    return f"{scheme}://{host}{port}{path}"


class WebhookNotifier(BaseNotifier):
    """POSTs a JSON payload ({"text": ..., plus structured fields}) to a Connection's URL."""

    template_fields = ("conn_id",)

    def __init__(self, conn_id: str, unit: dict[str, Any], timeout: float = 10.0) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.unit = unit
        self.timeout = timeout

    def send(self, alert: Alert) -> None:
        import requests

        conn = BaseHook.get_connection(self.conn_id)
        url = webhook_url_of(conn)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if conn.password:  # optional bearer token for receivers that want one
            headers["Authorization"] = f"Bearer {conn.password}"
        resp = requests.post(
            url,
            data=json.dumps(alert.payload(), ensure_ascii=False).encode("utf-8"),
            headers=headers,
            timeout=self.timeout,
        )
        resp.raise_for_status()

    def notify(self, context: Any) -> None:
        self.send(build_alert(context, self.unit))


class EDefterAlertNotifier(BaseNotifier):
    """One failure alert, sent to every configured channel (e-mail and/or webhook)."""

    def __init__(
        self,
        unit: dict[str, Any],
        email: tuple[str, ...] = (),
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
        webhook_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.unit = unit
        self.email = tuple(email)
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email
        self.webhook_conn_id = webhook_conn_id

    def warn(self, context: Any, reason: str, passed: bool = False) -> None:
        """A warning that is not a task failure (the secondary-copy deadline is near or past)."""
        ctx = dict(context)
        ctx.pop("exception", None)
        ctx["reason"] = reason
        ctx["edefter_alert_status"] = "İkincil kopya süresi geçti" if passed else "İkincil kopya süresi yaklaşıyor"
        self.notify(ctx)

    def notify(self, context: Any) -> None:
        alert = build_alert(context, self.unit)
        log.error("%s\n%s", alert.subject, alert.fields.get("reason"))
        errors: list[str] = []
        if self.email:
            try:
                from airflow.providers.smtp.notifications.smtp import SmtpNotifier

                # notify() directly: the subject/body are already final text, and a reason that
                # happens to contain "{{" must not be rendered as a Jinja template.
                SmtpNotifier(
                    to=list(self.email),
                    from_email=self.from_email,
                    subject=alert.subject,
                    html_content=alert.html(),
                    smtp_conn_id=self.smtp_conn_id,
                ).notify(context)
            except Exception as exc:
                errors.append(f"e-posta / e-mail: {type(exc).__name__}: {exc}")
        if self.webhook_conn_id:
            try:
                WebhookNotifier(self.webhook_conn_id, self.unit).send(alert)
            except Exception as exc:
                errors.append(f"webhook: {type(exc).__name__}: {exc}")
        for e in errors:
            log.error("uyarı gönderilemedi / alert not delivered: %s", e)
