#!/usr/bin/env python3
"""Set-up, build, run and test entry points for Tandem.

    python3 build.py run      virtualenv + dependencies (+ panel), then the appliance in the
                              foreground on an embedded PostgreSQL under ./var, self-signed TLS,
                              a first cluster admin and a demo tenant; prints URLs and login
    python3 build.py test     the same set-up, the binary, then the whole test suite
    python3 build.py binary   the PyInstaller one-file binary at dist/tandem
    python3 build.py deb      the Debian package from dist/tandem
    python3 build.py client   regenerate the panel's typed API client (after an API change)

Only the standard library here: this runs before any dependency is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import glob
import json
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VAR = ROOT / "var"
DIST = ROOT / "dist"
FRONTEND = ROOT / "frontend"
PG_PACKAGE = "postgresql-15"
CHROMIUM = "/usr/bin/chromium"
SERVICE_USER = "tandem"

RUN_DOMAIN = "tandem.localhost"      # *.localhost resolves to loopback in browsers and curl
RUN_PORT = 8443
RUN_REDIRECT_PORT = 8080
DEMO_TENANT = "demo"
FIRST_ADMIN = f"admin@{RUN_DOMAIN}"


def say(message: str) -> None:
    print(f"build.py: {message}", flush=True)


def die(message: str, code: int = 1) -> None:
    print(f"build.py: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def sh(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kwargs)


# -- set-up ------------------------------------------------------------------

def venv_python() -> Path:
    return VENV / "bin" / "python"


def base_python() -> str:
    """The interpreter for .venv.

    Run as root, Tandem switches to the service user, which must still be able to read
    the interpreter and its standard library. A Python under /root (pyenv, say) is not
    readable by it, so then prefer the distribution's python3.X of the same version.
    """
    if os.geteuid() != 0 or _service_user_can_run(sys.executable):
        return sys.executable
    candidate = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if Path(candidate).exists() and _service_user_can_run(candidate):
        say(f"using {candidate} for .venv: the `{SERVICE_USER}` user cannot read {sys.base_prefix}")
        return candidate
    say(f"note: the `{SERVICE_USER}` user cannot read {sys.base_prefix}; running as root with "
        "[security] run_as will fail to import modules")
    return sys.executable


def _service_user_can_run(python: str) -> bool:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return True  # nothing to switch to
    probe = subprocess.run(["runuser", "-u", SERVICE_USER, "--", python, "-c", "import configparser, ssl"],
                           capture_output=True, cwd="/")
    return probe.returncode == 0


def setup(extras: tuple[str, ...] = ()) -> None:
    """Create .venv and install the pinned dependencies (skipped when already there)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    base = base_python()
    stamp = VENV / ".tandem-deps"
    try:
        installed = json.loads(stamp.read_text())
    except (OSError, ValueError):
        installed = {}
    if installed.get("python") != base and VENV.exists():
        say(f"recreating {VENV.relative_to(ROOT)} for {base}")
        shutil.rmtree(VENV)
        installed = {}
    if set(wanted) <= set(installed.get("packages", [])) and venv_python().exists():
        return
    if not venv_python().exists():
        say(f"creating virtualenv {VENV.relative_to(ROOT)}")
        sh([base, "-m", "venv", str(VENV)])
    say(f"installing {len(wanted)} pinned packages")
    sh([str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *wanted])
    stamp.write_text(json.dumps({"python": base,
                                 "packages": sorted(set(installed.get("packages", [])) | set(wanted))}))


def build_panel(*, check_client: bool = False) -> None:
    """Build frontend/ into frontend/dist (the web workers serve it, the binary embeds it).

    First the typed API client: frontend/src/api/schema.d.ts is generated from the OpenAPI
    document the code declares. Normally it is rewritten in place; with `check_client`
    (the test command, so CI) a committed client that differs fails the build instead.
    """
    global _panel_built
    if _panel_built or not (FRONTEND / "package.json").exists():
        return
    if not shutil.which("npm"):
        die("the panel needs Node.js 20 and npm: apt-get install nodejs npm")
    lock = FRONTEND / "package-lock.json"
    stamp = FRONTEND / "node_modules" / ".tandem-lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else ""
    if not stamp.exists() or stamp.read_text() != digest:
        say("installing panel dependencies (npm ci)")
        sh(["npm", "ci", "--no-audit", "--no-fund"], cwd=FRONTEND)
        stamp.write_text(digest)
    api_client(check=check_client)
    say("building the panel")
    sh(["npm", "run", "--silent", "build"], cwd=FRONTEND)
    _panel_built = True


