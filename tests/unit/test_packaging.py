"""What ships around the binary: the documented example config, the systemd unit,
the installer and the Debian package, checked the way an administrator meets them."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from appliance.config import Config, SupervisorConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "packaging" / "tandem.toml"
UNIT = ROOT / "systemd" / "tandem.service"
INSTALL = ROOT / "packaging" / "install.sh"
DEBIAN = ROOT / "packaging" / "debian"
SHELL_SCRIPTS = [INSTALL, DEBIAN / "postinst", DEBIAN / "prerm", DEBIAN / "postrm"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the example config: the administrator's contract ---------------------------------------


def _sections(text: str) -> dict[str, str]:
    """Body of each top-level [section] of a TOML text, comments included."""
    parts = re.split(r"^\[([a-z_]+)\]\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def _section_models() -> dict[str, type[BaseModel]]:
    return {name: field.annotation for name, field in Config.model_fields.items() if name != "source"}


def test_example_config_validates():
    config = load_config(EXAMPLE)
    assert config.cluster.domain == "cluster1.tandem.example.com"
    assert config.database.managed and config.tls.mode == "self-signed"


def test_example_config_documents_every_key_of_every_section():
    sections = _sections(EXAMPLE.read_text())
    missing = []
    for section, model in _section_models().items():
        if section not in sections:
            missing.append(f"[{section}]")
            continue
        body = sections[section]
        for key, field in model.model_fields.items():
            item = _list_item_model(field.annotation)
            if item is not None:  # an array of tables, e.g. [[tls.certificates]] with cert and key
                if not re.search(rf"^#?\s*\[\[{section}\.{key}\]\]\s*$", body, re.M):
                    missing.append(f"[[{section}.{key}]]")
                missing += [f"{section}.{key}.{sub}" for sub in item.model_fields
                            if not re.search(rf"^#?\s*{sub}\s*=", body, re.M)]
            elif not re.search(rf"^#?\s*{key}\s*=", body, re.M):
                missing.append(f"{section}.{key}")
    assert missing == []


def _list_item_model(annotation):
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is list and args and isinstance(args[0], type) \
            and issubclass(args[0], BaseModel):
        return args[0]
    return None


def test_example_config_shows_the_defaults():
    """Every active line is the default; machine-dependent defaults are commented out."""
    config = load_config(EXAMPLE)
    differ = []
    for section, model in _section_models().items():
        loaded = getattr(config, section)
        for key, field in model.model_fields.items():
            if field.is_required():
                continue
            default = field.get_default(call_default_factory=True)
            if getattr(loaded, key) != default:
                differ.append(f"{section}.{key} = {getattr(loaded, key)!r}, default {default!r}")
    assert differ == []


def test_commented_keys_in_the_example_are_real_keys():
    """A commented example line with a typo would teach administrators a wrong name."""
    sections = _sections(EXAMPLE.read_text())
    models = _section_models()
    wrong = []
    for section, body in sections.items():
        names = set(models[section].model_fields)
        for field in models[section].model_fields.values():
            item = _list_item_model(field.annotation)
            if item is not None:
                names |= set(item.model_fields)
        for key in re.findall(r"^#\s?([a-z_]+) = ", body, re.M):
            if key not in names:
                wrong.append(f"{section}.{key}")
    assert wrong == []


# -- the systemd unit --------------------------------------------------------------------------


def _unit_directives() -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            name, _, value = line.partition("=")
            directives.setdefault(name.strip(), []).append(value.strip())
    return directives


def test_unit_runs_the_appliance_as_a_notify_service():
    unit = _unit_directives()
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == ["/usr/bin/tandem --config /etc/tandem/tandem.toml run"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["WatchdogSec"] == ["30"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["KillMode"] == ["mixed"]
    # The supervisor is the bootloader's child in the one-file binary (see the unit's comment).
    assert unit["NotifyAccess"] == ["all"]
    # Started as root: it binds 443 and switches to the service user itself.
    assert unit.get("User", ["root"]) == ["root"]
    assert float(unit["TimeoutStopSec"][0]) > SupervisorConfig().grace_seconds
    assert unit["StandardOutput"] == ["journal"]


def test_unit_is_hardened_but_can_write_its_data_dir():
    unit = _unit_directives()
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert str(Config.model_fields["paths"].default.data_dir) in unit["ReadWritePaths"][0].split()
    assert unit["ProtectHome"] == ["yes"] and unit["PrivateTmp"] == ["yes"]
    for name in ("ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs"):
        assert unit[name] == ["yes"], name
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert int(unit["LimitNOFILE"][0]) >= 65536
    capabilities = set(unit["CapabilityBoundingSet"][0].split())
    assert {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN"} <= capabilities


def test_systemd_analyze_accepts_the_unit(tmp_path):
    # verify insists that ExecStart's binary exists: point the unit at a stand-in.
    fake = tmp_path / "tandem"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    unit = tmp_path / "tandem.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/tandem", str(fake)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    # Unknown or malformed directives are only warnings (exit 0), so any output fails the test.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# -- shell scripts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_posix_sh(script):
    assert script.read_text().startswith("#!/bin/sh\n")
    shell = shutil.which("dash") or "/bin/sh"
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- install.sh --------------------------------------------------------------------------------------


def _fake_binary(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for the built binary: logs its arguments and runs the CLI from source,
    so the installer's `check-config` really validates what it wrote."""
    log = tmp_path / "calls.log"
    binary = tmp_path / "tandem-build"
    binary.write_text(f'#!/bin/sh\necho "$*" >> {log}\n'
                      f'PYTHONPATH={ROOT} exec {sys.executable} -m appliance "$@"\n')
    binary.chmod(0o755)
    return binary, log


