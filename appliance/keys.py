"""The appliance's master key: creation, permission checks, and what is derived from it.

The key file holds 32 random bytes (hex). Everything secret that Tandem needs but
never shows (PostgreSQL role passwords, secret encryption keys) is derived from it
with HMAC-SHA256 and a purpose string, so nothing else has to be stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from appliance.errors import ConfigurationError, PermissionProblem

KEY_BYTES = 32


class MasterKey:
    def __init__(self, raw: bytes):
        if len(raw) != KEY_BYTES:
            raise ValueError("master key must be 32 bytes")
        self._raw = raw

    def derive(self, purpose: str) -> bytes:
        return hmac.new(self._raw, purpose.encode(), hashlib.sha256).digest()

    def role_password(self, role: str) -> str:
        """Password of a PostgreSQL role Tandem manages (tenant roles, embedded superuser)."""
        return base64.urlsafe_b64encode(self.derive("pg-role:" + role)).decode().rstrip("=")

    def __repr__(self) -> str:  # never print the key
        return "MasterKey(***)"


def load_key(path: Path) -> MasterKey:
    """Read the key file; refuse one that others can read. Raises ConfigurationError."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: key file missing ([security] key_file); `tandem run` creates "
                                 "it on first start, or restore it from your backup") from None
    if st.st_mode & 0o077:
        raise PermissionProblem(f"{path}: key file is readable by others (mode {stat.filemode(st.st_mode)}); "
                                f"run: chmod 600 {path}")
    try:
        text = path.read_text().strip()
        raw = bytes.fromhex(text)
    except PermissionError:
        raise PermissionProblem(f"{path}: key file is not readable by this user (uid {os.getuid()})") from None
    except ValueError:
        raise ConfigurationError(f"{path}: key file does not hold a hex key") from None
    if len(raw) != KEY_BYTES:
        raise ConfigurationError(f"{path}: key file holds {len(raw)} bytes, expected {KEY_BYTES}")
    return MasterKey(raw)


def ensure_key(path: Path, owner: tuple[int, int] | None = None) -> MasterKey:
    """Load the key, creating it (mode 0600, atomically) when it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if owner is not None:
            os.chown(tmp, *owner)
        try:
            os.link(tmp, path)  # never overwrite a key another process created meanwhile
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return load_key(path)