_panel_built = False  # once per build.py command


API_CLIENT = FRONTEND / "src" / "api" / "schema.d.ts"
OPENAPI_DUMP = """
import json, sys
from appliance.web import app  # registers every operation
from appliance.web.api import API
sys.stdout.write(json.dumps(API.openapi(), indent=1, sort_keys=True))
"""


def api_client(*, check: bool) -> None:
    """Generate the panel's typed client from the API's OpenAPI document."""
    work = ROOT / "build"
    work.mkdir(exist_ok=True)
    document = work / "openapi.json"
    document.write_text(subprocess.run([str(venv_python()), "-c", OPENAPI_DUMP], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout)
    generated = work / "schema.d.ts"
    # --default-non-nullable false: a field with a default is optional in a request body (a PATCH
    # sends only what changes), as the API treats it.
    sh(["npx", "--no-install", "openapi-typescript", str(document), "-o", str(generated), "--silent",
        "--default-non-nullable", "false"],
       cwd=FRONTEND, stdout=subprocess.DEVNULL)
    fresh = generated.read_bytes()
    if API_CLIENT.exists() and API_CLIENT.read_bytes() == fresh:
        return
    if check:
        die(f"{API_CLIENT.relative_to(ROOT)} is stale: the API changed since it was generated. "
            "Run `python3 build.py client` and commit the result.")
    API_CLIENT.write_bytes(fresh)
    say(f"regenerated {API_CLIENT.relative_to(ROOT)} from the OpenAPI document")


def postgres_present() -> bool:
    return any(Path(p, "postgres").is_file() and Path(p, "initdb").is_file()
               for p in glob.glob("/usr/lib/postgresql/*/bin"))


def ensure_system_packages(*, browser: bool = False) -> None:
    """PostgreSQL server binaries (the embedded server and the test harness need them) and,
    for the tests, Debian's Chromium (Playwright drives it; it never downloads a browser)."""
    missing = [] if postgres_present() else [PG_PACKAGE]
    if browser and not Path(CHROMIUM).exists():
        missing.append("chromium")
    if not missing:
        return
    if os.geteuid() != 0:
        die(f"missing system packages: run `sudo apt-get install {' '.join(missing)}` and try again")
    say(f"installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sh(["apt-get", "update", "-q"], env=env)
    sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    if PG_PACKAGE in missing:
        # Debian's package starts a cluster of its own; Tandem never uses it.
        subprocess.run(["service", "postgresql", "stop"], capture_output=True)


def ensure_service_user() -> None:
    """As root, Tandem drops to the `tandem` account (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        say(f"creating the system user {SERVICE_USER}")
        sh(["useradd", "--system", "--user-group", "--home-dir", "/var/lib/tandem",
            "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER])


# -- run ---------------------------------------------------------------------

def _run_config() -> Path:
    VAR.mkdir(exist_ok=True)
    config = VAR / "tandem.toml"
    if not config.exists():
        run_as = SERVICE_USER if os.geteuid() == 0 else ""
        config.write_text(f"""# Written by `python3 build.py run` for local use; see packaging/tandem.toml.
[cluster]
name = "dev"
domain = "{RUN_DOMAIN}"

[http]
listen = ["127.0.0.1:{RUN_PORT}"]
redirect_listen = ["127.0.0.1:{RUN_REDIRECT_PORT}"]
workers = 2

[tls]
mode = "self-signed"

[database]
dsn = ""

[paths]
data_dir = "{VAR}"

[security]
key_file = "{VAR}/master.key"
run_as = "{run_as}"
""")
    return config


def _tandem(config: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv_python()), "-m", "appliance", "--config", str(config), *args],
                          cwd=ROOT, text=True, **kwargs)


def _first_login(config: Path) -> str:
    """Create the first cluster admin and the demo tenant once; remember the login in ./var."""
    login_file = VAR / "first-login.txt"
    migrated = _tandem(config, "migrate", capture_output=True)
    if migrated.returncode != 0:
        die(f"could not migrate the database: {migrated.stderr.strip()}")
    if not login_file.exists():
        result = _tandem(config, "admin", "create", FIRST_ADMIN, capture_output=True)
        if result.returncode != 0:
            die(f"could not create the first admin: {result.stderr.strip()}")
        password = next(line.split(": ", 1)[1] for line in result.stdout.splitlines() if "password" in line)
        login_file.write_text(f"{FIRST_ADMIN}\n{password}\n")
        os.chmod(login_file, 0o600)
    listing = _tandem(config, "tenant", "list", "--json", capture_output=True)
    if listing.returncode == 0 and DEMO_TENANT not in {t["slug"] for t in json.loads(listing.stdout)}:
        created = _tandem(config, "tenant", "create", DEMO_TENANT, "--name", "Demo", capture_output=True)
        if created.returncode != 0:
            die(f"could not create the demo tenant: {created.stderr.strip()}")
    email, password = login_file.read_text().split()
    return f"{email} / {password}"


def _wait_ready(process: subprocess.Popen, timeout: float = 120) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{RUN_PORT}/-/ready", context=context, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def cmd_run(_args) -> int:
    ensure_system_packages()
    ensure_service_user()
    setup()
    build_panel()
    config = _run_config()
    if os.geteuid() == 0:
        # The service user needs to reach ./var (and the code) below this checkout.
        for parent in VAR.parents:
            if parent.stat().st_mode & 0o001 == 0:
                say(f"note: {parent} is not searchable by others; the `tandem` user may not reach ./var")
                break
    login = _first_login(config)
    process = subprocess.Popen([str(venv_python()), "-m", "appliance", "--config", str(config), "run"], cwd=ROOT)
    try:
        if _wait_ready(process):
            print(f"""
  Tandem is running (Ctrl-C stops it; ./var is kept for the next run)
    cluster console   https://{RUN_DOMAIN}:{RUN_PORT}/
    demo tenant       https://{DEMO_TENANT}.{RUN_DOMAIN}:{RUN_PORT}/
    first login       {login}
    certificate       self-signed, in ./var/tls (your browser will ask you to accept it)
""", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the whole group; the supervisor stops everything in order.
        try:
            return process.wait(timeout=60)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            process.send_signal(signal.SIGTERM)
            return process.wait()


# -- binary, package, test ---------------------------------------------------

def _sources_digest() -> str:
    digest = hashlib.sha256()
    for pattern in ("appliance/**/*.py", "sql/**/*.sql", "packaging/*.spec", "packaging/*.py",
                    "frontend/dist/**/*", "pyproject.toml"):
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file():
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def cmd_binary(_args=None) -> int:
    ensure_service_user()
    setup(("build",))
    build_panel()
    binary = DIST / "tandem"
    stamp = ROOT / "build" / "tandem.sources"
    digest = _sources_digest()
    if binary.exists() and stamp.exists() and stamp.read_text() == digest:
        say(f"{binary.relative_to(ROOT)} is up to date")
        return 0
    say("building dist/tandem with PyInstaller")
    started = time.monotonic()
    sh([str(venv_python()), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--distpath", str(DIST), "--workpath", str(ROOT / "build"), str(ROOT / "packaging" / "tandem.spec")],
       cwd=ROOT)
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(digest)
    say(f"built {binary.relative_to(ROOT)} ({binary.stat().st_size / 1e6:.1f} MB) "
        f"in {time.monotonic() - started:.0f} s")
    return 0


def cmd_deb(_args=None) -> int:
    cmd_binary()
    return subprocess.call([str(venv_python()), str(ROOT / "packaging" / "build_deb.py")], cwd=ROOT)


def cmd_client(_args=None) -> int:
    setup()
    build_panel()
    return 0


def cmd_test(args) -> int:
    ensure_system_packages(browser=True)
    ensure_service_user()
    setup(("test", "build"))
    build_panel(check_client=True)
    cmd_binary()
    if (FRONTEND / "package.json").exists():
        say("running the panel's unit tests (vitest)")
        code = subprocess.call(["npm", "test", "--silent"], cwd=FRONTEND)
        if code:
            return code
    pytest = [str(venv_python()), "-m", "pytest", *args.pytest_args]
    say("running the test suite: " + " ".join(pytest[1:]))
    code = subprocess.call(pytest, cwd=ROOT)
    if code == 5:
        die("pytest collected no tests", 1)
    return code


def main() -> int:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the appliance locally (embedded PostgreSQL under ./var)")
    sub.add_parser("test", help="run the whole test suite (further arguments go to pytest)")
    sub.add_parser("binary", help="build dist/tandem")
    sub.add_parser("deb", help="build the Debian package")
    sub.add_parser("client", help="regenerate the panel's typed API client after an API change")
    args, rest = parser.parse_known_args()
    if rest and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.pytest_args = rest
    handlers = {"run": cmd_run, "test": cmd_test, "binary": cmd_binary, "deb": cmd_deb,
                "client": cmd_client}
    return handlers[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
