"""Rich-text conversion between canonical Markdown, Jira wiki markup and Atlassian Document Format.

Canonical Markdown (see markdown.py) is the pivot: the engine stores it, and every converter lands on it.
For canonical ``n`` (``n == normalise(n)``): ``from_jira_wiki(to_jira_wiki(n)) == n`` and
``from_adf(to_adf(n)) == n``.  Mentions are ``@login`` in Markdown; ``mentions`` maps the login to the
remote user id (Jira Cloud accountId, Jira Server username) and back; None means "the ids are the
logins".  `ACCOUNT_IDS` is the resolver for Jira Cloud without a user map: the login is the
accountId spelled by `account_login` (reversible; an accountId such as "557058:<uuid>" holds a
colon, which a login cannot).
"""

from __future__ import annotations

from typing import Any

from . import adf, jira_wiki, markdown
from .model import ACCOUNT_IDS, MentionMap, MentionResolver, account_id_of, account_login, resolver

__all__ = [
    "ACCOUNT_IDS",
    "MentionMap",
    "MentionResolver",
    "account_id_of",
    "account_login",
    "from_adf",
    "from_jira_wiki",
    "normalise",
    "to_adf",
    "to_jira_wiki",
]


def normalise(md: str) -> str:
    """Canonical Markdown for ``md``: the fixed point every converter lands on (idempotent)."""
    return markdown.finish(markdown.parse(md))


def to_jira_wiki(md: str, mentions: MentionResolver | None = None) -> str:
    """Jira wiki markup (Jira Server/Data Center REST v2) for Markdown ``md``."""
    return jira_wiki.render(markdown.parse(md), resolver(mentions))


def from_jira_wiki(text: str, mentions: MentionResolver | None = None) -> str:
    """Canonical Markdown for Jira wiki markup ``text``; unsupported markup degrades to readable text."""
    return markdown.finish(jira_wiki.parse(text, resolver(mentions)))


def to_adf(md: str, mentions: MentionResolver | None = None) -> dict[str, Any]:
    """An ADF document (Jira Cloud REST v3) for Markdown ``md``."""
    return adf.render(markdown.parse(md), resolver(mentions))


def from_adf(doc: dict[str, Any] | None, mentions: MentionResolver | None = None) -> str:
    """Canonical Markdown for an ADF document; unsupported nodes degrade to readable text."""
    return markdown.finish(adf.parse(doc, resolver(mentions)))
