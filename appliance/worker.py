"""The tenant worker: one forked process per active tenant, running that tenant's sync.

The supervisor forks it and calls `main()`; it never returns. Inside, one event
loop (its own, built after the fork) runs:
- a heartbeat (`beat` on the channel every supervisor.heartbeat_seconds, from the
  first moment, so a worker hung at boot is noticed too);
- the tenant's advisory lock, on a dedicated connection as the tenant role: only
  the holder syncs. Another node holding it -> `standby`, try again every few
  seconds. Losing that connection -> every sync task is cancelled at once and the
  worker exits LOCK_LOST (the supervisor restarts it, and whoever gets the lock
  next carries on);
- the scheduler with the tenant's jobs, on a pool logged in as the tenant role,
  which can reach the tenant's schema and nothing else; among them the sync
  (appliance/sync/jobs.py: one job per enabled integration, webhook fast path),
  whose HTTP goes through one OutboundClient allowing only the hosts of the
  tenant's connections.

Exit statuses (appliance/exitcodes.py) tell the supervisor what happened: 0 after
SIGTERM, BOOT_FAILURE (with a `fail <reason>` line first) when it could not start,
LOCK_LOST, SOFTWARE for a bug.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
from datetime import datetime, timezone
from typing import NoReturn

import asyncpg

from appliance import channel as channel_mod
from appliance import db, exitcodes, keys, migrator, proc
from appliance.config import Config
from appliance.errors import DatabaseUnavailable, TandemError
from appliance.identifiers import quote_ident
from appliance.outbound import OutboundClient
from appliance.scheduler import Scheduler
from appliance.sync.jobs import REFRESH_SECONDS, WEBHOOK_SECONDS, SyncJobs

log = logging.getLogger(__name__)

# First key of the two-int advisory lock every tenant worker takes; the second is the
# tenant id. b"TAND" as an int4; the migrator's one-bigint lock lives in another key space.
LOCK_NAMESPACE = int.from_bytes(b"TAND", "big")
STANDBY_RETRY_SECONDS = 3.0
# How often the lock connection is checked, and how long a check may take before the
# connection counts as lost (a server that does not answer may already have given
# the lock to another node).
LOCK_CHECK_SECONDS = 1.0
LOCK_CHECK_TIMEOUT = 5.0
# SIGTERM: running jobs get this long to finish (never more than half the supervisor's grace).
JOB_GRACE_SECONDS = 5.0


class BootFailure(Exception):
    """The worker cannot start; the message is the one line the console shows."""


class _LockLost(Exception):
    pass


def main(config: Config, tenant, channel_fd: int) -> NoReturn:
    """Entry point in the forked child. Never returns: exits with a status from exitcodes."""
    code = exitcodes.SOFTWARE
    try:
        proc.set_parent_death_signal(signal.SIGTERM)
        proc.set_title(f"tandem: tenant {tenant.slug}")
        # Ctrl-C in a terminal reaches the whole process group; the supervisor decides.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        _tag_log_records(tenant.slug)
        code = asyncio.run(TenantWorker(config, tenant, channel_mod.ChildChannel(channel_fd)).run())
    except BaseException:  # noqa: BLE001 - the last line of defence of a child process
        log.exception("tenant worker crashed", extra={"tenant": tenant.slug})
    finally:
        logging.shutdown()
        os._exit(code)


def _tag_log_records(slug: str) -> None:
    """Every record this process writes names the tenant, library records included."""
    def add_tenant(record: logging.LogRecord) -> bool:
        if not hasattr(record, "tenant"):
            record.tenant = slug
        return True
    for handler in logging.getLogger().handlers:
        handler.addFilter(add_tenant)


class TenantWorker:
    def __init__(self, config: Config, tenant, channel: channel_mod.ChildChannel):
        self.config = config
        self.tenant = tenant
        self.channel = channel
        self.extra = {"tenant": tenant.slug}
        self.key: keys.MasterKey | None = None
        self.lock_conn: asyncpg.Connection | None = None
        self.pool: asyncpg.Pool | None = None
        self.scheduler: Scheduler | None = None
        self.outbound: OutboundClient | None = None
        self.schema = quote_ident(tenant.schema_name)
        self._stop = asyncio.Event()
        self._lock_lost = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        beat = asyncio.create_task(self._beat(), name="heartbeat")
        try:
            return await self._run()
        finally:
            await self._close()
            beat.cancel()

    async def _run(self) -> int:
        boot = asyncio.create_task(self._boot(), name="boot")
        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait({boot, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not boot.done():
            boot.cancel()
            await asyncio.gather(boot, return_exceptions=True)
            log.info("stopped during start-up", extra=self.extra)
            return exitcodes.OK
        stop.cancel()
        try:
            boot.result()
        except Exception as exc:  # noqa: BLE001 - any boot problem is reported the same way
            reason = exc.args[0] if isinstance(exc, (BootFailure, TandemError)) and exc.args else _one_line(exc)
            log.error("cannot start: %s", reason, extra=self.extra,
                      exc_info=None if isinstance(exc, (BootFailure, TandemError, asyncpg.PostgresError,
                                                        OSError)) else exc)
            self.channel.fail(reason)
            return exitcodes.BOOT_FAILURE

        self.channel.ready()
        log.info("tenant worker running (pid %d)", os.getpid(), extra=self.extra)
        self.scheduler = Scheduler(self.pool, self.tenant.slug)
        self.scheduler.add("worker-status", self.config.supervisor.heartbeat_seconds, self._worker_status)
        # The sync: one job per enabled integration, kept in step with the integrations table.
        sync_jobs = SyncJobs(self.pool, self.scheduler, schema=self.tenant.schema_name, tenant=self.tenant.slug,
                             key=self.key, outbound=self.outbound)
        self.scheduler.add("integrations", REFRESH_SECONDS, sync_jobs.refresh)
        self.scheduler.add("webhooks", WEBHOOK_SECONDS, sync_jobs.webhooks)
        # The sync jobs live in this process only: build them at once, not when the schedule the
        # previous worker left says the refresh is due (a restarted worker would sync nothing for
        # up to REFRESH_SECONDS). A failure here is the scheduled refresh's to retry.
        try:
            await sync_jobs.refresh()
        except Exception as exc:  # noqa: BLE001 - logged; the scheduled job tries again
            log.warning("integrations not read at start: %s; the scheduled refresh retries", _one_line(exc),
                        extra=self.extra)
        tasks = {
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self._watch_lock(), name="lock watchdog"),
            asyncio.create_task(self._stop.wait(), name="stop"),
        }
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await sync_jobs.stop()
        if self._lock_lost.is_set():
            # Another node may hold the lock already: not one more write from us.
            await self.scheduler.stop(0)
            log.error("lost the connection that holds the tenant lock: stopped syncing", extra=self.extra)
            code = exitcodes.LOCK_LOST
        elif self._stop.is_set():
            grace = min(JOB_GRACE_SECONDS, self.config.supervisor.grace_seconds / 2)
            await self.scheduler.stop(grace)
            log.info("tenant worker stopped", extra=self.extra)
            code = exitcodes.OK
        else:  # the scheduler ended by itself: a bug
            await self.scheduler.stop(0)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("%s failed", task.get_name(), exc_info=task.exception(), extra=self.extra)
            code = exitcodes.SOFTWARE
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return code

    # -- boot ---------------------------------------------------------------------

    async def _boot(self) -> None:
        """Key, lock connection, lock (waiting in standby), pool, schema check, worker_status."""
        self.key = keys.load_key(self.config.security.key_file)
        role = self.tenant.role_name
        await self._take_lock(role)
        try:
            self.pool = await db.create_pool(self.config, self.key, role=role, min_size=1,
                                             max_size=self.config.database.pool_size,
                                             application_name=f"tandem tenant {self.tenant.slug}",
                                             session_state=False)
        except asyncpg.PostgresError as exc:
            raise BootFailure(f"cannot log in to the database as role {role}: {_one_line(exc)}") from exc
        async with self.pool.acquire() as conn:
            pending = await migrator.tenant_pending(conn, self.tenant.schema_name)
            if pending:
                raise BootFailure(f"schema {self.tenant.schema_name} has {len(pending)} pending migration"
                                  f"{'' if len(pending) == 1 else 's'}: run `tandem migrate`")
            await conn.execute(
                f"INSERT INTO {self.schema}.worker_status (id, node, pid, started_at, heartbeat_at) "
                "VALUES (true, $1, $2, now(), now()) ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node, "
                "pid = EXCLUDED.pid, started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at",
                self.config.cluster.node_name, os.getpid())
        # Outbound HTTP of the sync: egress only to the hosts of this tenant's connections
        # (SyncJobs adds them as it reads the connections). A bad CA bundle stops the boot.
        self.outbound = OutboundClient(self.config, [], tenant=self.tenant.slug)
        await self.outbound.start()

    async def _take_lock(self, role: str) -> None:
        """Hold the tenant's advisory lock on a dedicated connection; wait in standby while
        another node holds it or while the database cannot be reached."""
        said = ""
        delay = STANDBY_RETRY_SECONDS
        while True:
            try:
                if self.lock_conn is None:
                    self.lock_conn = await self._login(role, f"tandem tenant {self.tenant.slug} lock")
                if await self.lock_conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE,
                                                 _int4(self.tenant.id)):
                    break
                why = "another node holds this tenant's lock"
            except DatabaseUnavailable as exc:
                why = f"waiting for the database: {exc}"
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The server went away under an open connection (restart, admin shutdown).
                await self._drop_lock_conn()
                why = f"waiting for the database: {_one_line(exc)}"
            if why != said:
                log.info("standby: %s", why, extra=self.extra)
                self.channel.standby(why)
                said = why
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        self.lock_conn.add_termination_listener(lambda _conn: self._lock_lost.set())
        if said:
            log.info("took over this tenant's lock", extra=self.extra)

    async def _login(self, role: str, application_name: str) -> asyncpg.Connection:
        """A connection as the tenant role. The server refusing the login (role gone, NOLOGIN,
        wrong password) is a boot failure the console shows; its absence is DatabaseUnavailable."""
        try:
            return await db.connect(self.config, self.key, role=role, application_name=application_name)
        except asyncpg.PostgresError as exc:
            raise BootFailure(f"cannot log in to the database as role {role}: {_one_line(exc)}") from exc

    async def _drop_lock_conn(self) -> None:
        if self.lock_conn is not None:
            self.lock_conn.terminate()
            self.lock_conn = None

    # -- running ------------------------------------------------------------------

    async def _beat(self) -> None:
        interval = self.config.supervisor.heartbeat_seconds
        while True:
            self.channel.beat()
            await asyncio.sleep(interval)

    async def _watch_lock(self) -> None:
        """Return (with _lock_lost set) as soon as the lock connection is gone or stops answering."""
        while not self._lock_lost.is_set():
            try:
                await asyncio.wait_for(self.lock_conn.fetchval("SELECT 1"), LOCK_CHECK_TIMEOUT)
            except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("lock connection check failed: %s", _one_line(exc), extra=self.extra)
                break
            if self.lock_conn.is_closed():
                break
            try:
                await asyncio.wait_for(self._lock_lost.wait(), LOCK_CHECK_SECONDS)
            except asyncio.TimeoutError:
                pass
        self._lock_lost.set()

    async def _worker_status(self) -> None:
        """Scheduled job: tell the tenant's schema that its worker is alive."""
        await self.pool.execute(f"UPDATE {self.schema}.worker_status SET heartbeat_at = $1, pid = $2",
                                datetime.now(timezone.utc), os.getpid())

    async def _close(self) -> None:
        if self.outbound is not None:
            await self.outbound.close()
        if self._lock_lost.is_set():
            # Nothing graceful to do with a connection that is gone, nor time to spend on it.
            for closable in (self.pool, self.lock_conn):
                if closable is not None:
                    closable.terminate()
            return
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 5)
            except (asyncio.TimeoutError, OSError, asyncpg.InterfaceError):
                self.pool.terminate()
        if self.lock_conn is not None and not self.lock_conn.is_closed():
            try:
                # Closing the session releases the lock; saying so first is polite and quick.
                await asyncio.wait_for(self.lock_conn.execute("SELECT pg_advisory_unlock_all()"), 2)
                await asyncio.wait_for(self.lock_conn.close(), 2)
            except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self.lock_conn.terminate()


def _int4(value: int) -> int:
    """Tenant ids are bigint; the two-key advisory lock takes int4. Ids below 2**32 map one-to-one."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= (1 << 31) else value


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
