"""Benchmarks of the sync engine in a real tenant worker (printed, not asserted).

Reproduce with:  .venv/bin/python tests/bench/bench_sync.py
(`--items 500` for a quick look; `--help` for the other sizes)

One `tandem run` (supervisor, one web worker, the tenant worker of tenant "acme") against the
Jira emulator (Data Center flavour) and the GitLab emulator, both served from background
threads of this process; a throwaway PostgreSQL (the test harness's, fsync off). Figures,
each measured in this one run so they can be compared side by side (the machine is shared):

1. Backfill: N Jira issues (2 comments each, spread over the past 30 days) into an empty GitLab
   project by one integration (title, description, status; comments both ways): items per
   second; API calls per item by endpoint (the emulators count every request) next to the
   minimum the two APIs allow; peak RSS and CPU of the tenant worker process; and the GitLab
   emulator's own capacity for the create call, measured from a separate client process with
   the engine's concurrency (appliance.sync.parallel.ITEM_CONCURRENCY items of a poll page at
   once) right before and after the backfill; the larger is the ratio's denominator. With
   comments every item needs 1 + comments create calls, so even an engine costing nothing would
   reach 1 / (1 + comments) of it: the run also measures, right after the backfill, what the
   emulator takes of whole items (a bare client making each item's issue and notes, the same
   concurrency) and prints the engine's share of that too.
2. Live propagation of single-field edits (a Jira summary changed through the REST API, lag
   until GitLab's title shows it), p50/p99: with a Jira webhook delivered to the integration's
   webhook URL (web worker -> webhook_deliveries -> tenant worker), then polling only.
3. The backfill at a real app's pace: both emulators answer every request after --latency-ms
   (default 100 ms, a self-managed GitLab or Jira on the local network; gitlab.com is slower),
   and a second integration backfills --paced-items issues (2 comments each) from another Jira
   project into another GitLab project. The GitLab emulator's capacity is measured at that pace
   with the same concurrency, for creates and for whole items; while the backfill runs, issues it
   has already linked are edited in Jira and their webhook lag measured (the deliveries are
   taken between two items of the poll page, not after the page).

In parts 1 and 3 the run's progress is read every 0.5 s, as the panel reads it, and the time left it
gave at 25, 50 and 75% of side A's poll is printed next to the time that was really left.

The tenant worker's request budget ([outbound] requests_per_second) is raised for this run so
that the engine, not the politeness budget, is what is measured; at the default budget (10/s per
app and credential) a backfill is capped at 10 / (GitLab calls per item) items per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets as random_secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp  # noqa: E402

from appliance import db, migrator, secrets, tenants  # noqa: E402
from appliance.config import load_config  # noqa: E402
from appliance.sync.parallel import ITEM_CONCURRENCY  # noqa: E402
from appliance.web.endpoints.integrations import RUN_COLUMNS, RunProgress  # noqa: E402
from tests.bench.common import stop, wait  # noqa: E402
from appliance.keys import ensure_key  # noqa: E402
from appliance.proc import rss_bytes  # noqa: E402
from tests.fakes.gitlab import GitLabFake  # noqa: E402
from tests.fakes.jira import JiraEmulator  # noqa: E402
from tests.fakes.jira_state import Comment  # noqa: E402
from tests.fakes.server import serve_in_thread  # noqa: E402
from tests.harness import ROOT, PostgresServer, descendants, free_port, world_dir  # noqa: E402

COMMAND = ".venv/bin/python tests/bench/bench_sync.py"
DOMAIN = "bench.test"
TENANT_HOST = f"acme.{DOMAIN}"
BUDGET = 10000          # requests per second per (host, credential) for this run
POLL_INTERVAL = 5       # the smallest schedule an integration accepts
LIVE_INTERVAL = 60      # the schedule while webhooks are on (the default)
STATUS = {"To Do": "opened", "In Progress": "status::doing", "Done": "closed"}


def write_config(path: Path, dsn: str, data_dir: Path, port: int) -> Path:
    # Default supervisor timings (the test harness's are tighter: on a busy shared machine they
    # would abort workers mid-run); plain HTTP so that the emulator's webhooks reach the web worker.
    path.write_text(f"""
