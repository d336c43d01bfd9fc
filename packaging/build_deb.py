"""Build the Debian package dist/tandem_<version>_<arch>.deb from the one-file binary.

    python3 packaging/build_deb.py [--binary dist/tandem] [--out dist] [--version V] [--arch A]

Needs dpkg-deb (Debian and derivatives); standard library only, so any python3 runs
it. The package holds /usr/bin/tandem, /etc/tandem/tandem.toml (a conffile: dpkg keeps
the administrator's edits on upgrade) made from packaging/tandem.toml, and
/lib/systemd/system/tandem.service; its maintainer scripts (packaging/debian/)
create the service user, directories and master key, and enable the unit without
starting it (the cluster domain must be set first).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEBIAN = ROOT / "packaging" / "debian"
MAINTAINER = "Tandem packaging <packaging@tandem.invalid>"
SCRIPTS = ("postinst", "prerm", "postrm")


class BuildError(Exception):
    pass


def source_version() -> str:
    """The version in appliance/__init__.py, read without importing the package."""
    text = (ROOT / "appliance" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        raise BuildError("appliance/__init__.py has no __version__")
    return match.group(1)


def host_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        machine = os.uname().machine
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def libc_depends() -> str:
    """The binary's Python was linked against this host's glibc: require at least it."""
    name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    return f"libc6 (>= {version})" if name == "glibc" and version else "libc6"


def _tree_size_kib(path: Path) -> int:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return (total + 1023) // 1024


def build(binary: Path, out_dir: Path, version: str | None = None, arch: str | None = None,
          maintainer: str = MAINTAINER) -> Path:
    """Stage the package tree in a temp dir and run dpkg-deb; returns the .deb's path.
    Raises BuildError with a one-line reason."""
    binary = Path(binary)
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise BuildError(f"{binary}: no executable binary (build it first: pyinstaller packaging/tandem.spec)")
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise BuildError("dpkg-deb not found (install the dpkg package; Debian and derivatives only)")
    version = version or source_version()
    if not re.match(r"^[0-9][A-Za-z0-9.+~-]*$", version):
        raise BuildError(f"{version!r} is not a Debian version")
    arch = arch or host_arch()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"tandem_{version}_{arch}.deb"

    with tempfile.TemporaryDirectory(prefix="tandem-deb-") as tmp:
        stage = Path(tmp) / "tandem"
        _install(binary, stage / "usr" / "bin" / "tandem", 0o755)
        # Mode 0640 root:root as shipped; postinst gives the group to tandem.
        _install(ROOT / "packaging" / "tandem.toml", stage / "etc" / "tandem" / "tandem.toml", 0o640)
        _install(ROOT / "systemd" / "tandem.service", stage / "lib" / "systemd" / "system" / "tandem.service", 0o644)
        control_dir = stage / "DEBIAN"
        control_dir.mkdir(mode=0o755)
        fields = {"VERSION": version, "ARCH": arch, "MAINTAINER": maintainer,
                  "INSTALLED_SIZE": str(_tree_size_kib(stage)), "LIBC_DEPENDS": libc_depends()}
        control = (DEBIAN / "control.in").read_text(encoding="utf-8")
        for name, value in fields.items():
            control = control.replace(f"@{name}@", value)
        if re.search(r"@[A-Z_]+@", control):
            raise BuildError("packaging/debian/control.in has a placeholder build_deb.py does not fill")
        (control_dir / "control").write_text(control, encoding="utf-8")
        _install(DEBIAN / "conffiles", control_dir / "conffiles", 0o644)
        for script in SCRIPTS:
            _install(DEBIAN / script, control_dir / script, 0o755)
        for path in [stage, *stage.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        result = subprocess.run([dpkg_deb, "--build", "--root-owner-group", str(stage), str(target)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"dpkg-deb failed: {(result.stderr or result.stdout).strip()}")
    return target


def _install(source: Path, dest: Path, mode: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    dest.chmod(mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build dist/tandem_<version>_<arch>.deb from dist/tandem.")
    parser.add_argument("--binary", type=Path, default=ROOT / "dist" / "tandem", help="the one-file binary")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="directory for the .deb")
    parser.add_argument("--version", default=None, help="package version (default: appliance.__version__)")
    parser.add_argument("--arch", default=None, help="Debian architecture (default: this host's)")
    parser.add_argument("--maintainer", default=MAINTAINER)
    args = parser.parse_args(argv)
    try:
        path = build(args.binary, args.out, args.version, args.arch, args.maintainer)
    except BuildError as exc:
        print(f"build_deb: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
