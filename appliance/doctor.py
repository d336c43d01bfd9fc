"""`tandem doctor`: check an installation and say how to fix what is wrong.

`run_checks(config)` returns one Finding per check (status "ok", "warn" or "fail",
a one-line detail, and for anything not ok a `fix` the administrator can act on).
`main(config, as_json)` prints them and returns exitcodes.OK when nothing failed,
exitcodes.FAILURE otherwise. The config has already been loaded and validated.

Doctor only looks: it never creates files, never starts the embedded PostgreSQL,
never migrates. Each check is isolated: one that crashes becomes a "fail" finding
naming the crash, so the others still report. Checks see the machine as the
appliance will: when run as root with `security.run_as`, ownership and
readability are judged for the service user, not for root.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import grp
import json
import logging
import os
import pwd
import secrets
import socket
import ssl
import stat
import subprocess
from pathlib import Path
from typing import Callable

import asyncpg

from appliance import exitcodes
from appliance.config import Config

log = logging.getLogger(__name__)

GIB = 1024 ** 3
MIB = 1024 ** 2
DISK_WARN_BYTES = 1 * GIB
DISK_FAIL_BYTES = 200 * MIB
MIN_SERVER_MAJOR = 13
CERT_WARN_DAYS = 30
# Doctor should answer quickly even when the database host black-holes packets.
DB_TIMEOUT_SECONDS = 5.0

_LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL"}


@dataclasses.dataclass(frozen=True)
class Finding:
    name: str
    status: str          # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _ok(name: str, detail: str) -> Finding:
    return Finding(name, "ok", detail)


def _warn(name: str, detail: str, fix: str = "") -> Finding:
    return Finding(name, "warn", detail, fix)


def _fail(name: str, detail: str, fix: str = "") -> Finding:
    return Finding(name, "fail", detail, fix)


# -- who the appliance runs as ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Account:
    """The account whose access matters: the service user when we are root and
    run_as names an existing user, otherwise whoever runs doctor."""

    name: str
    uid: int
    gids: frozenset[int]
    is_self: bool

    def can(self, path: Path, want: int) -> bool:
        """Whether this account has `want` (os.R_OK/W_OK/X_OK bits) on `path`."""
        if self.is_self:
            return os.access(path, want)
        st = path.stat()
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            shift = 6
        elif st.st_gid in self.gids:
            shift = 3
        else:
            shift = 0
        return (st.st_mode >> shift) & want == want


def _account(config: Config) -> _Account:
    run_as = config.security.run_as
    if os.geteuid() == 0 and run_as:
        try:
            user = pwd.getpwnam(run_as)
        except KeyError:
            pass  # reported by the user check; judge as ourselves meanwhile
        else:
            gids = frozenset(os.getgrouplist(user.pw_name, user.pw_gid))
            return _Account(user.pw_name, user.pw_uid, gids, is_self=False)
    uid = os.geteuid()
    return _Account(_user_name(uid), uid, frozenset(os.getgroups()) | {os.getegid()}, is_self=True)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group_of(name: str) -> str:
    try:
        return grp.getgrgid(pwd.getpwnam(name).pw_gid).gr_name
    except KeyError:
        return name


# -- file-system checks ---------------------------------------------------------------


def check_config(config: Config) -> Finding:
    return _ok("config", f"{config.source or '(environment only)'} is valid")


def check_user(config: Config) -> Finding:
    run_as = config.security.run_as
    me = _user_name(os.geteuid())
    if os.geteuid() == 0:
        if not run_as:
            return _warn("user", "running as root and [security] run_as is empty: the appliance would keep "
                                 "root privileges", 'set [security] run_as = "tandem" (a system user)')
        try:
            user = pwd.getpwnam(run_as)
        except KeyError:
            return _fail("user", f"service user {run_as!r} ([security] run_as) does not exist",
                         f"useradd --system --user-group --home-dir {config.paths.data_dir} "
                         f"--shell /usr/sbin/nologin {run_as}")
        return _ok("user", f"running as root; the appliance switches to {run_as} (uid {user.pw_uid})")
    if run_as and me != run_as:
        return _warn("user", f"running as {me}, not as root or the service user {run_as}: "
                             f"file checks show what {me} can do",
                     "run doctor as root (sudo tandem doctor), as the service does")
    return _ok("user", f"running as {me}")


def check_data_dir(config: Config) -> Finding:
    path = config.paths.data_dir
    account = _account(config)
    owner_fix = f"chown -R {account.name}:{_group_of(account.name)} {path}"
    if not path.exists():
        parent = _existing_parent(path)
        if os.geteuid() == 0 or os.access(parent, os.W_OK | os.X_OK):
            return _warn("data dir", f"{path} does not exist yet ([paths] data_dir); `tandem run` creates it",
                         f"install -d -m 0700 -o {account.name} -g {_group_of(account.name)} {path}")
        return _fail("data dir", f"{path} does not exist and {parent} is not writable for {account.name}",
                     f"install -d -m 0700 -o {account.name} -g {_group_of(account.name)} {path}")
    if not path.is_dir():
        return _fail("data dir", f"{path} is not a directory ([paths] data_dir)", "point [paths] data_dir at a directory")
    st = path.stat()
    if st.st_uid != account.uid:
        return _fail("data dir", f"{path} is owned by {_user_name(st.st_uid)}, not by {account.name}", owner_fix)
    if not account.can(path, os.W_OK | os.X_OK):
        return _fail("data dir", f"{path} is not writable by {account.name} (mode {stat.filemode(st.st_mode)})",
                     f"chmod 0700 {path}")
    if st.st_mode & 0o007:
        return _warn("data dir", f"{path} is open to other users (mode {stat.filemode(st.st_mode)})",
                     f"chmod 0700 {path}")
    return _ok("data dir", f"{path} (owner {account.name}, mode {stat.filemode(st.st_mode)})")


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path("/")


def check_key_file(config: Config) -> Finding:
    path = config.security.key_file
    account = _account(config)
    if not path.exists():
        if (config.pg_dir / "PG_VERSION").exists():
            # The embedded superuser's password derives from the key: without it the
            # existing database cannot be opened, so creating a new key is no fix.
            return _fail("key file", f"{path} is missing but the embedded database in {config.pg_dir} exists",
                         f"restore {path} from your backup (mode 0600, owner {account.name})")
        return _warn("key file", f"{path} does not exist yet; `tandem run` or `tandem migrate` creates it",
                     "if this installation has run before, restore the key file from your backup instead")
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        return _fail("key file", f"{path} is not a regular file ([security] key_file)",
                     f"restore {path} from your backup")
    if st.st_mode & 0o077:
        return _fail("key file", f"{path} is readable by others (mode {stat.filemode(st.st_mode)})",
                     f"chmod 600 {path}")
    if st.st_uid != account.uid:
        return _fail("key file", f"{path} is owned by {_user_name(st.st_uid)}, not by {account.name}",
                     f"chown {account.name}:{_group_of(account.name)} {path}")
    if not account.can(path, os.R_OK):
        return _fail("key file", f"{path} is not readable by {account.name} (mode {stat.filemode(st.st_mode)})",
                     f"chmod 600 {path}")
    if _read_key(path) is None:
        return _fail("key file", f"{path} does not hold a 32-byte hex key", f"restore {path} from your backup")
    return _ok("key file", f"{path} (mode {stat.filemode(st.st_mode)}, owner {account.name})")


def _read_key(path: Path):
    """The master key without the mode check of keys.load_key (the key check reports
    the mode; the database checks should still run). None when unusable."""
    from appliance.keys import KEY_BYTES, MasterKey
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return MasterKey(raw) if len(raw) == KEY_BYTES else None


def check_disk(config: Config) -> Finding:
    path = config.paths.data_dir if config.paths.data_dir.exists() else _existing_parent(config.paths.data_dir)
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    detail = f"{_size(free)} free on {path}"
    fix = f"free space on the file system of {path} (PostgreSQL stops writing when it is full)"
    if free < DISK_FAIL_BYTES:
        return _fail("disk space", f"only {detail}", fix)
    if free < DISK_WARN_BYTES:
        return _warn("disk space", f"only {detail}", fix)
    return _ok("disk space", detail)


def _size(count: int) -> str:
    if count >= GIB:
        return f"{count / GIB:.1f} GiB"
    return f"{count / MIB:.0f} MiB"


def check_postgres_binaries(config: Config) -> Finding:
    """Embedded mode only: the host's PostgreSQL server binaries (initdb, postgres)."""
    from appliance import pgembed
    try:
        bin_dir = pgembed.find_bin_dir(config.database.managed_bin_dir, config.pg_dir)
    except pgembed.PostgresBinariesMissing as exc:
        return _fail("postgresql binaries", str(exc), f"apt-get install {pgembed.DEBIAN_PACKAGE}")
    try:
        version = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return _fail("postgresql binaries", f"{bin_dir}/postgres does not run: {exc}",
                     f"reinstall {pgembed.DEBIAN_PACKAGE}")
    return _ok("postgresql binaries", f"{bin_dir} ({version or 'postgres'})")


