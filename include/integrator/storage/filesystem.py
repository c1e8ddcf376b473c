"""Filesystem backend: content-addressed, write-temp + fsync + no-clobber rename, read-only after."""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from include.integrator.spool import spool_name
from include.integrator.storage.base import (
    ObjectMissing,
    Storage,
    StorageError,
    StorageFull,
    StoredObject,
    object_key,
)

__all__ = ["FilesystemStorage"]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStorage(Storage):
    name = "fs"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)

    def path_for(self, key: str) -> Path:
        # Keys come from object_key(); reject anything else so a key can never escape root.
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != "sha256" or object_key(parts[2]) != key:
            raise ValueError(f"bad object key {key!r}")
        return self.root / key

    def iter_keys(self) -> Iterator[str]:
        """Every stored object's key (for the audit's orphan report)."""
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for p in sorted(base.glob("*/*")):
            if p.is_file():
                yield p.relative_to(self.root).as_posix()

    def clean_tmp(self) -> int:
        """Remove partial writes left by a crash; they were never visible as objects."""
        from include.integrator.spool import is_orphan

        n = 0
        for p in self.tmp.iterdir():
            if is_orphan(p):  # never another live replica's write in progress
                p.unlink(missing_ok=True)
                n += 1
        return n

    def _write_tmp(self, src: Path) -> Path:
        """Copy into our tmp dir (same filesystem as the final path) and fsync."""
        tmp = self.tmp / spool_name(".part")
        try:
            with open(src, "rb") as fin, open(tmp, "xb") as fout:
                self._copy(fin, fout)
                fout.flush()
                os.fsync(fout.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)  # a half-written temp file must not linger
            raise
        return tmp

    def _link_tmp(self, src: Path) -> Path | None:
        """Same filesystem: hard-link the caller's already-fsynced spool file instead of copying it.

        Saves a full copy of every upload. The spool must not be written after put();
        the service's upload handler only unlinks it.
        """
        tmp = self.tmp / spool_name(".part")
        try:
            if src.stat().st_dev != self.tmp.stat().st_dev:
                return None
            os.link(src, tmp)
        except OSError:
            return None
        return tmp

    def _copy(self, fin: BinaryIO, fout: BinaryIO) -> None:
        shutil.copyfileobj(fin, fout, 1 << 20)

    def put(
        self, src: Path, *, sha256: str, size: int, md5_b64: str, retain_until: dt.date
    ) -> StoredObject:
        key = object_key(sha256)
        final = self.path_for(key)
        if final.exists():
            return StoredObject(key, sha256, size, None, created=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp: Path | None = None
        try:
            tmp = self._link_tmp(src) or self._write_tmp(src)
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            try:
                # link() is a rename that never replaces an existing file: no-clobber by the kernel.
                os.link(tmp, final)
                created = True
            except FileExistsError:
                created = False
            _fsync_dir(final.parent)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("filesystem write failed: disk full") from exc
            raise StorageError(f"filesystem write failed: {exc.strerror or type(exc).__name__}") from exc
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        return StoredObject(key, sha256, size, None, created=created)

    def open(self, key: str, version_id: str | None = None) -> BinaryIO:
        try:
            return open(self.path_for(key), "rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(f"object {key} is missing") from exc

    def exists(self, key: str, version_id: str | None = None) -> bool:
        return self.path_for(key).is_file()

    def lock_problem(self, key: str, version_id: str | None, retain_until: dt.date) -> str | None:
        try:
            mode = self.path_for(key).stat().st_mode
        except FileNotFoundError:
            return None  # reported as missing by the audit
        if mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            return "object file is writable (expected read-only)"
        return None

    def check_ready(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"storage directory not writable: {self.root}")
