"""Benchmark of the web tier (printed, not asserted).

Reproduce with:  .venv/bin/python tests/bench/bench_web.py
(needs `wrk`; run as root and it is installed with `apt-get install -y wrk`)

Figures, each measured in this one run so they can be compared side by side:
- GET /api/v1/me with a session cookie on a tenant host, against `tandem run`
  with the default web worker count ([http] workers unset: one per CPU): wrk over
  HTTPS, keep-alive, 64 connections, 2 threads, 10 s, --latency. All requests carry
  one session, so this measures a worker answering from its cached sign-in
  (appliance.auth) with a database check about once a second per worker;
- the same wrk run against a bare aiohttp "hello world" over HTTPS in one process,
  with the appliance's own TLS context (same certificate, same settings);
- req/s of both, their ratio, p50/p99 latency; and, to read the ratio, GET /-/health
  on the appliance (the same middleware chain, no database round trip);
- sign-in throughput (POST /api/v1/auth/login, argon2id on purpose): sequential, and
  with 8 concurrent clients; logins/s. The per-address sign-in throttle is raised
  for this run ([auth] address_attempts_per_minute = 10000): all attempts come from
  127.0.0.1.

wrk and the servers share this machine's CPUs; the figures are relative, not absolute.
Uses a throwaway PostgreSQL (the test harness's, fsync off).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp  # noqa: E402

from appliance import db, migrator, tenants  # noqa: E402
from appliance.config import load_config  # noqa: E402
from appliance.keys import ensure_key  # noqa: E402
from tests.bench.common import stop, wait  # noqa: E402
from tests.harness import ROOT, PostgresServer, free_port, https_get, run_sync, tandem, world_dir  # noqa: E402

COMMAND = ".venv/bin/python tests/bench/bench_web.py"
DOMAIN = "bench.test"
TENANT_HOST = f"acme.{DOMAIN}"
CLIENTS = 8
# One account per concurrent client: parallel sign-ins of one account count as failures
# until checked (appliance.auth), so 8 at once would lock a single account.
EMAILS = [f"bench{i}@example.com" for i in range(CLIENTS)]
PASSWORD = "correct horse battery staple"
WRK = ["-t2", "-c64", "-d10s", "--latency"]


def write_config(path: Path, dsn: str, data_dir: Path, port: int) -> Path:
    # No [http] workers: the default (one per CPU) is what is measured.
    path.write_text(f"""
