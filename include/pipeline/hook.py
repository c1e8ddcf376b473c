"""Airflow hook: an integrator Connection -> include.integrator.client.IntegratorClient.

The Connection carries everything secret (login/password); the client is built per task
and never logged. Connection form (contract): conn_type "http", host, port, schema
"http"|"https" (or the URI scheme), login, password, extra {"verify": bool|"/ca.pem",
"timeout": seconds, "retries": n}. ``AIRFLOW_CONN_X='http://user:pass@127.0.0.1:8765'``
works too: there the scheme lands in conn_type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from include.integrator.client import IntegratorClient

__all__ = ["EDefterIntegratorHook", "base_url_of"]


def base_url_of(conn: Any) -> str:
    """The integrator base URL from a Connection (host may itself be a full URL)."""
    host = (conn.host or "").strip()
    if not host:
        raise ValueError(f"Connection {conn.conn_id!r} has no host / Connection'da host yok")
    if "://" in host:
        return host.rstrip("/")
    scheme = next(
        (s for s in ((conn.schema or "").lower(), (conn.conn_type or "").lower()) if s in ("http", "https")), "http"
    )
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}"


class EDefterIntegratorHook(BaseHook):
    """Builds an IntegratorClient for one company's (or branch's) integrator account."""

    conn_name_attr = "integrator_conn_id"
    default_conn_name = "edefter_integrator_default"
    conn_type = "http"
    hook_name = "e-Defter Integrator (Saklama API)"

    def __init__(self, integrator_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.integrator_conn_id = integrator_conn_id

    def client_kwargs(self) -> dict[str, Any]:
        conn = self.get_connection(self.integrator_conn_id)
        extra = conn.extra_dejson or {}
        verify: Any = extra.get("verify", True)
        if isinstance(verify, str) and verify.lower() in ("true", "false"):
            verify = verify.lower() == "true"
        return {
            "base_url": base_url_of(conn),
            "username": conn.login or "",
            "password": conn.password or "",
            "timeout": float(extra.get("timeout", 60)),
            "verify": verify,
            # Airflow task retries (exponential backoff) are the main retry loop; the client
            # only smooths over a dropped connection.
            "retries": int(extra.get("retries", 1)),
        }

    def get_conn(self) -> IntegratorClient:
        from include.integrator.client import IntegratorClient

        kw = self.client_kwargs()
        return IntegratorClient(
            kw["base_url"],
            kw["username"],
            kw["password"],
            timeout=kw["timeout"],
            verify=kw["verify"],
            retries=kw["retries"],
        )

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.get_conn().health()
        except Exception as exc:  # the UI shows the message; no secret is in it
            return False, str(exc)
        return True, "e-Defter entegratör bağlantısı çalışıyor / integrator reachable"
