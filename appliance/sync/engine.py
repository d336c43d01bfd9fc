"""The sync engine: one `Engine` per integration, `run_once(trigger)` per scheduled run.

A run: read the integration (its spec may have changed), build both sides' connectors, then for
side A and side B poll `changed_since(cursor - overlap)` page by page and process the pages' items
several at once, the next page's starting during the last ones of the page before
(appliance.sync.parallel.run_pages; what escapes `_guarded` ends the run); then, one at a time (an
item and its counterpart would race on their pair), retry items whose backoff is over (item_errors)
and pairs with a conflict a person resolved (conflicts, applied_at NULL). Items webhooks asked about
(webhook_deliveries) are looked at alongside a poll when SyncJobs asks and when a page ends (those of
pairs the poll's unfinished items hold wait), and at the end of the run, several pairs at once
(appliance.sync.deliveries). A side's cursor moves once a page's items and those of every page
before it are done, to its last item's update time, never past the poll's start: a crash re-reads
at most two pages plus the overlap. `polling` says how far the poll under way has got
(PollProgress: items done, and the total the app counted on the first page), which SyncJobs
writes to the run for the panel.

Per item (`_process`):
  - unlinked and carrying a marker of a pending create intent of this integration: it is our own
    counterpart whose link was not committed (crash after the create): complete the link;
  - unlinked otherwise: if it passes the filters, matches a type mapping and the start point,
    create the counterpart: an intent with a fresh marker is committed first, the connector
    stamps the marker on the new item, and a retry of a pending intent calls find_by_marker
    before creating again, so a crash at any instant leaves at most one counterpart. A pair
    linked that way (either case) is merged at once with no base on the source side, so an
    edit of the source made since the interrupted create is copied, not taken as agreed;
  - linked: skipped when its update time is the one recorded after the last sync (nothing new,
    including our own writes; recorded only once the pair's comments and attachments are
    done too, so a crash before them leaves the pair to be looked at again); else
    appliance.sync.pairs brings the pair up to date: the counterpart is read and
    appliance.sync.merge decides per field; writes go out with `update_item`, and the read-back
    values become the new bases (in one transaction with the events and conflicts). Our own
    writes thus match their bases on the next look and never echo; when mapped values already
    agree nothing is written.
  - the item's type merges like a field (appliance.sync.item_types): a type changed on one
    side changes the other's mapped type;
  - comments (when enabled) sync as linked pairs, edits and deletes included
    (appliance.sync.comments); attachments likewise (appliance.sync.attachments).
A RemoteItemError, or a RetriableRemoteError the client's retries could not absorb, fails that
item only: it goes to item_errors with exponential backoff and the run goes on; polls skip it
until its retry is due unless it changed after it failed. A RemoteAuthError
(or EgressDenied) stops this integration's run with a clear error naming the side and connection;
other integrations run in their own jobs and are unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from prometheus_client import Counter, Gauge

from appliance.connectors.base import (ChangePage, Connector, ConnectorError, ContainerGone, EgressDenied, Item,
                                      RemoteAuthError, RemoteItemError, RemoteNotFound)
from appliance.db import jsonb
from appliance.errors import TandemError
from appliance.outbound import FLOW
from appliance.sync import deletes, item_types, pairs, parallel
from appliance.sync.attachments import sync_attachments
from appliance.sync.comments import fresh_copies, has_news, sync_comments
from appliance.sync.deliveries import Deliveries
from appliance.sync.mapping import OTHER, SIDE_NAME, Directory, Mapper, uses_users
from appliance.sync.progress import PollProgress
from appliance.sync.spec import IntegrationSpec, TypeMapping
from appliance.sync.store import Event, Intent, Link, Store

log = logging.getLogger(__name__)

# Per integration, in the tenant worker; appliance.metrics serves them (multiprocess mode adds
# up every worker's files). Lag = now - sync_last_success_timestamp_seconds.
LABELS = ("tenant", "integration")
ITEMS = Counter("sync_items", "Items the sync engine created or updated, by kind of write.", [*LABELS, "action"])
ERRORS = Counter("sync_item_errors", "Items that failed (retried with backoff).", LABELS)
API_CALLS = Counter("sync_api_calls", "HTTP requests the sync engine's runs sent (retries included).", LABELS)
RATE_LIMIT_WAIT = Counter("sync_rate_limit_wait_seconds", "Time runs spent waiting on rate limits.", LABELS)
RUNS = Counter("sync_runs", "Sync runs by outcome (ok, partial, failed).", [*LABELS, "status"])
LAST_SUCCESS = Gauge("sync_last_success_timestamp_seconds", "When the last run that was not failed ended.",
                     LABELS, multiprocess_mode="max")

ConnectorFactory = Callable[[asyncpg.Record], Awaitable[Connector]]


class SyncRunFailed(Exception):
    """The run stopped (credential refused, egress denied, integration gone): `str()` is the
    run's error as the admin sees it."""


