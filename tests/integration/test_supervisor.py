"""`tandem run` as a real process tree against the harness PostgreSQL: what an
administrator sees with ps, `tandem tenant list`, the probes, the log and systemd.

Most tests share one running appliance (module scope, in file order; the last one
stops it); start-up failures, the memory limit and a missing database get their own.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import pytest

from appliance import migrator
from appliance.children import SupervisedPostgres
from appliance.pgembed import EmbeddedPostgres
from tests.harness import ROOT, run_sync, tandem, tandem_command, wait_for, world_dir, write_config

SUPERVISOR_TITLE = "tandem: supervisor"


# -- looking at processes -----------------------------------------------------------------


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def parent(pid: int) -> int | None:
    try:
        # The command name may hold spaces and parentheses: ppid is the 2nd field after the last ")".
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def children(pid: int) -> dict[int, str]:
    """Live children of `pid` by title (zombies left out: they are dead)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent(int(entry)) == pid and state(int(entry)) not in ("Z", "X", ""):
            found[int(entry)] = title(int(entry))
    return found


def gone(pid: int) -> bool:
    return state(pid) in ("", "Z", "X")


# -- the appliance as a process --------------------------------------------------------------


class NotifyListener:
    """A stand-in for systemd: a datagram socket, drained by a thread (the kernel queues
    only ~10 datagrams)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._running = True
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while self._running:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._running = False
        self._thread.join()
        self.sock.close()


class Appliance:
    """One `tandem run` process with its config, database and log."""

    def __init__(self, config: Path, *, env: dict | None = None, command: list[str] | None = None):
        self.config = config
        self.log_path = config.with_name("appliance.log")
        self.port = int(re.search(r'listen = \["127\.0\.0\.1:(\d+)"\]', config.read_text()).group(1))
        self.started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command or tandem_command("--config", str(config), "run"), cwd=ROOT,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **(env or {})})
        self.pid = self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 10) -> re.Match:
        return wait_for(lambda: re.search(pattern, self.log()), timeout, message=f"log line /{pattern}/")

    def workers(self, prefix: str = "tandem: ") -> dict[int, str]:
        return {pid: t for pid, t in children(self.pid).items() if t.startswith(prefix)}

    def tenant_pid(self, slug: str) -> int | None:
        pids = [pid for pid, t in self.workers().items() if t == f"tandem: tenant {slug}"]
        assert len(pids) <= 1, f"two workers for tenant {slug}: {pids}"
        return pids[0] if pids else None

    def get(self, path: str) -> int:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except OSError:
            return 0
        finally:
            conn.close()

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def tenant_row(config: Path, slug: str) -> dict:
    result = tandem("tenant", "list", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return next(row for row in json.loads(result.stdout) if row["slug"] == slug)


def create_tenant(config: Path, slug: str) -> None:
    result = tandem("tenant", "create", slug, config=config)
    assert result.returncode == 0, result.stderr


def sql(pg_server, database: str, statement: str) -> None:
    async def run():
        conn = await pg_server.connect(database)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()
    run_sync(run())


class Setting:
    """A database and a data dir for one appliance, torn down afterwards. `like`: another
    node of that setting's cluster (same database and cluster name, its own data dir)."""

    def __init__(self, pg_server, like: Setting | None = None, database_extra: str = "", **config):
        self.pg_server = pg_server
        self.owner = like is None
        self.cluster = like.cluster if like else "c" + secrets.token_hex(4)
        self.database = like.database if like else pg_server.create_database()
        self.data_dir = world_dir("tandem-test-sup-")
        config.setdefault("dsn", pg_server.dsn(self.database))
        self.config = write_config(self.data_dir / "tandem.toml", cluster_name=self.cluster,
                                   data_dir=self.data_dir, **config)
        if database_extra:
            text = self.config.read_text()
            self.config.write_text(re.sub(r'(dsn = "[^"]*")', lambda m: f"{m.group(1)}\n{database_extra}", text))

    def close(self) -> None:
        if self.owner:
            self.pg_server.drop_database(self.database, role_prefix=self.cluster + "_")
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def setting(pg_server):
    setting = Setting(pg_server, workers=2)
    yield setting
    setting.close()


