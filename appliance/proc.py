"""Small OS-process facts and controls shared by the supervisor and its children."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

_PR_SET_PDEATHSIG = 1
_libc = None


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send `sig` to this process when its parent dies (no orphans after a
    SIGKILLed supervisor). Call in the child right after fork; a no-op off Linux."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def set_title(title: str) -> None:
    """`ps` shows this (e.g. `tandem: tenant acme`)."""
    try:
        import setproctitle
        setproctitle.setproctitle(title)
    except ImportError:
        pass


def rss_bytes(pid: int) -> int | None:
    """Resident set size of `pid`, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def pss_bytes(pid: int) -> int | None:
    """Proportional set size (shared pages divided among sharers): the honest memory cost
    of one forked worker. None when unavailable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
