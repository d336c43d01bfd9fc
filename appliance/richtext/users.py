"""Who a mention names: the canonical login in ``@login`` and the remote app's id for that person.

The converters take a `MentionResolver`; `resolver` gives the default.  Jira Cloud knows people by
opaque accountIds, which `account_login` spells as logins (see there).
"""

from __future__ import annotations

import re
from typing import Protocol

from .model import LOGIN_RE

_LOGIN_FULL = re.compile(LOGIN_RE + r"\Z")


class MentionResolver(Protocol):
    """Maps the canonical user id (the ``login`` in ``@login``) to the remote app's user id and back.

    Jira Cloud: the accountId; Jira Server/Data Center: the username.  Returning None means "not a
    known user": the mention is then written as plain text (``@login`` or the display text).
    """

    def to_remote(self, user: str) -> str | None: ...

    def from_remote(self, remote_id: str, display: str | None = None) -> str | None: ...


class MentionMap:
    """A `MentionResolver` backed by a dict {canonical login: remote id}."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self._out = dict(mapping)
        self._in = {remote: user for user, remote in mapping.items()}

    def to_remote(self, user: str) -> str | None:
        return self._out.get(user)

    def from_remote(self, remote_id: str, display: str | None = None) -> str | None:
        return self._in.get(remote_id)


class IdentityMentions:
    """Used when no resolver is given: the remote id is the login itself (when it looks like one)."""

    def to_remote(self, user: str) -> str | None:
        return user

    def from_remote(self, remote_id: str, display: str | None = None) -> str | None:
        return remote_id if _LOGIN_FULL.match(remote_id) else None


# Jira Cloud accountIds are opaque strings of up to 128 characters; seen in the wild: 24 hex digits
# ("5b10ac8d82e05b22cc7d4ef5") and a prefix and UUID(s) joined by colons
# ("557058:f58131cb-b67d-43c7-b30d-6b58d40bd077").  A colon cannot be part of
# "@login", so `account_login` spells every id as a login, reversibly: ASCII letters, digits and
# "-" stand for themselves, a ":" between two letters/digits is "_", and any other character
# (also "_", ".", a ":" elsewhere, a "-" at the end) is "." + two lowercase hex digits per UTF-8
# byte.  A "_" therefore always sits between two letters/digits, where Markdown never reads it
# as emphasis, and hex-shaped ids are their own login.
_ID_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ID_ESCAPE = re.compile(r"\.([0-9a-f]{2})")


def account_login(account_id: str) -> str | None:
    """The login that stands for Jira Cloud `account_id` in canonical Markdown (``@login``);
    None for an id that does not start with an ASCII letter or digit (no Atlassian format does).
    Injective: `account_id_of` gives the id back."""
    if not account_id or account_id[0] not in _ID_PLAIN:
        return None
    out: list[str] = []
    last = len(account_id) - 1
    for k, ch in enumerate(account_id):
        if ch in _ID_PLAIN or (ch == "-" and k < last):
            out.append(ch)
        elif ch == ":" and 0 < k < last and account_id[k - 1] in _ID_PLAIN and account_id[k + 1] in _ID_PLAIN:
            out.append("_")
        else:
            out.extend(f".{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def account_id_of(login: str) -> str | None:
    """The Jira Cloud accountId that `login` stands for (the inverse of `account_login`); None
    when `login` is not the login of any id (only the spelling `account_login` writes counts)."""
    try:
        raw = bytearray()
        pos = 0
        while pos < len(login):
            ch = login[pos]
            if ch == ".":
                m = _ID_ESCAPE.match(login, pos)
                if m is None:
                    return None
                raw.append(int(m.group(1), 16))
                pos = m.end()
                continue
            raw.extend(b":" if ch == "_" else ch.encode("ascii"))
            pos += 1
        account_id = raw.decode("utf-8", "surrogatepass")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return account_id if account_login(account_id) == login else None


class AccountIdMentions:
    """The resolver for Jira Cloud rich text when no user map is given: the login is the
    accountId spelled by `account_login`."""

    def to_remote(self, user: str) -> str | None:
        return account_id_of(user)

    def from_remote(self, remote_id: str, display: str | None = None) -> str | None:
        return account_login(remote_id)


ACCOUNT_IDS = AccountIdMentions()


def resolver(mentions: MentionResolver | None) -> MentionResolver:
    return mentions if mentions is not None else IdentityMentions()
