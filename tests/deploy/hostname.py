"""`[core] hostname_callable` for the two-worker test: both workers run on one box, so each records the
name given in its environment (EDEFTER_TEST_HOSTNAME) as the task instance's hostname."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("EDEFTER_TEST_HOSTNAME") or socket.getfqdn()
