"""The test harness: a throwaway PostgreSQL (the appliance's own embedded-server code,
fsync off, as the `postgres` user when run as root), one database per test, config
files for the appliance, free ports, and a way to run `tandem` as a real process."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import asyncpg

from appliance.pgembed import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent


def run_sync(coro):
    """Run a coroutine to completion from sync code, even inside a running loop's thread."""
    result: dict = {}

    def target():
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def world_dir(prefix: str) -> Path:
    """A temp directory other users can traverse (the postgres / tandem accounts need to)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One server for the whole test session; tests get databases in it."""

    def __init__(self):
        self.root = world_dir("tandem-test-pg-")
        self.password = secrets.token_urlsafe(16)
        self.server = EmbeddedPostgres(self.root / "data", self.root / "run", superuser="tandem_test",
                                       password=self.password, fsync=False,
                                       os_user="postgres" if os.geteuid() == 0 else None,
                                       max_connections=1000, log_file=self.root / "postgres.log",
                                       settings={"shared_buffers": "256MB", "log_min_messages": "warning"})

    def start(self) -> None:
        # The log file is opened by us (root) before the server drops to `postgres`.
        self.server.start(timeout=120)

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        socket_dir = str(self.server.socket_dir)
        return (f"postgresql://tandem_test:{self.password}@/{database}"
                f"?host={socket_dir}&port={self.server.port}")

    async def connect(self, database: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn(database))

    def create_database(self) -> str:
        name = "test_" + secrets.token_hex(6)

        async def create():
            conn = await self.connect()
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()
        run_sync(create())
        return name

    def drop_database(self, name: str, role_prefix: str | None = None) -> None:
        async def drop():
            conn = await self.connect()
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                if role_prefix:
                    roles = await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1",
                                             role_prefix.replace("_", r"\_") + "%")
                    for row in roles:
                        await conn.execute(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
            finally:
                await conn.close()
        run_sync(drop())


def write_config(path: Path, *, dsn: str = "", cluster_name: str, domain: str = "tandem.test",
                 data_dir: Path, listen: list[str] | None = None, redirect: list[str] | None = None,
                 workers: int = 1, tls_mode: str = "self-signed", run_as: str = "",
                 extra: str = "") -> Path:
    listen = listen if listen is not None else [f"127.0.0.1:{free_port()}"]
    redirect = redirect if redirect is not None else []
    text = f"""
[cluster]
name = "{cluster_name}"
domain = "{domain}"

[http]
listen = {listen!r}
redirect_listen = {redirect!r}
workers = {workers}

[tls]
mode = "{tls_mode}"

[database]
dsn = "{dsn}"

[paths]
data_dir = "{data_dir}"

[security]
key_file = "{data_dir}/master.key"
run_as = "{run_as}"

[supervisor]
grace_seconds = 10
heartbeat_seconds = 0.5
reconcile_seconds = 0.5
restart_backoff_max_seconds = 2
failed_cooldown_seconds = 600
boot_failures_before_failed = 3
{extra}
""".replace("'", '"')
    path.write_text(text)
    return path


def tandem_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "appliance", *args]


def tandem(*args: str, config: Path | None = None, input: str | None = None, timeout: float = 120,
           env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI from source as a real process."""
    cmd = tandem_command(*args)
    if config is not None:
        cmd[3:3] = ["--config", str(config)]
    return subprocess.run(cmd, cwd=ROOT, input=input, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def process_table() -> list[tuple[int, int, str]]:
    """(pid, ppid, command line) of every process we can see."""
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        rows.append((int(entry), ppid, cmdline))
    return rows


def descendants(pid: int) -> list[tuple[int, int, str]]:
    """Every living process below `pid`."""
    table = process_table()
    found, frontier = [], {pid}
    while frontier:
        children = [row for row in table if row[1] in frontier]
        found += children
        frontier = {row[0] for row in children}
    return found


def https_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    """GET over HTTPS without verifying the (self-signed) certificate; (status, body), 0 if unreachable."""
    import ssl
    import urllib.error
    import urllib.request
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def living(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
