"""Benchmarks of the appliance core (printed, not asserted).

Reproduce with:  .venv/bin/python tests/bench/bench_core.py
(after `python3 build.py binary` for the binary figures; `--skip-binary` without it)

Figures, each measured in this one run so they can be compared side by side:
- start to /-/ready, and to every tenant worker running, with 20 tenants: source and binary
- idle PSS per tenant worker with 50 tenants (PSS divides shared copy-on-write pages fairly)
- `migrate` of 200 tenant schemas
- `tenant create` to its worker running
- first restart after `kill -9` of a tenant worker

Uses a throwaway PostgreSQL (the test harness's, fsync off) and the default supervisor
timings (reconcile every 2 s), except where a figure says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance import db, migrator, tenants  # noqa: E402
from appliance.config import load_config  # noqa: E402
from appliance.identifiers import quote_ident  # noqa: E402
from appliance.keys import ensure_key  # noqa: E402
from appliance.proc import pss_bytes, rss_bytes  # noqa: E402
from tests.bench.common import stop, wait  # noqa: E402
from tests.harness import (ROOT, PostgresServer, descendants, free_port, https_get, run_sync,  # noqa: E402
                           world_dir)

BINARY = ROOT / "dist" / "tandem"
COMMAND = "python3 build.py binary && .venv/bin/python tests/bench/bench_core.py"


def write_config(path: Path, dsn: str, cluster: str, data_dir: Path, port: int) -> Path:
    path.write_text(f"""