def check_outbound_ca(config: Config) -> Finding:
    path = Path(config.outbound.ca_file)
    name = "outbound CA file"
    if not path.is_file():
        return _fail(name, f"{path} ([outbound] ca_file) does not exist",
                     "point [outbound] ca_file at a PEM bundle, or set it to \"\" for the system CAs")
    account = _account(config)
    if not account.can(path, os.R_OK):
        return _fail(name, f"{path} is not readable by {account.name}", f"chmod 644 {path}")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        return _fail(name, f"{path} holds no usable PEM certificates: {exc}",
                     "export the CA certificates in PEM format (-----BEGIN CERTIFICATE-----)")
    return _ok(name, f"{path} (PEM certificates, readable by {account.name})")


def check_certificates(config: Config) -> list[Finding]:
    """TLS certificates the web workers will serve, as tls.py reads them."""
    if config.tls.mode == "off":
        return [_ok("certificates", "TLS terminated by the load balancer ([tls] mode = \"off\")")]
    from appliance import tls
    account = _account(config)
    findings = [_certificate_finding(config, info, account) for info in tls.certificate_info(config)]
    return findings or [_fail("certificates", "no certificate configured", "add a [[tls.certificates]] entry")]


def _certificate_finding(config: Config, info, account: _Account) -> Finding:
    name = f"certificate {info.path}"
    self_signed = config.tls.mode == "self-signed"
    if self_signed:  # ensure_self_signed replaces a bad, expiring or foreign pair at start
        renew = "systemctl restart tandem (it generates a new self-signed certificate at start)"
    else:
        renew = f"install a renewed certificate at {info.path}, then: systemctl reload tandem"
    if info.not_after is None:  # missing, unreadable or not a certificate
        if self_signed and not info.path.exists():
            return _warn(name, "not generated yet; `tandem run` creates a self-signed certificate at first start",
                         'or set [tls] mode = "files" with your own certificate')
        return _fail(name, info.problem, renew if self_signed else
                     "install the certificate and its key there, or fix [[tls.certificates]]")
    names = ", ".join(info.names) or "no DNS names"
    until = f"{info.not_after:%Y-%m-%d}"
    if not info.key_matches:
        return _fail(name, f"the key {info.key_path} does not belong to this certificate ({names})",
                     renew if self_signed else "pair each cert with its own key in [[tls.certificates]]")
    if info.days_left < 0:
        return _fail(name, f"expired on {until} ({names})", renew)
    if info.problem:
        return _fail(name, info.problem, renew)
    for path in (info.path, info.key_path):
        if not account.can(path, os.R_OK):
            return _fail(name, f"{path} is not readable by {account.name}, who serves it",
                         f"chown {account.name} {path}; chmod 600 {path}")
    if self_signed and config.cluster.domain not in info.names:
        return _warn(name, f"made for {names}, not for [cluster] domain {config.cluster.domain}", renew)
    if info.days_left < CERT_WARN_DAYS:
        return _warn(name, f"expires in {info.days_left} days, on {until} ({names})", renew)
    return _ok(name, f"valid until {until}, {info.days_left} days left ({names})")


