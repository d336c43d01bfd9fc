"""The supervisor's children: forking them, what it knows of each, and its restart policy.

`fork_child()` is the only place a worker process is created. The parent is the
supervisor, which has preloaded the code and has no event loop and no threads,
so the child starts clean: it closes what belongs to the supervisor and to the
other children, resets the supervisor's signal set-up and calls its main, which
builds its own event loop. It never returns into the supervisor's stack.

A `Slot` is a place a worker should fill (web worker i, tenant acme): it outlives
the processes that fill it and carries the restart history (backoff, boot
failures, the `failed` mark) that the console shows.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import random
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from appliance import exitcodes, proc
from appliance.channel import ParentChannel, pipe
from appliance.errors import FatalError

log = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 0.5
# A worker that ran this long was healthy: its next crash starts the backoff afresh.
STABLE_SECONDS = 60.0
# After SIGABRT (stale heartbeat), how long a worker has to die before SIGKILL.
ABORT_GRACE_SECONDS = 3.0
# A child that has not said a word yet may take this long to start (a web worker
# speaks only once it serves); one that beats is held to the heartbeat timeout.
SILENT_START_SECONDS = 60.0
# Signals the supervisor handles; a child starts with the defaults.
SUPERVISOR_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


def backoff(attempt: int, cap: float, first: float = BACKOFF_FIRST_SECONDS) -> float:
    """Delay before retry number `attempt` (1, 2, ...): first, doubling, at most `cap`,
    with +-20 % jitter so that many workers (or nodes) never retry in step."""
    base = min(first * 2 ** max(attempt - 1, 0), cap)
    return base * random.uniform(0.8, 1.2)


def describe_exit(status: int, kill_reason: str | None = None) -> str:
    """A wait status in words, for logs and `tandem tenant list`."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if kill_reason:
            return kill_reason
        name = _signal_name(sig)
        if sig == signal.SIGKILL:
            return f"killed by {name} (out of memory?)"
        return f"killed by {name}"
    code = os.waitstatus_to_exitcode(status)
    return f"exit {code} ({exitcodes.describe(code)})"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