def _install(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return subprocess.run(["sh", str(INSTALL), *args], capture_output=True, text=True, timeout=60, env=env)


def test_install_into_a_prefix(tmp_path):
    binary, calls = _fake_binary(tmp_path)
    root = tmp_path / "root"
    result = _install("--binary", str(binary), "--domain", "acme.tandem.example.org", "--prefix", str(root),
                      "--no-start")
    assert result.returncode == 0, result.stderr
    assert "not creating the user tandem" in result.stdout

    installed = root / "usr/bin/tandem"
    assert installed.read_bytes() == binary.read_bytes() and _mode(installed) == 0o755
    assert (root / "lib/systemd/system/tandem.service").read_text() == UNIT.read_text()
    assert _mode(root / "etc/tandem") == 0o750
    config_file = root / "etc/tandem/tandem.toml"
    assert _mode(config_file) == 0o640
    config = load_config(config_file)
    assert config.cluster.domain == "acme.tandem.example.org"
    # Everything but the domain is the documented example.
    assert config_file.read_text() == EXAMPLE.read_text().replace(
        'domain = "cluster1.tandem.example.com"', 'domain = "acme.tandem.example.org"')
    assert _mode(root / "var/lib/tandem") == 0o700
    key = root / "var/lib/tandem/master.key"
    assert _mode(key) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", key.read_text())
    assert calls.read_text().splitlines() == [f"--config {config_file} check-config"]


def test_install_again_keeps_the_config_and_key_and_replaces_the_binary(tmp_path):
    binary, _ = _fake_binary(tmp_path)
    root = tmp_path / "root"
    assert _install("--binary", str(binary), "--domain", "one.example.org", "--prefix", str(root)).returncode == 0
    config_file, key = root / "etc/tandem/tandem.toml", root / "var/lib/tandem/master.key"
    config_file.write_text(config_file.read_text().replace("max_body_mb = 16", "max_body_mb = 64"))
    key_before = key.read_text()
    binary.write_text(binary.read_text() + "# new build\n")

    result = _install("--binary", str(binary), "--domain", "two.example.org", "--prefix", str(root))
    assert result.returncode == 0, result.stderr
    assert "kept the existing" in result.stdout
    config = load_config(config_file)
    assert (config.cluster.domain, config.http.max_body_mb) == ("one.example.org", 64)
    assert key.read_text() == key_before
    assert (root / "usr/bin/tandem").read_text().endswith("# new build\n")


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "usage: install.sh"),
    (["--binary", "/nonexistent/tandem", "--domain", "a.example.org"], 3, "not an executable file"),
    (["--domain", "a.example.org;rm -rf /"], 3, "not a DNS name"),
    (["--bogus"], 2, "unknown argument: --bogus"),
], ids=["no-arguments", "missing-binary", "bad-domain", "unknown-flag"])
def test_install_refuses_bad_arguments(tmp_path, args, code, message):
    binary, _ = _fake_binary(tmp_path)
    if args and "--binary" not in args and "--bogus" not in args:
        args = ["--binary", str(binary), *args]
    result = _install(*args, "--prefix", str(tmp_path / "root"))
    assert result.returncode == code
    assert message in result.stderr
    assert not (tmp_path / "root/usr/bin/tandem").exists()


def test_install_stops_when_the_written_config_does_not_validate(tmp_path):
    binary, _ = _fake_binary(tmp_path)
    # A domain label longer than 63 characters passes the installer's character check
    # but not the appliance's validation.
    result = _install("--binary", str(binary), "--domain", "a" * 70 + ".example.org", "--prefix",
                      str(tmp_path / "root"))
    assert result.returncode == 3
    assert "does not validate" in result.stderr
    assert "[cluster] domain" in result.stderr  # the CLI's own one-line reason


# -- the Debian package ----------------------------------------------------------------------------