@dataclass
class RunResult:
    run_id: int
    status: str
    counts: dict[str, int]
    error: str | None = None
    api_calls: int = 0
    retries: int = 0
    rate_limit_wait_seconds: float = 0.0


@dataclass
class _Side:
    name: str
    connection: asyncpg.Record
    connector: Connector
    container: str
    directory: Directory = field(default_factory=Directory)
    container_seen: float = float("-inf")   # time.monotonic() of the last deletes.confirm_gone check


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Engine:
    """Syncs one integration. `connectors(connection_row)` builds a side's Connector (see
    appliance.sync.connections.connector_for); `schema` is the tenant schema the pool's role
    owns. `fault(point)`, when given, is called at named points ("item_created",
    "comment_created", "attachment_uploaded") and may raise to simulate a crash there (tests).
    `lock` is the integration's run lock when several engines may be made for it over time
    (SyncJobs makes a new one when the integration changes): runs of one integration never
    overlap, whichever engine starts them."""

    def __init__(self, pool: asyncpg.Pool, connectors: ConnectorFactory, integration: asyncpg.Record | dict, *,
                 schema: str, tenant: str = "", page_size: int = 50, overlap_seconds: float = 120,
                 fault: Callable[[str], None] | None = None, lock: asyncio.Lock | None = None):
        self.pool = pool
        self.connectors = connectors
        self.id = int(integration["id"])
        self.name = integration["name"]
        self.store = Store(pool, schema, self.id)
        self.page_size = page_size
        self.overlap = timedelta(seconds=overlap_seconds)
        self.fault = fault
        self.extra = {"tenant": tenant, "integration": self.name}
        self.rng = random.Random()
        self._known: dict[tuple[str, str], tuple[str, datetime | None]] = {}    # see _poll
        self._unlinked: set[tuple[str, str]] = set()    # the poll page's items without a pair
        self._intended: dict[tuple[str, str], tuple[Intent, bool]] = {}     # see _intend
        self._lock = lock or asyncio.Lock()     # the integration's, shared by its engines (SyncJobs)
        self.deliveries = Deliveries(self)

    # -- one run ------------------------------------------------------------------------------

    async def run_once(self, trigger: str = "schedule") -> RunResult:
        """One full pass (module docstring); with trigger "webhook" only the pending webhook
        deliveries (the fast path; the next full run remains the safety net); with trigger
        "reconcile" a full pass that also re-compares every active pair, whatever the polls
        saw (heals changes a poll missed, e.g. behind a clock skew larger than the overlap). Runs
        of one engine (of one integration, with a shared `lock`) never overlap. Returns the run's
        result; raises SyncRunFailed when the run stopped early (after recording the run and its
        error). Its requests are this
        integration's flow (appliance.outbound.FLOW) in the apps' budgets, which it shares
        round robin with the tenant's other integrations."""
        async with self._lock:
            flow = FLOW.set(("integration", self.id))
            try:
                return await self._run_once(trigger)
            finally:
                FLOW.reset(flow)

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def ask_for_deliveries(self) -> None:
        """Webhook deliveries are waiting and a run of this engine is going on (SyncJobs asks
        once per new delivery): a poll page under way takes them alongside its items (_poll),
        otherwise the run takes them at its next turn."""
        self.deliveries.ask()

    async def _run_once(self, trigger: str) -> RunResult:
        row = await self.store.integration()
        if row is None:
            raise SyncRunFailed(f"integration {self.id} no longer exists")
        self.name = row["name"]
        self.spec = IntegrationSpec.model_validate(jsonb(row["spec"]))
        self.run_id = await self.store.start_run(trigger)
        self.counts = dict.fromkeys(("seen", "created", "updated", "comments", "comment_edits", "attachments",
                                     "conflicts", "errors"), 0)
        self.seen: set[tuple[str, str]] = set()
        self.started_at: dict[str, datetime] = {}
        self.polling: PollProgress | None = None
        started = time.monotonic()
        status, error, stats_before, sides = "ok", None, {}, {}
        try:
            sides = await self._sides()
            stats_before = {id(s.connector.http.stats): s.connector.http.stats.snapshot() for s in sides.values()}
            await self._load_directories()
            self.backing_off = await self.store.backing_off()
            # Items with an error row: only those need one cleared after they succeed (a poll
            # looks at thousands of items; a DELETE for each would be most of its time).
            self.failing = await self.store.failing()
            if trigger == "webhook":
                for side in ("a", "b"):
                    cursor = await self.store.cursor(side)
                    self.started_at[side] = cursor["started_at"] if cursor else _now()
                await self.deliveries.take()
            else:
                for side in ("a", "b"):
                    error = await self._poll(side) or error
                await self._retry_failed()
                await self.deliveries.take()
                for link in await self.store.links_with_resolutions():
                    await self._guarded("a", link.a_id, link.a_key, None, force=True)
                if trigger == "reconcile":
                    for link in await self.store.active_links():
                        await self._guarded("a", link.a_id, link.a_key, None, force=True)
            if error or self.counts["errors"]:
                status = "partial"
        except (RemoteAuthError, EgressDenied) as exc:
            status, error = "failed", self._describe_stop(exc)
        except SyncRunFailed as exc:
            status, error = "failed", str(exc)
        except ConnectorError as exc:       # e.g. the user directory could not be read
            side = getattr(exc, "side", None)
            where = f"side {SIDE_NAME[side]}: " if side in SIDE_NAME else ""
            status, error = "failed", f"{where}{exc.message}; the next run tries again"
        except Exception as exc:
            status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
            log.exception("integration %s: run failed", self.name, extra=self.extra)
        calls = retries = 0
        waited = 0.0
        seen_stats = set()
        for s in sides.values():
            stats = s.connector.http.stats
            if id(stats) in seen_stats or id(stats) not in stats_before:
                continue
            seen_stats.add(id(stats))
            delta = stats - stats_before[id(stats)]
            calls, retries = calls + delta.api_calls, retries + delta.retries
            waited += delta.rate_limit_wait_seconds
        await self.store.finish_run(self.run_id, status, self.counts, api_calls=calls, retries=retries,
                                    rate_limit_wait=round(waited, 3), duration=time.monotonic() - started,
                                    error=error)
        labels = (self.extra["tenant"], self.name)
        for action in ("created", "updated", "comments", "comment_edits", "attachments"):
            if self.counts[action]:
                ITEMS.labels(*labels, action).inc(self.counts[action])
        if self.counts["errors"]:
            ERRORS.labels(*labels).inc(self.counts["errors"])
        API_CALLS.labels(*labels).inc(calls)
        RATE_LIMIT_WAIT.labels(*labels).inc(waited)
        RUNS.labels(*labels, status).inc()
        if status != "failed":
            LAST_SUCCESS.labels(*labels).set(time.time())
        log.info("integration %s: run %s %s (%s)", self.name, self.run_id, status,
                 ", ".join(f"{k} {v}" for k, v in self.counts.items() if v) or "no changes", extra=self.extra)
        result = RunResult(self.run_id, status, dict(self.counts), error, calls, retries, round(waited, 3))
        if status == "failed":
            raise SyncRunFailed(error)
        return result

    def _describe_stop(self, exc: ConnectorError) -> str:
        side = getattr(exc, "side", None)
        where = ""
        if side in self._side_map:
            s = self._side_map[side]
            where = f"side {SIDE_NAME[side]} (connection {s.connection['name']!r}): "
        what = ("project not visible" if isinstance(exc, ContainerGone) else
                "credential refused" if isinstance(exc, RemoteAuthError) else "egress denied")
        return f"{where}{what}: {exc.message}; fix the connection, then the integration resumes"

    async def _sides(self) -> dict[str, _Side]:
        self._side_map: dict[str, _Side] = {}
        for name, side in (("a", self.spec.side_a), ("b", self.spec.side_b)):
            conn = await self.store.connection(side.connection_id)
            if conn is None:
                raise SyncRunFailed(f"side {SIDE_NAME[name]}: connection {side.connection_id} no longer exists")
            try:
                connector = await self.connectors(conn)
            except ConnectorError as exc:
                exc.side = name
                raise
            except TandemError as exc:      # e.g. a credential that no longer decrypts
                raise SyncRunFailed(f"side {SIDE_NAME[name]} (connection {conn['name']!r}): {exc}") from exc
            self._side_map[name] = _Side(name, conn, connector, side.container)
        return self._side_map

    async def _call(self, side: str, call: Callable[[Connector], Awaitable[Any]]) -> Any:
        """A connector call on `side`; connector errors learn which side they came from."""
        try:
            return await call(self._side_map[side].connector)
        except ConnectorError as exc:
            exc.side = side
            raise

    async def _load_directories(self) -> None:
        for name, side in self._side_map.items():
            if uses_users(self.spec):
                try:
                    users = await self._call(name, lambda c, s=side: c.list_users(s.container))
                except RemoteNotFound:
                    await deletes.confirm_gone(self, name)      # the project itself, or only its users?
                    raise
                side.directory = Directory(users)
        self.mapper = Mapper(self.spec, {n: s.directory for n, s in self._side_map.items()})

    # -- polling ------------------------------------------------------------------------------

    async def _poll(self, side: str) -> str | None:
        """Poll one side from its cursor; returns an error text when the poll itself had to stop
        (a retriable failure the client could not absorb; the next run resumes there)."""
        cursor = await self.store.cursor(side)
        if cursor is None:
            start = self.spec.start
            first = {"new": _now(), "since": start.since, "all": None}[start.mode]
            cursor = await self.store.init_cursor(side, first, _now())
        self.started_at[side] = cursor["started_at"]
        poll_start = _now()
        since = cursor["since"] - self.overlap if cursor["since"] is not None else None
        s = self._side_map[side]
        pages = parallel.prefetching(lambda at: self._call(side, lambda c: c.changed_since(
            s.container, since, at, page_size=self.page_size)), lambda page: page.next_cursor)
        # The items of the pages under way not yet done (a page's tail overlaps the next page):
        # deliveries asked for meanwhile are taken alongside them, but not those of their pairs.
        unfinished: dict[str, int] = {}
        progress = self.polling = PollProgress(side, (self.extra["tenant"], self.name))

        async def prepare(page: ChangePage) -> None:
            if page.total is not None:
                progress.counted(page.total)
            known = await self.store.link_states(side, [i.id for i in page.items])
            self._known.update(known)
            self._unlinked |= {(side, i.id) for i in page.items} - known.keys()
            await self._intend(side, page.items)
            for item in page.items:
                unfinished[item.id] = unfinished.get(item.id, 0) + 1

        async def work(item: Item) -> None:
            try:
                await self.deliveries.wait_for(side, item.id)
                await self._guarded(side, item.id, item.key, item)
            finally:
                progress.one_done()
                unfinished[item.id] -= 1
                if not unfinished[item.id]:
                    del unfinished[item.id]

        async def finish(page: ChangePage) -> None:
            # Every item of this page and of the ones before it is done: the cursor may pass them.
            if page.next_cursor is None:
                await self.store.advance_cursor(side, poll_start)
            elif page.items:
                await self.store.advance_cursor(side, min(page.items[-1].updated_at, poll_start))
            if self.deliveries.held_back:
                self.deliveries.ask()   # those its items held back

        try:
            async with contextlib.aclosing(pages), \
                    parallel.serving(self.deliveries.asked, lambda: self.deliveries.take(side, unfinished)):
                await parallel.run_pages(pages, lambda page: page.items, work, key=lambda i: i.id,
                                         prepare=prepare, finish=finish)
        except (RemoteAuthError, EgressDenied):
            raise
        except ConnectorError as exc:   # reading the next page (an item's own errors stay with it)
            if isinstance(exc, RemoteNotFound):
                await deletes.confirm_gone(self, side)          # raises when the project went
            log.warning("integration %s: polling side %s stopped: %s", self.name, SIDE_NAME[side], exc,
                        extra=self.extra)
            return f"polling side {SIDE_NAME[side]} stopped: {exc.message}; resumes next run"
        finally:
            self._known, self._unlinked, self._intended = {}, set(), {}
            progress.ended()
            self.polling = None
        return None

    async def _intend(self, side: str, items: list[Item]) -> None:
        """Make the intents of the page's items that will get a counterpart created (unpaired,
        unmarked, eligible, and not skipped by _guarded) in one statement, before any of those
        creates; _create_counterpart takes them. An intent left unused (an item failing before its
        create, a crash) stays pending, and the item's next attempt looks for its marker first."""
        sources: dict[tuple[str, str], None] = {}
        for item in items:
            key = (side, item.id)
            failed_at = self.backing_off.get(key)
            if (key in self._unlinked and key not in self.seen and not item.marker and not item.deleted
                    and (failed_at is None or item.updated_at > failed_at) and self._eligible(side, item)):
                sources[key] = None
        self._intended.update(zip(sources, await self.store.intents_for("item", list(sources))))

    async def _retry_failed(self) -> None:
        for row in await self.store.due_errors():
            await self._guarded(row["side"], row["item_id"], "", None, force=True)

    async def _guarded(self, side: str, item_id: str, key: str, item: Item | None, *, force: bool = False) -> None:
        """Process one item; its failure is recorded against it alone (module docstring)."""
        if (side, item_id) in self.seen and not force:
            return
        failed_at = self.backing_off.get((side, item_id))
        if not force and failed_at is not None and item is not None and item.updated_at <= failed_at:
            return      # unchanged since it failed: its retry waits for the backoff
        if (side, item_id) not in self.seen:
            self.seen.add((side, item_id))
            self.counts["seen"] += 1
        try:
            if item is None:
                s = self._side_map[side]
                try:
                    item = await self._call(side, lambda c: c.get_item(s.container, item_id, comments=False,
                                                                       attachments=False))
                except RemoteNotFound:
                    await deletes.item_gone(self, side, item_id)
                    return
            if item.unreadable:     # its retry reads it again (item None above)
                raise RemoteItemError(f"its data could not be read: {item.unreadable}")
            await self._process(side, item, force=force)
        except (RemoteAuthError, EgressDenied):
            raise
        except Exception as exc:
            if not isinstance(exc, ConnectorError):
                log.exception("integration %s: item %s failed", self.name, key or item_id, extra=self.extra)
            message = exc.message if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
            text = f"side {SIDE_NAME[getattr(exc, 'side', side)]}: {message}"
            backoff = self.spec.schedule.interval_seconds * self.rng.uniform(0.8, 1.2)
            attempts = await self.store.record_error(side, item_id, key or (item.key if item else ""), text,
                                                     backoff, self.run_id)
            self.failing.add((side, item_id))
            self.counts["errors"] += 1
            log.warning("integration %s: item %s failed (attempt %d): %s", self.name, key or item_id, attempts,
                        text, extra=self.extra)
        else:
            if (side, item_id) in self.failing:
                await self.store.clear_error(side, item_id)
                self.failing.discard((side, item_id))

    # -- one item -----------------------------------------------------------------------------

    async def _process(self, side: str, item: Item, *, force: bool = False) -> None:
        known = None if force else self._known.pop((side, item.id), None)
        if known is not None and (known[0] == "deleted" or (known[1] is not None and item.updated_at <= known[1])):
            return      # as below, decided from the poll page's one query (most items of a poll)
        # An item the page's query found unpaired is read as such once (a page may name it twice,
        # and the first look may pair it); pairs are made only by this run, so it still holds.
        unpaired = not force and (side, item.id) in self._unlinked
        self._unlinked.discard((side, item.id))
        link = None if unpaired else await self.store.link_by(side, item.id)
        if link is None:
            intent = await self.store.intent_by_marker(item.marker) if item.marker else None
            if intent is not None and intent.kind == "item":
                if intent.state == "pending" and intent.source_side == OTHER[side]:
                    link = await self._complete(intent, side, item)
                    if link is not None:
                        await self._sync_related(link)
                # else: a counterpart of ours already linked elsewhere: never a new source item.
                return
            if item.deleted:
                return
            await self._create_counterpart(side, item)
            return
        if link.state == "deleted":
            return
        if not force and link.updated_at(side) is not None and item.updated_at <= link.updated_at(side):
            return      # nothing since the last sync (our own write included)
        if not force and await self._quiet(link, side, item):
            return
        if (counterpart := await pairs.merge_pair(self, link, side, item)) is not None:
            await self._sync_related(link, {side: item, OTHER[side]: counterpart})

    async def _quiet(self, link: Link, side: str, item: Item) -> bool:
        """Whether a linked item that changed brings nothing to sync: its mapped fields and
        type are its base (so no field change starts here), and each of its comments is a
        paired one as last synced or a copy of ours. Then only its update time is recorded, and
        the counterpart is not read: what changed there is found by that side's own look. The
        common case is our own comment copies bumping the item's update time (the pass over
        a backfill's new counterparts), where this saves reading every counterpart. Anything
        else (an edit, a new or changed or deleted comment, a copy whose record is pending, a
        pair in conflict, attachments syncing) takes the full look."""
        if link.state != "active" or link.updated_at(side) is None or self.spec.attachments.enabled:
            return False
        base = link.base_a if side == "a" else link.base_b
        current = self._read(side, item)
        if any(name not in base or base[name] != value for name, value in current.items()):
            return False
        if self.spec.comments.enabled:
            comments = item.comments
            if comments is None:
                s = self._side_map[side]
                comments = await self._call(side, lambda c: c.list_comments(s.container, item.id))
                item.comments = comments    # the full look, if it comes to one, need not list them again
            if has_news(side, comments, *await self.store.comment_state(link)):
                return False
        if side == "a":
            link.a_updated_at = item.updated_at
        else:
            link.b_updated_at = item.updated_at
        await self.store.set_link_times(link)
        return True

    def _eligible(self, side: str, item: Item) -> TypeMapping | None:
        if not self.mapper.passes_filter(side, item):
            return None
        if self.spec.start.mode == "new" and item.created_at < self.started_at.get(side, item.created_at):
            return None
        return self.mapper.type_mapping(side, item)

    async def _create_counterpart(self, side: str, item: Item) -> Link | None:
        tm = self._eligible(side, item)
        if tm is None:
            return None
        other = OTHER[side]
        target = self._side_map[other]
        intent, fresh = self._intended.pop((side, item.id), None) or await self.store.intent_for("item", side, item.id)
        created = None
        if not fresh:
            created = await self._call(other, lambda c: c.find_by_marker(target.container, intent.marker))
        recovered = created is not None
        if created is None:
            fields = self.mapper.create_fields(other, self.mapper.read(side, item), tm)
            item_type = tm.b_type if other == "b" else tm.a_type
            created = await self._call(other, lambda c: c.create_item(target.container, item_type, fields,
                                                                      intent.marker))
            if self.fault:
                self.fault("item_created")
        link, comment_intents = await self._link(
            intent, {side: item, other: created},
            Event("created", f"{side}_to_{other}", item.key, (),
                  f"{item.key} created {created.key} on side {SIDE_NAME[other]}"),
            recovered=recovered, comment_sources=() if recovered else fresh_copies(self.spec, side, item))
        self.counts["created"] += 1
        if recovered and not await pairs.merge_pair(self, link, side, item):
            return None
        created.comments = None if recovered else []    # new: no comments but those synced now
        await self._sync_related(link, {side: item, other: created}, fresh=not recovered, intents=comment_intents)
        return link

    async def _complete(self, intent, side: str, counterpart: Item) -> Link | None:
        """Link a counterpart found by its marker to the intent's source item, and merge the pair
        (None when the counterpart turned out to be gone)."""
        source_side = intent.source_side
        s = self._side_map[source_side]
        source = await self._call(source_side, lambda c: c.get_item(s.container, intent.source_id,
                                                                   comments=False, attachments=False))
        link, _ = await self._link(intent, {source_side: source, side: counterpart},
                                Event("linked", f"{source_side}_to_{side}", source.key, (),
                                      f"{source.key} linked to {counterpart.key} (found by its sync marker)"),
                                recovered=True)
        return link if await pairs.merge_pair(self, link, source_side, source) else None

    async def _link(self, intent, items: dict[str, Item], event: Event, *, recovered: bool = False,
                    comment_sources: Sequence[tuple[str, str]] = ()) -> tuple[Link, list[Intent]]:
        # With comments or attachments to follow, the pair's update times are committed as NULL
        # and recorded only once those are done (_sync_related): a crash in between leaves the
        # pair looked at again by the next poll instead of skipped as unchanged.
        updated = {k: v.updated_at for k, v in items.items()}
        bases = {k: self._read(k, v) for k, v in items.items()}
        if recovered:
            # A counterpart found by its marker holds the source's values of before the crash;
            # the source may have been edited since. Without a base on the source side, the
            # merge the caller runs next copies those edits and settles the rest unwritten.
            bases[intent.source_side] = {}
        link, comment_intents = await self.store.create_link(
            intent, {k: v.id for k, v in items.items()}, {k: v.key for k, v in items.items()},
            {k: v.url for k, v in items.items()}, bases,
            dict.fromkeys(updated) if self._has_related() else updated, self.run_id, event, comment_sources)
        link.a_updated_at, link.b_updated_at = updated["a"], updated["b"]
        return link, comment_intents

    async def _counterpart(self, link: Link, side: str) -> Item | None:
        """The pair's item on the side other than `side`, as it is now; None when it is gone."""
        other = OTHER[side]
        so = self._side_map[other]
        try:
            return await self._call(other, lambda c: c.get_item(so.container, link.item_id(other), comments=False,
                                                                 attachments=False))
        except RemoteNotFound:
            await deletes.confirm_gone(self, other)
            return None

    def _read(self, side: str, item: Item) -> dict[str, Any]:
        """The comparable values the merge sees: the mapped fields and the item's type."""
        return {**self.mapper.read(side, item), item_types.NAME: item_types.value(self.mapper, side, item)}

    def _has_related(self) -> bool:
        return self.spec.comments.enabled or self.spec.attachments.enabled

    async def _sync_related(self, link: Link, items: dict[str, Item] | None = None, *, fresh: bool = False,
                            intents: Sequence[Intent] = ()) -> None:
        """Comments, then attachments, of a pair, then the update times _link and _merge held back (skipped as
        unchanged only once all synced). An item's own comments stand unless we wrote to it after its read.
        `fresh`: the pair was made by this look, its counterpart created now, with `intents` for its comments."""
        known = {s: i.comments for s, i in (items or {}).items() if i.updated_at == link.updated_at(s)}
        copied = await sync_comments(self, link, known, fresh=fresh, intents=intents)
        self.counts["comments"] = copied + self.counts["comments"]  # not +=: read after await
        self.counts["attachments"] = await sync_attachments(self, link) + self.counts["attachments"]
        if self._has_related():
            await self.store.set_link_times(link)
