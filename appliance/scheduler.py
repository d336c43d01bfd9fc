"""Periodic jobs inside one tenant worker.

Each job runs in its own asyncio task on its own schedule, so a slow job (a long
backfill) never delays another (an integration's live changes). Every run is
recorded in the tenant's `scheduled_jobs` table (sql/tenant/0001_tenant.sql):
when it last ran, how it ended, when it is due again, how many runs and failures.
A failing job is logged and retried with exponential backoff and jitter; it never
stops the other jobs. The schedule survives a worker restart: a job that ran a
moment ago in the previous worker is not run again at once.

Used by appliance/worker.py (one Scheduler per tenant worker); the sync engine
adds one job per integration.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import asyncpg

from appliance.identifiers import quote_ident, tenant_schema

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]

# A failing job waits interval * 2**(failures - 1), at most this long (or its own
# interval when that is longer), with +-20 % jitter so many tenants never retry in step.
MAX_BACKOFF_SECONDS = 600.0
_ERROR_TEXT_MAX = 2000
# Failures that speak for themselves in one line; anything else is logged with its traceback.
_EXPECTED = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass
class _Entry:
    name: str
    interval: float
    job: Job
    failures_in_row: int = 0
    task: asyncio.Task | None = None
    running: bool = False
    last_duration: float = 0.0


class Scheduler:
    """Runs the jobs added with `add()` until `stop()`.

    `pool`: an asyncpg pool that can write the tenant's schema (the tenant role's
    pool in a worker). `run()` returns once `stop()` has finished; `add()` may be
    called before or while `run()` runs. Not thread-safe (one event loop).
    """

    def __init__(self, pool: asyncpg.Pool, tenant_slug: str, *, max_backoff: float = MAX_BACKOFF_SECONDS):
        self.pool = pool
        self.slug = tenant_slug
        self.max_backoff = max_backoff
        self._table = f"{quote_ident(tenant_schema(tenant_slug))}.scheduled_jobs"
        self._extra = {"tenant": tenant_slug}
        self._entries: dict[str, _Entry] = {}
        self._started = False
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    def add(self, name: str, interval_seconds: float, job: Job) -> None:
        """Register `job` (an async callable without arguments) to run every `interval_seconds`."""
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        if name in self._entries:
            raise ValueError(f"job {name!r} is already scheduled")
        entry = _Entry(name, float(interval_seconds), job)
        self._entries[name] = entry
        if self._started and not self._stopping.is_set():
            entry.task = asyncio.create_task(self._loop(entry), name=f"job {name}")

    def remove(self, name: str) -> None:
        """Stop scheduling job `name` (unknown names are ignored). A run in progress is
        cancelled, so only jobs that are safe to interrupt at any point are removed."""
        entry = self._entries.pop(name, None)
        if entry is not None and entry.task is not None and not entry.task.done():
            entry.task.cancel()

    async def run(self) -> None:
        """Start every job's task; return when `stop()` has finished."""
        self._started = True
        for entry in self._entries.values():
            if entry.task is None:
                entry.task = asyncio.create_task(self._loop(entry), name=f"job {entry.name}")
        await self._stopped.wait()

    async def stop(self, grace: float) -> None:
        """No new runs start; runs in progress get `grace` seconds to finish, then are
        cancelled. grace=0 cancels everything at once (the worker lost its lock)."""
        self._stopping.set()
        tasks = [e.task for e in self._entries.values() if e.task is not None and not e.task.done()]
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for entry in self._entries.values():
            if entry.task is not None and not entry.task.done():
                if entry.running:
                    log.warning("job %s still running after %.1f s at stop: cancelled", entry.name, grace,
                                extra=self._extra)
                entry.task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._stopped.set()

    # -- one job ----------------------------------------------------------------

    async def _loop(self, entry: _Entry) -> None:
        delay = await self._register(entry)
        while not self._stopping.is_set():
            if delay > 0 and await self._sleep(delay):
                return
            started_wall = datetime.now(timezone.utc)
            started = time.monotonic()
            error: BaseException | None = None
            entry.running = True
            try:
                await entry.job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a job's failure is recorded, never fatal to the others
                error = exc
            finally:
                entry.running = False
            entry.last_duration = time.monotonic() - started
            if error is None:
                entry.failures_in_row = 0
                # The interval counts from the start of a run; a run longer than its
                # interval is followed by the next one at once, never by two at a time.
                delay = max(0.0, entry.interval - entry.last_duration)
                log.debug("job %s ok in %.3f s", entry.name, entry.last_duration, extra=self._extra)
            else:
                entry.failures_in_row += 1
                delay = self._backoff(entry)
                log.warning("job %s failed (%d in a row): %s; next try in %.1f s", entry.name,
                            entry.failures_in_row, _describe(error), delay, extra=self._extra,
                            exc_info=error if not isinstance(error, _EXPECTED) else None)
            next_run = started_wall + timedelta(seconds=entry.last_duration + delay)
            await self._record(entry, started_wall, error, next_run)

    def _backoff(self, entry: _Entry) -> float:
        cap = max(entry.interval, self.max_backoff)
        base = min(entry.interval * 2 ** (entry.failures_in_row - 1), cap)
        return base * random.uniform(0.8, 1.2)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, or return True early when the scheduler stops."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def _register(self, entry: _Entry) -> float:
        """Create or update the job's row; seconds until it is due (0..interval)."""
        try:
            next_run = await self.pool.fetchval(
                f"INSERT INTO {self._table} (name, interval_s) VALUES ($1, $2) "
                "ON CONFLICT (name) DO UPDATE SET interval_s = EXCLUDED.interval_s "
                "RETURNING next_run_at", entry.name, entry.interval)
        except _EXPECTED as exc:
            log.warning("job %s: cannot read its schedule (%s); running it now", entry.name, exc,
                        extra=self._extra)
            return 0.0
        due_in = (next_run - datetime.now(timezone.utc)).total_seconds()
        return min(max(due_in, 0.0), entry.interval)

    async def _record(self, entry: _Entry, started: datetime, error: BaseException | None,
                      next_run: datetime) -> None:
        try:
            if error is None:
                await self.pool.execute(
                    f"UPDATE {self._table} SET last_run_at = $2, next_run_at = $3, last_status = 'ok', "
                    "last_error = NULL, runs = runs + 1 WHERE name = $1", entry.name, started, next_run)
            else:
                await self.pool.execute(
                    f"UPDATE {self._table} SET last_run_at = $2, next_run_at = $3, last_status = 'error', "
                    "last_error = $4, runs = runs + 1, failures = failures + 1 WHERE name = $1",
                    entry.name, started, next_run, _describe(error)[:_ERROR_TEXT_MAX])
        except _EXPECTED as exc:
            # The database may be briefly away; the job itself goes on, only its record is lost.
            log.warning("job %s: cannot record its run: %s", entry.name, exc, extra=self._extra)


def _describe(error: BaseException) -> str:
    text = str(error).strip().replace("\n", " ")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