@pytest.fixture
def deb(tmp_path) -> Path:
    binary = tmp_path / "tandem"
    binary.write_text("#!/bin/sh\necho tandem 9.9.9\n")
    binary.chmod(0o755)
    result = subprocess.run([sys.executable, str(ROOT / "packaging/build_deb.py"), "--binary", str(binary),
                             "--out", str(tmp_path / "out"), "--version", "1.2.3", "--arch", "amd64"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == tmp_path / "out" / "tandem_1.2.3_amd64.deb"
    return path


def _dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


def test_deb_metadata_and_contents(deb):
    info = _dpkg_deb("--info", str(deb))
    assert "Package: tandem" in info and "Version: 1.2.3" in info and "Architecture: amd64" in info
    fields = {name: _dpkg_deb("--field", str(deb), name).strip() for name in ("Depends", "Recommends")}
    assert "adduser" in fields["Depends"]
    assert fields["Recommends"] == "postgresql-15"
    for script in ("postinst", "prerm", "postrm", "conffiles"):
        assert re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s+{script}\b", info, re.M), script

    listing = {line.split()[-1]: line.split()[:2] for line in _dpkg_deb("--contents", str(deb)).splitlines()}
    assert listing["./usr/bin/tandem"] == ["-rwxr-xr-x", "root/root"]
    assert listing["./etc/tandem/tandem.toml"] == ["-rw-r-----", "root/root"]
    assert listing["./lib/systemd/system/tandem.service"] == ["-rw-r--r--", "root/root"]


def test_deb_ships_the_example_config_as_a_conffile(deb, tmp_path):
    control, files = tmp_path / "control", tmp_path / "files"
    subprocess.run(["dpkg-deb", "--control", str(deb), str(control)], check=True)
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(files)], check=True)
    assert (control / "conffiles").read_text().split() == ["/etc/tandem/tandem.toml"]
    for script in ("postinst", "prerm", "postrm"):
        assert (control / script).read_text() == (DEBIAN / script).read_text()
        assert _mode(control / script) == 0o755
    assert (files / "etc/tandem/tandem.toml").read_text() == EXAMPLE.read_text()
    assert (files / "lib/systemd/system/tandem.service").read_text() == UNIT.read_text()


def _shim(directory: Path, name: str, log: Path) -> None:
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
    path.chmod(0o755)


def test_deb_maintainer_scripts_set_up_and_purge(deb, tmp_path):
    """postinst/postrm run against an unpacked tree ($DPKG_ROOT), with adduser, chown and
    systemctl replaced by recorders: the system user and ownership are not ours to change."""
    root, control, shims = tmp_path / "root", tmp_path / "control", tmp_path / "shims"
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(root)], check=True)
    subprocess.run(["dpkg-deb", "--control", str(deb), str(control)], check=True)
    shims.mkdir()
    calls = tmp_path / "calls.log"
    for name in ("adduser", "chown", "systemctl", "deb-systemd-helper"):
        _shim(shims, name, calls)
    env = {"PATH": f"{shims}:{os.environ['PATH']}", "DPKG_ROOT": str(root)}

    def run(script: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", str(control / script), *args], capture_output=True, text=True, env=env,
                              timeout=30)

    result = run("postinst", "configure", "")
    assert result.returncode == 0, result.stderr
    assert _mode(root / "var/lib/tandem") == 0o700
    key = root / "var/lib/tandem/master.key"
    assert _mode(key) == 0o600 and re.fullmatch(r"[0-9a-f]{64}\n", key.read_text())
    assert _mode(root / "etc/tandem") == 0o750 and _mode(root / "etc/tandem/tandem.toml") == 0o640
    log = calls.read_text()
    assert re.search(r"^adduser --system --group .*tandem$", log, re.M)
    assert f"chown tandem:tandem {root}/var/lib/tandem\n" in log
    assert f"chown root:tandem {root}/etc/tandem {root}/etc/tandem/tandem.toml\n" in log
    assert "systemctl" not in log  # never starts (and never touches the host's systemd from a --root)
    assert "set [cluster] domain" in result.stdout

    key_text = key.read_text()
    assert run("postinst", "configure", "1.2.2").returncode == 0  # upgrade: the key stays
    assert key.read_text() == key_text

    removed = run("postrm", "remove")
    assert removed.returncode == 0 and key.exists()
    assert "data is kept in" in removed.stdout
    purged = run("postrm", "purge")
    assert purged.returncode == 0
    assert "deleting" in purged.stdout and not (root / "var/lib/tandem").exists()


# -- the one-file binary under systemd -------------------------------------------------------------


@pytest.mark.parametrize("frozen, pings", [(True, True), (False, False)])
def test_watchdog_accepts_the_bootloader_as_main_process(monkeypatch, frozen, pings):
    """In the one-file binary systemd's main PID (WATCHDOG_PID) is PyInstaller's
    bootloader, the supervisor's parent; the watchdog must still be pinged there,
    and only there."""
    from appliance.sdnotify import Notifier
    if frozen:
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    else:
        monkeypatch.delattr(sys, "frozen", raising=False)
    notifier = Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getppid())})
    assert notifier.watchdog_interval == (15.0 if pings else None)