[cluster]
name = "sbench"
domain = "{DOMAIN}"
[http]
listen = ["127.0.0.1:{port}"]
redirect_listen = []
workers = 1
[tls]
mode = "off"
[database]
dsn = "{dsn}"
[paths]
data_dir = "{data_dir}"
[security]
key_file = "{data_dir}/master.key"
run_as = ""
[outbound]
requests_per_second = {BUDGET}
burst = {BUDGET}
[log]
level = "warning"
""")
    return path


# -- the capacity probe (a separate process) ----------------------------------------------------

async def _create_loop(base_url: str, token: str, project: int, count: int, concurrency: int, notes: int) -> float:
    """Per second: `count` issue creates, each followed by `notes` note creates on it (the
    minimum calls of a backfilled item), `concurrency` issues at a time, one keep-alive session."""
    url = f"{base_url}/api/v4/projects/{project}/issues"
    headers = {"PRIVATE-TOKEN": token}
    left = iter(range(count))

    async def post(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
        async with session.post(url, json=body, headers=headers) as response:
            if response.status != 201:
                raise RuntimeError(f"capacity probe: create answered {response.status}")
            return await response.json()

    async def client(session: aiohttp.ClientSession) -> None:
        for i in left:
            issue = await post(session, url, {
                "title": f"Capacity {i}", "issue_type": "issue", "labels": "bug",
                "description": f"Steps to reproduce {i}\n\n<!-- tandem:sync:{random_secrets.token_hex(8)} -->"})
            for n in range(notes):
                await post(session, f"{url}/{issue['iid']}/notes", {"body": f"*Bob wrote:*\n\nComment {n} on {i}"})
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def capacity(base_url: str, token: str, project: int, count: int, concurrency: int, notes: int = 0) -> float:
    output = subprocess.run([sys.executable, __file__, "--capacity", base_url, token, str(project), str(count),
                             str(concurrency), str(notes)], capture_output=True, text=True, check=True,
                            cwd=ROOT).stdout
    return float(output.strip().splitlines()[-1])


# -- the world ------------------------------------------------------------------------------------

class RssSampler(threading.Thread):
    """Samples one process's RSS every 50 ms; `peak` is the largest seen since the last mark()."""

    def __init__(self, pid: int):
        super().__init__(daemon=True, name="rss")
        self.pid, self.peak, self.overall, self.stop = pid, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            value = rss_bytes(self.pid) or 0
            self.peak, self.overall = max(self.peak, value), max(self.overall, value)

    def mark(self) -> None:
        self.peak = rss_bytes(self.pid) or 0


