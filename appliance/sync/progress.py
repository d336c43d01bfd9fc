"""How far a poll has got: PollProgress, kept by the engine for the poll under way (Engine.polling),
written to the run's row by SyncJobs.record_progress for the API and the panel (a progress bar
and the time left), and followed by two gauges for dashboards and alerts."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import Gauge

#: The time left is reckoned at the rate of about the last RATE_WINDOW seconds (of the whole poll
#: while it is younger): it follows a change of pace (a rate limit that starts to bite, a budget
#: raised, an app slow in business hours) within minutes, where a long backfill's average would
#: take hours to.
RATE_WINDOW = 120.0

# How far a poll has got, for dashboards and alerts on a backfill: remaining = expected - done.
LABELS = ("tenant", "integration", "side")
POLL_DONE = Gauge("sync_poll_items_done", "Changed items the poll under way has done (0 when none runs).",
                  LABELS, multiprocess_mode="livesum")
POLL_EXPECTED = Gauge("sync_poll_items_expected", "Changed items the poll under way holds, as the app counted them "
                      "when it began (0 when none runs or the app did not say).", LABELS,
                      multiprocess_mode="livesum")


@dataclass
class PollProgress:
    """How far the poll of one side has got: its changed items done so far, and how many the
    app counted when it began (None when it does not say). SyncJobs.record_progress writes it
    to the run's row every few seconds, for the panel's progress bar and time left; the
    POLL_DONE and POLL_EXPECTED gauges follow it. `labels`: the metrics' (tenant, integration)."""

    side: str
    labels: tuple[str, str]
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int | None = None
    marks: deque[tuple[float, int]] = field(default_factory=deque)     # (when, done), see rate

    def __post_init__(self) -> None:
        self._done = POLL_DONE.labels(*self.labels, self.side)
        self._expected = POLL_EXPECTED.labels(*self.labels, self.side)

    def counted(self, total: int) -> None:
        self.total = total
        self._expected.set(total)

    def one_done(self) -> None:
        self.done += 1
        self._done.inc()

    def rate(self, now: float | None = None) -> float | None:
        """Items done per second over about the last RATE_WINDOW seconds (since the start while
        the poll is younger); None when no time has passed. Each call marks the moment: the
        window reaches back to the last mark at least RATE_WINDOW old (SyncJobs calls this
        every few seconds, so the marks stay few)."""
        now = time.monotonic() if now is None else now
        if not self.marks:
            self.marks.append((self.started, 0))
        self.marks.append((now, self.done))
        while len(self.marks) > 2 and self.marks[1][0] <= now - RATE_WINDOW:
            self.marks.popleft()
        since, done = self.marks[0]
        return (self.done - done) / (now - since) if now > since else None

    def ended(self) -> None:
        self._done.set(0)
        self._expected.set(0)
