"""Embedded PostgreSQL: initdb on first start, then `postgres` as a supervised child.

Used by the appliance when `database.dsn` is empty, by the CLI (which starts it for
the length of a command when the appliance is not running), and by the test
harness for its throwaway server (fsync off), so tests exercise what ships.

The server listens on a unix socket only (`listen_addresses = ''`) in a directory
that only the service user can enter, and every role authenticates with
scram-sha-256 (passwords derived from the master key, see keys.py).
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from appliance.errors import ConfigurationError, FatalError
from appliance.proc import alive, set_parent_death_signal

log = logging.getLogger(__name__)

DEBIAN_PACKAGE = "postgresql-15"
_DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"


class PostgresBinariesMissing(ConfigurationError):
    pass


def _has_server(bin_dir: Path) -> bool:
    return (bin_dir / "postgres").is_file() and (bin_dir / "initdb").is_file()


def _major(bin_dir: Path) -> int:
    match = re.search(r"/(\d+)/bin/?$", str(bin_dir))
    return int(match.group(1)) if match else 0


def find_bin_dir(configured: str = "", pgdata: Path | None = None) -> Path:
    """Directory holding `postgres` and `initdb`.

    Order: the configured directory; the major version that initialised `pgdata`
    (an existing cluster must be opened by its own major version); `pg_config --bindir`;
    the newest /usr/lib/postgresql/*/bin. Raises PostgresBinariesMissing naming the package.
    """
    if configured:
        path = Path(configured)
        if _has_server(path):
            return path
        raise PostgresBinariesMissing(f"[database] managed_bin_dir = {configured!r}: no postgres and initdb "
                                      f"there; install the Debian package {DEBIAN_PACKAGE} or fix the path")
    candidates = sorted((Path(p) for p in glob.glob(_DEBIAN_GLOB)), key=_major, reverse=True)
    if pgdata is not None and (pgdata / "PG_VERSION").exists():
        wanted = (pgdata / "PG_VERSION").read_text().strip()
        for path in candidates:
            if str(_major(path)) == wanted and _has_server(path):
                return path
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
            if out and _has_server(Path(out)):
                return Path(out)
        except (OSError, subprocess.SubprocessError):
            pass
    for path in candidates:
        if _has_server(path):
            return path
    raise PostgresBinariesMissing(
        "PostgreSQL server binaries not found (looked at [database] managed_bin_dir, pg_config and "
        f"{_DEBIAN_GLOB}); install them: apt-get install {DEBIAN_PACKAGE}, or set [database] dsn "
        "to use an existing server")


class EmbeddedPostgres:
    """One PostgreSQL cluster in `pgdata`, reachable on a unix socket in `socket_dir`.

    `os_user`: when set and we are root, initdb and postgres run as that account
    (PostgreSQL refuses to run as root). The caller decides when to init/start/stop;
    `start()` returns once the server accepts connections.
    """

    def __init__(self, pgdata: Path, socket_dir: Path, *, superuser: str, password: str,
                 bin_dir: str = "", port: int = 5432, fsync: bool = True, os_user: str | None = None,
                 max_connections: int = 400, log_file: Path | None = None,
                 settings: dict[str, str] | None = None):
        self.pgdata = Path(pgdata)
        self.socket_dir = Path(socket_dir)
        self.superuser = superuser
        self.password = password
        self._configured_bin_dir = bin_dir
        self.port = port
        self.fsync = fsync
        self.os_user = os_user if os.geteuid() == 0 and os_user else None
        self.max_connections = max_connections
        self.log_file = log_file
        self.settings = dict(settings or {})
        self.process: subprocess.Popen | None = None
        self._log_handle = None

    # -- facts -------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        return find_bin_dir(self._configured_bin_dir, self.pgdata)

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"

    def dsn(self, database: str = "postgres") -> str:
        # The password is given separately (connect kwargs), never in a string that may be logged.
        return f"postgresql://{self.superuser}@/{database}?host={self.socket_dir}&port={self.port}"

    def _ids(self) -> tuple[int, int] | None:
        if not self.os_user:
            return None
        user = pwd.getpwnam(self.os_user)
        return user.pw_uid, user.pw_gid

    def _own(self, path: Path, mode: int = 0o700) -> None:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        ids = self._ids()
        if ids:
            os.chown(path, *ids)

    # -- lifecycle -----------------------------------------------------------

    def init(self) -> None:
        """initdb, once. Idempotent: an initialised directory is left alone."""
        if self.initialised:
            return
        bin_dir = self.bin_dir
        self._own(self.pgdata)
        self._own(self.socket_dir)
        fd, pwfile = tempfile.mkstemp(prefix="tandem-pw-")
        try:
            os.write(fd, (self.password + "\n").encode())
            os.close(fd)
            ids = self._ids()
            if ids:
                os.chown(pwfile, *ids)
            cmd = [str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", self.superuser,
                   f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                   "--encoding=UTF8", "--locale=C.UTF-8"]
            if not self.fsync:
                cmd.append("--no-sync")
            result = subprocess.run(cmd, capture_output=True, text=True, user=self.os_user,
                                    cwd="/", timeout=300)
        finally:
            os.unlink(pwfile)
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise FatalError(f"initdb failed in {self.pgdata}: {detail[0]}")
        log.info("initialised embedded PostgreSQL in %s (%s)", self.pgdata, bin_dir)

    def _stop_stale(self) -> None:
        """A postmaster left over from a supervisor that was killed: stop it so that
        ours is the one supervised."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if pid <= 0 or not alive(pid):
            return
        log.warning("stopping a PostgreSQL (pid %d) left running in %s by an earlier start", pid, self.pgdata)
        self._signal_and_wait(pid, [signal.SIGINT, signal.SIGQUIT, signal.SIGKILL], 15)

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
            "port": str(self.port),
            "max_connections": str(self.max_connections),
            "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            **self.settings,
        }
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.pgdata)]
        for name, value in settings.items():
            cmd += ["-c", f"{name}={value}"]
        return cmd

    def start(self, timeout: float = 60) -> subprocess.Popen:
        """Start the server (initdb first if needed) and wait until it accepts connections."""
        self.init()
        self._own(self.socket_dir)
        self._stop_stale()
        stdout = None
        if self.log_file is not None:
            self._log_handle = open(self.log_file, "ab")
            stdout = self._log_handle
        # Own session: a Ctrl-C in the terminal reaches the supervisor, which stops the
        # database last, after the workers; the parent-death signal covers a killed supervisor.
        self.process = subprocess.Popen(self._command(), user=self.os_user, cwd="/", stdin=subprocess.DEVNULL,
                                        stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
                                        start_new_session=True,
                                        preexec_fn=lambda: set_parent_death_signal(signal.SIGINT))
        self.wait_ready(timeout)
        log.info("embedded PostgreSQL running (pid %d, socket %s)", self.process.pid, self.socket_dir)
        return self.process

    def wait_ready(self, timeout: float) -> None:
        """Poll postmaster.pid until the postmaster reports `ready` (PostgreSQL 10+)."""
        deadline = time.monotonic() + timeout
        pid_file = self.pgdata / "postmaster.pid"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise FatalError(f"embedded PostgreSQL exited during start-up (status {self.process.returncode}); "
                                 f"see its log{' in ' + str(self.log_file) if self.log_file else ''}")
            try:
                lines = pid_file.read_text().splitlines()
                # The file of a postmaster that was killed still says "ready": it must be ours.
                ours = self.process is None or lines[:1] == [str(self.process.pid)]
                if ours and len(lines) >= 8 and lines[7].strip() == "ready" and self.socket_path.exists():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise FatalError(f"embedded PostgreSQL did not become ready within {timeout:.0f} s")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint), then harder."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_and_wait(self.process.pid, [signal.SIGINT, signal.SIGQUIT, signal.SIGKILL], timeout)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.process = None
        if self._log_handle:
            self._log_handle.close()
            self._log_handle = None

    def _signal_and_wait(self, pid: int, signals: list[int], timeout: float) -> None:
        for sig in signals:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + (timeout if sig == signals[0] else 5)
            while time.monotonic() < deadline:
                if self.process is not None and self.process.pid == pid:
                    if self.process.poll() is not None:
                        return
                elif not alive(pid):
                    return
                time.sleep(0.05)
