"""appliance.sync.parallel.run_each: bounded, one at a time per key, errors kept per item, and
nothing left running behind the caller (fatal errors, crashes, cancellation); run_pages: a
stream of pages whose tails overlap, finished in order; prefetching: the next page on its way
while the caller works, and no fetch left behind; serving: work asked for
during a batch runs alongside it, and none of it outlives the block."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from appliance.sync.parallel import ITEM_CONCURRENCY, prefetching, run_each, run_pages, serving


class Tracker:
    """Work that records what runs when: `running` now, the most at once, and per key the
    (start, end) order of events."""

    def __init__(self, pause: float = 0.01):
        self.pause = pause
        self.running: set[str] = set()
        self.most = 0
        self.log: list[tuple[str, str]] = []

    async def __call__(self, item: str) -> None:
        self.running.add(item)
        self.most = max(self.most, len(self.running))
        self.log.append(("start", item))
        try:
            await asyncio.sleep(self.pause)
        finally:
            self.running.discard(item)
            self.log.append(("end", item))


async def test_at_most_limit_items_run_at_once_and_all_of_them_run():
    work = Tracker()
    items = [f"item{i}" for i in range(20)]
    assert await run_each(items, work, key=str, limit=3) == []
    assert work.most == 3
    assert sorted(i for what, i in work.log if what == "end") == sorted(items)
    assert not work.running


async def test_the_default_limit_is_the_named_constant():
    work = Tracker()
    await run_each([str(i) for i in range(3 * ITEM_CONCURRENCY)], work, key=str)
    assert work.most == ITEM_CONCURRENCY


async def test_items_with_one_key_run_one_after_another_in_the_given_order():
    order: list[tuple[str, int]] = []
    at_once: dict[str, int] = {}
    most: dict[str, int] = {}

    async def work(item: tuple[str, int]) -> None:
        key = item[0]
        at_once[key] = at_once.get(key, 0) + 1
        most[key] = max(most.get(key, 0), at_once[key])
        await asyncio.sleep(0.005)
        order.append(item)
        at_once[key] -= 1

    items = [("x", 1), ("y", 1), ("x", 2), ("z", 1), ("x", 3), ("y", 2)]
    await run_each(items, work, key=lambda item: item[0], limit=8)
    assert most == {"x": 1, "y": 1, "z": 1}
    assert [n for k, n in order if k == "x"] == [1, 2, 3] and [n for k, n in order if k == "y"] == [1, 2]
    # Different keys did overlap: z (one item) ended before x's second item, which waited for x's first.
    assert order.index(("z", 1)) < order.index(("x", 2))


async def test_one_items_error_does_not_stop_the_others_and_is_returned_with_its_item():
    done: list[int] = []

    async def work(item: int) -> None:
        await asyncio.sleep(0.001 * item)
        if item in (2, 5):
            raise ValueError(f"bad {item}")
        done.append(item)

    failed = await run_each(range(8), work, key=int, limit=3)
    assert sorted(done) == [0, 1, 3, 4, 6, 7]
    assert [(item, str(exc)) for item, exc in failed] == [(2, "bad 2"), (5, "bad 5")]
    assert all(isinstance(exc, ValueError) for _, exc in failed)


class Stop(Exception):
    pass


async def test_a_fatal_error_lets_the_items_in_flight_finish_starts_no_more_and_is_raised_as_is():
    started: list[int] = []
    finished: list[int] = []
    raised = Stop("credential refused")
    release = asyncio.Event()

    async def work(item: int) -> None:
        started.append(item)
        if item == 0:
            await asyncio.sleep(0)      # the others are in flight by now
            raise raised
        await release.wait()
        finished.append(item)

    task = asyncio.create_task(run_each(range(10), work, key=int, limit=3, fatal=(Stop,)))
    while len(started) < 3:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert not task.done()      # items 1 and 2 are still going: run_each waits for them
    release.set()
    with pytest.raises(Stop) as caught:
        await task
    assert caught.value is raised
    assert sorted(started) == [0, 1, 2] and sorted(finished) == [1, 2]


async def test_without_fatal_types_every_error_is_the_items_own():
    async def work(item: int) -> None:
        if item == 1:
            raise Stop("only this item")

    failed = await run_each(range(3), work, key=int)
    assert [(item, type(exc)) for item, exc in failed] == [(1, Stop)]


class Crash(BaseException):
    pass


async def test_a_crash_of_one_item_cancels_the_others_before_it_propagates():
    cancelled: list[int] = []
    started: list[int] = []

    async def work(item: int) -> None:
        started.append(item)
        if item == 0:
            await asyncio.sleep(0.005)
            raise Crash()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(item)
            raise

    with pytest.raises(Crash):
        await run_each(range(6), work, key=int, limit=3)
    assert sorted(started) == [0, 1, 2] and sorted(cancelled) == [1, 2]


async def test_cancelling_the_batch_cancels_every_item_in_flight_and_waits_for_them():
    ended: list[int] = []
    started = 0

    async def work(item: int) -> None:
        nonlocal started
        started += 1
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.01)       # clean-up that itself awaits
            ended.append(item)

    task = asyncio.create_task(run_each(range(10), work, key=int, limit=4))
    while started < 4:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Every item that started has ended by the time the caller sees the cancellation, and no
    # other item started.
    assert sorted(ended) == [0, 1, 2, 3] and started == 4


async def test_nothing_to_do_and_a_bad_limit():
    async def work(item: int) -> None:
        raise AssertionError("never called")

    assert await run_each([], work, key=int) == []
    with pytest.raises(ValueError, match="at least 1"):
        await run_each([1], work, key=int, limit=0)


# -- prefetching ----------------------------------------------------------------------------------

class Pages:
    """fetch(cursor) of pages 0..last, each a list [cursor]; records calls, ends and cancels."""

    def __init__(self, last: int, fail_at: int | None = None):
        self.last, self.fail_at = last, fail_at
        self.asked: list[int] = []
        self.cancelled: list[int] = []
        self.release = asyncio.Event()

    async def fetch(self, cursor):
        at = cursor or 0
        self.asked.append(at)
        try:
            if at > 0:
                await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(at)
            raise
        if at == self.fail_at:
            raise RuntimeError(f"page {at} failed")
        return [at]

    def next_of(self, page):
        return page[0] + 1 if page[0] < self.last else None


async def test_the_next_page_is_asked_for_while_the_caller_works_on_the_current_one():
    pages = Pages(last=2)
    seen = []
    async with contextlib.aclosing(prefetching(pages.fetch, pages.next_of)) as iterator:
        async for page in iterator:
            await asyncio.sleep(0)      # the caller's work: the fetch of the next page has begun
            seen.append((page[0], list(pages.asked)))
            pages.release.set()
    assert seen == [(0, [0, 1]), (1, [0, 1, 2]), (2, [0, 1, 2])]


async def test_a_failed_fetch_raises_where_its_page_would_come():
    pages = Pages(last=5, fail_at=2)
    pages.release.set()
    seen = []
    with pytest.raises(RuntimeError, match="page 2 failed"):
        async with contextlib.aclosing(prefetching(pages.fetch, pages.next_of)) as iterator:
            async for page in iterator:
                seen.append(page[0])
    assert seen == [0, 1] and pages.asked == [0, 1, 2]


async def test_leaving_early_cancels_the_fetch_in_flight():
    pages = Pages(last=5)
    async with contextlib.aclosing(prefetching(pages.fetch, pages.next_of)) as iterator:
        async for page in iterator:
            await asyncio.sleep(0)
            break
    assert pages.asked == [0, 1] and pages.cancelled == [1]


# -- serving ----------------------------------------------------------------------------------------

class Served:
    """Work for `serving` that records its runs and may be held mid-run (until `release` is
    set) or fail."""

    def __init__(self, fail: BaseException | None = None, held: bool = False):
        self.runs = 0
        self.ended = 0
        self.at_once = self.most = 0
        self.release = asyncio.Event()
        if not held:
            self.release.set()
        self.fail = fail

    async def __call__(self) -> None:
        self.runs += 1
        self.at_once += 1
        self.most = max(self.most, self.at_once)
        try:
            await self.release.wait()
            if self.fail is not None:
                raise self.fail
        finally:
            self.at_once -= 1
            self.ended += 1


async def test_serving_runs_the_work_each_time_it_is_asked_alongside_the_block():
    asked, work = asyncio.Event(), Served()
    async with serving(asked, work):
        asked.set()
        await asyncio.sleep(0.01)
        assert work.runs == 1 and not asked.is_set()     # ran while the block was still going
        work.release.clear()
        asked.set()
        await asyncio.sleep(0.01)
        asked.set()         # asked again during that run: one more run, after it
        await asyncio.sleep(0.01)
        assert work.runs == 2
        work.release.set()
        await asyncio.sleep(0.01)
        assert work.runs == 3
    assert work.most == 1 and work.ended == 3


async def test_leaving_the_block_waits_for_a_run_under_way_and_leaves_a_new_ask_to_the_caller():
    asked, work = asyncio.Event(), Served(held=True)

    async def block() -> None:
        async with serving(asked, work):
            asked.set()
            await asyncio.sleep(0.01)
            asked.set()     # not taken: the block ends first

    task = asyncio.create_task(block())
    await asyncio.sleep(0.03)
    assert not task.done()          # the run under way holds the block's end
    work.release.set()
    await task
    assert work.runs == 1 == work.ended and asked.is_set()


async def test_an_ask_at_the_very_end_is_left_set_and_nothing_runs_after_the_block():
    asked, work = asyncio.Event(), Served()
    async with serving(asked, work):
        await asyncio.sleep(0)
        asked.set()         # the serving task wakes up only after the block has ended
    await asyncio.sleep(0.01)
    assert work.runs == 0 and asked.is_set()


async def test_a_failed_run_is_raised_when_the_block_ends():
    asked, work = asyncio.Event(), Served(fail=Stop("credential refused"))
    with pytest.raises(Stop):
        async with serving(asked, work):
            asked.set()
            await asyncio.sleep(0.01)
    assert work.runs == 1


async def test_the_blocks_error_or_cancellation_cancels_a_run_under_way():
    asked, work = asyncio.Event(), Served(held=True)
    with pytest.raises(ValueError):
        async with serving(asked, work):
            asked.set()
            await asyncio.sleep(0.01)
            raise ValueError("the batch failed")
    assert work.runs == 1 == work.ended and work.at_once == 0

    work = Served(held=True)

    async def block() -> None:
        async with serving(asked, work):
            asked.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(block())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert work.runs == 1 == work.ended


async def test_cancelling_the_caller_while_it_waits_for_a_run_at_the_end_cancels_that_run():
    asked, work = asyncio.Event(), Served(held=True)

    async def block() -> None:
        async with serving(asked, work):
            asked.set()
            await asyncio.sleep(0.005)

    task = asyncio.create_task(block())
    await asyncio.sleep(0.02)       # the block has ended and waits for the run
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert work.ended == 1


# -- run_pages ----------------------------------------------------------------------------------

class Stream:
    """Pages of (name, seconds) items; records starts, ends, prepares and finishes in order."""

    def __init__(self, pages: list[list[tuple[str, float]]], fail_fetch_at: int | None = None,
                 fail_item: str | None = None):
        self.pages, self.fail_fetch_at, self.fail_item = pages, fail_fetch_at, fail_item
        self.log: list[tuple[str, object]] = []
        self.running: set[str] = set()
        self.most = 0

    async def fetch(self):
        for n, page in enumerate(self.pages):
            if n == self.fail_fetch_at:
                raise Stop(f"page {n} could not be read")
            yield (n, page)

    async def prepare(self, page) -> None:
        self.log.append(("prepare", page[0]))

    async def finish(self, page) -> None:
        self.log.append(("finish", page[0]))

    async def work(self, item: tuple[str, float]) -> None:
        name, seconds = item
        self.running.add(name)
        self.most = max(self.most, len(self.running))
        self.log.append(("start", name))
        try:
            await asyncio.sleep(seconds)
            if name == self.fail_item:
                raise Stop(f"{name} failed")
        finally:
            self.running.discard(name)
            self.log.append(("end", name))

    def at(self, what: str, value) -> int:
        return self.log.index((what, value))

    async def run(self, limit: int = 3) -> None:
        await run_pages(self.fetch(), lambda page: page[1], self.work, key=lambda item: item[0].split("#")[0],
                        prepare=self.prepare, finish=self.finish, limit=limit)


async def test_the_next_pages_items_start_during_the_tail_of_the_one_before_and_pages_finish_in_order():
    # Page 0 has one slow item: page 1's items run beside it, page 1 is done first, yet page 0
    # is finished first, and page 1 only once page 0 is.
    stream = Stream([[("slow", 0.1), ("a", 0.01), ("b", 0.01)], [("c", 0.01), ("d", 0.01)], [("e", 0.01)]])
    await stream.run(limit=3)
    assert stream.at("start", "c") < stream.at("end", "slow")          # overlap
    assert stream.at("prepare", 1) > max(stream.at("start", x) for x in ("slow", "a", "b"))
    assert stream.at("end", "d") < stream.at("end", "slow") < stream.at("finish", 0)
    assert [v for what, v in stream.log if what == "finish"] == [0, 1, 2]
    assert stream.at("finish", 2) > stream.at("end", "e")
    assert stream.most == 3


async def test_items_with_one_key_never_overlap_across_pages():
    stream = Stream([[("x#1", 0.05), ("y", 0.01)], [("x#2", 0.01), ("z", 0.01)]])
    await stream.run(limit=4)
    assert stream.at("end", "x#1") < stream.at("start", "x#2")
    assert stream.at("start", "z") < stream.at("end", "x#1")           # other keys did go on


async def test_a_failed_item_stops_the_stream_after_the_items_in_flight_and_finishes_only_earlier_pages():
    stream = Stream([[("a", 0.01)], [("bad", 0.02), ("slow", 0.06)], [("c", 0.01), ("d", 0.01)], [("e", 0.01)]],
                    fail_item="bad")
    with pytest.raises(Stop, match="bad failed"):
        await stream.run(limit=2)
    assert ("end", "slow") in stream.log                # in flight: it ended before the raise
    assert [v for what, v in stream.log if what == "finish"] == [0]
    assert ("start", "e") not in stream.log and not stream.running


async def test_a_failed_fetch_ends_the_stream_once_the_items_in_flight_and_their_pages_are_done():
    stream = Stream([[("a", 0.01)], [("slow", 0.05)], [("never", 0.01)]], fail_fetch_at=2)
    with pytest.raises(Stop, match="page 2 could not be read"):
        await stream.run()
    assert stream.at("end", "slow") < stream.at("finish", 1)
    assert [v for what, v in stream.log if what == "finish"] == [0, 1] and ("start", "never") not in stream.log


async def test_cancelling_the_stream_cancels_the_items_in_flight_and_finishes_nothing_more():
    stream = Stream([[("a", 10), ("b", 10)], [("c", 10)]])
    task = asyncio.create_task(stream.run(limit=2))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not stream.running and [v for what, v in stream.log if what == "finish"] == []


async def test_empty_pages_are_finished_in_their_turn():
    stream = Stream([[], [("a", 0.01)], []])
    await stream.run()
    assert [v for what, v in stream.log if what == "finish"] == [0, 1, 2]
