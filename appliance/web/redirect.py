"""The plain-HTTP listener (`[http] redirect_listen`): everything goes to HTTPS.

Any method, any path: 308 Permanent Redirect (method and body are kept, unlike 301)
to `https://<host>[:<port>]<path>?<query>`, where the port is the first `[http] listen`
port unless it is 443. The host comes from the request's Host header, so it is
checked first: lower-cased, port and trailing dot stripped, and it must be the
cluster domain or a name under it. Anything else gets 400 and no Location, so the
appliance can never be used to bounce people to a foreign site.
"""

from __future__ import annotations

import re

from aiohttp import web

from appliance.config import Config
from appliance.web.app import error_response

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalise_host(header: str | None, domain: str) -> str | None:
    """The host name of a Host header if it is `domain` or a name under it, else None.

    "ACME.Cluster.example.:80" -> "acme.cluster.example" (for domain "cluster.example").
    IP literals, empty labels and foreign names give None.
    """
    if not header:
        return None
    host = header.strip().lower()
    if host.startswith("["):  # an IPv6 literal is never one of our names
        return None
    name, sep, port = host.rpartition(":")
    if sep:
        if not port.isdigit():
            return None
        host = name
    host = host.removesuffix(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        return None
    if host != domain and not host.endswith("." + domain):
        return None
    return host


def create_redirect_app(config: Config) -> web.Application:
    """The app for the redirect listeners. Does no I/O and holds no resources."""
    domain = config.cluster.domain
    port = config.http.listen_addresses()[0][1]
    suffix = "" if port == 443 else f":{port}"

    async def redirect(request: web.Request) -> web.StreamResponse:
        host = normalise_host(request.headers.get("Host"), domain)
        if host is None:
            return error_response(400, f"Unknown host; this server answers for {domain} and its subdomains.")
        # rel_url: path and query as the client sent them (still percent-encoded),
        # never the authority of an absolute-form request line.
        url = request.rel_url
        path = url.raw_path if url.raw_path.startswith("/") else "/"  # e.g. "OPTIONS *"
        target = f"https://{host}{suffix}{path}"
        if url.raw_query_string:
            target += "?" + url.raw_query_string
        raise web.HTTPPermanentRedirect(target)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", redirect)
    return app