[cluster]
name = "cbench"
domain = "{DOMAIN}"
[http]
listen = ["127.0.0.1:{port}"]
redirect_listen = []
[database]
dsn = "{dsn}"
[paths]
data_dir = "{data_dir}"
[security]
key_file = "{data_dir}/master.key"
run_as = ""
[auth]
address_attempts_per_minute = 10000
[log]
level = "warning"
""")
    return path


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is not installed (apt-get install wrk), and we are not root to install it")
    print("wrk is missing: installing it with `apt-get install -y wrk` (we are root)")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or sys.exit("apt-get install wrk did not provide wrk")


def run_wrk(wrk: str, url: str, headers: dict[str, str]) -> dict:
    command = [wrk, *WRK]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {p: _ms(m.group(1)) for p in ("50", "99")
               if (m := re.search(rf"^\s+{p}(?:\.000)?%\s+(\S+)", output, re.M))}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {"rps": rps, "p50": latency.get("50"), "p99": latency.get("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(0) if errors else "",
            "command": " ".join(f"'{c}'" if " " in c else c for c in command)}


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def hello_server(config_path: str, port: int) -> None:
    """The baseline: aiohttp's hello world, one process, the appliance's TLS context."""
    from aiohttp import web
    from appliance.tls import CertificateStore

    config = load_config(config_path)

    async def hello(request):
        return web.Response(text="Hello, world")
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=CertificateStore(config).context(),
                print=None, access_log=None)


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def login(session: aiohttp.ClientSession, url: str, email: str = EMAILS[0]) -> str:
    async with session.post(url, json={"email": email, "password": PASSWORD}, headers={"Host": TENANT_HOST}) as r:
        if r.status != 200:
            raise RuntimeError(f"sign-in failed: {r.status} {await r.text()}")
        return r.cookies["__Host-tandem_session"].value


async def bench_logins(port: int, count: int, concurrency: int) -> float:
    """Sign-ins per second: `concurrency` clients (each its own keep-alive connection), `count` in all."""
    url = f"https://127.0.0.1:{port}/api/v1/auth/login"
    done = 0

    async def client(email: str):
        nonlocal done
        connector = aiohttp.TCPConnector(ssl=client_context(), limit=1)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:
            while done < count:
                done += 1
                await login(session, url, email)
    started = time.perf_counter()
    await asyncio.gather(*(client(email) for email in EMAILS[:concurrency]))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hello", nargs=2, metavar=("CONFIG", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--logins", type=int, default=40, help="sign-ins per login figure (default 40)")
    args = parser.parse_args()
    if args.hello:
        hello_server(args.hello[0], int(args.hello[1]))
        return

    wrk = ensure_wrk()
    pg = PostgresServer()
    pg.start()
    database = pg.create_database()
    data_dir = world_dir("tandem-bench-web-")
    processes: list[subprocess.Popen] = []
    try:
        port, hello_port = free_port(), free_port()
        config_path = write_config(data_dir / "tandem.toml", pg.dsn(database), data_dir, port)
        config = load_config(config_path)
        key = ensure_key(config.security.key_file)

        async def prepare():
            await migrator.migrate(config, key)
            async with db.control(config, key) as conn:
                await tenants.create_tenant(config, key, conn, "acme")
        run_sync(prepare())
        for email in EMAILS:
            created = tandem("user", "create", "--tenant", "acme", "--email", email, "--role", "viewer",
                             "--password-stdin", config=config_path, input=PASSWORD + "\n")
            if created.returncode != 0:
                raise RuntimeError(f"tandem user create failed: {created.stderr}")

        appliance = subprocess.Popen([sys.executable, "-m", "appliance", "--config", str(config_path), "run"],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(appliance)
        wait(lambda: https_get(f"https://127.0.0.1:{port}/-/ready", timeout=1)[0] == 200, 60, "/-/ready")
        hello = subprocess.Popen([sys.executable, __file__, "--hello", str(config_path), str(hello_port)],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(hello)
        wait(lambda: https_get(f"https://127.0.0.1:{hello_port}/")[0] == 200, 30, "hello world up")

        async def cookie():
            connector = aiohttp.TCPConnector(ssl=client_context())
            async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:
                return await login(session, f"https://127.0.0.1:{port}/api/v1/auth/login")
        session_cookie = asyncio.run(cookie())

        print(f"web tier benchmark: {config.http.workers} web workers (the default: CPUs = {os.cpu_count()}), "
              f"wrk {' '.join(WRK)}, HTTPS keep-alive")
        baseline = run_wrk(wrk, f"https://127.0.0.1:{hello_port}/", {})
        me = run_wrk(wrk, f"https://127.0.0.1:{port}/api/v1/me",
                     {"Host": TENANT_HOST, "Cookie": f"__Host-tandem_session={session_cookie}"})
        # For reading the ratio: the same middleware chain without a database round trip.
        health = run_wrk(wrk, f"https://127.0.0.1:{port}/-/health", {})
        for name, figures in (("aiohttp hello world, 1 process", baseline),
                              ("tandem GET /api/v1/me (session)", me),
                              ("tandem GET /-/health (no database)", health)):
            print(f"  {name:40s} {figures['rps']:9.0f} req/s   p50 {figures['p50']:7.2f} ms   "
                  f"p99 {figures['p99']:7.2f} ms   non-2xx {figures['non2xx']}  {figures['errors']}")
        print(f"  ratio tandem / hello world: {me['rps'] / baseline['rps']:.2f} (aim >= 0.5); "
              f"/-/health / hello world: {health['rps'] / baseline['rps']:.2f}")

        sequential = asyncio.run(bench_logins(port, args.logins, 1))
        parallel = asyncio.run(bench_logins(port, args.logins, CLIENTS))
        print(f"  sign-ins, sequential:             {sequential:6.1f} logins/s ({args.logins} sign-ins)")
        print(f"  sign-ins, {CLIENTS} concurrent clients:   {parallel:6.1f} logins/s ({args.logins} sign-ins, "
              f"one account each)")
        print(f"wrk commands: {baseline['command']}\n              {me['command']}")
        print(f"reproduce: {COMMAND}")
    finally:
        for process in reversed(processes):
            stop(process)
        pg.drop_database(database, role_prefix="cbench_")
        pg.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
