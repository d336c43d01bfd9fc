"""systemd's notify protocol (`Type=notify`), spoken by the supervisor.

systemd passes `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket) and,
with `WatchdogSec=`, `WATCHDOG_USEC` (and `WATCHDOG_PID`). We send datagrams of
`KEY=value` lines: `READY=1` once the appliance serves, `STATUS=...` for
`systemctl status`, `WATCHDOG=1` pings and `STOPPING=1` at shutdown.

The variables are taken out of the environment when read, so that children
(web and tenant workers, PostgreSQL) never speak for the service. Without
NOTIFY_SOCKET every call is a cheap no-op, so callers never need to check.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

log = logging.getLogger(__name__)

_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """One per supervisor. Sends never block and never raise: systemd being gone
    (or a test's listener having closed) must not take the appliance down."""

    def __init__(self, environ: dict | None = None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        for name in _ENV:
            env.pop(name, None)
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval: float | None = None
        # The one-file binary runs us as the child of PyInstaller's bootloader, which is
        # the main process systemd started and names in WATCHDOG_PID.
        ours = {str(os.getpid())} | ({str(os.getppid())} if getattr(sys, "frozen", False) else set())
        if usec.isdigit() and int(usec) > 0 and (not watchdog_pid or watchdog_pid in ours):
            # systemd's advice (sd_watchdog_enabled(3)): ping at half the timeout.
            self.watchdog_interval = int(usec) / 1_000_000 / 2
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def fileno(self) -> int | None:
        """The socket's fd (forked children close it), or None."""
        return self._sock.fileno() if self._sock is not None else None

    def send(self, *lines: str) -> bool:
        """Send one datagram of `KEY=value` lines; True when it went out."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
            return True
        except OSError as exc:
            if not self._warned:  # once: a missing listener would otherwise log every ping
                log.warning("cannot notify systemd at %s: %s", self.address.replace("\0", "@"), exc)
                self._warned = True
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1") if self.watchdog_interval else False

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