@pytest.fixture(scope="module")
def notify(setting):
    listener = NotifyListener(setting.data_dir / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def appliance(setting, notify):
    app = Appliance(setting.config, env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
    yield app
    if app.process.poll() is None:
        app.stop()
    print(app.log())


# -- the shared appliance, in order --------------------------------------------------------


def test_becomes_ready_with_its_web_workers_and_tells_systemd(appliance, notify):
    wait_for(lambda: appliance.get("/-/ready") == 200, 20, message="/-/ready 200")
    print(f"\nstart to /-/ready 200: {time.monotonic() - appliance.started:.2f} s")
    assert appliance.get("/-/health") == 200
    assert title(appliance.pid) == SUPERVISOR_TITLE
    assert sorted(appliance.workers().values()) == ["tandem: web worker 0", "tandem: web worker 1"]
    wait_for(lambda: any(m.startswith("READY=1") for m in notify.messages), 5, message="READY=1")
    ready = next(m for m in notify.messages if m.startswith("READY=1"))
    assert "STATUS=serving" in ready
    # WATCHDOG_USEC=1 s: a ping every half second from the supervisor's loop.
    wait_for(lambda: notify.messages.count("WATCHDOG=1") >= 2, 3, message="two watchdog pings")
    assert re.search(r"ready in [\d.]+ s: 2 web workers", appliance.log())


def test_a_new_tenant_gets_a_worker_and_a_killed_worker_comes_back(appliance, setting):
    created = time.monotonic()
    create_tenant(setting.config, "acme")
    pid = wait_for(lambda: appliance.tenant_pid("acme"), 5, message="tenant acme's worker")
    print(f"\ntenant create to worker process: {time.monotonic() - created:.2f} s")
    wait_for(lambda: tenant_row(setting.config, "acme")["worker_state"] == "running", 5, message="running")
    row = tenant_row(setting.config, "acme")
    assert row["pid"] == pid and row["restarts"] == 0

    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    new_pid = wait_for(lambda: (p := appliance.tenant_pid("acme")) not in (None, pid) and p, 2,
                       message="a new worker for acme")
    print(f"restart after kill -9: {time.monotonic() - killed:.2f} s")
    appliance.wait_log(rf"tenant acme: worker \(pid {pid}\) died: killed by SIGKILL \(out of memory\?\); restarting")
    row = wait_for(lambda: (r := tenant_row(setting.config, "acme"))["pid"] == new_pid and r, 5,
                   message="the new pid reported")
    assert row["restarts"] == 1
    assert row["last_exit"] == "killed by SIGKILL (out of memory?)"


def test_a_tenant_that_cannot_log_in_is_marked_failed_and_others_carry_on(appliance, setting, pg_server):
    create_tenant(setting.config, "broken")
    row = wait_for(lambda: (r := tenant_row(setting.config, "broken"))["worker_state"] == "running" and r, 5,
                   message="tenant broken's worker running")
    pid = row["pid"]
    acme = appliance.tenant_pid("acme")
    assert acme
    sql(pg_server, setting.database, f'ALTER ROLE "{setting.cluster}_t_broken" NOLOGIN')
    os.kill(pid, signal.SIGKILL)

    # Three boot failures (boot_failures_before_failed = 3), 0.5 s and 1 s apart, then failed.
    row = wait_for(lambda: (r := tenant_row(setting.config, "broken"))["worker_state"] == "failed" and r, 10,
                   message="tenant broken failed")
    assert "not permitted to log in" in row["reason"], row
    assert row["pid"] is None
    appliance.wait_log(r"tenant broken: worker could not start 3 times in a row: .*not permitted to log in; "
                       r"next try in 600 s")
    # Failed means no more attempts until the cool-down (600 s here): no process, no hot loop.
    time.sleep(1.5)
    assert appliance.tenant_pid("broken") is None
    assert tenant_row(setting.config, "broken")["restarts"] == 3
    assert appliance.tenant_pid("acme") == acme, "another tenant's worker must not be touched"


def test_disabling_a_tenant_stops_its_worker_and_enabling_brings_it_back(appliance, setting):
    pid = appliance.tenant_pid("acme")
    assert pid
    assert tandem("tenant", "disable", "acme", config=setting.config).returncode == 0
    wait_for(lambda: gone(pid) and appliance.tenant_pid("acme") is None, 5, message="acme's worker gone")
    appliance.wait_log(rf"tenant acme: worker \(pid {pid}\) stopped: exit 0")
    wait_for(lambda: tenant_row(setting.config, "acme")["worker_state"] is None, 5, message="no worker reported")

    assert tandem("tenant", "enable", "acme", config=setting.config).returncode == 0
    new_pid = wait_for(lambda: appliance.tenant_pid("acme"), 5, message="acme's worker back")
    assert new_pid != pid
    wait_for(lambda: tenant_row(setting.config, "acme")["worker_state"] == "running", 5, message="running")


def test_a_hung_worker_is_found_by_its_missing_heartbeat_and_replaced(appliance, setting):
    pid = appliance.tenant_pid("acme")
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    # heartbeat 0.5 s -> timeout 3 s; SIGABRT cannot end a stopped process, SIGKILL 3 s later does.
    new_pid = wait_for(lambda: (p := appliance.tenant_pid("acme")) not in (None, pid) and p, 12,
                       message="a replacement for the hung worker")
    took = time.monotonic() - stopped
    assert 3 <= took <= 10, took
    assert gone(pid)
    appliance.wait_log(rf"tenant acme: worker \(pid {pid}\) sent no heartbeat for [\d.]+ s: aborting it")
    appliance.wait_log(rf"tenant acme: worker \(pid {pid}\) still there after SIGABRT: killed")
    row = wait_for(lambda: (r := tenant_row(setting.config, "acme"))["pid"] == new_pid and r, 5,
                   message="replacement reported")
    assert row["last_exit"].startswith("killed: no heartbeat for")


def test_losing_the_lock_connection_stops_syncing_at_once_and_the_worker_is_replaced(appliance, setting,
                                                                                    pg_server):
    pid = appliance.tenant_pid("acme")
    sql(pg_server, setting.database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE application_name = 'tandem tenant acme lock'")
    # The replacement forks after the supervisor's restart delay and boots (key, lock, pool):
    # seconds on a busy shared machine; the stop itself is checked from the log below.
    new_pid = wait_for(lambda: (p := appliance.tenant_pid("acme")) not in (None, pid) and p, 15,
                       message="a new worker after the lock was lost")
    appliance.wait_log(rf"appliance.worker\[{pid}\]: lost the connection that holds the tenant lock: "
                       r"stopped syncing")
    appliance.wait_log(rf"tenant acme: worker \(pid {pid}\) died: exit 4 \(advisory lock lost\); restarting")
    wait_for(lambda: tenant_row(setting.config, "acme")["pid"] == new_pid, 5, message="new worker reported")


def test_sighup_rereads_the_config_and_keeps_the_old_one_when_it_is_broken(appliance, setting):
    text = setting.config.read_text()
    workers = set(appliance.workers())
    try:
        setting.config.write_text(text + '\n[log]\nlevel = "debug"\n')
        os.kill(appliance.pid, signal.SIGHUP)
        appliance.wait_log(r"SIGHUP: reloaded .*tandem\.toml: log level debug")
        setting.config.write_text(text + '\n[log]\nlevel = "loud"\n')
        os.kill(appliance.pid, signal.SIGHUP)
        appliance.wait_log(r"SIGHUP: config not reloaded, keeping the running one: .*\[log\] level")
    finally:
        setting.config.write_text(text)
    time.sleep(0.5)
    assert appliance.process.poll() is None
    assert set(appliance.workers()) == workers, "a reload restarts nobody"
    assert appliance.get("/-/ready") == 200


def test_sigterm_stops_every_worker_within_the_grace_period(appliance, setting, notify):
    workers = appliance.workers()
    assert len(workers) == 3  # two web workers and acme (broken is failed: no process)
    started = time.monotonic()
    os.kill(appliance.pid, signal.SIGTERM)
    assert appliance.process.wait(15) == 0
    took = time.monotonic() - started
    print(f"\nSIGTERM to exit: {took:.2f} s")
    assert took < 10  # grace_seconds
    assert all(gone(pid) for pid in workers), {pid: state(pid) for pid in workers}
    wait_for(lambda: any(m.startswith("STOPPING=1") for m in notify.messages), 2, message="STOPPING=1")
    kinds = [m.split("\n")[0] for m in notify.messages if not m.startswith(("WATCHDOG", "STATUS"))]
    assert kinds == ["READY=1", "STOPPING=1"]
    assert tenant_row(setting.config, "acme")["worker_state"] == "stopped"


# -- appliances of their own --------------------------------------------------------------


def test_a_port_in_use_stops_start_up_with_one_line(pg_server, data_dir, cluster_name, database):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                              listen=[f"127.0.0.1:{port}"])
        result = subprocess.run(tandem_command("--config", str(config), "run"), cwd=ROOT, capture_output=True,
                                text=True, timeout=30)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"tandem: [http] listen: 127.0.0.1:{port} is already in use by another program "
                    "(is tandem already running?); stop it or choose another address")
    assert "Traceback" not in result.stderr


def test_a_second_instance_on_the_same_port_is_refused(appliance_factory):
    first = appliance_factory()
    wait_for(lambda: first.get("/-/health") == 200, 10, message="first instance serving")
    result = tandem("run", config=first.config, timeout=30)
    assert result.returncode == 2
    assert f"127.0.0.1:{first.port} is already in use" in result.stderr


def test_a_worker_over_its_memory_limit_is_killed_with_a_clear_line(appliance_factory):
    # The smallest limit is 64 MiB; a worker forked from a supervisor holding 100 MiB of
    # ballast is over it from the start (its pages count in the worker's RSS too).
    ballast = ("ballast = b'x' * (100 << 20)\nimport sys\nfrom appliance.cli import main\n"
               "sys.exit(main(sys.argv[1:]))")
    app = appliance_factory(extra="tenant_memory_mb = 64",
                            command=lambda config: [sys.executable, "-c", ballast, "--config", str(config), "run"])
    wait_for(lambda: app.get("/-/ready") == 200, 20, message="ready")
    create_tenant(app.config, "hog")
    line = app.wait_log(r"tenant hog exceeded its memory limit \(64 MiB, rss (\d+) MiB\): killed")
    assert int(line.group(1)) >= 100
    row = wait_for(lambda: (r := tenant_row(app.config, "hog"))["restarts"] >= 1 and r, 10,
                   message="hog restarted")
    assert row["last_exit"].startswith("killed: over its memory limit (64 MiB, rss ")
    assert app.stop() == 0


def test_without_a_database_it_serves_health_waits_and_recovers(appliance_factory, pg_server):
    # A socket directory with no server in it; later it becomes the harness server's.
    real = str(pg_server.server.socket_dir)
    appliance = appliance_factory(dsn_socket_dir="pgsock")
    socket_dir = appliance.config.parent / "pgsock"
    wait_for(lambda: appliance.get("/-/health") == 200, 10, message="/-/health 200")
    assert appliance.get("/-/ready") == 503
    appliance.wait_log(r"retrying in \d+ s.*\n(.*\n)*.*retrying in \d+ s", timeout=10)
    assert appliance.process.poll() is None
    attempts = [line for line in appliance.log().splitlines() if "appliance.supervisor" in line
                and "unreachable" in line]
    assert attempts and all(re.search(r"WARNING .*database unreachable \(.*\): .*: retrying in \d+ s$", line)
                            for line in attempts), attempts
    delays = [int(re.search(r"retrying in (\d+) s", line).group(1)) for line in attempts]
    assert delays == sorted(delays), "the waits between attempts grow"
    assert appliance.get("/-/health") == 200 and appliance.get("/-/ready") == 503

    socket_dir.rmdir()
    socket_dir.symlink_to(real)
    wait_for(lambda: appliance.get("/-/ready") == 200, 20, message="ready once the server is there")
    appliance.wait_log(r"database ready")

    # An outage while running: new connections fail, the tenant worker's open ones do not.
    create_tenant(appliance.config, "steady")
    pid = wait_for(lambda: (r := tenant_row(appliance.config, "steady"))["worker_state"] == "running" and r["pid"],
                   5, message="steady's worker running")
    socket_dir.unlink()
    socket_dir.mkdir()
    appliance.wait_log(r"database unreachable \(.*\): .*; tenant workers keep running; next try in \d+ s")
    time.sleep(1)
    assert appliance.tenant_pid("steady") == pid, "a database outage must not stop running tenant workers"
    socket_dir.rmdir()
    socket_dir.symlink_to(real)
    appliance.wait_log(r"database reachable again", timeout=10)
    assert appliance.tenant_pid("steady") == pid
    assert appliance.stop() == 0


def test_a_second_node_stands_by_and_takes_a_tenant_over_when_the_first_dies(appliance_factory, pg_server):
    first = appliance_factory(env={"TANDEM_CLUSTER__NODE_NAME": "node-a"})
    wait_for(lambda: first.get("/-/ready") == 200, 20, message="node a ready")
    create_tenant(first.config, "shared")
    holder = wait_for(lambda: first.tenant_pid("shared"), 5, message="node a's worker")
    # Node b: the same database and master key, another name and port.
    key_file = str(first.config.parent / "master.key")
    second = appliance_factory(env={"TANDEM_CLUSTER__NODE_NAME": "node-b", "TANDEM_SECURITY__KEY_FILE": key_file},
                               like=first)
    wait_for(lambda: second.tenant_pid("shared"), 10, message="node b's worker")

    def workers() -> dict[str, tuple[str, int | None]]:
        async def read():
            conn = await pg_server.connect(first.setting.database)
            try:
                rows = await conn.fetch("SELECT w.node, w.state, w.pid FROM tandem.tenant_workers w "
                                        "JOIN tandem.tenants t ON t.id = w.tenant_id WHERE t.slug = 'shared'")
            finally:
                await conn.close()
            return {r["node"]: (r["state"], r["pid"]) for r in rows}
        return run_sync(read())

    rows = wait_for(lambda: (w := workers()).get("node-b", ("",))[0] == "standby" and w, 10,
                    message="node b's worker in standby")
    assert rows["node-a"] == ("running", holder)
    standby_pid = second.tenant_pid("shared")

    # Node a dies hard: its workers follow it (parent-death signal), its locks go with their sessions.
    first.process.kill()
    first.process.wait()
    wait_for(lambda: gone(holder), 5, message="node a's worker gone with its supervisor")
    wait_for(lambda: workers().get("node-b", ("",))[0] == "running", 10, message="node b took over")
    assert second.tenant_pid("shared") == standby_pid, "the standby worker itself takes over, no restart"
    second.wait_log(r"took over this tenant's lock")


def _migrations(n: int) -> str:
    return f"{n} migration{'' if n == 1 else 's'}"


def test_a_tenant_schema_behind_the_binary_is_a_boot_failure_naming_tandem_migrate(appliance_factory,
                                                                                    pg_server):
    app = appliance_factory()
    wait_for(lambda: app.get("/-/ready") == 200, 20, message="ready")
    create_tenant(app.config, "stale")
    pid = wait_for(lambda: (r := tenant_row(app.config, "stale"))["worker_state"] == "running" and r["pid"], 5,
                   message="stale's worker running")
    sql(pg_server, app.setting.database, "DELETE FROM t_stale.schema_migrations")
    os.kill(pid, signal.SIGKILL)
    pending = _migrations(len(migrator.load_migrations("tenant")))
    app.wait_log(r"tenant stale: worker could not start 3 times in a row: schema t_stale has " + pending.replace(
        " ", " pending ", 1) + r": run `tandem migrate`; next try in 600 s", timeout=10)


def test_a_missing_certificate_file_stops_start_up_with_one_line(appliance_factory):
    app = appliance_factory(tls_mode="files",
                            extra='[[tls.certificates]]\ncert = "/nonexistent/tandem.pem"\n'
                                  'key = "/nonexistent/tandem.key"')
    assert app.process.wait(20) == 2
    last = app.log().strip().splitlines()[-1]
    assert last.startswith("tandem: ") and "[tls] certificates[0]" in last and "/nonexistent/tandem.pem not found" \
        in last, last
    assert not app.workers()


def test_missing_postgresql_binaries_stop_start_up_with_one_line(appliance_factory):
    app = appliance_factory(dsn="", database_extra='managed_bin_dir = "/nonexistent/bin"')
    assert app.process.wait(20) == 2
    last = app.log().strip().splitlines()[-1]
    assert last == ("tandem: [database] managed_bin_dir = '/nonexistent/bin': no postgres and initdb there; "
                    "install the Debian package postgresql-15 or fix the path"), last


def test_an_unusable_data_dir_stops_start_up_with_one_line(appliance_factory):
    def elsewhere(config: Path) -> list[str]:
        # [paths] data_dir names a file: nothing can be created in it.
        blocker = config.parent / "not-a-dir"
        blocker.write_text("")
        config.write_text(config.read_text().replace(f'data_dir = "{config.parent}"', f'data_dir = "{blocker}"'))
        return tandem_command("--config", str(config), "run")

    app = appliance_factory(command=elsewhere)
    assert app.process.wait(20) == 77
    last = app.log().strip().splitlines()[-1]
    assert last == (f"tandem: {app.config.parent}/not-a-dir: data directory does not exist ([paths] data_dir); "
                    f"create it: install -d -m 0700 -o tandem {app.config.parent}/not-a-dir"), last
    assert not app.workers()


def test_a_key_file_others_can_read_is_refused_with_the_chmod_to_run(appliance_factory):
    def exposed_key(config: Path) -> list[str]:
        key = config.parent / "master.key"
        key.write_text("00" * 32 + "\n")
        key.chmod(0o644)
        return tandem_command("--config", str(config), "run")

    app = appliance_factory(command=exposed_key)
    assert app.process.wait(20) == 77
    key = app.config.parent / "master.key"
    last = app.log().strip().splitlines()[-1]
    assert last == f"tandem: {key}: key file is readable by others (mode -rw-r--r--); run: chmod 600 {key}", last
    assert not app.workers()


def test_without_migrate_on_start_it_waits_for_tandem_migrate(appliance_factory, notify_listener):
    app = appliance_factory(database_extra="migrate_on_start = false", env={"NOTIFY_SOCKET": notify_listener.path})
    pending = _migrations(len(migrator.load_migrations("control")))
    app.wait_log(r"database schema is not current: " + pending + r" pending in 1 schema: run `tandem migrate`; "
                 r"tenant workers start once it is")
    wait_for(lambda: app.get("/-/health") == 200, 10, message="/-/health 200")
    time.sleep(1.5)  # several reconcile turns: one line, not one per turn
    assert len(re.findall("database schema is not current", app.log())) == 1
    assert app.get("/-/ready") == 503
    assert not any(m.startswith("READY=1") for m in notify_listener.messages)

    result = tandem("migrate", config=app.config)
    assert result.returncode == 0, result.stderr
    app.wait_log(r"migrations are current now: starting tenant workers")
    wait_for(lambda: any(m.startswith("READY=1") for m in notify_listener.messages), 5, message="READY=1")
    wait_for(lambda: app.get("/-/ready") == 200, 10, message="/-/ready 200")
    create_tenant(app.config, "late")
    wait_for(lambda: app.tenant_pid("late"), 5, message="a tenant worker once current")


def test_the_embedded_postgresql_is_restarted_when_it_dies_and_stopped_on_request():
    # What `tandem run` does with a managed database, minus the switch to the service user
    # (whose home cannot read this test environment's Python): the supervisor's reaping
    # loop collects the postmaster's status and SupervisedPostgres restarts it with backoff.
    root = world_dir("tandem-test-managed-")
    server = EmbeddedPostgres(root / "data", root / "run", superuser="tandem", password="secret", fsync=False,
                              os_user="postgres" if os.geteuid() == 0 else None)
    managed = SupervisedPostgres(server, backoff_cap=1.0)
    try:
        managed.start()
        first = managed.pid
        os.kill(first, signal.SIGKILL)
        _, status = os.waitpid(first, 0)
        died = time.monotonic()
        managed.exited(status, died)
        assert 0.3 < managed.next_start - died < 0.7  # the first backoff: 0.5 s with jitter

        def restarted():
            managed.restart_if_due(time.monotonic())
            return managed.pid != first and server.running()
        wait_for(restarted, 20, interval=0.1, message="PostgreSQL restarted")

        async def answer():
            conn = await asyncpg.connect(host=str(server.socket_dir), port=server.port, user="tandem",
                                         password="secret", database="postgres")
            try:
                return await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
        assert run_sync(answer()) == 1
        second = managed.pid
    finally:
        managed.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert gone(second) and not server.running()


@pytest.fixture
def notify_listener(tmp_path):
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture
def appliance_factory(pg_server):
    """Appliances of one test, each with a Setting of its own (keyword arguments: write_config's,
    plus Setting's `like` and `database_extra`)."""
    made: list[Appliance] = []

    def make(command=None, dsn_socket_dir: str = "", env: dict | None = None, like: Appliance | None = None,
             **options) -> Appliance:
        setting = Setting(pg_server, like=like.setting if like else None, **options)
        if dsn_socket_dir:
            # The harness server's database and credentials, but a socket directory of our own.
            path = setting.data_dir / dsn_socket_dir
            path.mkdir()
            dsn = pg_server.dsn(setting.database).replace(f"host={pg_server.server.socket_dir}", f"host={path}")
            setting.config.write_text(re.sub(r'dsn = "[^"]*"', f'dsn = "{dsn}"', setting.config.read_text()))
        app = Appliance(setting.config, env=env, command=command(setting.config) if command else None)
        app.setting = setting
        made.append(app)
        return app

    yield make
    for app in reversed(made):
        if app.process.poll() is None:
            app.process.kill()
            app.process.wait()
        print(app.log())
        app.setting.close()
