"""Names that end up in SQL as identifiers, and tenant slugs.

The one place that validates and quotes schema and role names: nothing else
formats an identifier into SQL. Values always go as asyncpg parameters.
"""

from __future__ import annotations

import re

from appliance.errors import InvalidIdentifier

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# A DNS label in lower case, 1-40 characters, no leading/trailing hyphen.
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
SLUG_MAX = 40

# Host labels with a meaning of their own, or that people would mistake for
# the appliance's own pages; never a tenant.
RESERVED_SLUGS = frozenset({
    "admin", "administrator", "api", "app", "assets", "auth", "cluster", "console", "dashboard",
    "default", "docs", "ftp", "health", "help", "imap", "internal", "localhost", "login", "mail",
    "metrics", "ns1", "ns2", "panel", "pop", "postgres", "public", "ready", "root", "smtp", "sso",
    "static", "status", "support", "system", "tandem", "webhook", "webhooks", "www",
})

CONTROL_SCHEMA = "tandem"


def quote_ident(name: str) -> str:
    """Validate `name` as one of our identifiers and return it double-quoted for SQL.

    Raises InvalidIdentifier for anything outside ^[a-z][a-z0-9_]{0,62}$ or starting
    with pg_ (PostgreSQL's reserved prefix).
    """
    if not isinstance(name, str) or not _IDENT.match(name) or name.startswith("pg_"):
        raise InvalidIdentifier(f"{name!r} is not a valid identifier "
                                "(lower-case letter, then letters, digits or _, at most 63, not pg_)")
    return f'"{name}"'


def validate_slug(slug: str) -> str:
    """Return `slug` if it can name a tenant; raise InvalidIdentifier saying why not."""
    if not isinstance(slug, str) or not slug:
        raise InvalidIdentifier("a tenant slug cannot be empty")
    if len(slug) > SLUG_MAX:
        raise InvalidIdentifier(f"tenant slug {slug[:50]!r}: at most {SLUG_MAX} characters")
    if slug != slug.lower():
        raise InvalidIdentifier(f"tenant slug {slug!r}: use lower case ({slug.lower()!r})")
    if not _SLUG.match(slug):
        raise InvalidIdentifier(f"tenant slug {slug!r}: only a-z, 0-9 and '-' (not first or last), "
                                "as in a DNS label")
    if slug[2:4] == "--":
        raise InvalidIdentifier(f"tenant slug {slug!r}: '--' in the third and fourth place is "
                                "reserved for internationalised names")
    if slug in RESERVED_SLUGS:
        raise InvalidIdentifier(f"tenant slug {slug!r} is reserved")
    if slug.startswith("pg-"):
        # Never let a tenant name read like PostgreSQL's pg_ namespace.
        raise InvalidIdentifier(f"tenant slug {slug!r}: may not start with 'pg-'")
    return slug


def tenant_schema(slug: str) -> str:
    """Schema of a tenant: t_<slug> with '-' as '_' (injective: slugs have no '_')."""
    name = "t_" + validate_slug(slug).replace("-", "_")
    quote_ident(name)
    return name


def tenant_role(cluster_name: str, slug: str) -> str:
    """PostgreSQL role of a tenant. Roles are server-wide, so the cluster name is part of it."""
    name = f"{cluster_name}_{tenant_schema(slug)}"
    quote_ident(name)
    return name
