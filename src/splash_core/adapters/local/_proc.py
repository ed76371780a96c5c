"""Telling whether a process recorded in the database is still the one we started."""

from __future__ import annotations

import functools
import os


@functools.cache
def _have_proc() -> bool:
    return os.path.exists("/proc/self/stat")


def process_start(pid: int) -> str | None:
    """An identity for the running process ``pid`` (its start time), or None when it is gone.

    Comparing it with the value recorded at start tells a live process from a new one that
    reused the pid. Without ``/proc`` the identity is just ``"alive"``.
    """
    if not _have_proc():
        return _alive_without_proc(pid)
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return _alive_without_proc(pid)
    # the command name (field 2) is in parentheses and may contain spaces; count after it
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie has ended; only its exit status is left
        return None
    return fields[19].decode()


def _alive_without_proc(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return "alive"
    return "alive"


def is_running(pid: int | None, start: str | None) -> bool:
    """Whether ``pid`` is alive and still the process whose identity was ``start``."""
    if pid is None:
        return False
    current = process_start(pid)
    return current is not None and (start is None or current == start)
