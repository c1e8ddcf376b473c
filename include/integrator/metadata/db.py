"""Engine creation and the service's own schema creation/upgrade."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from include.integrator.metadata.models import Base, SchemaVersion

__all__ = ["SCHEMA_VERSION", "make_engine", "make_sessionmaker", "upgrade_schema"]

log = logging.getLogger(__name__)


def _v1(engine: Engine) -> None:
    Base.metadata.create_all(engine)


def _v2(engine: Engine) -> None:
    # staged_files (uploads not yet committed under their names) and evidence: new tables only.
    Base.metadata.create_all(engine)


# Ordered migrations: index i upgrades from version i to i+1. Append, never edit.
MIGRATIONS: list[Callable[[Engine], None]] = [_v1, _v2]
SCHEMA_VERSION = len(MIGRATIONS)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            # No pre-ping: a SQLite file does not drop connections (the ping was one extra
            # query per request). Pool as large as the thread pool (40), so requests never
            # queue for a connection; WAL lets them all read at once.
            pool_size=20,
            max_overflow=30,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA synchronous=FULL")  # an archive favours durability over speed
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    # pre_ping drops connections the server closed, so the service recovers after a DB outage.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def current_version(engine: Engine) -> int:
    if not inspect(engine).has_table(SchemaVersion.__tablename__):
        return 0
    with Session(engine) as s:
        v = s.scalar(select(SchemaVersion.version).order_by(SchemaVersion.id.desc()).limit(1))
        return int(v or 0)


def upgrade_schema(engine: Engine) -> int:
    """Bring the schema to SCHEMA_VERSION; safe to call on every start."""
    version = current_version(engine)
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"metadata schema v{version} is newer than this service (v{SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](engine)
        version += 1
        with Session(engine) as s, s.begin():
            s.add(SchemaVersion(version=version))
        log.info("metadata schema upgraded to v%d", version)
    return version