def check_listen(config: Config) -> list[Finding]:
    """Try to bind each address the web workers will listen on (and the redirect ones)."""
    findings = []
    for address, (host, port) in zip([*config.http.listen, *config.http.redirect_listen],
                                     [*config.http.listen_addresses(), *config.http.redirect_addresses()]):
        findings.append(_try_bind(f"listen {address}", host, port))
    return findings


def _try_bind(name: str, host: str, port: int) -> Finding:
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return _fail(name, f"cannot resolve {host!r}: {exc.strerror}", "use an IP address in [http] listen")
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As the web workers do: TIME_WAIT leftovers must not read as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _warn(name, "in use (is tandem running?)",
                         "if tandem is not running, stop what holds the port (ss -ltnp) or change [http] listen")
        if exc.errno == errno.EACCES:
            return _warn(name, f"port {port} needs root to bind (running as {_user_name(os.geteuid())})",
                         "start the service as root (the systemd unit does); it switches to the service user "
                         "after binding")
        if exc.errno == errno.EADDRNOTAVAIL:
            return _fail(name, f"{host} is not an address of this host", "fix [http] listen")
        return _fail(name, f"cannot bind: {exc.strerror or exc}", "fix [http] listen")
    finally:
        sock.close()
    return _ok(name, "free")


