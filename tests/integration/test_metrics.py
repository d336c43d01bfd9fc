"""Prometheus metrics as a scraper sees them: requests by route template, latency,
sign-ins and tenant workers; served to `[metrics] allow` only; in a real `tandem run`
with two web workers, every scrape adds up all workers (multiprocess mode), a dead
worker's counts stay, a restart starts from zero, and `[metrics] listen` serves them
on a separate plain-HTTP listener instead of the main one."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from appliance import db, metrics, nodes
from appliance.config import load_config
from appliance.keys import MasterKey
from appliance.web.app import create_app
from tests.harness import ROOT, free_port, https_get, tandem_command, wait_for, write_config
from tests.integration.web_setup import prepared_cluster

CONSOLE = {"Host": "tandem.test"}


@pytest.fixture
def key() -> MasterKey:
    return MasterKey(os.urandom(32))


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) -> value, for every sample of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def offline(data_dir: Path, cluster_name: str, name: str = "tandem.toml", http_extra: str = "",
            extra: str = ""):
    nowhere = data_dir / "no-server-here"
    nowhere.mkdir(exist_ok=True)
    path = write_config(data_dir / name, cluster_name=cluster_name, data_dir=data_dir, extra=extra,
                        dsn=f"postgresql://tandem@/tandem?host={nowhere}&port=5432")
    path.write_text(path.read_text().replace("[tls]", f"{http_extra}\n[tls]"))
    return load_config(path)


async def scrape(client, **kwargs) -> dict:
    response = await client.get("/-/metrics", **kwargs)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(await response.text())


# -- one process (the app in the test's event loop) ------------------------------------------------

async def test_requests_are_counted_by_route_template(aiohttp_client, data_dir, cluster_name, key):
    app = create_app(offline(data_dir, cluster_name), key)

    async def item(request):
        return web.json_response({"id": request.match_info["id"]})
    app.router.add_get("/test/items/{id}", item)
    client = await aiohttp_client(app)
    route = "/test/items/{id}"
    before = await scrape(client)
    for item_id in ("1", "2", "3"):
        assert (await client.get(f"/test/items/{item_id}", headers=CONSOLE)).status == 200
    assert (await client.get("/test/items/4", headers={"Host": "x.y.tandem.test"})).status == 404
    assert (await client.get("/api/no/such/path", headers=CONSOLE)).status == 404
    assert (await client.request("PROPFIND", "/test/items/5", headers=CONSOLE)).status == 405
    after_response = await client.get("/-/metrics")
    text = await after_response.text()
    after = samples(text)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert moved("http_requests_total", route=route, method="GET", status="200") == 3
    assert moved("http_requests_total", route=route, method="GET", status="404") == 1   # the host router's
    assert moved("http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert moved("http_request_duration_seconds_count", route=route, method="GET") == 4
    assert moved("http_request_duration_seconds_bucket", route=route, method="GET", le="+Inf") == 4
    assert value(after, "http_request_duration_seconds_sum", route=route, method="GET") > 0
    assert moved("http_requests_total", route="unmatched", method="other", status="405") == 1
    # Never the raw path or method: clients cannot create series.
    assert "/test/items/1" not in text and "/api/no/such/path" not in text and "PROPFIND" not in text
    # The scrape before this one was counted too.
    assert value(after, "http_requests_total", route="/-/metrics", method="GET", status="200") >= 1


async def test_logins_are_counted_by_realm_and_outcome(aiohttp_client, data_dir, cluster_name, key):
    client = await aiohttp_client(create_app(offline(data_dir, cluster_name), key))
    before = await scrape(client)
    metrics.login("tenant", "success")
    metrics.login("tenant", "success")
    metrics.login("console", "bad_password")
    after = await scrape(client)
    assert value(after, "logins_total", realm="tenant", outcome="success") - \
        value(before, "logins_total", realm="tenant", outcome="success") == 2
    assert value(after, "logins_total", realm="console", outcome="bad_password") - \
        value(before, "logins_total", realm="console", outcome="bad_password") == 1


@pytest.mark.parametrize("http_extra, metrics_extra, headers, allowed", [
    ("", "", {}, True),                                                            # 127.0.0.1: allowed
    ("", "", {"Host": "nosuch.tandem.test"}, True),                                # any Host
    ('trusted_proxies = ["127.0.0.1"]', "", {"X-Forwarded-For": "203.0.113.9"}, False),
    ('trusted_proxies = ["127.0.0.1"]', 'allow = ["203.0.113.0/24"]', {"X-Forwarded-For": "203.0.113.9"}, True),
    ("", 'allow = ["203.0.113.0/24"]', {"X-Forwarded-For": "203.0.113.9"}, False),  # untrusted XFF: ignored
    ("", 'allow = ["10.0.0.0/8"]', {}, False),
    ("", "enabled = false", {}, False),
])
async def test_only_allowed_clients_may_read_the_metrics(aiohttp_client, data_dir, cluster_name, key,
                                                         http_extra, metrics_extra, headers, allowed):
    config = offline(data_dir, cluster_name, http_extra=http_extra, extra=f"[metrics]\n{metrics_extra}\n")
    client = await aiohttp_client(create_app(config, key))
    response = await client.get("/-/metrics", headers=headers)
    if allowed:
        assert response.status == 200
        assert "http_requests_total" in await response.text()
    else:
        # The usual 404: the same as for any path that does not exist.
        assert response.status == 404
        usual = await client.get("/api/no/such/path", headers=CONSOLE)
        assert await response.read() == await usual.read()


async def test_tenant_workers_and_the_database_at_scrape_time(aiohttp_client, pg_server, data_dir, cluster_name,
                                                             key):
    offline_client = await aiohttp_client(create_app(offline(data_dir, cluster_name), key))
    found = await scrape(offline_client)
    assert value(found, "control_database_up") == 0

    with prepared_cluster(pg_server, {"acme": "active", "globex": "active"}) as cluster:
        async with db.control(cluster.config, cluster.key) as conn:
            ids = dict(await conn.fetch("SELECT slug, id FROM tandem.tenants"))
            await nodes.register_node(conn, "node-a", "host-a", 1, "test")
            await nodes.heartbeat(conn, "node-a", [
                nodes.WorkerReport(ids["acme"], "running", pid=100, restarts=3),
                nodes.WorkerReport(ids["globex"], "failed", restarts=5, boot_failures=5, reason="boom")])
        client = await aiohttp_client(create_app(cluster.config, cluster.key))
        for _ in range(100):   # the pool connects in the background
            found = await scrape(client)
            if value(found, "control_database_up") == 1:
                break
            await asyncio.sleep(0.05)
        assert value(found, "control_database_up") == 1
        assert value(found, "tenant_worker_restarts_total", tenant="acme", node="node-a") == 3
        assert value(found, "tenant_worker_restarts_total", tenant="globex", node="node-a") == 5
        assert value(found, "tenant_worker_state", tenant="acme", node="node-a", state="running") == 1
        assert value(found, "tenant_worker_state", tenant="globex", node="node-a", state="failed") == 1
        assert value(found, "tenant_workers", state="running") == 1
        assert value(found, "tenant_workers", state="failed") == 1
        assert ("tenant_workers", frozenset({("state", "backoff")})) in found   # every state, 0 too
        await client.close()


# -- `tandem run`: several web workers, one view ------------------------------------------------------

class Running:
    def __init__(self, config_path: Path):
        self.config_path = config_path
        self.port = int(re.search(r'listen = \["127\.0\.0\.1:(\d+)"\]', config_path.read_text()).group(1))
        self.log_path = config_path.with_name("appliance.log")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(tandem_command("--config", str(config_path), "run"), cwd=ROOT,
                                            stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: https_get(f"https://127.0.0.1:{self.port}/-/ready")[0] == 200, 30,
                 message="/-/ready 200")

    def web_workers(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == self.process.pid and cmdline.startswith(b"tandem: web worker"):
                    pids.append(int(entry))
        return sorted(pids)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


def scrape_https(port: int) -> dict:
    status, body = https_get(f"https://127.0.0.1:{port}/-/metrics")
    assert status == 200, body
    return samples(body.decode())


def health_count(found: dict) -> float:
    return value(found, "http_requests_total", route="/-/health", method="GET", status="200")


def test_tandem_run_adds_up_all_web_workers(pg_server):
    with prepared_cluster(pg_server, {"acme": "active"}, workers=2) as cluster:
        running = Running(cluster.config_path)
        try:
            for _ in range(40):   # a new connection each: the kernel spreads them over both workers
                assert https_get(f"https://127.0.0.1:{running.port}/-/health")[0] == 200
            workers = running.web_workers()
            assert len(workers) == 2
            directory = cluster.data_dir / "run" / "metrics"
            written = {int(m.group(1)) for f in os.listdir(directory) if (m := re.match(r"\w+_(\d+)\.db$", f))}
            assert set(workers) <= written, (workers, sorted(os.listdir(directory)))
            # Whichever worker answers the scrape, it reports both workers' requests.
            for _ in range(6):
                assert health_count(scrape_https(running.port)) == 40
            acme = wait_for(lambda: value(found := scrape_https(running.port), "tenant_worker_state",
                                          tenant="acme", node=cluster.config.cluster.node_name,
                                          state="running") == 1 and found, 10, message="acme running")
            assert value(acme, "tenant_workers", state="running") == 1

            # A web worker dies: its counts stay in the totals; its replacement adds to them.
            os.kill(workers[0], signal.SIGKILL)
            wait_for(lambda: len(w := running.web_workers()) == 2 and workers[0] not in w, 10,
                     message="a replacement web worker")
            wait_for(lambda: https_get(f"https://127.0.0.1:{running.port}/-/ready")[0] == 200, 10,
                     message="ready again")
            assert health_count(scrape_https(running.port)) == 40
            assert https_get(f"https://127.0.0.1:{running.port}/-/health")[0] == 200
            assert health_count(scrape_https(running.port)) == 41
        finally:
            running.stop()

        # The next run starts from zero, and with [metrics] listen the metrics move to their
        # own plain-HTTP listener (the main listeners answer 404 there).
        metrics_port = free_port()
        text = cluster.config_path.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
        cluster.config_path.write_text(text)
        running = Running(cluster.config_path)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/-/metrics", timeout=5) as response:
                assert response.status == 200
                found = samples(response.read().decode())
            assert health_count(found) == 0
            assert value(found, "control_database_up") == 1
            status, body = https_get(f"https://127.0.0.1:{running.port}/-/metrics")
            assert status == 404
            assert json.loads(body)["error"]["code"] == "not_found"
        finally:
            running.stop()
