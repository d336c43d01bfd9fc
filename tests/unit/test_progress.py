"""PollProgress: the rate a poll's time left is reckoned at follows the recent pace."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from appliance.sync.progress import RATE_WINDOW, PollProgress

LABELS = {"tenant": "t", "integration": "progress test", "side": "a"}


def poll_at(started: float) -> PollProgress:
    return PollProgress("a", ("t", "progress test"), started=started)


def test_the_rate_of_a_young_poll_is_its_average():
    poll = poll_at(1000.0)
    assert poll.rate(1000.0) is None, "no time has passed"
    poll.done = 100
    assert poll.rate(1010.0) == pytest.approx(10.0)


def test_the_rate_follows_a_change_of_pace_within_the_window():
    poll = poll_at(0.0)
    now = 0.0
    while now < 300:                # 10 items a second for 5 minutes, read every 3 s
        now += 3
        poll.done += 30
        poll.rate(now)
    while now < 300 + RATE_WINDOW:  # then a rate limit: 1 a second
        now += 3
        poll.done += 3
        rate = poll.rate(now)
    assert rate == pytest.approx(1.0, abs=0.05), "the last two minutes' pace"
    assert poll.done / now > 7, "where the poll's average would still say 7 a second"
    assert len(poll.marks) <= RATE_WINDOW / 3 + 2, "the marks reach back one window, no further"


def test_the_gauges_follow_the_poll_and_end_at_zero():
    poll = poll_at(0.0)
    poll.counted(500)
    for _ in range(7):
        poll.one_done()
    value = lambda name: REGISTRY.get_sample_value(name, LABELS)  # noqa: E731
    assert (poll.total, poll.done) == (500, 7)
    assert (value("sync_poll_items_expected"), value("sync_poll_items_done")) == (500, 7)
    poll.ended()
    assert (value("sync_poll_items_expected"), value("sync_poll_items_done")) == (0, 0)
