"""AirflowPlugin: the "e-Defter Saklama" page in the Airflow UI (thin; the page lives in include.pipeline.ui).

Airflow imports this file in every process (scheduler, workers, dag-processor, `dags test`), so it
imports nothing but Airflow's plugin base: the FastAPI app is built on the first request to the
page, inside the api-server only. An import problem in the project (e.g. PYTHONPATH without the
project root) then shows on the page as a 500 with the reason instead of breaking every DAG
parse and test run. The one listener (include.pipeline.run_notes: stdlib and Airflow's hookimpl
only at import) names each backup run's month in its note.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)


def _listeners() -> list[Any]:
    """The run-notes listener (each backup run's note names its month); none if the project is not importable."""
    try:
        from include.pipeline.run_notes import run_notes
    except ImportError as exc:
        log.warning("e-Defter run notes disabled (include.pipeline not importable): %s", exc)
        return []
    return [run_notes]


URL_PREFIX = "/edefter-saklama"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyPageApp:
    """An ASGI app that builds include.pipeline.ui.create_app() on first use."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._app is None:
                from include.pipeline.ui import create_app

                self._app = create_app()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        try:
            app = self._load()
        except Exception as exc:  # show why on the page; every other Airflow process is unaffected
            log.exception("e-Defter Saklama sayfası yüklenemedi / page could not be loaded")
            body = (
                "e-Defter Saklama sayfası yüklenemedi (proje kökü PYTHONPATH'te mi?) / "
                f"page could not be loaded (is the project root on PYTHONPATH?): {type(exc).__name__}"
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    def __repr__(self) -> str:
        return "include.pipeline.ui:create_app (lazy)"


class EDefterSaklamaPlugin(AirflowPlugin):
    name = "edefter_saklama"
    listeners = _listeners()
    fastapi_apps = [{"app": LazyPageApp(), "url_prefix": URL_PREFIX, "name": "e-Defter Saklama"}]
    external_views = [
        {
            "name": "e-Defter Saklama",
            # Same origin as the UI, so the framed page carries the UI's `_token` cookie.
            "href": f"{URL_PREFIX}/",
            # With url_route the UI shows href inside its own frame at /plugin/edefter-saklama.
            "url_route": "edefter-saklama",
            "destination": "nav",
            "category": "browse",
        }
    ]
