"""Metadata schema (SQLAlchemy 2 declarative). Stored bytes live in the storage backend."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Account",
    "ArchivedFile",
    "AuditRun",
    "Base",
    "Evidence",
    "FixityFinding",
    "STORED_FILE_FIELDS",
    "SchemaVersion",
    "StagedFile",
    "Submission",
    "SubmissionKey",
    "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "integrator_schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(512))
    taxpayer_id: Mapped[str] = mapped_column(String(11), index=True)
    # None: company-wide account (sees every branch of the taxpayer); else one branch only.
    branch: Mapped[str | None] = mapped_column(String(4), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class _StoredFile:
    """What an uploaded file's record says, staged or committed (the two tables differ only in
    their keys: a committed name is unique, staged (name, bytes) pairs are)."""

    taxpayer_id: Mapped[str] = mapped_column(String(11))
    branch: Mapped[str | None] = mapped_column(String(4), nullable=True)
    period: Mapped[str] = mapped_column(String(6))  # YYYYMM
    code: Mapped[str] = mapped_column(String(8))  # Y K YB KB GIB-YB GIB-KB DR GIB-DR
    part: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    xml_sha256: Mapped[str] = mapped_column(String(64))
    xml_size: Mapped[int] = mapped_column(BigInteger)
    storage: Mapped[str] = mapped_column(String(8))
    storage_key: Mapped[str] = mapped_column(String(256))
    version_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    fiscal_year_end: Mapped[dt.date] = mapped_column(Date)
    retention_until: Mapped[dt.date] = mapped_column(Date)
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))


# Every field of an uploaded file's record (what committing a staged file copies).
STORED_FILE_FIELDS = ("filename", "sha256", *_StoredFile.__annotations__)


class ArchivedFile(_StoredFile, Base):
    __tablename__ = "files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(64), unique=True)  # the .zip name; names are global
    sha256: Mapped[str] = mapped_column(String(64), index=True)

    __table_args__ = (Index("ix_files_tenant_period", "taxpayer_id", "branch", "period"),)


class StagedFile(_StoredFile, Base):
    """An uploaded file not (yet) committed under its name: it becomes an ArchivedFile only when
    a set listing it is Yedeklendi. A rejected set's files stay here (forensics) and never block
    other bytes under the same name. The bytes are already in the write-once store."""

    __tablename__ = "staged_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("filename", "sha256", name="uq_staged_name_sha"),
        Index("ix_staged_tenant_period", "taxpayer_id", "branch", "period"),
    )


class Evidence(Base):
    """One evidence document ("Kayıt Bilgisi") of a month; content-addressed, never replaced."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    taxpayer_id: Mapped[str] = mapped_column(String(11))
    # "" for a company-wide unit: NULLs are distinct in unique constraints.
    branch: Mapped[str] = mapped_column(String(4), default="")
    period: Mapped[str] = mapped_column(String(6))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    storage: Mapped[str] = mapped_column(String(8))
    storage_key: Mapped[str] = mapped_column(String(256))
    version_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    retention_until: Mapped[dt.date] = mapped_column(Date)
    stored_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stored_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))

    __table_args__ = (UniqueConstraint("taxpayer_id", "branch", "period", "sha256", name="uq_evidence_doc"),)


class Submission(Base):
    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    taxpayer_id: Mapped[str] = mapped_column(String(11))
    branch: Mapped[str | None] = mapped_column(String(4), nullable=True)
    period: Mapped[str] = mapped_column(String(6))
    source: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[list] = mapped_column(JSON)  # [{"name":..., "sha256":...}]
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))  # BackupStatus value
    message_tr: Mapped[str] = mapped_column(Text, default="")
    message_en: Mapped[str] = mapped_column(Text, default="")
    results: Mapped[list] = mapped_column(JSON, default=list)  # per-file results
    problems: Mapped[list] = mapped_column(JSON, default=list)
    retention_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    submitted_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))

    __table_args__ = (Index("ix_submissions_tenant_period", "taxpayer_id", "branch", "period"),)


class SubmissionKey(Base):
    """Makes "identical submission → the same submission" hold under concurrency (and across
    replicas): two requests that would create the same submission race for one unique key."""

    __tablename__ = "submission_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))


class FixityFinding(Base):
    """One problem the fixity audit found, per stored object and run; the month's status shows
    the findings of the latest run ("Bozuk/Eksik")."""

    __tablename__ = "fixity_findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_run_id: Mapped[int] = mapped_column(ForeignKey("audit_runs.id"), index=True)
    filename: Mapped[str] = mapped_column(String(128))
    taxpayer_id: Mapped[str] = mapped_column(String(11))
    branch: Mapped[str | None] = mapped_column(String(4), nullable=True)
    period: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(16))
    message_tr: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    committed: Mapped[bool] = mapped_column(default=True)


class AuditRun(Base):
    """Every fixity check is logged (NDSA practice)."""

    __tablename__ = "audit_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    checked: Mapped[int] = mapped_column(Integer, default=0)
    ok: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict] = mapped_column(JSON, default=dict)
