"""Accounts and HTTP Basic authentication.

Passwords are kept as salted scrypt hashes (stdlib hashlib.scrypt): slow enough
to make offline guessing expensive, no extra dependency.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.integrator.metadata.models import Account

__all__ = ["hash_password", "verify_password", "create_account", "authenticate", "USERNAME_RE"]

_N, _R, _P = 2**14, 8, 1
USERNAME_RE = re.compile(r"[A-Za-z0-9._@-]{3,128}")


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    if not password:
        raise ValueError("empty password")
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 1024 * 1024)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt_b64, dk_b64 = stored.split("$")
        if algo != "scrypt":
            return False
        salt, dk = base64.b64decode(salt_b64), base64.b64decode(dk_b64)
        got = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(dk), maxmem=64 * 1024 * 1024
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, dk)


# A fixed hash to spend the same time on unknown usernames (no user enumeration by timing).
_DUMMY_HASH = hash_password("dummy-password-for-timing")


def create_account(session: Session, username: str, password: str, taxpayer_id: str, branch: str | None) -> Account:
    if not USERNAME_RE.fullmatch(username):
        raise ValueError("username: 3-128 of letters, digits, . _ @ -")
    if not re.fullmatch(r"[0-9]{10,11}", taxpayer_id):
        raise ValueError("taxpayer id must be a 10-digit VKN or 11-digit TCKN")
    if branch is not None and (not re.fullmatch(r"[0-9]{4}", branch) or branch == "0000"):
        raise ValueError("branch must be 4 digits other than 0000")
    if len(password) < 8:
        raise ValueError("password must be at least 8 characters")
    if session.scalar(select(Account).where(Account.username == username)) is not None:
        raise ValueError(f"account {username!r} already exists")
    acc = Account(username=username, password_hash=hash_password(password), taxpayer_id=taxpayer_id, branch=branch)
    session.add(acc)
    session.flush()
    return acc


def authenticate(session: Session, username: str, password: str) -> Account | None:
    acc = session.scalar(select(Account).where(Account.username == username))
    if acc is None:
        verify_password(password, _DUMMY_HASH)
        return None
    return acc if verify_password(password, acc.password_hash) else None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, pw = raw.partition(":")
    return (user, pw) if sep else None