# -- database checks --------------------------------------------------------------------


async def _database_checks(config: Config) -> list[Finding]:
    """Reachability first; the rest need a connection and are skipped without one."""
    key = _read_key(config.security.key_file)
    if config.database.managed:
        socket_path = config.socket_dir / f".s.PGSQL.{config.database.managed_port}"
        if not socket_path.exists():
            return [_warn("database", "embedded PostgreSQL is not running (the appliance is stopped)",
                          "start the appliance (systemctl start tandem) to check the database")]
        if key is None:
            return [_fail("database", "cannot log in to the embedded PostgreSQL without the key file",
                          "see the key file finding")]
    elif key is None:
        # An external server's control login takes its password from the DSN; the key
        # only matters for tenant roles, so any key serves for these checks.
        from appliance.keys import KEY_BYTES, MasterKey
        key = MasterKey(secrets.token_bytes(KEY_BYTES))
    conn, finding = await _connect(config, key)
    if conn is None:
        return [finding]
    findings = [finding]
    try:
        for check in (_check_server_version, _check_privileges, _check_migrations):
            findings.append(await _isolated_async(check.__name__, check, conn))
    finally:
        await conn.close(timeout=DB_TIMEOUT_SECONDS)
    return findings


async def _connect(config: Config, key) -> tuple[asyncpg.Connection | None, Finding]:
    from appliance import db
    target = db.describe_target(config)
    timeout = min(config.database.connect_timeout_seconds, DB_TIMEOUT_SECONDS)
    args = db.connect_args(config, key, application_name="tandem doctor")
    args["timeout"] = timeout
    dsn_fix = "check [database] dsn (host, port, user, password, database)"
    try:
        conn = await asyncio.wait_for(asyncpg.connect(**args), timeout + 1)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        return None, _fail("database", f"login refused ({target}): {exc}", dsn_fix)
    except asyncpg.InvalidCatalogNameError as exc:
        return None, _fail("database", f"{exc} ({target})", "create the database, or fix [database] dsn")
    except db.UNREACHABLE as exc:
        fix = ("check that the appliance's embedded PostgreSQL is running (systemctl status tandem)"
               if config.database.managed else f"check that PostgreSQL is running and reachable; {dsn_fix}")
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, asyncio.TimeoutError):
            reason = f"no answer within {timeout:.0f} s"
        return None, _fail("database", f"unreachable ({target}): {reason}", fix)
    except asyncpg.PostgresError as exc:
        return None, _fail("database", f"connection refused by the server ({target}): {exc}", dsn_fix)
    version = (await conn.fetchval("SHOW server_version")).split()[0]
    return conn, _ok("database", f"reachable (PostgreSQL {version})")


async def _check_server_version(conn: asyncpg.Connection) -> Finding:
    number = int(await conn.fetchval("SELECT current_setting('server_version_num')"))
    text = f"PostgreSQL {(await conn.fetchval('SHOW server_version')).split()[0]}"
    if number // 10000 < MIN_SERVER_MAJOR:
        return _warn("server version", f"{text} is older than {MIN_SERVER_MAJOR}, the oldest Tandem supports",
                     "upgrade PostgreSQL (Tandem is tested with 15)")
    return _ok("server version", text)


async def _check_privileges(conn: asyncpg.Connection) -> Finding:
    """The control login creates a role and a schema per tenant: superuser, or
    CREATEROLE plus CREATE on the database."""
    from appliance.identifiers import quote_ident
    from appliance.errors import InvalidIdentifier
    row = await conn.fetchrow(
        "SELECT current_user AS login, current_database() AS db, r.rolsuper AS superuser, "
        "r.rolcreaterole AS createrole, has_database_privilege(current_database(), 'CREATE') AS can_create "
        "FROM pg_roles r WHERE r.rolname = current_user")
    login, database = row["login"], row["db"]
    if row["superuser"]:
        return _ok("privileges", f"{login} is a superuser")
    missing = []
    if not row["createrole"]:
        missing.append("CREATEROLE")
    if not row["can_create"]:
        missing.append(f"CREATE on database {database}")
    if not missing:
        return _ok("privileges", f"{login} has CREATEROLE and CREATE on database {database}")

    def shown(name: str) -> str:  # for the hint only; never executed by us
        try:
            return quote_ident(name)
        except InvalidIdentifier:
            return name
    fixes = []
    if not row["createrole"]:
        fixes.append(f"ALTER ROLE {shown(login)} CREATEROLE;")
    if not row["can_create"]:
        fixes.append(f"GRANT CREATE ON DATABASE {shown(database)} TO {shown(login)};")
    return _fail("privileges", f"{login} lacks {' and '.join(missing)} (needed to create tenants)",
                 "as a PostgreSQL superuser: " + " ".join(fixes))