class ProgressWatch(threading.Thread):
    """Reads an integration's run in progress every 0.5 s, as the panel would, and keeps what its
    `progress` said (appliance.web.endpoints.integrations.RunProgress): to compare the time left
    it gave for side A's poll with when that backfill really ended (`accuracy`)."""

    def __init__(self, sql, schema: str, integration: int):
        super().__init__(daemon=True)
        self.sql, self.schema, self.integration = sql, schema, integration
        self.seen: list[tuple[float, RunProgress]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            rows = asyncio.run(self.sql(f"SELECT {RUN_COLUMNS} FROM {self.schema}.runs WHERE integration_id = $1 "
                                        "AND status = 'running'", self.integration))
            progress = RunProgress.of(rows[0]) if rows else None
            if progress is not None and progress.side == "a":
                self.seen.append((time.monotonic(), progress))

    def accuracy(self, ended: float) -> list[tuple[int, float, float]]:
        """At the first reading past 25, 50 and 75% of side A's poll that gave a time left:
        (percent done, the time left it gave, the time that was really left until `ended`)."""
        self.stop.set()
        self.join()
        out = []
        for mark in (25, 50, 75):
            for at, p in self.seen:
                if p.items_total and p.seconds_left is not None and p.items_done * 100 >= mark * p.items_total:
                    out.append((round(p.items_done * 100 / p.items_total), p.seconds_left, ended - at))
                    break
        return out


def hwm_bytes(pid: int) -> int:
    """The kernel's own record of the process's peak RSS (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(postmaster: int) -> dict[int, float]:
    """CPU time so far of each process of the PostgreSQL server (the postmaster and its backends),
    by pid: a backend that ends between two readings takes its time with it (the engine's pool
    connections live through the run)."""
    times = {}
    for pid in [postmaster, *(p for p, *_ in descendants(postmaster))]:
        try:
            times[pid] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return times


def seed_jira(jira: JiraEmulator, count: int, comments: int, days: int = 30, project_key: str = "PROJ") -> None:
    """`count` Bugs by bob in the project, `comments` comments each, created and last commented
    over the past `days` (a backfill is of history), oldest first; state set directly: no
    webhooks yet."""
    project = jira.projects[project_key]
    start = jira.now() - timedelta(days=days)
    step = timedelta(days=days) / max(count, 1)
    for i in range(count):
        issue = jira.new_issue(jira.bob, project, {
            "summary": f"Item {i:05d}", "issuetype": "10002",
            "description": f"Steps to reproduce item {i}:\n\n* open the app\n* press *save*"})
        issue.created = issue.updated = start + i * step
        for c in range(comments):
            at = issue.created + (c + 1) * step / (comments + 1)
            issue.comments.append(Comment(str(next(jira._other_ids)), jira.bob, f"Comment {c} on item {i}", at, at,
                                          jira.bob))
            issue.updated = at


class Rest:
    """People's calls to the emulators' REST APIs from this (driving) thread."""

    @staticmethod
    def call(method: str, url: str, headers: dict, body: dict | None = None) -> dict | None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={**headers, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return json.loads(text) if text else None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def by_endpoint(after: Counter, before: Counter) -> Counter:
    return Counter({k: v for k, v in (after - before).items() if v})


# -- phase 2: live edits ---------------------------------------------------------------------------

def live_edits(jira_url: str, jira: JiraEmulator, project, iids: dict[str, int], issues: list, tag: str,
               rate: float, timeout: float) -> tuple[list[float], int]:
    """Edit each issue's summary through Jira's REST API, `rate` edits a second, and watch the
    GitLab emulator's state until each counterpart's title shows it. Returns (lags, missing)."""
    headers = {"Authorization": f"Bearer {jira.bob.token}"}
    pending: dict[int, tuple[str, float]] = {}
    lags: list[float] = []
    started = time.monotonic()
    next_at, done = started, 0
    while done < len(issues) or pending:
        now = time.monotonic()
        if done < len(issues) and now >= next_at:
            issue = issues[done]
            iid = iids[issue.fields["summary"].split(" (", 1)[0]]
            title = f"{issue.fields['summary'].split(' (', 1)[0]} ({tag})"
            Rest.call("PUT", f"{jira_url}/rest/api/2/issue/{issue.id}", headers, {"fields": {"summary": title}})
            pending[iid] = (title, time.monotonic())
            done += 1
            next_at += 1 / rate
        now = time.monotonic()
        for iid, (title, edited) in list(pending.items()):
            if project.issues[iid].title == title:
                lags.append(now - edited)
                del pending[iid]
        if now - started > timeout:
            break
        time.sleep(0.002)
    return lags, len(pending) + len(issues) - done


# -- phase 3: the backfill at a real app's pace --------------------------------------------------------

def paced_backfill(args, jira: JiraEmulator, gl: GitLabFake, alice, jira_url: str, gl_url: str, port: int,
                   spec: dict, sql, schema: str, notes) -> dict:
    """Part 3 of the module docstring; returns its figures."""
    latency = args.latency_ms / 1000
    n = args.paced_items
    jira.add_project("SLOW", "Slow")
    seed_jira(jira, n, args.comments, project_key="SLOW")
    target, probe = gl.add_project("acme/slow", owner=alice), gl.add_project("acme/slow-capacity", owner=alice)
    for project in (target, probe):
        for label in ("bug", "status::doing"):
            gl.add_label(project, label)
    probe_token = gl.add_token(alice)
    jira.knobs.latency = gl.knobs.latency = latency
    # Each probe lasts about 4 s at this pace: ITEM_CONCURRENCY requests in flight, each `latency`;
    # a whole number of rounds, so that no last round runs part-empty.
    def rounds(per_round: float) -> int:
        return ITEM_CONCURRENCY * max(1, round(4 / (latency * per_round)))
    creates = capacity(gl_url, probe_token, probe.id, rounds(1), ITEM_CONCURRENCY)
    items = capacity(gl_url, probe_token, probe.id, rounds(1 + args.comments), ITEM_CONCURRENCY, args.comments)

    secret = random_secrets.token_urlsafe(32)
    paced_spec = json.loads(json.dumps(spec))
    paced_spec["side_a"]["container"] = jira.projects["SLOW"].id
    paced_spec["side_b"]["container"] = str(target.id)
    paced_spec["schedule"]["interval_seconds"] = LIVE_INTERVAL
    alice_jira = {"Authorization": f"Bearer {jira.alice.token}"}
    before = Counter(gl.knobs.requests)
    enabled = time.monotonic()
    integration = asyncio.run(sql(f"INSERT INTO {schema}.integrations (name, enabled, spec, webhook_secret) "
                                  "VALUES ('paced', true, $1, $2) RETURNING id", json.dumps(paced_spec), secret)
                              )[0]["id"]
    watch = ProgressWatch(sql, schema, integration)
    watch.start()
    hook = Rest.call("POST", f"{jira_url}/rest/webhooks/1.0/webhook", alice_jira, {
        "name": "tandem-paced", "url": f"http://127.0.0.1:{port}/api/v1/hooks/{integration}/{secret}?side=a",
        "events": ["jira:issue_updated"], "filters": {"issue-related-events-section": "project = SLOW"}})
    wait(lambda: target.issues, 60, "first paced counterpart", interval=0.01)
    # Edit issues the backfill has linked, while it goes on: a fifth of them, from when a fifth
    # is done, at a pace that ends before the backfill does.
    edits = max(1, n // 10)
    wait(lambda: len(target.issues) >= 2 * edits, n, "the paced backfill under way", interval=0.05)
    iids = {issue.title: iid for iid, issue in list(target.issues.items())}
    slow = jira.projects["SLOW"]
    ordered = sorted((i for i in list(jira.issues.values()) if i.project is slow), key=lambda i: int(i.id))
    linked = [i for i in ordered if i.fields["summary"] in iids][:edits]
    edited_at = len(target.issues)
    lags, missing = live_edits(jira_url, jira, target, iids, linked, "paced", rate=5, timeout=edits / 5 + 60)
    edits_ended = len(target.issues)
    wait(lambda: len(target.issues) >= n and notes(target) >= n * args.comments, n + 120,
         "paced backfill complete", interval=0.05)
    done = time.monotonic()
    eta = watch.accuracy(done)
    Rest.call("DELETE", f"{jira_url}/rest/webhooks/1.0/webhook/{hook['self'].rsplit('/', 1)[1]}", alice_jira)
    calls = by_endpoint(Counter(gl.knobs.requests), before)
    jira.knobs.latency = gl.knobs.latency = 0.0
    # From enabling the integration (its run's start-up included), as the probes count from
    # their first request: from the first counterpart would leave out that item's create.
    return {"rate": n / (done - enabled), "creates": creates, "items": items, "lags": lags, "missing": missing,
            "edits": len(linked), "between": (edited_at, edits_ended), "gl_calls": sum(calls.values()) / n,
            "eta": eta}


# -- the run ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5000, help="Jira issues to backfill (default 5000)")
    parser.add_argument("--comments", type=int, default=2, help="comments per issue (default 2)")
    parser.add_argument("--edits", type=int, default=200, help="live edits per mode (default 200)")
    parser.add_argument("--probe", type=int, default=2000, help="creates per capacity probe (default 2000)")
    parser.add_argument("--latency-ms", type=float, default=100,
                        help="part 3: the emulators' time per request (default 100)")
    parser.add_argument("--paced-items", type=int, default=600, help="part 3: issues to backfill (default 600)")
    parser.add_argument("--capacity", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.capacity:
        url, token, project, count, concurrency, notes = args.capacity
        print(f"{asyncio.run(_create_loop(url, token, int(project), int(count), int(concurrency), int(notes))):.1f}")
        return

    sys.stdout.reconfigure(line_buffering=True)
    print(f"reproduce: {COMMAND}" + (f" --items {args.items}" if args.items != 5000 else ""))
    print(f"machine: {os.cpu_count()} cores (shared); python {sys.version.split()[0]}")
    pg = PostgresServer()
    pg.start()
    postmaster = int((pg.root / "data" / "postmaster.pid").read_text().split()[0])
    database = pg.create_database()
    data_dir = world_dir("tandem-bench-sync-")
    appliance = None
    try:
        port = free_port()
        config_path = write_config(data_dir / "tandem.toml", pg.dsn(database), data_dir, port)
        config = load_config(config_path)
        key = ensure_key(config.security.key_file)

        jira = JiraEmulator("server")
        gl = GitLabFake()
        alice = gl.add_user("alice", name="Alice Admin")
        widgets = gl.add_project("acme/widgets", owner=alice)
        probe_project = gl.add_project("acme/capacity", owner=alice)
        for project in (widgets, probe_project):
            for label in ("bug", "status::doing"):
                gl.add_label(project, label)
        tandem_token, probe_token = gl.add_token(alice), gl.add_token(alice)
        seeded = time.perf_counter()
        seed_jira(jira, args.items, args.comments)
        print(f"seeded {args.items} Jira issues with {args.comments} comments each "
              f"in {time.perf_counter() - seeded:.1f} s")

        def jira_app():
            # Webhook deliveries name the tenant by Host; the web worker listens on 127.0.0.1.
            jira._session = aiohttp.ClientSession(headers={"Host": TENANT_HOST},
                                                  timeout=aiohttp.ClientTimeout(total=10))
            return jira.app

        with serve_in_thread(jira_app) as jira_url, serve_in_thread(gl.app) as gl_url:
            async def prepare():
                await migrator.migrate(config, key)
                async with db.control(config, key) as conn:
                    return await tenants.create_tenant(config, key, conn, "acme")
            tenant = asyncio.run(prepare())
            schema = tenant.schema_name

            log_file = open(data_dir / "tandem.log", "wb")
            appliance = subprocess.Popen([sys.executable, "-m", "appliance", "--config", str(config_path), "run"],
                                         cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
            worker = wait(lambda: next((pid for pid, _, cmd in descendants(appliance.pid)
                                        if cmd.startswith("tandem: tenant acme")), None), 60, "tenant worker")
            sampler = RssSampler(worker)
            sampler.start()
            idle_rss = rss_bytes(worker) or 0

            before_probe = capacity(gl_url, probe_token, probe_project.id, args.probe, ITEM_CONCURRENCY)

            secret = random_secrets.token_urlsafe(32)
            spec = {"side_a": {"connection_id": 0, "container": jira.projects["PROJ"].id},
                    "side_b": {"connection_id": 0, "container": str(widgets.id)},
                    "type_mappings": [{"a_type": "Bug", "b_type": "issue", "b_labels": ["bug"]}],
                    "field_mappings": [{"a_field": "title", "b_field": "title"},
                                       {"a_field": "description", "b_field": "description"},
                                       {"a_field": "status", "b_field": "status", "value_map": STATUS}],
                    "comments": {"enabled": True, "direction": "both"},
                    "start": {"mode": "all"}, "schedule": {"interval_seconds": LIVE_INTERVAL}}

            async def integrate() -> int:
                pool = await db.create_pool(config, key, role=tenant.role_name, max_size=2)
                try:
                    for side, kind, url, credentials in (("a", "jira", jira_url, {"token": jira.alice.token}),
                                                         ("b", "gitlab", gl_url, {"token": tandem_token})):
                        cid = await pool.fetchval(f"INSERT INTO {schema}.connections (name, kind, base_url) "
                                                  "VALUES ($1, $2, $3) RETURNING id", kind, kind, url)
                        await pool.execute(f"UPDATE {schema}.connections SET credentials = $2 WHERE id = $1", cid,
                                           secrets.encrypt(key, credentials, schema=schema, connection_id=cid))
                        spec[f"side_{side}"]["connection_id"] = cid
                    return await pool.fetchval(
                        f"INSERT INTO {schema}.integrations (name, enabled, spec, webhook_secret) "
                        "VALUES ('jira-gitlab', true, $1, $2) RETURNING id", json.dumps(spec), secret)
                finally:
                    await pool.close()

            async def sql(query: str, *params):
                conn = await db.connect(config, key, role=tenant.role_name)
                try:
                    return await conn.fetch(query, *params)
                finally:
                    await conn.close()

            jira_before, gl_before = Counter(jira.knobs.requests), Counter(gl.knobs.requests)
            sampler.mark()
            enabled = time.monotonic()
            cpu_before = (cpu_seconds(worker), time.process_time(), server_cpu_seconds(postmaster))
            integration = asyncio.run(integrate())
            watch = ProgressWatch(sql, schema, integration)
            watch.start()

            def notes(project=widgets) -> int:
                return sum(len([n for n in ns if not n.system]) for ns in list(project.notes.values()))

            first = wait(lambda: widgets.issues and time.monotonic(), 60, "first counterpart", interval=0.01)
            wait(lambda: len(widgets.issues) >= args.items and notes() >= args.items * args.comments,
                 args.items * 2 + 60, "backfill complete", interval=0.05)
            done = time.monotonic()
            eta = watch.accuracy(done)
            cpu_after = (cpu_seconds(worker), time.process_time(), server_cpu_seconds(postmaster))
            backfill_peak = sampler.peak
            jira_calls = by_endpoint(Counter(jira.knobs.requests), jira_before)
            gl_calls = by_endpoint(Counter(gl.knobs.requests), gl_before)
            print(f"backfill: every counterpart and comment in GitLab {done - first:.1f} s after the first; "
                  f"waiting for the run to end")
            run = wait(lambda: asyncio.run(sql(f"SELECT *, extract(epoch FROM finished_at - started_at) AS seconds "
                                               f"FROM {schema}.runs WHERE status <> 'running' ORDER BY id LIMIT 1")),
                       args.items + 60, "first run recorded", interval=0.5)[0]
            run_calls = (by_endpoint(Counter(jira.knobs.requests), jira_before),
                         by_endpoint(Counter(gl.knobs.requests), gl_before))
            print(f"backfill: the run ended ({run['status']}) {time.monotonic() - done:.1f} s later")
            after_probe = capacity(gl_url, probe_token, probe_project.id, args.probe, ITEM_CONCURRENCY)
            probe_single = capacity(gl_url, probe_token, probe_project.id, args.probe, 1)
            probe_items = capacity(gl_url, probe_token, probe_project.id, args.probe // (1 + args.comments),
                                   ITEM_CONCURRENCY, args.comments)

            # -- live edits: webhooks ------------------------------------------------------------------
            alice_jira = {"Authorization": f"Bearer {jira.alice.token}"}
            hook_url = f"http://127.0.0.1:{port}/api/v1/hooks/{integration}/{secret}?side=a"
            hook = Rest.call("POST", f"{jira_url}/rest/webhooks/1.0/webhook", alice_jira, {
                "name": "tandem", "url": hook_url, "events": ["jira:issue_updated"],
                "filters": {"issue-related-events-section": "project = PROJ"}})
            hook_id = hook["self"].rsplit("/", 1)[1]
            iids = {issue.title: iid for iid, issue in list(widgets.issues.items())}
            jira_issues = sorted(jira.issues.values(), key=lambda i: int(i.id))
            edits = min(args.edits, len(jira_issues) // 2)
            hooked, hook_missing = live_edits(jira_url, jira, widgets, iids, jira_issues[:edits], "webhook",
                                              rate=10, timeout=edits / 10 + 30)
            statuses = Counter(str(d["status"]) for d in jira.deliveries)

            # -- live edits: polling only --------------------------------------------------------------
            Rest.call("DELETE", f"{jira_url}/rest/webhooks/1.0/webhook/{hook_id}", alice_jira)
            spec["schedule"]["interval_seconds"] = POLL_INTERVAL
            changed = datetime.now(timezone.utc)
            asyncio.run(sql(f"UPDATE {schema}.integrations SET spec = $1, updated_at = now() WHERE id = $2",
                            json.dumps(spec), integration))
            wait(lambda: asyncio.run(sql(f"SELECT 1 FROM {schema}.runs WHERE started_at > $1 AND status <> "
                                         "'running'", changed)), 60, "a run on the new schedule")
            polled, poll_missing = live_edits(jira_url, jira, widgets, iids, jira_issues[edits:2 * edits], "poll",
                                              rate=edits / (3 * POLL_INTERVAL), timeout=3 * POLL_INTERVAL + 60)
            poll_runs = asyncio.run(sql(
                f"SELECT count(*) AS runs, avg(extract(epoch FROM finished_at - started_at)) AS mean, "
                f"max(extract(epoch FROM finished_at - started_at)) AS longest, avg(items_seen) AS seen "
                f"FROM {schema}.runs WHERE started_at > $1 AND status <> 'running'", changed))[0]
            # -- a backfill at a real app's pace, with webhooks -------------------------------------------
            asyncio.run(sql(f"UPDATE {schema}.integrations SET enabled = false, updated_at = now() WHERE id = $1",
                            integration))
            paced = paced_backfill(args, jira, gl, alice, jira_url, gl_url, port, spec, sql, schema, notes)
            peak_all, hwm = sampler.overall, hwm_bytes(worker)
            restarted = not any(pid == worker for pid, _, _ in descendants(appliance.pid))
            sampler.stop.set()
    finally:
        if appliance is not None:
            stop(appliance)
        pg.drop_database(database, role_prefix="sbench_")
        pg.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    report(args, locals())


def eta_words(eta: list[tuple[int, float, float]]) -> str:
    return " | ".join(f"{pct}%: {said:.1f} s said, {left:.1f} s left" for pct, said, left in eta) or "-"


def report(args, f: dict) -> None:
    n = args.items
    elapsed = f["done"] - f["first"]
    rate = n / elapsed
    denominator = max(f["before_probe"], f["after_probe"])
    jira_calls, gl_calls = f["jira_calls"], f["gl_calls"]
    run_jira, run_gl = f["run_calls"]
    total = sum(jira_calls.values()) + sum(gl_calls.values())
    run_total = sum(run_jira.values()) + sum(run_gl.values())
    print(f"\n1. backfill of {n} Jira issues x {args.comments} comments into GitLab, one tenant worker process")
    print(f"   from the first counterpart to the last comment: {elapsed:.1f} s (from enabling the integration: "
          f"{f['done'] - f['enabled']:.1f} s); the run ({f['run']['status']}, created {f['run']['items_created']}) "
          f"lasted {float(f['run']['seconds']):.1f} s and made {f['run']['api_calls']} API calls by its own count")
    print("   API calls by endpoint (the emulators' counters): count and per item, until the last comment was "
          "created | for the whole run")
    for app, calls, whole in (("jira", jira_calls, run_jira), ("gitlab", gl_calls, run_gl)):
        for (method, route), count in sorted(whole.items(), key=lambda kv: -kv[1]):
            part = calls.get((method, route), 0)
            print(f"     {app:6s} {method:6s} {route:52s} {part:7d} {part / n:6.3f} | {count:7d} {count / n:6.3f}")
    search_pages = math.ceil(n / f["jira"].max_results)
    minimum = (search_pages + n * (1 + args.comments)) / n
    print(f"   minimum the APIs allow: {search_pages} Jira search pages of {f['jira'].max_results} "
          f"(Data Center's maxResults; the page carries every field, the comments included, and the "
          f"marker property) + per item 1 GitLab issue create (the sync marker rides in the description: no "
          f"separate write) + {args.comments} note creates (a new issue has no notes to list first) "
          f"= {minimum:.3f} calls per item")
    wall = f["done"] - f["enabled"]
    busy = [(f["cpu_after"][i] - f["cpu_before"][i]) / wall for i in (0, 1)]
    server_before = f["cpu_before"][2]
    busy.append(sum(t - server_before.get(pid, 0.0) for pid, t in f["cpu_after"][2].items()) / wall)
    rss_mib = lambda v: f"{v / 2**20:.1f} MiB"  # noqa: E731
    hooked, polled = f["hooked"], f["polled"]
    rows = [
        ("backfill throughput", f"{rate:.1f} items/s", ""),
        (f"GitLab create capacity ({ITEM_CONCURRENCY} at a time, before / after)",
         f"{f['before_probe']:.0f} / {f['after_probe']:.0f} creates/s",
         f"the larger is the denominator; 1 at a time: {f['probe_single']:.0f}/s"),
        ("engine items/s / emulator creates/s", f"{rate / denominator:.3f}",
         f"aim >= 0.5; at most {1 / (1 + args.comments):.2f} at {1 + args.comments} creates per item"),
        (f"GitLab capacity for whole items (1 create + {args.comments} notes, {ITEM_CONCURRENCY} at a time)",
         f"{f['probe_items']:.0f} items/s", "a bare client right after the backfill"),
        ("engine items/s / emulator items/s", f"{rate / f['probe_items']:.3f}",
         "the same work per item on both sides of the ratio"),
        ("engine's GitLab creates/s / emulator creates/s", f"{rate * (1 + args.comments) / denominator:.3f}",
         f"{1 + args.comments} creates per item: the load the engine puts on the app"),
        ("API calls per item, until complete | whole run", f"{total / n:.2f} | {run_total / n:.2f}",
         f"minimum {minimum:.2f}"),
        ("the whole run (backfill + the pass over GitLab's new items)",
         f"{float(f['run']['seconds']):.1f} s", f"{n / float(f['run']['seconds']):.1f} items/s"),
        ("CPU busy during the backfill: tenant worker | emulators | PostgreSQL",
         f"{busy[0]:.0%} | {busy[1]:.0%} | {busy[2]:.0%}",
         f"of one core ({os.cpu_count()} cores); the emulators' share includes this driving process"),
        ("peak RSS of the tenant worker, backfill", rss_mib(f["backfill_peak"]),
         f"idle before {rss_mib(f['idle_rss'])}; whole run {rss_mib(f['peak_all'])} (VmHWM {rss_mib(f['hwm'])})"),
        (f"webhook lag p50 / p99 ({len(hooked)} edits, {f['hook_missing']} missing)",
         f"{percentile(hooked, 50):.3f} / {percentile(hooked, 99):.3f} s" if hooked else "-", "aim p99 < 1 s"),
        (f"poll-only lag p50 / p99 ({len(polled)} edits, {f['poll_missing']} missing)",
         f"{percentile(polled, 50):.3f} / {percentile(polled, 99):.3f} s" if polled else "-",
         f"aim p99 < {POLL_INTERVAL} s interval + 1 s"),
    ]
    paced = f["paced"]
    per_item = 1 + args.comments
    rows += [
        (f"3. backfill at {args.latency_ms:g} ms per request ({args.paced_items} items)",
         f"{paced['rate']:.1f} items/s", f"{paced['gl_calls']:.2f} GitLab calls per item, with the edited items' looks"),
        (f"GitLab create capacity at that pace ({ITEM_CONCURRENCY} at a time)", f"{paced['creates']:.0f} creates/s",
         f"whole items: {paced['items']:.1f} items/s; at most {ITEM_CONCURRENCY * 1000 / args.latency_ms:.0f} and "
         f"{ITEM_CONCURRENCY * 1000 / args.latency_ms / per_item:.1f}, {ITEM_CONCURRENCY} requests always in flight"),
        ("engine's GitLab creates/s / emulator creates/s", f"{paced['rate'] * per_item / paced['creates']:.3f}",
         f"aim >= 0.5 (items/s / creates/s: {paced['rate'] / paced['creates']:.3f}, at most {1 / per_item:.2f})"),
        ("engine items/s / emulator items/s", f"{paced['rate'] / paced['items']:.3f}",
         "the same work per item on both sides"),
        (f"webhook lag during that backfill, p50 / p99 ({len(paced['lags'])} edits, {paced['missing']} missing)",
         f"{percentile(paced['lags'], 50):.3f} / {percentile(paced['lags'], 99):.3f} s" if paced["lags"] else "-",
         f"edits of linked items while items {paced['between'][0]}..{paced['between'][1]} were created"),
    ]
    if f["restarted"]:
        print("   NOTE: the tenant worker was restarted during the run: its RSS and CPU figures are partial")
    print(f"\n   webhook deliveries by status: {dict(f['statuses'])}")
    pr = f["poll_runs"]
    print(f"   polling only: {pr['runs']} runs, {float(pr['mean'] or 0):.2f} s mean, {float(pr['longest'] or 0):.2f} s "
          f"longest, {float(pr['seen'] or 0):.0f} items looked at per run (the overlap window re-reads recent changes)")
    print(f"\n   {'figure':62s} {'value':21s} aim / note")
    for name, value, note in rows:
        print(f"   {name:62s} {value:21s} {note}")
    print("\n   time left for side A's poll as the run's progress gave it (the panel's figure), against the time "
          "until the last comment was created:")
    print(f"     1. backfill: {eta_words(f['eta'])}")
    print(f"     3. at {args.latency_ms:g} ms per request: {eta_words(paced['eta'])}")
    print(f"\nreproduce: {COMMAND}" + (f" --items {n}" if n != 5000 else ""))


if __name__ == "__main__":
    main()
