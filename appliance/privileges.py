"""Running as the service user: Tandem may be started as root to bind ports 80/443,
then switches to `security.run_as` for everything else."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import sys
from pathlib import Path

from appliance.errors import PermissionProblem

log = logging.getLogger(__name__)


def service_user(name: str) -> pwd.struct_passwd | None:
    """The account to run as, or None when no switch is wanted (not root, or run_as empty)."""
    if os.geteuid() != 0 or not name:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PermissionProblem(f"service user {name!r} does not exist ([security] run_as): create it "
                                f"(useradd --system --home-dir /var/lib/tandem --shell /usr/sbin/nologin {name}) "
                                "or name another") from None


def owner_ids(name: str) -> tuple[int, int] | None:
    user = service_user(name)
    return (user.pw_uid, user.pw_gid) if user else None


def prepare_dir(path: Path, owner: tuple[int, int] | None, mode: int = 0o700) -> None:
    """Create `path` if needed and, when root, hand it to the service user."""
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        st = path.stat()
        if (st.st_uid, st.st_gid) != owner:
            os.chown(path, *owner)
        if st.st_mode & 0o777 != mode:
            os.chmod(path, mode)


def drop_to(name: str) -> None:
    """Switch this process to the service user for good (groups, gid, then uid)."""
    user = service_user(name)
    if user is None:
        return
    _hand_over_bundle(user.pw_uid, user.pw_gid)
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = user.pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = user.pw_name
    log.info("running as %s (uid %d, gid %d/%s)", user.pw_name, user.pw_uid, user.pw_gid,
             grp.getgrgid(user.pw_gid).gr_name)


def check_writable(path: Path) -> None:
    """Raise PermissionProblem naming the fix when `path` is not a writable directory."""
    if not path.is_dir():
        raise PermissionProblem(f"{path}: data directory does not exist ([paths] data_dir); "
                                f"create it: install -d -m 0700 -o tandem {path}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionProblem(f"{path}: data directory is not writable by uid {os.geteuid()} "
                                f"([paths] data_dir); run: chown -R tandem: {path}")


def _hand_over_bundle(uid: int, gid: int) -> None:
    """A one-file binary unpacks its libraries and SQL into a root-only temp directory;
    the service user must still read them after the switch. The bootloader (still root)
    removes the directory at exit."""
    bundle = getattr(sys, "_MEIPASS", None)
    if not bundle:
        return
    for top, dirs, files in os.walk(bundle):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(top, name), uid, gid)
    os.chown(bundle, uid, gid)
