"""Names of temp files that say whose they are, so a replica never removes another's in-flight upload.

Several service processes (replicas, or a second `serve` started by mistake) may share one data
directory. At start, a process removes only the partial files of processes that are gone: same
host and a PID that no longer runs, or untouched for a day (another host's crash).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

__all__ = ["is_orphan", "spool_name"]

_HOST = socket.gethostname().replace("-", "_")[:40] or "host"
STALE_AFTER_S = 24 * 3600


def spool_name(suffix: str) -> str:
    return f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex}{suffix}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_orphan(path: Path, *, now: float | None = None) -> bool:
    """True when the process that wrote ``path`` is gone (or the file is a day old)."""
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_AFTER_S:
        return True
    host, _, rest = path.name.partition("-")
    pid_s, _, _ = rest.partition("-")
    if host != _HOST or not pid_s.isdigit():
        return False  # another host's file (or an old-style name): only age removes it
    pid = int(pid_s)
    return pid != os.getpid() and not _alive(pid)
