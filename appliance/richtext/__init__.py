"""Rich-text conversion between canonical Markdown, Jira wiki markup and Atlassian Document Format.

Canonical Markdown (see markdown.py) is the pivot: the engine stores it, and every converter lands on it.
For canonical ``n`` (``n == normalise(n)``): ``from_jira_wiki(to_jira_wiki(n)) == n`` and
``from_adf(to_adf(n)) == n``, but for HTML comments, which GitLab keeps unshown and Jira cannot hold:
normalise keeps them, to_jira_wiki and to_adf leave them out (comments.py).  Mentions are ``@login``
in Markdown; ``mentions`` maps the login to the remote user id (Jira Cloud accountId, Jira Server
username) and back; None means "the ids are the logins".  `ACCOUNT_IDS` is the resolver for Jira
Cloud without a user map: the login is the accountId spelled by `account_login` (reversible; an
accountId such as "557058:<uuid>" holds a colon, which a login cannot).  Plain text that every
format spells the same way skips the parsers (plain.py says which; the output is the same either way).
"""

from __future__ import annotations

from typing import Any

from . import adf, jira_wiki, markdown, plain
from .users import ACCOUNT_IDS, MentionMap, MentionResolver, account_id_of, account_login, resolver

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
    if plain.is_plain(md):
        return md
    blocks = markdown.parse(md)
    # Already canonical (the usual case): `finish` would only parse ``md`` again to find that out.
    return md if markdown.render(blocks) == md else markdown.finish(blocks)


def to_jira_wiki(md: str, mentions: MentionResolver | None = None) -> str:
    """Jira wiki markup (Jira Server/Data Center REST v2) for Markdown ``md``."""
    if plain.is_plain(md):
        return md
    return jira_wiki.render(markdown.parse(md), resolver(mentions))


def from_jira_wiki(text: str, mentions: MentionResolver | None = None) -> str:
    """Canonical Markdown for Jira wiki markup ``text``; unsupported markup degrades to readable text."""
    if plain.is_plain(text):
        return text
    return markdown.finish(jira_wiki.parse(text, resolver(mentions)))


def to_adf(md: str, mentions: MentionResolver | None = None) -> dict[str, Any]:
    """An ADF document (Jira Cloud REST v3) for Markdown ``md``."""
    if plain.is_plain(md):
        return plain.to_adf(md)
    return adf.render(markdown.parse(md), resolver(mentions))


def from_adf(doc: dict[str, Any] | None, mentions: MentionResolver | None = None) -> str:
    """Canonical Markdown for an ADF document; unsupported nodes degrade to readable text."""
    text = plain.from_adf(doc)
    if text is not None:
        return text
    return markdown.finish(adf.parse(doc, resolver(mentions)))