async def _check_migrations(conn: asyncpg.Connection) -> Finding:
    from appliance import migrator
    from appliance.errors import MigrationError
    try:
        status = await migrator.status(conn)
    except MigrationError as exc:
        return _fail("migrations", str(exc), "install the binary that matches this database, or restore "
                                             "the edited migration file")
    if status.current:
        return _ok("migrations", status.describe().removeprefix("migrations "))
    return _warn("migrations", status.describe(), "run: tandem migrate")


async def _isolated_async(name: str, check, *args) -> Finding:
    try:
        return await check(*args)
    except Exception as exc:  # one broken check must not hide the others
        return _crashed(name, exc)


# -- running and printing ----------------------------------------------------------------


# Finding names of checks whose function name says it differently.
_CHECK_NAMES = {"check_disk": "disk space", "check_postgres_binaries": "postgresql binaries",
                "check_outbound_ca": "outbound CA file"}


def _crashed(name: str, exc: BaseException) -> Finding:
    log.debug("doctor check %s crashed", name, exc_info=True)
    label = _CHECK_NAMES.get(name) or name.removeprefix("_check_").removeprefix("check_").replace("_", " ")
    return _fail(label, f"the check itself failed: {type(exc).__name__}: {exc}",
                 "run `tandem --debug doctor` and report the traceback")


def _isolated(check: Callable[[Config], Finding | list[Finding]], config: Config) -> list[Finding]:
    try:
        result = check(config)
    except Exception as exc:  # one broken check must not hide the others
        return [_crashed(check.__name__, exc)]
    return result if isinstance(result, list) else [result]


def check_database(config: Config) -> list[Finding]:
    """Reachability, server version, privileges, migrations (one event loop for all)."""
    return asyncio.run(_database_checks(config))


def run_checks(config: Config) -> list[Finding]:
    """Every check, in the order an administrator would fix things. Never raises."""
    checks: list[Callable[[Config], Finding | list[Finding]]] = [
        check_config, check_user, check_data_dir, check_key_file, check_disk]
    if config.database.managed:
        checks.append(check_postgres_binaries)
    checks.append(check_database)
    checks.append(check_certificates)
    if config.outbound.ca_file:
        checks.append(check_outbound_ca)
    checks.append(check_listen)
    findings: list[Finding] = []
    for check in checks:
        findings.extend(_isolated(check, config))
    return findings


def run_local_checks(config: Config) -> list[Finding]:
    """The checks a running appliance can make on itself (the console's health page): those
    that only read files, never bind its ports (check_listen would find them taken by itself)
    and never open a database connection of their own (the caller reports the database).
    Blocking: call it in a thread. Never raises."""
    checks: list[Callable[[Config], Finding | list[Finding]]] = [
        check_config, check_user, check_data_dir, check_key_file, check_disk]
    if config.database.managed:
        checks.append(check_postgres_binaries)
    checks.append(check_certificates)
    if config.outbound.ca_file:
        checks.append(check_outbound_ca)
    findings: list[Finding] = []
    for check in checks:
        findings.extend(_isolated(check, config))
    return findings


def summary(findings: list[Finding]) -> str:
    counts = {status: sum(1 for f in findings if f.status == status) for status in ("ok", "warn", "fail")}

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"
    verdict = "problems found" if counts["fail"] else "no problems found"
    return (f"{plural(len(findings), 'check')}: {counts['ok']} ok, {plural(counts['warn'], 'warning')}, "
            f"{plural(counts['fail'], 'failure')}; {verdict}")


def main(config: Config, as_json: bool = False) -> int:
    """Entry point of `tandem doctor`: print the findings, return the exit code."""
    findings = run_checks(config)
    if as_json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            print(f"{_LABELS[finding.status]:<6}{finding.name}: {finding.detail}")
            if finding.fix:
                print(f"{'':<6}fix: {finding.fix}")
        print(summary(findings))
    return exitcodes.FAILURE if any(f.status == "fail" for f in findings) else exitcodes.OK
