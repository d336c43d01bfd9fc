import pytest

from appliance.errors import InvalidIdentifier
from appliance.identifiers import quote_ident, tenant_role, tenant_schema, validate_slug


@pytest.mark.parametrize("slug, why", [
    ("Acme", "lower case"),
    ("../x", "only a-z"),
    ("pg_x", "only a-z"),
    ("a" * 64, "at most 40"),
    ("admin", "reserved"),
    ("", "empty"),
    ("-a", "only a-z"),
    ("a-", "only a-z"),
    ("xn--abc", "internationalised"),
    ("pg-x", "pg-"),
    ("a b", "only a-z"),
    ("a" * 41, "at most 40"),
])
def test_rejected_slugs_say_why(slug, why):
    with pytest.raises(InvalidIdentifier, match=why):
        validate_slug(slug)


@pytest.mark.parametrize("slug", ["acme", "a", "acme-2", "9lives", "a" * 40, "a-b-c"])
def test_accepted_slugs(slug):
    assert validate_slug(slug) == slug
    # Every accepted slug yields a schema and a role PostgreSQL accepts unquoted-safe.
    assert quote_ident(tenant_schema(slug)) == f'"{tenant_schema(slug)}"'
    assert len(tenant_role("cluster1", slug)) <= 63


def test_schema_and_role_names():
    assert tenant_schema("acme-2") == "t_acme_2"
    assert tenant_role("cluster1", "acme-2") == "cluster1_t_acme_2"


@pytest.mark.parametrize("name", ['x"; DROP TABLE t; --', "Tandem", "pg_catalog", "", "1abc", "a" * 64, "a-b"])
def test_quote_ident_refuses_what_is_not_ours(name):
    with pytest.raises(InvalidIdentifier):
        quote_ident(name)


def test_quote_ident_quotes():
    assert quote_ident("t_acme") == '"t_acme"'
