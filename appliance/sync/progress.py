"""How far a poll has got: PollProgress, kept by the engine for the poll under way (Engine.polling),
written to the run's row by SyncJobs.record_progress for the API and the panel (a progress bar
and the time left), and followed by two gauges for dashboards and alerts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import Gauge

LABELS = ("tenant", "integration", "side")
# How far a poll has got, for dashboards and alerts on a backfill: remaining = expected - done.
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

    def __post_init__(self) -> None:
        self._done = POLL_DONE.labels(*self.labels, self.side)
        self._expected = POLL_EXPECTED.labels(*self.labels, self.side)

    def counted(self, total: int) -> None:
        self.total = total
        self._expected.set(total)

    def one_done(self) -> None:
        self.done += 1
        self._done.inc()

    def ended(self) -> None:
        self._done.set(0)
        self._expected.set(0)
