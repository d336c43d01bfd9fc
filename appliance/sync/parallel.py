"""Bounded concurrency for the items of one batch (a poll page), serialised per item.

The engine's work on one item is mostly waiting: HTTP round trips to both apps and SQL
statements, one after another. `run_each` lets the waits of several items overlap while keeping
what the engine relies on:

- at most `limit` items are worked on at once (the apps' request budget, the database pool and
  the worker's one CPU are shared with the tenant's other integrations);
- items with the same key are never worked on at once: they run one after another, in the
  order given (a page may name an item twice, and two runs of work on one item would race to
  create its counterpart);
- `run_each` returns only when every item it started has ended, so a caller that moves a cursor
  afterwards never moves it past unfinished work;
- an exception of one item does not cancel the others. Exceptions of a `fatal` type (the
  caller's "the whole run must stop") stop the batch: no further item starts, the ones in flight
  finish, then the first such exception is re-raised as it was (not wrapped in a group, so the
  caller's `except` clauses match as they did when items ran one at a time). Other `Exception`s
  are returned as (item, exception) in the order they happened;
- cancelling `run_each` (a clean stop of the worker), or a `BaseException` that is not an
  `Exception` escaping an item, cancels every item in flight and waits for them to end before it
  propagates, so no item's work goes on behind the caller's back. The engine's writes are
  idempotent through intents and markers, so an item cancelled mid-way is redone by the next run.

`run_pages` does the same for a stream of pages (a poll), letting the next page's items start
while the last items of the one before are still going, with each page finished (its cursor
moved) in order, once it and every page before it are done.

`serving` runs other work alongside a batch whenever it is asked for (the engine's webhook
deliveries during a backfill's poll page), with the same rule: nothing outlives the block.

Shared state the work touches must be safe under asyncio interleaving: no `await` between a
read and the write that depends on it (e.g. `counts[k] += await f()` reads before it awaits).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
C = TypeVar("C")

#: Items of one integration's run worked on at once. A backfilled item with two comments costs
#: the engine ~1 ms of CPU and waits on 3 HTTP round trips and 3 SQL statements, one after
#: another: a few items at once keep the worker busy against the emulators (16 or 32 measured no
#: faster on 2 cores); 8 leaves room for slower apps (a real one answers in tens of ms, not the
#: emulators' one or two) without one integration's backfill flooding an app, the database pool
#: or the tenant's other integrations. (The next page's items start during a page's tail:
#: run_pages.)
ITEM_CONCURRENCY = 8


async def run_each(items: Iterable[T], work: Callable[[T], Awaitable[object]], *, key: Callable[[T], Hashable],
                   limit: int = ITEM_CONCURRENCY, fatal: tuple[type[BaseException], ...] = ()
                   ) -> list[tuple[T, Exception]]:
    """Run `work(item)` for each of `items`, at most `limit` at once and one at a time per
    `key(item)` (module docstring). Returns the items whose work raised an `Exception` that is
    not `fatal`, with it; raises the first `fatal` one after the items in flight ended."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    lanes: dict[Hashable, list[T]] = {}
    for item in items:
        lanes.setdefault(key(item), []).append(item)
    # One lane per key, run by one worker from start to end: that is the per-key serialisation.
    queue = deque(lanes.values())
    failed: list[tuple[T, Exception]] = []
    stopped: list[BaseException] = []

    async def worker() -> None:
        while queue and not stopped:
            for item in queue.popleft():
                if stopped:
                    return
                try:
                    await work(item)
                except fatal as exc:
                    stopped.append(exc)
                    return
                except Exception as exc:    # noqa: BLE001 - the item's failure, returned to the caller
                    failed.append((item, exc))

    workers = [asyncio.create_task(worker()) for _ in range(min(limit, len(queue)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    if stopped:
        raise stopped[0]
    return failed


P = TypeVar("P")


@dataclass
class _Page(Generic[P]):
    page: P
    left: int
    started: bool = False       # all its items were started
    failed: bool = False        # one of its items raised


async def run_pages(pages: AsyncIterator[P], items_of: Callable[[P], Sequence[T]],
                    work: Callable[[T], Awaitable[object]], *, key: Callable[[T], Hashable],
                    prepare: Callable[[P], Awaitable[object]], finish: Callable[[P], Awaitable[object]],
                    limit: int = ITEM_CONCURRENCY) -> None:
    """Work through the items of each page of `pages`, at most `limit` at once over all pages:
    `prepare(page)` before any of its items starts (the items of the page before may still be
    going), then `work(item)` for each, one at a time per `key` (across pages too), and
    `finish(page)` in page order, once its items and those of every page before it ended. The
    next page is taken once all items of the current one have started, so at most the tail of
    one page overlaps the next.

    Any exception of an item ends the stream: no further item starts, the ones in flight end,
    the pages completed before the failing one are finished, then it is raised as it was. A
    failure of `pages` itself (fetching the next page) is raised the same way, after the items
    in flight ended and every page they completed was finished. Cancellation, or a
    `BaseException` escaping an item, cancels every item in flight and waits for them first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    slots = asyncio.Semaphore(limit)
    order: deque[_Page[P]] = deque()
    tails: dict[Hashable, asyncio.Task] = {}
    tasks: set[asyncio.Task] = set()
    stopped: list[BaseException] = []
    crashed: list[BaseException] = []

    async def one(item: T, state: _Page[P], k: Hashable, before: asyncio.Task | None) -> None:
        try:
            if before is not None:
                await asyncio.wait([before])        # the same key's item before it
            if stopped:
                state.failed = True     # not worked on: its page is not done
                return
            await work(item)
        except Exception as exc:    # noqa: BLE001 - ends the stream, raised by run_pages
            state.failed = True
            stopped.append(exc)
        except BaseException as exc:
            state.failed = True
            crashed.append(exc)
            raise
        finally:
            state.left -= 1
            slots.release()
            if tails.get(k) is asyncio.current_task():
                del tails[k]

    async def finish_done() -> None:
        while order and order[0].started and order[0].left == 0:
            state = order.popleft()
            if state.failed:
                order.clear()       # no later page may be finished past a failed one
                return
            await finish(state.page)

    async def settle() -> None:
        # The items in flight end, and the pages they complete are finished.
        while tasks:
            await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
            if crashed:
                raise crashed[0]
            await finish_done()
        await finish_done()

    try:
        try:
            async for page in pages:
                await finish_done()
                if stopped:
                    break
                await prepare(page)
                state = _Page(page, len(items_of(page)))
                order.append(state)
                for item in items_of(page):
                    await slots.acquire()
                    if crashed:
                        raise crashed[0]
                    if stopped:
                        slots.release()
                        state.left -= 1
                        state.failed = True
                        continue
                    await finish_done()
                    k = key(item)
                    task = asyncio.create_task(one(item, state, k, tails.get(k)))
                    tails[k] = task
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                state.started = True
                await asyncio.sleep(0)      # its items begin (up to their first wait) before the next page
        except Exception:
            await settle()      # a failed fetch, prepare or finish: what is in flight ends first
            raise
        await settle()
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    if stopped:
        raise stopped[0]


async def prefetching(fetch: Callable[[C | None], Awaitable[T]], next_of: Callable[[T], C | None]
                      ) -> AsyncIterator[T]:
    """Pages fetch(None), fetch(next_of(first)), ... until next_of gives None. Each next page is
    asked for as soon as the one before it arrives, so it travels (and is parsed) while the
    caller works on the current one: a backfill's pages of hundreds of items no longer leave the
    items' work idle between them. A failed fetch raises from the iteration that would have
    yielded its page. Use it with contextlib.aclosing: closing it (the caller returning or
    raising) cancels a fetch in flight and waits for it to end."""
    task: asyncio.Future[T] | None = asyncio.ensure_future(fetch(None))
    try:
        while task is not None:
            page = await task
            after = next_of(page)
            task = asyncio.ensure_future(fetch(after)) if after is not None else None
            yield page
    finally:
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def serving(asked: asyncio.Event, work: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
    """While the block runs, run `work()` each time `asked` is set (it is cleared as a run
    starts; an ask during a run gets a run of its own after it), one run at a time, alongside
    the block's own awaits. Leaving the block waits for a run under way to end, then raises what
    a run raised; an ask not yet taken stays set for the caller. An exception or cancellation of
    the block cancels a run under way (and waits for it) before it propagates."""
    closing = False
    running = False

    async def serve() -> None:
        nonlocal running
        while True:
            await asked.wait()
            if closing:
                return
            asked.clear()
            running = True
            try:
                await work()
            finally:
                running = False
            if closing:
                return

    task = asyncio.create_task(serve())
    try:
        yield
    except BaseException:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    closing = True
    if not running:
        task.cancel()       # waiting for an ask (or woken by one it must leave set): nothing to finish
    try:
        await task
    except asyncio.CancelledError:
        if task.cancelled() and not asyncio.current_task().cancelling():
            return          # the cancel above
        task.cancel()       # the caller is being cancelled while a run was under way
        await asyncio.gather(task, return_exceptions=True)
        raise
