"""The two middlewares that decide who is asking and for which realm.

- `forwarded_middleware(config)`: X-Forwarded-For / X-Forwarded-Proto are believed
  only when the TCP peer is one of `[http] trusted_proxies`; then the request goes on
  as a clone with the client's address as `request.remote` and the original scheme
  (so `request.secure` says what the browser used). From anyone else the headers
  are ignored: a client cannot choose the address it is throttled and audited under.
- `host_router(config, ...)`: the first thing that looks at the Host, and it fails
  closed. Sets request[REALM]; unknown, disabled, deleting and malformed hosts all get
  the same 404 (nothing tells them apart, so a stranger cannot probe for tenants);
  503 while the tenant directory cannot be trusted (database away), because
  "does not exist" would be a guess. The probes and the metrics path answer for any
  Host (load balancers probe by IP).

`client_address(request)` is the one place handlers, throttling and the audit log
get the client's address from.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Iterable

from aiohttp import web

from appliance.config import Config
from appliance.web.keys import REALM, TENANTS
from appliance.web.realm import Realm, TenantsUnavailable, UnknownHost, resolve_host

log = logging.getLogger(__name__)

PROBE_PATHS = frozenset({"/-/health", "/-/ready"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: web.Request) -> str | None:
    """The client's IP address as text: the TCP peer, or, when the peer is a trusted
    proxy, the address it forwarded (forwarded_middleware has already put it in
    `request.remote`). None only for transports without an address (unix sockets)."""
    return request.remote


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Config strings ("10.0.0.5", "10.0.0.0/24", "::1") as networks (validated by config)."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def in_networks(address: str | None, allowed: tuple[Network, ...]) -> bool:
    """True when `address` (text; IPv4-mapped IPv6 counts as IPv4) is inside one of `allowed`."""
    ip = _ip(address)
    return ip is not None and any(ip in network for network in allowed)


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def forwarded_client(peer: str | None, header_values: list[str], trusted: tuple[Network, ...]) -> str | None:
    """The client address from X-Forwarded-For as sent to `peer` (a trusted proxy).

    Every hop appends the address it received from, so the list is read from the
    right: trusted proxies are skipped, the first other address is the client. A
    chain of trusted proxies only gives its leftmost entry. Returns None (keep the
    peer) when the header is absent or any entry is not an IP address: a proxy that
    sends garbage is misconfigured, and guessing would let a client pick its address.
    """
    entries = [item.strip() for value in header_values for item in value.split(",")]
    entries = [item for item in entries if item]
    if not entries:
        return None
    addresses = [_ip(item) for item in entries]
    if any(address is None for address in addresses):
        log.debug("ignoring malformed X-Forwarded-For from %s: %r", peer, header_values)
        return None
    for address in reversed(addresses):
        if not any(address in network for network in trusted):
            return str(address)
    return str(addresses[0])


def forwarded_middleware(config: Config):
    """The middleware honouring X-Forwarded-* from `config.http.trusted_proxies` only."""
    trusted = networks(config.http.trusted_proxies)

    @web.middleware
    async def forwarded(request: web.Request, handler) -> web.StreamResponse:
        if not trusted or not in_networks(request.remote, trusted):
            return await handler(request)
        changes: dict[str, str] = {}
        client = forwarded_client(request.remote, request.headers.getall("X-Forwarded-For", []), trusted)
        if client is not None and client != request.remote:
            changes["remote"] = client
        # The proxy nearest to us appends last; only "http" and "https" mean anything.
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
        if proto in ("http", "https") and proto != request.scheme:
            changes["scheme"] = proto
        if changes:
            request = request.clone(**changes)
        return await handler(request)

    return forwarded


def host_router(config: Config, exempt: Iterable[str] = ()):
    """The middleware setting request[REALM] from the Host (see the module docstring).
    `exempt`: further paths that answer for any Host (the metrics path)."""
    domain = config.cluster.domain
    open_paths = PROBE_PATHS | frozenset(exempt)

    @web.middleware
    async def route_host(request: web.Request, handler) -> web.StreamResponse:
        if request.path in open_paths:
            return await handler(request)
        try:
            host, slug = resolve_host(request.headers.get("Host"), domain)
        except UnknownHost as exc:
            log.debug("no realm for Host %r: %s", request.headers.get("Host"), exc)
            raise web.HTTPNotFound()
        if slug is None:
            request[REALM] = Realm("console", host)
            return await handler(request)
        try:
            tenant = request.app[TENANTS].lookup(slug)
        except TenantsUnavailable:
            raise web.HTTPServiceUnavailable(headers={"Retry-After": "5"})
        if tenant is None:
            log.debug("no active tenant %r", slug)
            raise web.HTTPNotFound()
        request[REALM] = Realm("tenant", host, tenant)
        return await handler(request)

    return route_host
