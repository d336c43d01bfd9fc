"""`tandem run`: the supervisor, the root of the process tree (DESIGN.md, "Processes").

It binds the listeners, drops privileges, starts the embedded PostgreSQL when
there is no DSN, forks the web workers, reaches the database (migrating it),
and then keeps one tenant worker per active tenant: it forks, reaps, restarts
with backoff, marks tenants that cannot boot as failed, kills hung and oversized
workers, reports every worker's state to the control schema, and stops
everything in two phases.

Like gunicorn's arbiter it has no event loop and no threads: signal handlers only
record the signal (and wake the loop through `signal.set_wakeup_fd`); one
`poll()` waits for signals and every child's channel at once; the loop acts.
Database work happens in short `asyncio.run()` bursts (connect, query, close),
so no loop is running whenever it forks. Children are forked from this process
after it has imported their code, so they share those pages copy-on-write.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import signal
import socket
import time
from pathlib import Path

# Preloaded here, before any fork, so every child shares these pages, and before the
# switch to the service user, who may not be able to read the code (a one-file
# binary unpacks into a directory private to the user who started it).
import encodings.idna  # noqa: F401 - host names in a DSN are encoded with it
import aiohttp  # noqa: F401
import asyncpg  # noqa: F401

from appliance import pgembed

from appliance import __version__, db, exitcodes, keys, listeners, logs, metrics, migrator, nodes, privileges, proc
from appliance import reconcile, sdnotify, tenants, tls, webworker, worker
from appliance.children import Child, Slot, SupervisedPostgres, backoff, fork_child
from appliance.config import Config, load_config
from appliance.errors import ConfigurationError, MigrationError
from appliance.reconcile import DATABASE_AWAY

log = logging.getLogger(__name__)

# Ceiling of the wait between database attempts (connect at start, reconcile in an outage).
DATABASE_RETRY_MAX_SECONDS = 30.0
# The loop wakes at least this often to check heartbeats, memory and restarts.
TICK_SECONDS = 0.5
MEMORY_CHECK_SECONDS = 1.0
# A final report to the control schema at shutdown may take this long, no longer.
FINAL_REPORT_SECONDS = 5.0


class Supervisor:
    """One per `tandem run`. `run()` returns the exit status; start-up problems are raised
    as TandemError (one line for the administrator) after whatever was started is stopped."""

    def __init__(self, config: Config, config_path: Path | str | None = None):
        self.config = config
        self.config_path = config_path
        self.notifier = sdnotify.Notifier()
        self.key: keys.MasterKey | None = None
        self.listeners: listeners.Listeners | None = None
        self.pg: SupervisedPostgres | None = None         # when managed
        self.web: list[Slot] = []
        self.tenants: dict[int, Slot] = {}                # tenant id -> slot
        self.tenant_info: dict[int, tenants.Tenant] = {}
        self.children: dict[int, Child] = {}              # pid -> child (web and tenant)
        self._slot_of: dict[int, Slot] = {}               # pid -> slot
        self._by_fd: dict[int, Child] = {}
        self._poll = select.poll()
        self._signals: collections.deque[int] = collections.deque()
        self._wake_r = self._wake_w = -1
        self._started = time.monotonic()
        self._stop_requested = False
        self._halt: tuple[int, str] | None = None
        self._shut_down = False
        # The database phase: reach it, migrate, register; then reconcile.
        self.db_ready = False
        self.schema_current = False
        self._db_attempts = 0
        self._next_db_attempt = 0.0
        self._next_reconcile = 0.0
        self._reconcile_failures = 0
        self._said_pending = ""
        self._ready_sent = False
        self._status = ""
        self._next_memory_check = 0.0
        self._next_watchdog = 0.0

    # == the whole life ===============================================================

    def run(self) -> int:
        """Start, supervise until SIGTERM/SIGINT (0) or a fatal problem (its exit code), stop.

        Everything started is stopped on the way out, whatever happened: workers first
        (SIGTERM, grace_seconds, SIGKILL), the embedded PostgreSQL last.
        """
        proc.set_title("tandem: supervisor")
        log.info("tandem %s starting (node %s, pid %d)", __version__, self.config.cluster.node_name, os.getpid())
        self.notifier.status("starting")
        try:
            self._install_signals()
            self._start()
            code = self._loop()
        finally:
            self._shutdown()
        return code

    def _start(self) -> None:
        """Listeners (still root), the service user, data dir and key, embedded PostgreSQL,
        TLS files, web workers. The database comes later, in the loop, so that the web
        workers answer /-/health (and /-/ready 503) while it is away."""
        config = self.config
        self.listeners = listeners.bind(config)
        owner = privileges.owner_ids(config.security.run_as)
        try:
            privileges.prepare_dir(config.paths.data_dir, owner)
        except OSError:
            pass  # check_writable below says what is wrong, and how to fix it
        privileges.drop_to(config.security.run_as)
        privileges.check_writable(config.paths.data_dir)
        self.key = keys.ensure_key(config.security.key_file)
        if config.metrics.enabled:
            # Before any fork: every child writes its metrics there (see appliance.metrics).
            metrics.use_directory(config.socket_dir / "metrics")
        if config.database.managed:
            self._start_postgres()
        if config.tls.mode == "self-signed":
            tls.ensure_self_signed(config)
        if config.tls.mode != "off":
            # Every web worker would fail on a bad certificate file; say it once, here.
            tls.CertificateStore(config)
        self.web = [Slot(f"web worker {i}") for i in range(config.http.workers)]
        for index in range(len(self.web)):
            self._start_web(index)
        scheme = "http" if config.tls.mode == "off" else "https"
        redirects = "".join(f", http://{a} (redirects to https)" for a in self.listeners.redirect_addresses)
        log.info("%d web worker%s on %s%s", len(self.web), "" if len(self.web) == 1 else "s",
                 ", ".join(f"{scheme}://{a}" for a in self.listeners.addresses), redirects)

    def _loop(self) -> int:
        while True:
            self._wait(self._timeout())
            self._handle_signals()
            if self._stop_requested:
                return exitcodes.OK
            self._reap()
            now = time.monotonic()
            self._check_children(now)
            self._start_due(now)
            if not self.db_ready and now >= self._next_db_attempt:
                self._reach_database()
            elif self.db_ready and now >= self._next_reconcile:
                self._reconcile()
            self._maybe_ready()
            self._ping_watchdog(time.monotonic())
            if self._halt is not None:
                code, message = self._halt
                log.error("%s", message)
                return code

    # == start-up pieces ==============================================================

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, self._record_signal)
        self._poll.register(self._wake_r, select.POLLIN)

    def _record_signal(self, signum: int, _frame) -> None:
        # Only record it: the loop acts (it may be in the middle of anything right now).
        self._signals.append(signum)

    def _start_postgres(self) -> None:
        # PostgresBinariesMissing first: one line naming the package to install (exit CONFIG).
        pgembed.find_bin_dir(self.config.database.managed_bin_dir, self.config.pg_dir)
        if os.geteuid() == 0:
            raise ConfigurationError("the embedded PostgreSQL cannot run as root, and [security] run_as is empty: "
                                     "name the service user (run_as = \"tandem\") or set [database] dsn")
        self.pg = SupervisedPostgres(db.embedded_server(self.config, self.key),
                                     self.config.supervisor.restart_backoff_max_seconds)
        self.pg.start()
        reconcile.burst(db.ensure_managed_database(self.config, self.key), self._burst_timeout())

    def _start_web(self, index: int) -> None:
        slot = self.web[index]
        own, redirect = self.listeners.for_worker(index)
        scrape = self.listeners.metrics_for(index)
        keep = set(own) | set(redirect) | set(scrape)

        def target(channel_fd: int) -> None:
            webworker.main(self.config, self.config_path, index, own, redirect, channel_fd, scrape)

        self._fork(slot, target, keep)

    def _start_tenant(self, tenant: tenants.Tenant) -> None:
        slot = self.tenants[tenant.id]

        def target(channel_fd: int) -> None:
            worker.main(self.config, tenant, channel_fd)

        self._fork(slot, target, set())
        log.info("%s: worker started (pid %d%s)", slot.name, slot.child.pid,
                 f", restart {slot.restarts}" if slot.restarts else "", extra={"tenant": tenant.slug})

    def _fork(self, slot: Slot, target, keep: set[socket.socket]) -> None:
        def close_in_child() -> None:
            os.close(self._wake_r)
            os.close(self._wake_w)
            for other in self.children.values():
                other.channel.close()
            for sock in self.listeners.all():
                if sock not in keep:
                    sock.close()
            self.notifier.close()

        child = fork_child(slot.name, target, close_in_child)
        slot.started(child)
        self.children[child.pid] = child
        self._slot_of[child.pid] = slot
        self._by_fd[child.channel.fd] = child
        self._poll.register(child.channel.fd, select.POLLIN)

    # == waiting, signals, channels, reaping ===========================================

    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [now + TICK_SECONDS, self._next_db_attempt if not self.db_ready else self._next_reconcile]
        # Only slots that _start_due() would start now: a tenant waiting for the schema must
        # not turn this into a busy loop.
        startable = self.web + (list(self.tenants.values()) if self.db_ready and self.schema_current else [])
        deadlines += [s.next_start for s in startable if s.child is None and s.wanted]
        if self.pg is not None and self.pg.next_start is not None:
            deadlines.append(self.pg.next_start)
        if self.notifier.watchdog_interval:
            deadlines.append(self._next_watchdog)
        return min(max(min(deadlines) - now, 0.0), TICK_SECONDS)

    def _wait(self, timeout: float) -> None:
        for fd, _events in self._poll.poll(timeout * 1000):
            if fd == self._wake_r:
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            elif fd in self._by_fd:
                self._read(self._by_fd[fd])

    def _take_signals(self) -> list[int]:
        """The signals recorded so far. popleft() one by one: a handler may append at any
        bytecode, and iterating over the deque meanwhile would raise."""
        taken = []
        while True:
            try:
                taken.append(self._signals.popleft())
            except IndexError:
                return taken

    def _handle_signals(self) -> None:
        for sig in self._take_signals():
            if sig in (signal.SIGTERM, signal.SIGINT):
                if not self._stop_requested:
                    log.info("%s received: stopping", signal.Signals(sig).name)
                self._stop_requested = True
            elif sig == signal.SIGHUP:
                self._reload()
            elif sig == signal.SIGCHLD:
                self._reap()

    def _reload(self) -> None:
        """SIGHUP: the log level from the config file; the web workers reload their certificates."""
        try:
            new = load_config(self.config_path)
        except ConfigurationError as exc:
            log.error("SIGHUP: config not reloaded, keeping the running one: %s", exc)
        else:
            logs.set_level(new.log.level)
            self.config = self.config.model_copy(update={"log": new.log})
            log.info("SIGHUP: reloaded %s: log level %s (other changes need a restart)", new.source, new.log.level)
        for slot in self.web:
            if slot.child is not None:
                slot.child.send(signal.SIGHUP)

    def _read(self, child: Child) -> None:
        lines = child.channel.read()
        if lines:
            child.last_seen = time.monotonic()
            child.spoke = True
        slot = self._slot_of.get(child.pid)
        for kind, text in lines:
            if kind == "ready" and not child.ready:
                child.ready = child.booted = True
                if slot is not None:
                    slot.state, slot.reason, slot.boot_failures = "running", None, 0
                log.info("%s: ready (pid %d, %.1f s after fork)", child.name, child.pid,
                         time.monotonic() - child.started, extra=self._extra(slot))
            elif kind == "standby":
                child.booted = True
                if slot is not None and (slot.state, slot.reason) != ("standby", text):
                    slot.state, slot.reason = "standby", text
                    log.info("%s: standby: %s", child.name, text, extra=self._extra(slot))
            elif kind == "fail":
                child.fail_reason = text
        if child.channel.closed:
            self._forget_channel(child)

    def _forget_channel(self, child: Child) -> None:
        if self._by_fd.pop(child.channel.fd, None) is not None:
            self._poll.unregister(child.channel.fd)
            child.channel.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.pg is not None and pid == self.pg.pid:
                self.pg.exited(status, time.monotonic(), restart=not self._stop_requested)
            elif pid in self.children:
                self._child_exited(pid, status)

    def _child_exited(self, pid: int, status: int) -> None:
        child = self.children.pop(pid)
        slot = self._slot_of.pop(pid)
        metrics.process_gone(pid)
        if child.channel.fd in self._by_fd:
            self._read(child)  # its last words: a `fail` line written just before exiting
            self._forget_channel(child)
        now = time.monotonic()
        cfg = self.config.supervisor
        what, delay = slot.exited(status, now, threshold=cfg.boot_failures_before_failed,
                                  cap=cfg.restart_backoff_max_seconds, cooldown=cfg.failed_cooldown_seconds)
        extra = self._extra(slot)
        if self._stop_requested or what == "stopped":
            log.info("%s: worker (pid %d) stopped: %s", slot.name, pid, slot.last_exit, extra=extra)
            if not slot.wanted:
                self._forget_tenant(slot)
            else:
                slot.next_start = now
            return
        if slot in self.web and what == "failed":
            self._halt = (exitcodes.BOOT_FAILURE, f"{slot.name} could not start {slot.boot_failures} times "
                                                  f"in a row: {slot.reason}; stopping")
        elif what == "failed":
            log.error("%s: worker could not start %d times in a row: %s; next try in %.0f s (state failed)",
                      slot.name, slot.boot_failures, slot.reason, delay, extra=extra)
        elif what == "boot failure":
            log.warning("%s: worker (pid %d) could not start: %s; retrying in %.1f s", slot.name, pid,
                        slot.reason, delay, extra=extra)
        else:
            log.warning("%s: worker (pid %d) died: %s; restarting in %.1f s", slot.name, pid, slot.last_exit,
                        delay, extra=extra)

    def _forget_tenant(self, slot: Slot) -> None:
        for tenant_id, candidate in list(self.tenants.items()):
            if candidate is slot:
                del self.tenants[tenant_id]
                self.tenant_info.pop(tenant_id, None)

    # == watching and restarting ======================================================

    def _check_children(self, now: float) -> None:
        """Heartbeats, the grace of workers asked to stop, and (once a second) tenants' memory."""
        cfg = self.config.supervisor
        check_memory = now >= self._next_memory_check
        if check_memory:
            self._next_memory_check = now + MEMORY_CHECK_SECONDS
        for child in list(self.children.values()):
            slot = self._slot_of[child.pid]
            extra = self._extra(slot)
            child.watch(now, heartbeat_timeout=cfg.heartbeat_timeout, grace=cfg.grace_seconds, extra=extra)
            if check_memory and slot not in self.web:
                child.check_memory(cfg.tenant_memory_mb, extra)

    def _start_due(self, now: float) -> None:
        if self._stop_requested or self._halt is not None:
            return
        for index, slot in enumerate(self.web):
            if slot.due(now):
                self._start_web(index)
        if self.pg is not None:
            self.pg.restart_if_due(now)
        if self.db_ready and self.schema_current:
            for tenant_id, slot in list(self.tenants.items()):
                if slot.due(now):
                    self._start_tenant(self.tenant_info[tenant_id])

    # == the database ================================================================

    def _reach_database(self) -> None:
        """Connect, migrate (or check), register the node; on failure retry with backoff."""
        try:
            status = reconcile.burst(reconcile.prepare(self.config, self.key), self._burst_timeout(migrating=True),
                                     keepalive=lambda: self._ping_watchdog(time.monotonic()))
        except MigrationError as exc:
            self._halt = (exc.exit_code, f"cannot start: {exc}")
            return
        except DATABASE_AWAY as exc:
            self._db_attempts += 1
            delay = backoff(self._db_attempts, DATABASE_RETRY_MAX_SECONDS, first=1.0)
            self._next_db_attempt = time.monotonic() + delay
            log.warning("%s: retrying in %.0f s", reconcile.describe_problem(exc, self.config), delay)
            self.notifier.status(f"waiting for the database (attempt {self._db_attempts})")
            return
        self.db_ready = True
        self._next_reconcile = 0.0
        self._note_schema(status)
        log.info("database ready (%s)", db.describe_target(self.config))

    def _note_schema(self, status: migrator.MigrationStatus) -> None:
        """Remember whether the schema is current; say so once when it is not, and when it becomes so."""
        self.schema_current = status.current
        if status.current:
            if self._said_pending:
                log.info("migrations are current now: starting tenant workers")
                self._said_pending = ""
            return
        text = status.describe()
        if text != self._said_pending:
            log.warning("database schema is not current: %s; tenant workers start once it is", text)
            self.notifier.status(f"waiting: {text}")
            self._said_pending = text

    def _reconcile(self) -> None:
        """One burst: read the active tenants and report every worker's state; then start
        and stop workers to match. A database outage leaves the running workers alone."""
        reports = [self._report(tenant_id, slot) for tenant_id, slot in self.tenants.items()]
        try:
            active, status = reconcile.burst(
                reconcile.exchange(self.config, self.key, reports, check_schema=not self.schema_current),
                self._burst_timeout())
        except MigrationError as exc:
            self._halt = (exc.exit_code, f"stopping: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - running tenants outlive any failed reconcile
            self._reconcile_failures += 1
            delay = backoff(self._reconcile_failures, DATABASE_RETRY_MAX_SECONDS, first=1.0)
            self._next_reconcile = time.monotonic() + delay
            if isinstance(exc, DATABASE_AWAY):
                log.warning("%s; tenant workers keep running; next try in %.0f s",
                            reconcile.describe_problem(exc, self.config), delay)
            else:
                log.exception("reconcile failed; tenant workers keep running; next try in %.0f s", delay)
            return
        if self._reconcile_failures:
            log.info("database reachable again")
            self._reconcile_failures = 0
        self._next_reconcile = time.monotonic() + self.config.supervisor.reconcile_seconds
        if status is not None:
            self._note_schema(status)
        if self.schema_current:
            self._match(active)
        self._update_status()

    def _burst_timeout(self, migrating: bool = False) -> float:
        # Connecting may take connect_timeout_seconds; a migration of many tenants, much longer.
        return self.config.database.connect_timeout_seconds + (3600 if migrating else 10)

    def _match(self, active: list[tenants.Tenant]) -> None:
        wanted = {tenant.id: tenant for tenant in active}
        now = time.monotonic()
        for tenant_id, slot in list(self.tenants.items()):
            if tenant_id in wanted:
                self.tenant_info[tenant_id] = wanted[tenant_id]
                if not slot.wanted:
                    slot.wanted = True
                    log.info("%s: active again", slot.name, extra=self._extra(slot))
                continue
            if slot.wanted:
                slot.wanted = False
                log.info("%s: no longer active: stopping its worker", slot.name, extra=self._extra(slot))
            if slot.child is None:
                self._forget_tenant(slot)
            elif slot.child.term_at is None:
                slot.state = "stopping"
                slot.child.terminate(now)
        for tenant_id, tenant in wanted.items():
            if tenant_id not in self.tenants:
                self.tenants[tenant_id] = Slot(f"tenant {tenant.slug}")
                self.tenant_info[tenant_id] = tenant
        self._start_due(now)

    def _report(self, tenant_id: int, slot: Slot) -> nodes.WorkerReport:
        child = slot.child
        return nodes.WorkerReport(tenant_id=tenant_id, state=slot.state, pid=child.pid if child else None,
                                  restarts=slot.restarts, boot_failures=slot.boot_failures,
                                  last_exit=slot.last_exit, reason=slot.reason,
                                  started_at=child.started_at if child else None)

    # == readiness, systemd ============================================================

    def _maybe_ready(self) -> None:
        if self._ready_sent or not (self.db_ready and self.schema_current):
            return
        if not all(slot.child is not None and slot.child.ready for slot in self.web):
            return
        self._ready_sent = True
        took = time.monotonic() - self._started
        log.info("ready in %.1f s: %d web worker%s, database current", took, len(self.web),
                 "" if len(self.web) == 1 else "s")
        self.notifier.ready(self._status_text())

    def _status_text(self) -> str:
        states = collections.Counter(slot.state for slot in self.tenants.values())
        text = f"serving; tenant workers: {states['running']} running"
        for state in ("starting", "standby", "backoff", "failed"):
            if states[state]:
                text += f", {states[state]} {state}"
        return text

    def _update_status(self) -> None:
        text = self._status_text()
        if text != self._status and self._ready_sent:
            self._status = text
            self.notifier.status(text)

    def _ping_watchdog(self, now: float) -> None:
        interval = self.notifier.watchdog_interval
        if interval and now >= self._next_watchdog:
            self.notifier.watchdog()
            self._next_watchdog = now + interval

    # == stopping =====================================================================

    def _shutdown(self) -> None:
        """SIGTERM to every worker, wait up to grace_seconds (a second SIGTERM/SIGINT ends
        the wait), SIGKILL the rest, report, stop PostgreSQL last."""
        if self._shut_down:
            return
        self._shut_down = True
        self._stop_requested = True
        self.notifier.stopping()
        grace = self.config.supervisor.grace_seconds
        now = time.monotonic()
        if self.children:
            log.info("stopping %d workers (grace %.0f s)", len(self.children), grace)
        for child in self.children.values():
            child.terminate(now)
        deadline = now + grace
        self._take_signals()
        while self.children and time.monotonic() < deadline and self._wake_r >= 0:
            self._wait(min(TICK_SECONDS, max(deadline - time.monotonic(), 0)))
            self._ping_watchdog(time.monotonic())
            if {signal.SIGTERM, signal.SIGINT} & set(self._take_signals()):
                log.warning("second stop signal: not waiting for the rest of the grace period")
                break
            self._reap()
        for child in list(self.children.values()):
            log.warning("%s: worker (pid %d) did not stop in time: killed", child.name, child.pid,
                        extra=self._extra(self._slot_of.get(child.pid)))
            child.kill()
        for pid in list(self.children):
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue
            self._child_exited(pid, status)
        self._final_report()
        if self.pg is not None:
            self.pg.stop()
        if self.listeners is not None:
            self.listeners.close()
        if self._wake_r >= 0:
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        self.notifier.close()
        log.info("stopped")

    def _final_report(self) -> None:
        """Tell the control schema that this node's workers are stopped (best effort)."""
        if not self.db_ready or not self.tenants:
            return
        reports = []
        for tenant_id, slot in self.tenants.items():
            slot.state = "stopped"
            reports.append(self._report(tenant_id, slot))

        try:
            reconcile.burst(reconcile.report_stopped(self.config, self.key, reports), FINAL_REPORT_SECONDS)
        except DATABASE_AWAY as exc:
            log.warning("could not report the stopped workers: %s", exc)

    # == small things =================================================================

    def _extra(self, slot: Slot | None) -> dict:
        if slot is not None and slot.name.startswith("tenant "):
            return {"tenant": slot.name.removeprefix("tenant ")}
        return {}

