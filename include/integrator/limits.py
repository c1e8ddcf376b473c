"""Request limits of the Saklama API: authentication before the body, body caps, login
throttling, and the HTTP/1.1 protocol caps (header size/count, header-read timeout).

Everything here runs before a route is reached; docs/integrator.md ("Limits") lists the values.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from include.integrator.auth import basic_credentials
from include.integrator.errors import ApiError, error_body
from include.integrator.settings import Settings

__all__ = ["PRINCIPAL_KEY", "AuthThrottle", "GuardMiddleware", "limited_http_protocol", "throttled"]

log = logging.getLogger("include.integrator.limits")

PRINCIPAL_KEY = "edefter.principal"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Routes with their own (streamed) body cap; every other /v1 body is capped at max_json_bytes.
_OWN_CAP = (
    ("PUT", re.compile(r"^/v1/files/[^/]+$")),  # uploads: max_upload_bytes, spooled to disk
    ("PUT", re.compile(r"^/v1/months/[^/]+/[^/]+/evidence/[^/]+$")),  # evidence.too_large, 1 MiB
)


class AuthThrottle:
    """Failed logins per client IP and per account in a sliding window (in-process).

    * per IP: more than ``per_ip`` failures in ``window`` seconds → every login attempt from
      that IP is answered 429 until the oldest failure leaves the window;
    * per account: more than ``per_account`` failures → 429, but only for client IPs that
      have failed (on any account) within the window: the owner logging in from a clean
      address is not locked out by someone guessing elsewhere.

    Counted only when a password check ran and failed; a missing or malformed header is
    not counted (it costs nothing). Each replica counts on its own.
    """

    def __init__(self, window: float, per_account: int, per_ip: int, max_keys: int = 100_000) -> None:
        self.window = window
        self.per_account = per_account
        self.per_ip = per_ip
        self.max_keys = max_keys
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _retry_after(self, key: str, limit: int, now: float) -> float:
        q = self._fails.get(key)
        if not q:
            return 0.0
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._fails[key]
            return 0.0
        if len(q) < limit:
            return 0.0
        # Free again once enough failures have left the window to be under the limit.
        return q[len(q) - limit] + self.window - now

    def check(self, user: str, ip: str, now: float | None = None) -> float:
        """Seconds to wait (0: go ahead)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = self._retry_after("ip:" + ip, self.per_ip, now)
            if "ip:" + ip in self._fails:  # this IP failed recently: the account lock applies
                wait = max(wait, self._retry_after("acct:" + user, self.per_account, now))
            return wait

    def failed(self, user: str, ip: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._fails) >= self.max_keys:
                self._prune(now)
            for key, limit in (("ip:" + ip, self.per_ip), ("acct:" + user, self.per_account)):
                q = self._fails.setdefault(key, deque())
                q.append(now)
                while len(q) > limit:  # only the newest `limit` matter
                    q.popleft()

    def _prune(self, now: float) -> None:
        for key in [k for k, q in self._fails.items() if not q or q[-1] <= now - self.window]:
            del self._fails[key]
        if len(self._fails) >= self.max_keys:
            # Still full: a flood of distinct names/IPs. Forget the account keys first.
            for key in [k for k in self._fails if k.startswith("acct:")]:
                del self._fails[key]
        if len(self._fails) >= self.max_keys:
            self._fails.clear()


def throttled(wait: float) -> ApiError:
    secs = max(1, math.ceil(wait))
    return ApiError(
        429,
        "auth.throttled",
        f"çok fazla hatalı giriş denemesi; {secs} saniye sonra tekrar deneyin",
        f"too many failed login attempts; retry in {secs} seconds",
        details={"retry_after": secs},
        headers={"Retry-After": str(secs)},
    )


def _too_large(cap: int) -> ApiError:
    return ApiError(
        413,
        "request.too_large",
        f"istek gövdesi en çok {cap} bayt olabilir",
        f"the request body exceeds the limit of {cap} bytes",
        details={"limit": cap},
    )


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def _send_error(send: Send, err: ApiError) -> None:
    await _send_json(send, err.status, err.body(), err.headers)


