"""The storage interface every archive backend implements.

Objects are content-addressed by the SHA-256 of the stored bytes (the uploaded
zip). A backend never overwrites or deletes an object; it only adds and reads.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "ObjectMissing",
    "Storage",
    "StorageError",
    "StorageFull",
    "StoredObject",
    "object_key",
]


class StorageError(Exception):
    """A storage operation failed (disk full, S3 refused, ...). Nothing was recorded."""


class StorageFull(StorageError):
    """No space left (ENOSPC / quota): answered 507, nothing was recorded."""


class ObjectMissing(StorageError):
    """The object is not in the store (found by the fixity audit or a download)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int
    version_id: str | None = None
    created: bool = True  # False when identical bytes were already stored


def object_key(sha256: str) -> str:
    """Content address; the two-hex fan-out keeps directories small."""
    sha256 = sha256.lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256}"


class Storage(abc.ABC):
    """Write-once object store."""

    name: str = "abstract"
    needs_md5: bool = False  # S3 wants Content-MD5; the filesystem does not

    @abc.abstractmethod
    def put(
        self, src: Path, *, sha256: str, size: int, md5_b64: str, retain_until: dt.date
    ) -> StoredObject:
        """Store the bytes of ``src`` (already hashed by the caller) under its content address.

        Must be atomic: either the whole object is visible afterwards, or nothing is.
        Storing bytes that are already stored returns the existing object (created=False).
        """

    @abc.abstractmethod
    def open(self, key: str, version_id: str | None = None) -> BinaryIO:
        """A readable stream of the stored bytes; raise ObjectMissing when absent."""

    @abc.abstractmethod
    def exists(self, key: str, version_id: str | None = None) -> bool: ...

    def lock_problem(self, key: str, version_id: str | None, retain_until: dt.date) -> str | None:
        """Describe a missing/short immutability lock, or None when the object is protected.

        Backends without a lock concept (filesystem) check what they can (read-only mode).
        """
        return None

    def check_ready(self) -> None:
        """Raise StorageError when the backend is unusable (used at startup and by /health)."""
        return None

    def close(self) -> None:
        """Release clients/handles."""
        return None