[cluster]
name = "{cluster}"
domain = "bench.test"
[http]
listen = ["127.0.0.1:{port}"]
redirect_listen = []
workers = 2
[database]
dsn = "{dsn}"
[paths]
data_dir = "{data_dir}"
[security]
key_file = "{data_dir}/master.key"
run_as = ""
[log]
level = "warning"
""")
    return path


class Cluster:
    """One database with N tenants and a config for it."""

    def __init__(self, pg: PostgresServer, name: str, tenant_count: int):
        self.pg = pg
        self.name = name
        self.database = pg.create_database()
        self.data_dir = world_dir(f"tandem-bench-{name}-")
        self.port = free_port()
        self.config_path = write_config(self.data_dir / "tandem.toml", pg.dsn(self.database), name,
                                        self.data_dir, self.port)
        self.config = load_config(self.config_path)
        self.key = ensure_key(self.config.security.key_file)
        run_sync(migrator.migrate(self.config, self.key))
        run_sync(self.create_tenants([f"t{i:03d}" for i in range(tenant_count)]))

    async def create_tenants(self, slugs: list[str]) -> None:
        async with db.control(self.config, self.key) as conn:
            for slug in slugs:
                await tenants.create_tenant(self.config, self.key, conn, slug)

    def start(self, binary: bool = False) -> subprocess.Popen:
        cmd = ([str(BINARY)] if binary else [sys.executable, "-m", "appliance"]) + \
              ["--config", str(self.config_path), "run"]
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        self.pg.drop_database(self.database, role_prefix=self.name + "_")
        shutil.rmtree(self.data_dir, ignore_errors=True)


def tenant_workers(pid: int) -> dict[str, int]:
    return {cmd.split("tandem: tenant ", 1)[1]: child for child, _, cmd in descendants(pid)
            if cmd.startswith("tandem: tenant ")}


def bench_start(cluster: Cluster, binary: bool, count: int) -> tuple[float, float]:
    started = time.monotonic()
    process = cluster.start(binary)
    try:
        wait(lambda: https_get(f"https://127.0.0.1:{cluster.port}/-/ready", timeout=1)[0] == 200, 120)
        ready = time.monotonic() - started
        wait(lambda: len(tenant_workers(process.pid)) >= count, 120)
        all_running = time.monotonic() - started
        return ready, all_running
    finally:
        stop(process)


def bench_pss(cluster: Cluster, count: int, idle_seconds: float) -> dict:
    process = cluster.start()
    try:
        wait(lambda: len(tenant_workers(process.pid)) >= count, 180)
        time.sleep(idle_seconds)
        workers = tenant_workers(process.pid)
        pss = [pss_bytes(pid) or 0 for pid in workers.values()]
        rss = [rss_bytes(pid) or 0 for pid in workers.values()]
        return {"workers": len(workers), "pss_mean": statistics.mean(pss), "pss_max": max(pss),
                "rss_mean": statistics.mean(rss), "supervisor_pss": pss_bytes(process.pid) or 0}
    finally:
        stop(process)


def bench_migrate(cluster: Cluster) -> float:
    async def reset_schemas():
        async with db.control(cluster.config, cluster.key) as conn:
            rows = await conn.fetch("SELECT schema_name, role_name FROM tandem.tenants")
            for row in rows:
                schema, role = quote_ident(row["schema_name"]), quote_ident(row["role_name"])
                await conn.execute(f"DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema} AUTHORIZATION {role}")
            return len(rows)
    count = run_sync(reset_schemas())
    started = time.monotonic()
    run_sync(migrator.migrate(cluster.config, cluster.key))
    elapsed = time.monotonic() - started
    print(f"  ({count} schemas reset to empty before the timed run)")
    return elapsed


def bench_create_and_restart(cluster: Cluster, rounds: int) -> tuple[list[float], list[float]]:
    process = cluster.start()
    creates, restarts = [], []
    try:
        wait(lambda: https_get(f"https://127.0.0.1:{cluster.port}/-/ready", timeout=1)[0] == 200, 120)
        for i in range(rounds):
            slug = f"new{i}"
            started = time.monotonic()
            run_sync(cluster.create_tenants([slug]))
            pid = wait(lambda: tenant_workers(process.pid).get(slug), 30)
            creates.append(time.monotonic() - started)
            wait(lambda: _running_since(pid) > 0.5, 10)  # let it settle as a real worker would
            started = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            wait(lambda: tenant_workers(process.pid).get(slug) not in (None, pid), 30)
            restarts.append(time.monotonic() - started)
    finally:
        stop(process)
    return creates, restarts


def _running_since(pid: int) -> float:
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-binary", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"reproduce: {COMMAND}")
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    pg = PostgresServer()
    pg.start()
    clusters = []
    try:
        c20 = Cluster(pg, "b20", 20)
        clusters.append(c20)
        source = bench_start(c20, False, 20)
        print(f"start, 20 tenants, source: /-/ready {source[0]:.2f} s, all 20 workers {source[1]:.2f} s")
        if not args.skip_binary:
            if not BINARY.exists():
                raise SystemExit("dist/tandem missing: python3 build.py binary (or --skip-binary)")
            binary = bench_start(c20, True, 20)
            print(f"start, 20 tenants, binary: /-/ready {binary[0]:.2f} s, all 20 workers {binary[1]:.2f} s "
                  f"(binary/source: {binary[0] / source[0]:.2f} to ready, {binary[1] / source[1]:.2f} to workers)")

        creates, restarts = bench_create_and_restart(c20, args.rounds)
        print(f"tenant create -> worker running ({args.rounds} rounds, reconcile every 2 s): "
              f"median {statistics.median(creates):.2f} s, max {max(creates):.2f} s (aim < 5 s)")
        print(f"kill -9 -> worker restarted ({args.rounds} rounds): median {statistics.median(restarts):.2f} s, "
              f"max {max(restarts):.2f} s (aim < 2 s)")

        c50 = Cluster(pg, "b50", 50)
        clusters.append(c50)
        memory = bench_pss(c50, 50, idle_seconds=5)
        print(f"idle memory, {memory['workers']} tenant workers: PSS mean {mib(memory['pss_mean'])}, "
              f"max {mib(memory['pss_max'])} (aim <= 12 MiB); RSS mean {mib(memory['rss_mean'])}; "
              f"supervisor PSS {mib(memory['supervisor_pss'])}")

        c200 = Cluster(pg, "b200", 200)
        clusters.append(c200)
        elapsed = bench_migrate(c200)
        print(f"migrate 200 tenant schemas: {elapsed:.2f} s (aim < 20 s)")
    finally:
        for cluster in clusters:
            cluster.close()
        pg.stop()


if __name__ == "__main__":
    main()
