"""One scheduler job per enabled, unpaused integration, kept in step with the integrations table.

`SyncJobs.refresh` is itself a scheduled job of the tenant worker (every few seconds): it reads
the integrations (cheap: a handful of rows), makes the worker's OutboundClient allow exactly the
hosts of the tenant's connections as they are now (a deleted or edited connection's old host is
refused from then on), records the progress of runs in progress (`record_progress`), adds a
job `sync:<id>` for each integration that is enabled and not paused, replaces it when the
integration changed (updated_at) so the new interval applies, and removes it when the
integration is disabled, paused or deleted (a run in progress is cancelled, the scheduled one
and a webhook or manual one alike: the engine is crash-safe at any instant). The engines made
for one integration share its run lock, so a new engine's first run waits for the cancelled
run of the one it replaced to end: two runs of one integration at once would race to create
the same counterparts; and when a change cut a run short, the new engine runs at once (after
that wait) rather than at its job's next due time, so editing an integration in the middle of
a backfill does not pause the backfill. Each integration runs in its own job, so one slow
integration (a backfill, a rate-limited app) never delays another.

`SyncJobs.webhooks` (another scheduled job, checking every WEBHOOK_SECONDS) starts, in a task
of its own, a "webhook" run for each integration with pending webhook deliveries, and a full
"manual" run for each integration whose `sync_requested_at` is set (the API's sync-now).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from appliance.connectors.base import Connector
from appliance.identifiers import quote_ident
from appliance.keys import MasterKey
from appliance.outbound import OutboundClient
from appliance.scheduler import Scheduler
from appliance.sync.connections import connector_for, host_of
from appliance.sync.engine import Engine, SyncRunFailed
from appliance.sync.spec import IntegrationSpec
from appliance.sync.store import Store

log = logging.getLogger(__name__)

#: How often the worker looks for integration changes.
REFRESH_SECONDS = 3.0
#: How often it looks for webhook deliveries (the fast path's latency).
WEBHOOK_SECONDS = 0.5
WEBHOOK_JOB_SECONDS = 60.0
#: How often each integration's scheduled run re-compares all its linked pairs.
RECONCILE_SECONDS = 6 * 3600.0


class SyncJobs:
    def __init__(self, pool: asyncpg.Pool, scheduler: Scheduler, *, schema: str, tenant: str, key: MasterKey,
                 outbound: OutboundClient):
        self.pool = pool
        self.scheduler = scheduler
        self.schema = schema
        self.tenant = tenant
        self.key = key
        self.outbound = outbound
        self.extra = {"tenant": tenant}
        self.s = quote_ident(schema)
        self.jobs: dict[int, tuple[str, datetime]] = {}     # integration id -> (job name, updated_at)
        self.engines: dict[int, Engine] = {}
        self.locks: dict[int, asyncio.Lock] = {}    # integration id -> its run lock (Engine's `lock`)
        self.webhook_tasks: dict[int, asyncio.Task] = {}
        self.asked: dict[int, int] = {}     # integration id -> newest delivery its busy engine was asked to take
        self.stopping = False

    async def connector(self, row: asyncpg.Record) -> Connector:
        return connector_for(row, self.key, self.outbound, self.schema)

    async def refresh(self) -> None:
        # Exactly the hosts of the connections as they are now: a deleted connection's host (or
        # an edited one's old host) is refused from here on, without a restart of the worker.
        rows = await self.pool.fetch(f"SELECT base_url FROM {self.s}.connections")
        self.outbound.set_allowed({host_of(row["base_url"]) for row in rows})
        await self.record_progress()
        rows = await self.pool.fetch(f"SELECT id, name, enabled, paused, spec, updated_at FROM {self.s}.integrations")
        wanted = {r["id"]: r for r in rows if r["enabled"] and not r["paused"]}
        resume: set[int] = set()
        for iid in list(self.jobs):
            row = wanted.get(iid)
            if row is None or row["updated_at"] != self.jobs[iid][1]:
                name, _ = self.jobs.pop(iid)
                old = self.engines.pop(iid, None)
                if row is not None and old is not None and old.busy:
                    resume.add(iid)     # a run cut short by the change: the new engine goes on at once
                self.scheduler.remove(name)
                if (task := self.webhook_tasks.pop(iid, None)) is not None:
                    task.cancel()       # a manual or webhook run of the old engine ends too
                log.info("integration %s: sync job %s removed", iid, name, extra=self.extra)
        for iid, row in wanted.items():
            if iid in self.jobs:
                continue
            try:
                spec = IntegrationSpec.model_validate_json(row["spec"]) if isinstance(row["spec"], str) \
                    else IntegrationSpec.model_validate(row["spec"])
            except ValueError as exc:
                log.error("integration %s: its spec is invalid, not syncing: %s", row["name"], exc, extra=self.extra)
                continue
            engine = Engine(self.pool, self.connector, row, schema=self.schema, tenant=self.tenant,
                            lock=self.locks.setdefault(iid, asyncio.Lock()))
            name = f"sync:{iid}"
            self.scheduler.add(name, spec.schedule.interval_seconds, self._job(engine))
            self.jobs[iid] = (name, row["updated_at"])
            self.engines[iid] = engine
            if iid in resume:
                self.webhook_tasks[iid] = asyncio.create_task(self._extra_run(engine, "schedule"),
                                                              name=f"resumed {iid}")
            log.info("integration %s: syncing every %g s", row["name"], spec.schedule.interval_seconds,
                     extra=self.extra)

    async def record_progress(self) -> None:
        """Write the counts so far of every run in progress to its `runs` row (the engine writes
        them only when the run ends), and how far its poll has got (Engine.polling), so the
        panel shows a backfill's progress and the time left. Called on every refresh
        (REFRESH_SECONDS). A run that ended meanwhile keeps its final counts: only rows still
        'running' are touched. The poll's start is written on the database's clock (now() less
        the time polled), against which the API tells the poll's age."""
        for engine in self.engines.values():
            counts, run_id = getattr(engine, "counts", None), getattr(engine, "run_id", None)
            if not engine.busy or counts is None or run_id is None:
                continue
            poll = getattr(engine, "polling", None)
            where = ((poll.side, time.monotonic() - poll.started, poll.done, poll.total, poll.rate()) if poll
                     else (None,) * 5)
            await self.pool.execute(
                f"UPDATE {self.s}.runs SET items_seen = $2, items_created = $3, items_updated = $4, "
                "comments_created = $5, attachments_created = $6, conflicts = $7, errors = $8, poll_side = $9, "
                "poll_started_at = now() - make_interval(secs => $10), poll_items_done = $11, "
                "poll_items_total = $12, poll_items_per_second = $13 WHERE id = $1 AND status = 'running'", run_id,
                *(counts.get(k, 0) for k in ("seen", "created", "updated", "comments", "attachments", "conflicts",
                                             "errors")), *where)

    async def webhooks(self) -> None:
        """Scheduled job: for WEBHOOK_JOB_SECONDS, every WEBHOOK_SECONDS, start a "webhook" run
        for each integration with pending deliveries, in its own task (one integration's slow
        app never delays another's) unless one is already going; a run in progress takes the
        deliveries itself, alongside the poll page it works on (Engine.ask_for_deliveries). (One
        job run spans many checks so the scheduler's bookkeeping row is not rewritten twice a
        second.)"""
        loop = asyncio.get_running_loop()
        until = loop.time() + WEBHOOK_JOB_SECONDS
        while True:
            await self._start_webhook_runs()
            if self.stopping or loop.time() + WEBHOOK_SECONDS > until:
                return
            await asyncio.sleep(WEBHOOK_SECONDS)

    async def _start_webhook_runs(self) -> None:
        store = Store(self.pool, self.schema, 0)
        requested = await store.take_sync_requests()
        pending = await store.integrations_with_deliveries()
        for iid, trigger in [*((i, "manual") for i in requested), *((i, "webhook") for i in pending)]:
            engine = self.engines.get(iid)
            if engine is None:
                continue
            if engine.busy and trigger == "webhook":
                # The run going on takes them, alongside its poll page: asked once per new
                # delivery, as those the page holds back are taken when it ends without asking.
                if pending[iid] > self.asked.get(iid, 0):
                    self.asked[iid] = pending[iid]
                    engine.ask_for_deliveries()
                continue
            task = self.webhook_tasks.get(iid)
            if task is not None and not task.done():
                continue
            self.webhook_tasks[iid] = asyncio.create_task(self._extra_run(engine, trigger), name=f"{trigger} {iid}")

    async def _extra_run(self, engine: Engine, trigger: str) -> None:
        try:
            await engine.run_once(trigger)
        except SyncRunFailed as exc:
            log.warning("integration %s: %s run failed: %s", engine.name, trigger, exc, extra=self.extra)
        except Exception:
            log.exception("integration %s: %s run failed", engine.name, trigger, extra=self.extra)

    async def stop(self) -> None:
        """End the webhooks job's loop and cancel webhook runs still going (the engine is
        crash-safe at any instant). Called by the worker before it stops the scheduler."""
        self.stopping = True
        for task in self.webhook_tasks.values():
            task.cancel()
        await asyncio.gather(*self.webhook_tasks.values(), return_exceptions=True)

    @staticmethod
    def _job(engine: Engine) -> Callable[[], Awaitable[None]]:
        """The scheduled run; every RECONCILE_SECONDS (counted from the job's start, so a
        restart does not re-read every pair at once) it is a "reconcile" run, which
        re-compares every linked pair."""
        last_reconcile = [time.monotonic()]

        async def run() -> None:
            now = time.monotonic()
            due = now - last_reconcile[0] >= RECONCILE_SECONDS
            await engine.run_once("reconcile" if due else "schedule")
            if due:
                last_reconcile[:] = [now]
        return run
