"""Prometheus metrics of the appliance, through prometheus-client (never hand-written text).

What is measured:
- http_requests_total{route,method,status} and http_request_duration_seconds{route,method}:
  every response of the main web app (`middleware`). `route` is the matched route's
  template ("/api/v1/users/{id}"), or "unmatched", never the raw path, and the method
  is one of METHODS or "other": the number of series stays bounded whatever clients send;
- logins_total{realm,outcome}: `login()`, called by the sign-in code;
- tenant_worker_restarts_total{tenant,node}, tenant_worker_state{tenant,node,state} and
  tenant_workers{state}: read from tandem.tenant_workers at scrape time (one query), so
  every node's supervisor reports appear whichever web worker answers;
- control_database_up: whether that query worked.

Processes: `tandem run` forks several web workers, and a scrape reaches one of them.
So the supervisor calls `use_directory()` before it forks anything: it empties
data_dir/run/metrics and switches prometheus-client to multiprocess mode, in which
each process writes its values to its own files there and a scrape adds them all up
(MultiProcessCollector). When the supervisor reaps a worker it calls `process_gone()`.
Without use_directory() (tests, one process) the values stay in this process.
Every metric here has labels on purpose: a labelled metric creates its value when a
label set is first used, in the process that uses it, after the mode is chosen.

Served by `scrape_handler()` at `[metrics] path`, to the networks in `[metrics] allow`
only, on the main listeners or on the separate `[metrics] listen` listener.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from appliance.config import Config
from appliance.errors import PermissionProblem
from appliance.nodes import WORKER_STATES
from appliance.web.router import in_networks, networks

if TYPE_CHECKING:
    from appliance.web.app import ControlPool

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
# The method label: these, or "other" (clients may send any token as a method).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The scrape-time query must not hold up a scrape for long.
QUERY_TIMEOUT_SECONDS = 2.0
# Web latency: most answers take milliseconds; sign-ins (argon2) tens to hundreds of them.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# This process's values (single-process mode). In multiprocess mode the values go to
# files and this registry is not read.
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("http_requests", "HTTP responses by route template, method and status.",
                        ["route", "method", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram("http_request_duration_seconds", "Time to answer an HTTP request, by route template.",
                          ["route", "method"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
LOGINS = Counter("logins", "Sign-in attempts by realm (console or tenant) and outcome.",
                 ["realm", "outcome"], registry=REGISTRY)


# -- processes ------------------------------------------------------------------------

def use_directory(path: Path) -> None:
    """Supervisor, before forking any worker: start `path` empty (values of an earlier
    run would be added to this run's), and have every process from now on (this one and
    its future children) write its values there. Raises PermissionProblem naming the
    directory when it cannot be emptied or created."""
    try:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise PermissionProblem(f"{path}: cannot prepare the metrics directory ({exc.strerror or exc}); "
                                "it must be writable by the service user ([paths] data_dir)") from None
    os.environ[ENV] = str(path)
    # prometheus-client picks the value class when it is imported, which happened before
    # we knew the directory (the supervisor preloads the code its children share).
    values.ValueClass = values.MultiProcessValue()


def multiprocess_directory() -> str | None:
    path = os.environ.get(ENV)
    return path if path and os.path.isdir(path) else None


def process_gone(pid: int) -> None:
    """Supervisor, after reaping a worker: drop the per-process files that must not
    outlive it (live gauges). Its counters stay: they are part of the totals."""
    path = multiprocess_directory()
    if path is not None:
        multiprocess.mark_process_dead(pid, path)


# -- recording ----------------------------------------------------------------------------

def login(realm: str, outcome: str) -> None:
    """Count one sign-in attempt. `realm`: "console" or "tenant" (never a slug: one series
    per tenant would grow without bound); `outcome`: a short fixed word such as "success",
    "bad_password", "locked", "throttled"."""
    LOGINS.labels(realm, outcome).inc()


def route_template(request: web.Request) -> str:
    """The matched route's template, or UNMATCHED (404 / 405 before any handler)."""
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED
    return resource.canonical


@web.middleware
async def middleware(request: web.Request, handler) -> web.StreamResponse:
    """Count and time every response. Outermost, so the host router's 404s, the auth
    middleware's refusals and the error middleware's 500s are counted too."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects (errors were made responses further in)
        status = exc.status
        raise
    except asyncio.CancelledError:  # the client went away: no answer to count
        status = 0
        raise
    finally:
        if status:
            route = route_template(request)
            method = request.method if request.method in METHODS else "other"
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


# -- scraping -----------------------------------------------------------------------------

_WORKERS_QUERY = """
SELECT t.slug, w.node, w.state, w.restarts
FROM tandem.tenant_workers w JOIN tandem.tenants t ON t.id = w.tenant_id
ORDER BY t.slug, w.node
"""


async def worker_families(database: ControlPool) -> list[Metric]:
    """The tenant worker metrics, from one query; only control_database_up 0 when it fails."""
    up = GaugeMetricFamily("control_database_up", "1 when the scrape could read the control schema.")
    try:
        async with asyncio.timeout(QUERY_TIMEOUT_SECONDS):
            async with database.acquire() as conn:
                rows = await conn.fetch(_WORKERS_QUERY)
    except Exception as exc:  # noqa: BLE001 - a scrape reports the outage instead of failing
        log.debug("metrics: cannot read tenant workers: %s", exc)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    restarts = CounterMetricFamily("tenant_worker_restarts", "Restarts of each tenant worker since its "
                                   "supervisor started.", labels=["tenant", "node"])
    state = GaugeMetricFamily("tenant_worker_state", "1 for each tenant worker's current state.",
                              labels=["tenant", "node", "state"])
    counts = dict.fromkeys(WORKER_STATES, 0)
    for row in rows:
        restarts.add_metric([row["slug"], row["node"]], row["restarts"])
        state.add_metric([row["slug"], row["node"], row["state"]], 1)
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    workers = GaugeMetricFamily("tenant_workers", "Tenant workers in each state, over all nodes.", labels=["state"])
    for name, count in counts.items():
        workers.add_metric([name], count)
    return [up, restarts, state, workers]


class _Families:
    """What generate_latest needs from a registry: `collect()`."""

    def __init__(self, families: Iterable[Metric]):
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def local_families() -> list[Metric]:
    """Every process's values (multiprocess mode) or this process's."""
    path = multiprocess_directory()
    if path is not None:
        return list(multiprocess.MultiProcessCollector(None, path).collect())
    return list(REGISTRY.collect())


async def exposition(database: ControlPool, accept: str | None) -> tuple[bytes, str]:
    """(body, content type) of a scrape, in the format the scraper's Accept asks for."""
    families = local_families() + await worker_families(database)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Families(families)), content_type


def scrape_handler(config: Config, database_of):
    """The handler serving the metrics to `[metrics] allow` and the usual 404 to others.
    `database_of(request)` gives the ControlPool holder."""
    allowed = networks(config.metrics.allow)

    async def scrape(request: web.Request) -> web.Response:
        if not in_networks(request.remote, allowed):
            raise web.HTTPNotFound()
        body, content_type = await exposition(database_of(request), request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    return scrape
