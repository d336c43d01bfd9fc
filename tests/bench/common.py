"""What the benchmark scripts share: waiting for a condition and stopping a process."""

from __future__ import annotations

import signal
import subprocess
import time


def wait(predicate, timeout: float, what: str = "condition", interval: float = 0.05):
    """The first truthy value of `predicate()`, polled every `interval` s; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"benchmark: {what} not reached in {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 60 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
