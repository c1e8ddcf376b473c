"""FastAPI dependencies: the service context and the authenticated account."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import Request

from include.edefter.naming import EDefterName
from include.integrator.auth import authenticate, basic_credentials
from include.integrator.context import ServiceContext
from include.integrator.errors import ApiError

__all__ = [
    "UNAUTHORIZED",
    "Principal",
    "ctx_of",
    "current_account",
    "check_tenant",
    "verify_credentials",
    "verify_credentials_async",
]


@dataclass(frozen=True)
class Principal:
    account_id: int
    username: str
    taxpayer_id: str
    branch: str | None  # None: company-wide


def ctx_of(request: Request) -> ServiceContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


UNAUTHORIZED = _UNAUTH = ApiError(
    401,
    "auth.failed",
    "kullanıcı adı veya şifre hatalı",
    "wrong username or password",
    headers={"WWW-Authenticate": 'Basic realm="e-Defter Saklama", charset="UTF-8"'},
)


async def current_account(request: Request) -> Principal:
    """HTTP Basic.

    Every /v1 request was already authenticated by limits.GuardMiddleware before its body
    was read (and throttled); its Principal is in the scope. Without the middleware (an app
    assembled otherwise): a cache hit (one HMAC) is answered on the event loop, a miss
    (scrypt + DB) runs in the password-check pool.
    """
    from include.integrator.limits import PRINCIPAL_KEY

    done = request.scope.get(PRINCIPAL_KEY)
    if done is not None:
        return done  # type: ignore[no-any-return]
    creds = basic_credentials(request.headers.get("authorization"))
    if creds is None:
        raise _UNAUTH
    user, pw = creds
    ctx = ctx_of(request)
    cached = ctx.auth_cache.get(user, pw)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    client = request.client
    return await verify_credentials_async(ctx, user, pw, ip=client.host if client else "-")


async def verify_credentials_async(ctx: ServiceContext, user: str, pw: str, *, ip: str) -> Principal:
    """verify_credentials in the password-check pool (``auth_max_concurrent`` threads).

    At most that many scrypt runs (16 MiB each) at a time, the others queue without
    holding a thread; a failure is counted for the throttle, checked again after the wait
    (guesses queued behind the limit are refused without scrypt).
    """
    loop = asyncio.get_running_loop()

    def run() -> Principal:
        wait = ctx.auth_throttle.check(user, ip)
        if wait > 0:
            from include.integrator.limits import throttled

            raise throttled(wait)
        try:
            return verify_credentials(ctx, user, pw)
        except ApiError as exc:
            if exc.status == 401:
                ctx.auth_throttle.failed(user, ip)
            raise

    return await loop.run_in_executor(ctx.auth_pool, run)


def verify_credentials(ctx: ServiceContext, user: str, pw: str) -> Principal:
    """scrypt + DB lookup, once per credentials at a time (concurrent misses wait for the first)."""
    with ctx.auth_cache.flight(user, pw):
        cached = ctx.auth_cache.get(user, pw)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        with ctx.session() as s:
            acc = authenticate(s, user, pw)
            if acc is None:
                raise _UNAUTH
            principal = Principal(acc.id, acc.username, acc.taxpayer_id, acc.branch)
        ctx.auth_cache.put(user, pw, principal)
        return principal


def check_tenant(p: Principal, taxpayer_id: str, branch: str | None, *, file: str | None = None) -> None:
    if taxpayer_id != p.taxpayer_id or (p.branch is not None and branch != p.branch):
        raise ApiError(
            403,
            "tenant.forbidden",
            "bu hesap yalnızca kendi vergi kimlik numarasının"
            + (f" ({p.branch} şubesi)" if p.branch else "")
            + " dosyalarına erişebilir",
            "this account may only access its own taxpayer's"
            + (f" (branch {p.branch})" if p.branch else "")
            + " files",
            file=file,
            details={"taxpayer_id": taxpayer_id, "branch": branch},
        )


def name_tenant(p: Principal, name: EDefterName) -> None:
    check_tenant(p, name.taxpayer_id, name.branch, file=name.filename)
