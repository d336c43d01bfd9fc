"""The browser panel: its hashed assets and the HTML shell, on every realm's host.

The React panel is built by Vite into frontend/dist (appliance.resources.panel_dir),
with a manifest naming the hashed entry files. Two kinds of response:

- `/assets/<name>`: the hashed files. A name changes whenever its content does, so
  they are cached for a year and marked immutable; anything not in the build is a
  404 (never the shell: a missing script must fail loudly, not parse HTML).
- Every other GET outside /api/ and /-/: the shell, rendered per request with
  aiohttp-jinja2. It carries this request's CSP nonce on its scripts (the policy
  allows no other inline code) and a small JSON boot block: the realm, the tenant,
  the cluster domain and, for a signed-in browser, its CSRF token. The shell is
  never cached: it names the current build's files and the signed-in state.

A source checkout without a built panel answers the shell's paths with 503 and
says how to build it; the API works either way.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from appliance import resources
from appliance.web.keys import CONFIG, CSP_NONCE, PRINCIPAL, REALM

log = logging.getLogger(__name__)

ASSETS_PREFIX = "/assets/"
IMMUTABLE = "public, max-age=31536000, immutable"
# Every GET path except the API's, the probes' and the metrics' is the panel's (its
# router decides what to show); the others keep their JSON 404 and 405 answers.
SHELL_PATH = r"/{tail:(?!api/|-/).*}"
MANIFEST = Path(".vite") / "manifest.json"
ENTRY = "index.html"

PANEL = web.AppKey("panel", "Panel")


@dataclass(frozen=True)
class Build:
    """What one Vite build produced: the entry's scripts and style sheets, by URL."""

    root: Path
    scripts: tuple[str, ...]
    styles: tuple[str, ...]


class Panel:
    """The built panel found at start-up (None when there is no build)."""

    def __init__(self, root: Path):
        self.build = load_build(root)

    @property
    def available(self) -> bool:
        return self.build is not None


def load_build(root: Path) -> Build | None:
    """Read Vite's manifest under `root`; None when the panel was not built."""
    manifest = root / MANIFEST
    try:
        entries = json.loads(manifest.read_text())
    except FileNotFoundError:
        log.warning("the panel is not built (%s missing); the API still works", manifest)
        return None
    entry = entries[ENTRY]
    scripts = ("/" + entry["file"],)
    styles = tuple("/" + css for css in entry.get("css", ()))
    return Build(root=root, scripts=scripts, styles=styles)


async def serve_asset(request: web.Request) -> web.StreamResponse:
    build = request.app[PANEL].build
    name = request.match_info["name"]
    if build is None or not name or name.startswith(".") or "/" in name or "\\" in name:
        raise web.HTTPNotFound()
    path = build.root / "assets" / name
    if not path.is_file():
        raise web.HTTPNotFound()
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return web.FileResponse(path, headers={"Cache-Control": IMMUTABLE, "Content-Type": content_type})


async def serve_shell(request: web.Request) -> web.StreamResponse:
    build = request.app[PANEL].build
    if build is None:
        return web.Response(status=503, text="The panel is not built: run `python3 build.py run` or "
                                             "`python3 build.py binary` from a source checkout.\n",
                            headers={"Cache-Control": "no-store"})
    realm = request[REALM]
    principal = request.get(PRINCIPAL)
    config = request.app[CONFIG]
    boot = {
        "realm": realm.kind,
        "tenant": realm.slug,
        "cluster": config.cluster.name,
        "domain": config.cluster.domain,
        "csrf": principal.csrf_token if principal is not None else None,
    }
    title = f"{realm.slug} · Tandem" if realm.slug else f"{config.cluster.name} · Tandem console"
    response = aiohttp_jinja2.render_template(
        "shell.html", request,
        {"title": title, "boot": boot, "nonce": request[CSP_NONCE], "scripts": build.scripts, "styles": build.styles})
    response.headers["Cache-Control"] = "no-store"
    return response


def install(app: web.Application, root: Path | None = None) -> None:
    """Add the asset route and, last of all routes, the shell's catch-all."""
    app[PANEL] = Panel(root or resources.panel_dir())
    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("appliance.web", "templates"), autoescape=True)
    app.router.add_get(ASSETS_PREFIX + "{name}", serve_asset)
    app.router.add_get(SHELL_PATH, serve_shell)