def _body_timeout(seconds: float) -> ApiError:
    return ApiError(
        408,
        "request.body_timeout",
        f"istek gövdesi {seconds:g} saniyedir ilerlemiyor; bağlantı kapatıldı",
        f"the request body made no progress for {seconds:g} s; the request was dropped",
        headers={"Connection": "close"},
    )


def _idle_limited(receive: Receive, seconds: float) -> Receive:
    """``receive`` that gives up when the body stalls (slowloris on the body): at most ``seconds``
    between two chunks. Only while the body is incomplete: afterwards the app's own receive()
    calls (a streaming response listening for a disconnect) wait as long as they need."""
    if seconds <= 0:
        return receive
    done = False

    async def timed() -> Message:
        nonlocal done
        if done:
            return await receive()
        try:
            msg = await asyncio.wait_for(receive(), seconds)
        except TimeoutError:
            raise _body_timeout(seconds) from None
        if msg.get("type") != "http.request" or not msg.get("more_body", False):
            done = True
        return msg

    return timed


class GuardMiddleware:
    """Pure ASGI: every /v1 request is authenticated from its Authorization header before
    a byte of its body is read; then its body is read under ``max_json_bytes`` (except the
    routes in ``_OWN_CAP``, which stream under their own cap) and replayed to the app.

    The Principal goes into the scope (``PRINCIPAL_KEY``), where deps.current_account finds it.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], ctx: Any) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        principal = await self._authenticate(scope, send)
        if principal is None:
            return
        scope[PRINCIPAL_KEY] = principal
        method = scope.get("method", "GET")
        receive = _idle_limited(receive, self.ctx.settings.body_idle_timeout_s)
        if any(method == m and rx.match(path) for m, rx in _OWN_CAP):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive, send)
        except ApiError as exc:  # the body stalled
            await _send_error(send, exc)
            return
        if body is None:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _authenticate(self, scope: Scope, send: Send) -> Any | None:
        from include.integrator.deps import UNAUTHORIZED, verify_credentials_async

        ctx = self.ctx
        auth = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        creds = basic_credentials(auth.decode("latin-1") if auth is not None else None)
        if creds is None:
            await _send_error(send, UNAUTHORIZED)
            return None
        user, pw = creds
        client = scope.get("client")
        ip = str(client[0]) if client else "-"
        wait = ctx.auth_throttle.check(user, ip)
        if wait > 0:
            await _send_error(send, throttled(wait))
            return None
        principal = ctx.auth_cache.get(user, pw)
        if principal is not None:
            return principal
        try:
            return await verify_credentials_async(ctx, user, pw, ip=ip)
        except ApiError as exc:
            await _send_error(send, exc)
            return None
        except SQLAlchemyError as exc:
            log.error("metadata DB unavailable: %s", exc.__class__.__name__)
            ctx.auth_cache.entries.clear()
            await _send_json(
                send,
                503,
                error_body(
                    "metadata.unavailable",
                    "meta veri veritabanına şu an ulaşılamıyor; lütfen daha sonra tekrar deneyin",
                    "the metadata database is unavailable; please retry later",
                ),
                {"Retry-After": "5"},
            )
            return None

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        cap = self.ctx.settings.max_json_bytes
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await _send_error(send, _too_large(cap))
            return None
        buf = bytearray()
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            buf += msg.get("body", b"")
            if len(buf) > cap:  # also without Content-Length (chunked): counted as it streams
                await _send_error(send, _too_large(cap))
                return None
            if not msg.get("more_body", False):
                return bytes(buf)


# ------------------------------------------------------------------------------ HTTP/1.1 caps


_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
_408 = b"HTTP/1.1 408 Request Timeout\r\n"


def _raw_error(status_line: bytes, code: str, tr: str, en: str) -> bytes:
    data = json.dumps(error_body(code, tr, en), ensure_ascii=False).encode()
    return (
        status_line
        + b"content-type: application/json\r\ncontent-length: "
        + str(len(data)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + data
    )


_READ_SLACK = 256 * 1024  # asyncio reads at most this much at once


class _HeaderLimit(Exception):
    pass


def limited_http_protocol(settings: Settings) -> type:
    """uvicorn's httptools protocol with caps on the header block and a header-read timeout.

    * bytes of the request line + headers > ``max_header_bytes``, one header line >
      ``max_header_line_bytes`` or more than ``max_headers`` headers → 431 and close; the
      raw bytes of an unfinished header block are counted before httptools buffers more;
    * a request whose headers are not complete ``header_timeout_s`` after the connection
      opened (or after its first byte, for the next request on a kept-alive connection) →
      408 and close (slowloris).
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    max_total = settings.max_header_bytes
    max_line = settings.max_header_line_bytes
    max_count = settings.max_headers
    timeout = settings.header_timeout_s

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self._in_headers = True
            self._hdr_raw = 0
            self._hdr_bytes = 0
            self._hdr_count = 0
            self._hdr_timer: asyncio.TimerHandle | None = None
            self._limit_hit = ""

        def _arm(self) -> None:
            if self._hdr_timer is None:
                self._hdr_timer = self.loop.call_later(timeout, self._header_timeout)

        def _disarm(self) -> None:
            if self._hdr_timer is not None:
                self._hdr_timer.cancel()
                self._hdr_timer = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _header_timeout(self) -> None:
            self._hdr_timer = None
            if self._in_headers and not self.transport.is_closing():
                self.transport.write(
                    _raw_error(
                        _408,
                        "request.header_timeout",
                        f"istek başlıkları {timeout:g} saniyede tamamlanmadı",
                        f"the request headers were not complete within {timeout:g} seconds",
                    )
                )
                self.transport.close()

        def _refuse_431(self, why: str) -> None:
            self._disarm()
            self.logger.warning("refused request headers: %s", why)
            self.transport.write(
                _raw_error(
                    _431,
                    "request.headers_too_large",
                    f"istek başlıkları sınırı aşıyor ({why})",
                    f"the request headers exceed a limit ({why})",
                )
            )
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return
            super().data_received(data)
            if self._in_headers and self.parser is not None and not self.transport.is_closing():
                # Still inside a header block: what httptools holds is bounded by these bytes
                # (one read, <= 256 KiB, may also hold the end of the previous request).
                self._hdr_raw += len(data)
                if self._hdr_raw > max_total + _READ_SLACK:
                    self._refuse_431(f"header block > {max_total} bytes")

        def send_400_response(self, msg: str) -> None:
            if self._limit_hit:  # the parser error was our cap, raised in a callback below
                self._refuse_431(self._limit_hit)
                return
            super().send_400_response(msg)

        def _limit(self, why: str) -> _HeaderLimit:
            # httptools turns a callback's exception into an HttpParserError, which uvicorn
            # answers with send_400_response: that is where the 431 is sent.
            self._limit_hit = why
            return _HeaderLimit(why)

        # parser callbacks
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._hdr_raw = 0
            self._hdr_bytes = 0
            self._hdr_count = 0
            self._arm()

        def on_url(self, url: bytes) -> None:
            self._hdr_bytes += len(url)
            if self._hdr_bytes > max_total:
                raise self._limit(f"request line > {max_total} bytes")
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            n = len(name) + len(value)
            self._hdr_count += 1
            self._hdr_bytes += n
            if n > max_line:
                raise self._limit(f"a header line > {max_line} bytes")
            if self._hdr_count > max_count:
                raise self._limit(f"more than {max_count} headers")
            if self._hdr_bytes > max_total:
                raise self._limit(f"header block > {max_total} bytes")
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._disarm()
            super().on_headers_complete()

    return LimitedHttpToolsProtocol
