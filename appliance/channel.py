"""The pipe between the supervisor and each child worker.

A child writes short lines: `ready`, `beat`, `standby <why>`, `fail <reason>`.
The supervisor select()s on the read ends together with its signal wake-up fd,
so one blocking call waits for every child at once; a child that stops writing
is stale, and one that exits before `ready` failed at boot (its `fail` line says why).
"""

from __future__ import annotations

import errno
import os

READY = "ready"
BEAT = "beat"
STANDBY = "standby"
FAIL = "fail"
_MAX_LINE = 400


class ChildChannel:
    """Write end, used in the child. Writes never block the child's event loop for long:
    the pipe is non-blocking and a full pipe (supervisor busy) just drops a beat."""

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)

    def _send(self, line: str) -> None:
        data = (line.replace("\n", " ")[:_MAX_LINE] + "\n").encode("utf-8", "replace")
        try:
            os.write(self.fd, data)
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def ready(self) -> None:
        self._send(READY)

    def beat(self) -> None:
        self._send(BEAT)

    def standby(self, why: str) -> None:
        self._send(f"{STANDBY} {why}")

    def fail(self, reason: str) -> None:
        self._send(f"{FAIL} {reason}")

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class ParentChannel:
    """Read end, used in the supervisor. `read()` returns the complete lines received so far."""

    def __init__(self, fd: int):
        self.fd = fd
        os.set_blocking(fd, False)
        self._buffer = b""
        self.closed = False

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[tuple[str, str]]:
        """Drain the pipe; (kind, text) for each whole line. Sets `closed` at end of file."""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        out = []
        for raw in lines:
            kind, _, text = raw.decode("utf-8", "replace").partition(" ")
            out.append((kind, text))
        return out

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def pipe() -> tuple[int, int]:
    """(read_fd, write_fd), both close-on-exec."""
    return os.pipe2(os.O_CLOEXEC)
