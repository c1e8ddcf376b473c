"""S3 backend with Object Lock: COMPLIANCE retention until the retention end.

One PUT per object with Content-MD5 and x-amz-checksum-sha256, so the server
verifies the bytes on arrival and stores the file's own SHA-256. The VersionId
returned is recorded and every read names it: a later delete marker or a newer
version cannot change what a download returns.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from include.integrator.storage.base import ObjectMissing, Storage, StorageError, StoredObject, object_key

__all__ = ["S3Settings", "S3Storage", "retain_until_datetime"]


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str = ""
    region: str = "us-east-1"
    # boto3 >= 1.36 adds CRC checksums by default; many non-AWS servers reject them.
    checksum_mode: str = "when_required"  # "when_required" | "when_supported"
    prefix: str = ""
    create_bucket: bool = False

    def __repr__(self) -> str:  # never print the secret
        return f"S3Settings(endpoint_url={self.endpoint_url!r}, bucket={self.bucket!r}, access_key=***)"


def retain_until_datetime(day: dt.date) -> dt.datetime:
    """Lock through the whole retention-end day in Türkiye (UTC+3): until the next UTC midnight."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1)


class S3Storage(Storage):
    name = "s3"
    needs_md5 = True

    def __init__(self, settings: S3Settings) -> None:
        import boto3
        from botocore.config import Config

        self.settings = settings
        cfg = Config(
            region_name=settings.region,
            s3={"addressing_style": "path"},
            request_checksum_calculation=settings.checksum_mode,
            response_checksum_validation=settings.checksum_mode,
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            config=cfg,
        )
        if settings.create_bucket:
            self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.settings.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.settings.bucket, ObjectLockEnabledForBucket=True)

    def _key(self, key: str) -> str:
        return f"{self.settings.prefix}{key}"

    def put(
        self, src: Path, *, sha256: str, size: int, md5_b64: str, retain_until: dt.date
    ) -> StoredObject:
        from botocore.exceptions import BotoCoreError, ClientError

        key = object_key(sha256)
        existing = self._current_version(key)
        if existing is not None:
            return StoredObject(key, sha256, size, existing, created=False)
        try:
            with open(src, "rb") as body:
                resp = self.client.put_object(
                    Bucket=self.settings.bucket,
                    Key=self._key(key),
                    Body=body,
                    ContentLength=size,
                    ContentMD5=md5_b64,
                    ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                    ContentType="application/zip",
                    ObjectLockMode="COMPLIANCE",
                    ObjectLockRetainUntilDate=retain_until_datetime(retain_until),
                    IfNoneMatch="*",
                )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 412 or code == "PreconditionFailed":
                # A concurrent writer stored the same bytes first: use its version.
                version = self._current_version(key)
                if version is not None:
                    return StoredObject(key, sha256, size, version, created=False)
            raise StorageError(f"S3 PUT failed: {code or exc}") from exc
        except (BotoCoreError, OSError) as exc:
            raise StorageError(f"S3 PUT failed: {exc}") from exc
        version_id = resp.get("VersionId")
        if not version_id:
            raise StorageError("S3 PUT returned no VersionId: the bucket must have versioning/Object Lock")
        return StoredObject(key, sha256, size, version_id, created=True)

    def _current_version(self, key: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.settings.bucket, Key=self._key(key))
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (404, 405):
                return None
            raise StorageError(f"S3 HEAD failed: {exc}") from exc
        return head.get("VersionId")

    def iter_keys(self) -> Iterator[str]:
        """Every stored object's key (for the audit's orphan report)."""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.settings.bucket, Prefix="sha256/"):
                for o in page.get("Contents", []):
                    yield o["Key"]
        except Exception as exc:  # botocore errors
            raise StorageError(f"listing the bucket failed: {type(exc).__name__}") from exc

    def open(self, key: str, version_id: str | None = None) -> BinaryIO:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": self._key(key)}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            resp = self.client.get_object(**kwargs)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (404, 400) and exc.response.get("Error", {}).get("Code") in (
                "NoSuchKey",
                "NoSuchVersion",
                "404",
                "InvalidArgument",
            ):
                raise ObjectMissing(f"object {key} version {version_id} is missing") from exc
            raise StorageError(f"S3 GET failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 GET failed: {exc}") from exc
        return resp["Body"]  # type: ignore[no-any-return]

    def exists(self, key: str, version_id: str | None = None) -> bool:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": self._key(key)}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            self.client.head_object(**kwargs)
            return True
        except ClientError:
            return False

    def lock_problem(self, key: str, version_id: str | None, retain_until: dt.date) -> str | None:
        from botocore.exceptions import ClientError

        if not version_id:
            return "no VersionId recorded"
        try:
            ret = self.client.get_object_retention(
                Bucket=self.settings.bucket, Key=self._key(key), VersionId=version_id
            )["Retention"]
        except ClientError as exc:
            return f"no object lock retention: {exc.response.get('Error', {}).get('Code')}"
        if ret.get("Mode") != "COMPLIANCE":
            return f"lock mode is {ret.get('Mode')}, expected COMPLIANCE"
        until = ret.get("RetainUntilDate")
        if until is None or until < retain_until_datetime(retain_until):
            return f"retain-until {until} is before the retention end {retain_until}"
        return None

    def check_ready(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            cfg = self.client.get_object_lock_configuration(Bucket=self.settings.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 bucket {self.settings.bucket!r} unusable or without Object Lock: {exc}") from exc
        if cfg.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise StorageError(f"S3 bucket {self.settings.bucket!r} has no Object Lock enabled")

    def close(self) -> None:
        self.client.close()
