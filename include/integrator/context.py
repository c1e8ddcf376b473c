"""The service's runtime objects, built once per process from Settings."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from include.integrator.metadata.db import make_engine, make_sessionmaker, upgrade_schema
from include.integrator.settings import Settings
from include.integrator.storage.base import Storage

__all__ = ["ServiceContext", "build_storage"]


def build_storage(settings: Settings) -> Storage:
    if settings.storage == "s3":
        from include.integrator.storage.s3 import S3Storage

        assert settings.s3 is not None
        return S3Storage(settings.s3)
    from include.integrator.storage.filesystem import FilesystemStorage

    return FilesystemStorage(settings.objects_dir)


@dataclass
class _AuthCache:
    """Remembers successful logins briefly so every request does not pay for scrypt.

    Keys are HMACs under a per-process random key: the cache holds nothing that
    reveals or replays a password.
    """

    ttl: float = 60.0
    key: bytes = field(default_factory=lambda: os.urandom(32))
    entries: dict[bytes, tuple[float, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    flights: dict[bytes, threading.Lock] = field(default_factory=dict)

    def _k(self, user: str, pw: str) -> bytes:
        return hmac.new(self.key, f"{user}\0{pw}".encode(), hashlib.sha256).digest()

    def get(self, user: str, pw: str) -> Any | None:
        k = self._k(user, pw)
        with self.lock:
            hit = self.entries.get(k)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            self.entries.pop(k, None)
        return None

    def put(self, user: str, pw: str, principal: Any) -> None:
        with self.lock:
            if len(self.entries) > 10_000:
                self.entries.clear()
            self.entries[self._k(user, pw)] = (time.monotonic() + self.ttl, principal)

    @contextmanager
    def flight(self, user: str, pw: str) -> Generator[None]:
        """One verification at a time per credentials (single flight).

        Without it, N concurrent first requests of one client each pay for scrypt (tens of
        ms of CPU each); with it, the first verifies and the others find the cache filled.
        Wrong passwords are verified one after another too, which only slows guessing.
        """
        k = self._k(user, pw)
        with self.lock:
            if len(self.flights) > 10_000:
                self.flights.clear()  # only costs a repeated verification for in-flight keys
            lock = self.flights.setdefault(k, threading.Lock())
        with lock:
            yield


class ServiceContext:
    def __init__(self, settings: Settings, storage: Storage | None = None, engine: Engine | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.engine = engine or make_engine(settings.effective_db_url)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.storage = storage or build_storage(settings)
        self.auth_cache = _AuthCache()
        from include.integrator.limits import AuthThrottle

        self.auth_throttle = AuthThrottle(
            settings.auth_fail_window_s, settings.auth_fail_per_account, settings.auth_fail_per_ip
        )
        # Password checks (scrypt, 16 MiB each) run only in these threads: the concurrency
        # bound, and freed scrypt memory stays in these threads' malloc arenas.
        self.auth_pool = ThreadPoolExecutor(settings.auth_max_concurrent, thread_name_prefix="auth")
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.schema_ready = False

    def ensure_schema(self) -> None:
        if not self.schema_ready:
            upgrade_schema(self.engine)
            self.schema_ready = True

    @contextmanager
    def session(self) -> Generator[Session]:
        self.ensure_schema()
        with self.sessions() as s:
            yield s

    @contextmanager
    def read_connection(self) -> Generator[Connection]:
        """A pooled Core connection for single read queries (lighter than an ORM Session)."""
        self.ensure_schema()
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def name_lock(self, name: str) -> Generator[None]:
        """Serialises check-store-record for one file name inside this process."""
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def clean_incoming(self) -> None:
        """Partial uploads of crashed processes are never objects; drop them on start.

        Only those whose writer is gone: another replica's in-flight upload is left alone.
        """
        from include.integrator.spool import is_orphan

        for p in self.settings.tmp_dir.iterdir():
            if p.is_file() and is_orphan(p):
                p.unlink(missing_ok=True)
        clean = getattr(self.storage, "clean_tmp", None)
        if clean is not None:
            clean()

    def close(self) -> None:
        self.auth_pool.shutdown(wait=False, cancel_futures=True)
        self.storage.close()
        self.engine.dispose()
