"""Service settings from CLI flags and environment (INTEGRATOR_*); secrets only from env."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from include.edefter.retention import MIN_RETENTION_YEARS
from include.integrator.storage.s3 import S3Settings

__all__ = ["LIMIT_SETTINGS", "Settings"]

_MIB = 1024 * 1024
ENV_PREFIX = "INTEGRATOR_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


# Limits settable by env INTEGRATOR_<NAME upper case> (and by `serve` flags --<name with dashes>).
_LIMIT_ENV: dict[str, type] = {
    "max_json_bytes": int,
    "max_header_line_bytes": int,
    "max_header_bytes": int,
    "max_headers": int,
    "header_timeout_s": float,
    "body_idle_timeout_s": float,
    "limit_concurrency": int,
    "timeout_keep_alive_s": float,
    "auth_max_concurrent": int,
    "auth_fail_window_s": float,
    "auth_fail_per_account": int,
    "auth_fail_per_ip": int,
}
LIMIT_SETTINGS = tuple(_LIMIT_ENV)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_url: str | None = None  # default: sqlite:///DATA/metadata.sqlite3 (WAL)
    storage: str = "fs"  # "fs" | "s3"
    s3: S3Settings | None = None
    retention_years: int = MIN_RETENTION_YEARS
    max_upload_bytes: int = 512 * _MIB  # one zipped file as sent
    max_uncompressed_bytes: int = 1024 * _MIB  # the XML inside
    max_ratio: int = 200  # uncompressed / compressed, zip-bomb guard
    # Ledgers above this are name-checked from their header at upload; the full read is the set validation's.
    header_check_over_bytes: int = 8 * _MIB
    require_approved: bool = True
    # Full cryptographic check of every file (include.edefter.verify) with the trust anchors
    # from EDEFTER_TRUSTED_ROOTS / EDEFTER_GIB_CERTS. On by default: an archive must not keep
    # an altered ledger for 10 years. Without anchors every set fails on certificate trust.
    verify_signatures: bool = True
    # Further "module:function" checks passed to validate_month(extra_file_checks=...).
    extra_file_checks: str | None = None
    validation_workers: int = 1
    # Every this many seconds, submissions still "İşlendi" that no thread of this process is
    # validating are picked up again (a DB outage during validation, another replica's crash).
    resume_interval_s: float = 30.0
    # /health answers 503 (storage.low_space) when the data directory has less free space than this.
    min_free_bytes: int = 64 * _MIB
    tls_cert: Path | None = None
    tls_key: Path | None = None
    chunk_bytes: int = 1 * _MIB
    # --- request limits (docs/integrator.md "Limits") ---
    max_json_bytes: int = 1 * _MIB  # any /v1 body but an upload's (read only after authentication)
    max_header_line_bytes: int = 16 * 1024  # one header line (name + value)
    max_header_bytes: int = 64 * 1024  # request line + all headers
    max_headers: int = 100
    header_timeout_s: float = 10.0  # a request's headers must be complete this long after its first byte
    body_idle_timeout_s: float = 30.0  # at most this long between two chunks of a request body (408)
    limit_concurrency: int = 256  # open connections + running requests; above it uvicorn answers 503
    timeout_keep_alive_s: float = 5.0  # idle keep-alive connections are closed after this
    # --- password checks ---
    auth_max_concurrent: int = 2  # scrypt verifications at a time (16 MiB each), the rest wait
    auth_fail_window_s: float = 60.0
    auth_fail_per_account: int = 5  # failed logins per account in the window (from IPs that failed)
    auth_fail_per_ip: int = 20  # failed logins per client IP in the window, whatever the account
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.retention_years < MIN_RETENTION_YEARS:
            raise ValueError(f"retention years must be >= {MIN_RETENTION_YEARS}, got {self.retention_years}")
        if self.storage not in ("fs", "s3"):
            raise ValueError(f"storage must be fs or s3, got {self.storage!r}")
        if self.storage == "s3" and self.s3 is None:
            raise ValueError("storage s3 needs the S3 endpoint, bucket and credentials")
        for fname in LIMIT_SETTINGS:
            if getattr(self, fname) <= 0:
                raise ValueError(f"{fname} must be > 0, got {getattr(self, fname)}")

    @property
    def effective_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'metadata.sqlite3'}"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "incoming"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None, **overrides: object) -> Settings:
        """Env first, explicit overrides (CLI flags) win. S3 secrets are read only from env."""
        data = Path(data_dir or _env("DATA") or "var/integrator").resolve()
        storage = str(overrides.pop("storage", None) or _env("STORAGE", "fs"))
        s3 = None
        if storage == "s3":
            s3 = S3Settings(
                endpoint_url=str(overrides.pop("s3_endpoint", None) or _env("S3_ENDPOINT", "")),
                bucket=str(overrides.pop("s3_bucket", None) or _env("S3_BUCKET", "")),
                access_key=_env("S3_ACCESS_KEY", "") or "",
                secret_key=_env("S3_SECRET_KEY", "") or "",
                region=str(overrides.pop("s3_region", None) or _env("S3_REGION", "us-east-1")),
                checksum_mode=str(overrides.pop("s3_checksum_mode", None) or _env("S3_CHECKSUM_MODE", "when_required")),
                create_bucket=bool(overrides.pop("s3_create_bucket", None) or _env("S3_CREATE_BUCKET", "") == "1"),
            )
        for k in ("s3_endpoint", "s3_bucket", "s3_region", "s3_checksum_mode", "s3_create_bucket"):
            overrides.pop(k, None)
        kw: dict[str, object] = {
            "db_url": _env("DB_URL"),
            "retention_years": int(_env("RETENTION_YEARS", str(MIN_RETENTION_YEARS)) or MIN_RETENTION_YEARS),
            "max_upload_bytes": int(_env("MAX_UPLOAD_BYTES", str(512 * _MIB)) or 0),
            "max_uncompressed_bytes": int(_env("MAX_UNCOMPRESSED_BYTES", str(1024 * _MIB)) or 0),
            "max_ratio": int(_env("MAX_RATIO", "200") or 200),
            "header_check_over_bytes": int(_env("HEADER_CHECK_OVER_BYTES", str(8 * _MIB)) or 0),
            "extra_file_checks": _env("EXTRA_FILE_CHECKS"),
            "verify_signatures": (_env("VERIFY_SIGNATURES", "1") != "0"),
            "require_approved": (_env("REQUIRE_APPROVED", "1") != "0"),
            "resume_interval_s": float(_env("RESUME_INTERVAL_S", "30") or 30),
            "min_free_bytes": int(_env("MIN_FREE_BYTES", str(64 * _MIB)) or 0),
        }
        for fname, conv in _LIMIT_ENV.items():
            raw = _env(fname.upper())
            if raw:
                kw[fname] = conv(raw)
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(data_dir=data, storage=storage, s3=s3, **kw)  # type: ignore[arg-type]
