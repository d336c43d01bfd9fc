"""The tenant worker's scheduler against a real PostgreSQL: a tenant schema made by
the shipped tenant migration, jobs recorded in its scheduled_jobs table."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from appliance import resources
from appliance.scheduler import Scheduler

SLUG = "sched"
SCHEMA = "t_sched"


@pytest.fixture
async def pool(database):
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(f"CREATE SCHEMA {SCHEMA}; SET search_path = {SCHEMA}")
        await conn.execute((resources.sql_dir() / "tenant" / "0001_tenant.sql").read_text())
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def jobs(pool) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch(f"SELECT * FROM {SCHEMA}.scheduled_jobs")
    return {row["name"]: row for row in rows}


async def run_for(scheduler: Scheduler, seconds: float, grace: float = 1.0) -> None:
    runner = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)
    await scheduler.stop(grace)
    await asyncio.wait_for(runner, 1)


async def test_a_slow_job_does_not_delay_a_fast_one(pool):
    fast_runs = []
    slow_started = asyncio.Event()

    async def fast():
        fast_runs.append(time.monotonic())

    async def slow():
        slow_started.set()
        await asyncio.sleep(30)

    scheduler = Scheduler(pool, SLUG)
    scheduler.add("slow", 0.1, slow)
    scheduler.add("fast", 0.1, fast)
    await run_for(scheduler, 1.2, grace=0.1)

    assert slow_started.is_set()
    # ~11 runs on an idle machine; a fast job held up by the slow one would run once.
    assert len(fast_runs) >= 5, fast_runs
    rows = await jobs(pool)
    assert rows["fast"]["runs"] >= 5 and rows["fast"]["last_status"] == "ok"
    assert rows["fast"]["failures"] == 0 and rows["fast"]["last_error"] is None
    # The slow job never finished a run: nothing recorded, and its cancellation at stop is no failure.
    assert rows["slow"]["runs"] == 0 and rows["slow"]["last_status"] is None


async def test_failures_are_recorded_backed_off_and_do_not_stop_other_jobs(pool):
    attempts = []
    healthy = []

    async def broken():
        attempts.append(time.monotonic())
        raise RuntimeError("Jira said 503")

    async def fine():
        healthy.append(1)

    scheduler = Scheduler(pool, SLUG)
    scheduler.add("broken", 0.1, broken)
    scheduler.add("fine", 0.1, fine)
    await run_for(scheduler, 1.6)

    # Without backoff the broken job would have run ~16 times; with it: 0, 0.1, 0.3, 0.7, 1.5 (+-20 %).
    assert 3 <= len(attempts) <= 6, attempts
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps == sorted(gaps) and gaps[-1] > 3 * gaps[0], gaps
    assert len(healthy) >= 6
    rows = await jobs(pool)
    broken_row = rows["broken"]
    assert broken_row["last_status"] == "error"
    assert broken_row["last_error"] == "RuntimeError: Jira said 503"
    assert broken_row["failures"] == broken_row["runs"] == len(attempts)
    assert (broken_row["next_run_at"] - broken_row["last_run_at"]).total_seconds() > 0.5
    assert rows["fine"]["last_status"] == "ok" and rows["fine"]["failures"] == 0


async def test_stop_lets_running_jobs_finish_within_the_grace_then_cancels(pool):
    finished, cancelled = [], []

    def job(name, seconds):
        async def run():
            try:
                await asyncio.sleep(seconds)
                finished.append(name)
            except asyncio.CancelledError:
                cancelled.append(name)
                raise
        return run

    scheduler = Scheduler(pool, SLUG)
    scheduler.add("short", 60, job("short", 0.4))
    scheduler.add("long", 60, job("long", 30))
    runner = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await scheduler.stop(grace=1.0)
    took = time.monotonic() - started
    await asyncio.wait_for(runner, 1)

    assert finished == ["short"] and cancelled == ["long"]
    assert 0.9 <= took < 2.5, took
    rows = await jobs(pool)
    assert rows["short"]["runs"] == 1 and rows["short"]["last_status"] == "ok"
    assert rows["long"]["runs"] == 0


async def test_stop_with_no_grace_cancels_at_once(pool):
    cancelled = []

    async def long():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    scheduler = Scheduler(pool, SLUG)
    scheduler.add("long", 60, long)
    runner = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await scheduler.stop(grace=0)
    assert time.monotonic() - started < 0.2
    await asyncio.wait_for(runner, 1)
    assert cancelled == [True]


async def test_the_schedule_survives_a_restart_of_the_worker(pool):
    runs = []

    async def hourly():
        runs.append(time.monotonic())

    first = Scheduler(pool, SLUG)
    first.add("hourly", 3600, hourly)
    await run_for(first, 0.3)
    assert len(runs) == 1

    second = Scheduler(pool, SLUG)
    second.add("hourly", 3600, hourly)
    await run_for(second, 0.3)
    assert len(runs) == 1, "a job that ran a moment ago must not run again because the worker restarted"
    row = (await jobs(pool))["hourly"]
    assert row["runs"] == 1
    assert 3590 < (row["next_run_at"] - row["last_run_at"]).total_seconds() <= 3600


async def test_add_rejects_a_duplicate_or_a_bad_interval(pool):
    async def job():
        pass

    scheduler = Scheduler(pool, SLUG)
    scheduler.add("one", 1, job)
    with pytest.raises(ValueError):
        scheduler.add("one", 1, job)
    with pytest.raises(ValueError):
        scheduler.add("two", 0, job)