@dataclass(eq=False)
class Child:
    """One live worker process, as the supervisor sees it."""

    name: str                    # "tenant acme", "web worker 0": the start of every log line about it
    pid: int
    channel: ParentChannel
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    last_seen: float = field(default_factory=time.monotonic)
    spoke: bool = False          # has written at least one line
    ready: bool = False          # said `ready`
    booted: bool = False         # said `ready` or `standby`: it got through its start-up
    fail_reason: str | None = None   # its `fail` line
    kill_reason: str | None = None   # why we killed it (heartbeat, memory), for describe_exit
    abort_at: float | None = None    # SIGABRT sent (stale heartbeat)
    term_at: float | None = None     # SIGTERM sent (asked to stop)
    killed: bool = False             # SIGKILL sent

    def send(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def terminate(self, now: float) -> None:
        if self.term_at is None:
            self.term_at = now
            self.send(signal.SIGTERM)

    def kill(self, reason: str | None = None) -> None:
        if not self.killed:
            self.killed = True
            if reason and not self.kill_reason:
                self.kill_reason = reason
            self.send(signal.SIGKILL)

    def watch(self, now: float, *, heartbeat_timeout: float, grace: float, extra: dict) -> None:
        """Enforce the heartbeat (SIGABRT, then SIGKILL) and, once asked to stop, the grace period."""
        if self.term_at is not None:
            if not self.killed and now - self.term_at > grace:
                log.warning("%s: worker (pid %d) still there %.0f s after SIGTERM: killed", self.name, self.pid,
                            grace, extra=extra)
                self.kill()
            return
        if self.abort_at is not None:
            if not self.killed and now - self.abort_at > ABORT_GRACE_SECONDS:
                log.warning("%s: worker (pid %d) still there after SIGABRT: killed", self.name, self.pid,
                            extra=extra)
                self.kill()
            return
        stale = now - self.last_seen
        if stale > (heartbeat_timeout if self.spoke else max(heartbeat_timeout, SILENT_START_SECONDS)):
            log.error("%s: worker (pid %d) sent no heartbeat for %.1f s: aborting it (SIGABRT)", self.name,
                      self.pid, stale, extra=extra)
            self.kill_reason = f"killed: no heartbeat for {stale:.0f} s (hung?)"
            self.abort_at = now
            self.send(signal.SIGABRT)

    def check_memory(self, limit_mb: int, extra: dict) -> None:
        """SIGKILL when the resident set is over `limit_mb`; the log line says so, and why."""
        if self.killed or self.term_at is not None:
            return
        rss = proc.rss_bytes(self.pid)
        if rss is not None and rss > limit_mb * 2**20:
            log.error("%s exceeded its memory limit (%d MiB, rss %d MiB): killed", self.name, limit_mb,
                      rss // 2**20, extra=extra)
            self.kill(f"killed: over its memory limit ({limit_mb} MiB, rss {rss // 2**20} MiB)")


@dataclass(eq=False)
class Slot:
    """A place one worker should fill, across the processes that fill it."""

    name: str
    child: Child | None = None
    state: str = "starting"      # nodes.WORKER_STATES
    restarts: int = 0            # processes started after the first
    starts: int = 0
    crashes_in_row: int = 0
    boot_failures: int = 0       # in a row; reset by `ready`
    last_exit: str | None = None
    reason: str | None = None
    next_start: float = 0.0      # monotonic time of the next start, when there is no child
    wanted: bool = True          # False: stop it and forget it

    def due(self, now: float) -> bool:
        return self.child is None and self.wanted and now >= self.next_start

    def started(self, child: Child) -> None:
        if self.starts:
            self.restarts += 1
        self.starts += 1
        self.child = child
        self.state = "starting"

    def exited(self, status: int, now: float, *, threshold: int, cap: float, cooldown: float) -> tuple[str, float]:
        """Book the death of `self.child`; returns (what happened, seconds until the next start).

        What happened: "stopped" (we asked it to), "failed" (boot failures reached
        `threshold`: wait `cooldown`), "boot failure" or "crash" (backoff).
        """
        child = self.child
        assert child is not None
        self.child = None
        self.last_exit = describe_exit(status, child.kill_reason)
        if child.term_at is not None:  # asked to stop; however it ended, it is stopped
            self.state = "stopped"
            self.reason = None
            return "stopped", 0.0
        code = os.waitstatus_to_exitcode(status)
        if not child.booted or code == exitcodes.BOOT_FAILURE:
            self.boot_failures += 1
            self.reason = child.fail_reason or self.last_exit
            if self.boot_failures >= threshold:
                self.state = "failed"
                self.next_start = now + cooldown
                return "failed", cooldown
            delay = backoff(self.boot_failures, cap)
            what = "boot failure"
        else:
            if now - child.started >= STABLE_SECONDS:
                self.crashes_in_row = 0
            self.crashes_in_row += 1
            self.reason = child.fail_reason or self.last_exit
            delay = backoff(self.crashes_in_row, cap)
            what = "crash"
        self.state = "backoff"
        self.next_start = now + delay
        return what, delay


def fork_child(name: str, target: Callable[[int], object], close_in_child: Callable[[], None]) -> Child:
    """Fork; in the child run `close_in_child()` then `target(channel_write_fd)`, which must
    not return (if it does, or raises, the child exits SOFTWARE). Returns the parent's Child."""
    read_fd, write_fd = pipe()
    # Buffered output would otherwise be written twice, once by each process.
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never return from here
        code = exitcodes.SOFTWARE
        try:
            os.close(read_fd)
            _reset_child(close_in_child)
            target(write_fd)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else exitcodes.SOFTWARE
        except BaseException:  # noqa: BLE001 - nothing may unwind into the supervisor's loop
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_fd)
    return Child(name=name, pid=pid, channel=ParentChannel(read_fd))


def _reset_child(close_in_child: Callable[[], None]) -> None:
    signal.set_wakeup_fd(-1)
    for sig in SUPERVISOR_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    close_in_child()
    # SIGABRT (stale heartbeat) then prints every thread's stack: where it hung. A core
    # file per hung worker would fill the disk of a busy appliance for little more.
    faulthandler.enable()
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    except (ValueError, OSError):
        pass


class SupervisedPostgres:
    """The embedded PostgreSQL as a child of the supervisor: restarted with backoff when it
    dies, stopped last. The supervisor's reaping loop collects its exit status (not Popen),
    and hands it to `exited()`."""

    def __init__(self, server, backoff_cap: float):
        self.server = server          # pgembed.EmbeddedPostgres
        self.backoff_cap = backoff_cap
        self.failures = 0
        self.started = 0.0
        self.next_start: float | None = None

    @property
    def pid(self) -> int | None:
        process = self.server.process
        return process.pid if process is not None else None

    def start(self) -> None:
        """Start and wait until it accepts connections. Raises FatalError, ConfigurationError."""
        self.server.start()
        self.started = time.monotonic()

    def exited(self, status: int, now: float, restart: bool = True) -> None:
        self.server.process.returncode = os.waitstatus_to_exitcode(status)  # reaped by us, not by Popen
        if not restart:
            log.warning("embedded PostgreSQL (pid %d) exited: %s", self.pid, describe_exit(status))
            return
        if now - self.started >= STABLE_SECONDS:
            self.failures = 0
        self.failures += 1
        delay = backoff(self.failures, self.backoff_cap)
        self.next_start = now + delay
        log.error("embedded PostgreSQL (pid %d) exited: %s; restarting it in %.1f s", self.pid,
                  describe_exit(status), delay)

    def restart_if_due(self, now: float) -> None:
        if self.next_start is None or now < self.next_start:
            return
        self.next_start = None
        try:
            self.start()
        except (FatalError, OSError) as exc:
            self.failures += 1
            delay = backoff(self.failures, self.backoff_cap)
            self.next_start = time.monotonic() + delay
            log.error("embedded PostgreSQL did not start: %s; next try in %.1f s", exc, delay)

    def stop(self) -> None:
        log.info("stopping the embedded PostgreSQL")
        self.server.stop()
