"""Security headers on every response, and the per-request CSP nonce.

`nonce_middleware` (the outermost middleware) gives each request a fresh random
nonce in request[CSP_NONCE]; the HTML shell puts it on its inline <script>/<style>
tags, and the Content-Security-Policy of that response allows exactly those.
`add_security_headers` runs on every response as it is prepared, so errors, 404s,
redirects and streamed responses carry the headers too, whichever code made them.

The policy (DESIGN.md, "Panel and API"): nothing is loaded from anywhere but the
appliance itself (`default-src 'self'`), no framing, no plugins, no <base> games,
forms post only to us. A handler that set a header itself keeps its value.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from appliance.web.keys import CSP_NONCE

BASE_POLICY = ("default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'; "
               "object-src 'none'")

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Nothing in the panel needs these; deny them to anything that gets in.
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(), payment=(), usb=()",
}

API_PREFIX = "/api/"


def content_security_policy(nonce: str) -> str:
    """The policy for a response whose inline scripts/styles carry `nonce`."""
    return f"{BASE_POLICY}; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'"


def new_nonce() -> str:
    # 128 bits, URL-safe base64: valid in a CSP source expression and an HTML attribute.
    return secrets.token_urlsafe(16)


@web.middleware
async def nonce_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Set request[CSP_NONCE] before anything else runs (clones made later share it)."""
    request[CSP_NONCE] = new_nonce()
    return await handler(request)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: the headers above, the CSP with this request's nonce,
    and `Cache-Control: no-store` on API responses (they carry account data)."""
    headers = response.headers
    nonce = request.get(CSP_NONCE) or new_nonce()  # requests that failed before the middleware
    headers.setdefault("Content-Security-Policy", content_security_policy(nonce))
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    if request.path.startswith(API_PREFIX):
        headers.setdefault("Cache-Control", "no-store")


def install(app: web.Application) -> None:
    """Add the response hook; the middleware is placed by create_app (it knows the order)."""
    app.on_response_prepare.append(add_security_headers)
