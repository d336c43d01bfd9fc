"""A web worker: one forked process serving the web app on the shared listening sockets.

The supervisor binds the listeners (SO_REUSEPORT, one socket per worker per
address, so the kernel spreads connections across workers), generates the
self-signed certificate if needed (`tls.ensure_self_signed`), forks, and calls
`main()` in the child. The child has no event loop and no threads yet; it builds
its own loop, app, database pool and TLS contexts.

Talking to the supervisor:
- channel: `ready` once every listener serves, `beat` every
  `supervisor.heartbeat_seconds` from the event loop (a blocked loop goes stale),
  `fail <reason>` when start-up fails (then exit BOOT_FAILURE);
- SIGHUP: reload the TLS certificates and the log level from the config file;
  a bad file is logged and the worker keeps serving with what it had;
- SIGTERM: stop accepting, let in-flight requests finish (a few seconds), close
  the pool, exit 0. SIGINT is ignored: a Ctrl-C in a terminal reaches the whole
  process group, and the supervisor decides how everyone stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import NoReturn

from aiohttp import web

from appliance import exitcodes, logs, proc
from appliance.channel import ChildChannel
from appliance.config import Config, load_config
from appliance.errors import ConfigurationError, TandemError
from appliance.keys import load_key
from appliance.tls import CertificateStore
from appliance.web.app import create_app, create_metrics_app
from appliance.web.keys import DB_POOL
from appliance.web.redirect import create_redirect_app

log = logging.getLogger(__name__)

# Longest wait for in-flight requests at stop; the supervisor's grace period bounds it too.
MAX_DRAIN_SECONDS = 10.0
# Signals whose handlers the supervisor may have installed before forking.
_INHERITED = (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT, signal.SIGUSR1,
              signal.SIGUSR2, signal.SIGALRM)


def main(config: Config, config_path: Path | str | None, index: int, sockets: list[socket.socket],
         redirect_sockets: list[socket.socket], channel_fd: int,
         metrics_sockets: list[socket.socket] | None = None) -> NoReturn:
    """Run web worker `index` until SIGTERM; never returns (os._exit, so the forked
    child never unwinds into the supervisor's stack).

    `sockets` are bound, listening HTTPS (or HTTP with tls.mode "off") sockets,
    `redirect_sockets` the plain-HTTP ones (served only when TLS is on),
    `metrics_sockets` those of the separate plain-HTTP `[metrics] listen` listener,
    `channel_fd` the write end of this worker's channel. `config_path` is re-read
    on SIGHUP (None: the default path).
    Exit status: 0 after SIGTERM, BOOT_FAILURE when start-up failed, SOFTWARE on a bug.
    """
    code = exitcodes.SOFTWARE
    try:
        proc.set_parent_death_signal(signal.SIGTERM)
        proc.set_title(f"tandem: web worker {index}")
        _reset_signals()
        logs.setup(config.log.level, config.log.format)
        worker = WebWorker(config, config_path, index, sockets, redirect_sockets, ChildChannel(channel_fd),
                           metrics_sockets or [])
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            code = loop.run_until_complete(worker.run())
        finally:
            loop.close()
    except BaseException:
        log.exception("web worker %d crashed", index, extra={"worker": f"web {index}"})
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reset_signals() -> None:
    """Undo what the supervisor set up: its handlers and wake-up fd mean nothing here."""
    signal.set_wakeup_fd(-1)
    for sig in _INHERITED:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # As Python starts every process: a write to a closed socket is an error, not death.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


class WebWorker:
    def __init__(self, config: Config, config_path: Path | str | None, index: int,
                 sockets: list[socket.socket], redirect_sockets: list[socket.socket], channel: ChildChannel,
                 metrics_sockets: list[socket.socket] | None = None):
        self.config = config
        self.config_path = config_path
        self.index = index
        self.sockets = sockets
        self.redirect_sockets = redirect_sockets
        self.metrics_sockets = metrics_sockets or []
        self.channel = channel
        self.store: CertificateStore | None = None
        self._pending: set[int] = set()
        self._wake = asyncio.Event()
        self._extra = {"worker": f"web {index}"}

    def _on_signal(self, signum: int) -> None:
        # Only record it; run() acts on it.
        self._pending.add(signum)
        self._wake.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        runners: list[web.AppRunner] = []
        try:
            try:
                await self._start(runners)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, TandemError) else f"internal error: {exc!r}"
                log.error("web worker %d could not start: %s", self.index, reason, extra=self._extra,
                          exc_info=not isinstance(exc, TandemError))
                self.channel.fail(reason)
                return exitcodes.BOOT_FAILURE
            self.channel.ready()
            log.info("web worker %d serving on %s", self.index,
                     ", ".join(_address(s) for s in self.sockets), extra=self._extra)
            await self._serve()
            log.info("web worker %d stopping", self.index, extra=self._extra)
            return exitcodes.OK
        finally:
            # Per runner: listeners close, in-flight requests drain, the app's resources close.
            # The redirect listener (nothing in flight there) goes first.
            for runner in reversed(runners):
                await runner.cleanup()
            self.channel.close()

    async def _start(self, runners: list[web.AppRunner]) -> None:
        key = load_key(self.config.security.key_file)
        tls_on = self.config.tls.mode != "off"
        ssl_context = None
        if tls_on:
            self.store = CertificateStore(self.config)
            ssl_context = self.store.context()
        drain = min(MAX_DRAIN_SECONDS, max(1.0, self.config.supervisor.grace_seconds / 2))
        app = create_app(self.config, key)
        runner = web.AppRunner(app, shutdown_timeout=drain)
        runners.append(runner)
        await runner.setup()
        for sock in self.sockets:
            await web.SockSite(runner, sock, ssl_context=ssl_context).start()
        if self.redirect_sockets and not tls_on:
            log.warning("tls.mode is \"off\": not serving the redirect listeners", extra=self._extra)
            for sock in self.redirect_sockets:
                sock.close()
        elif self.redirect_sockets:
            redirect = web.AppRunner(create_redirect_app(self.config), shutdown_timeout=drain)
            runners.append(redirect)
            await redirect.setup()
            for sock in self.redirect_sockets:
                await web.SockSite(redirect, sock).start()
        if self.metrics_sockets:
            # Shares the main app's database pool; cleaned up first (runners reversed).
            scrape = web.AppRunner(create_metrics_app(self.config, app[DB_POOL]), shutdown_timeout=drain)
            runners.append(scrape)
            await scrape.setup()
            for sock in self.metrics_sockets:
                await web.SockSite(scrape, sock).start()

    async def _serve(self) -> None:
        beat = self.config.supervisor.heartbeat_seconds
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), beat)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if signal.SIGTERM in self._pending:
                return
            if signal.SIGHUP in self._pending:
                self._pending.discard(signal.SIGHUP)
                self.reload()
            self.channel.beat()

    def reload(self) -> None:
        """SIGHUP: the log level from the config file, then the certificates. Never raises
        for a bad file: it is logged and the running settings stay."""
        config = None
        try:
            config = load_config(self.config_path)
        except ConfigurationError as exc:
            log.error("reload: config file not re-read, keeping the running settings: %s", exc,
                      extra=self._extra)
        else:
            logs.set_level(config.log.level)
        if self.store is None:
            return
        try:
            # The re-read config's certificate list when there is one, so a changed
            # [[tls.certificates]] path takes effect too.
            self.store.reload(config if config is not None and config.tls.mode != "off" else None)
        except ConfigurationError as exc:
            log.error("reload: TLS certificates not reloaded, still serving the previous ones: %s", exc,
                      extra=self._extra)
        except Exception:  # a bug here must not take down a worker that serves fine
            log.exception("reload: TLS certificates not reloaded, still serving the previous ones",
                          extra=self._extra)


def _address(sock: socket.socket) -> str:
    try:
        host, port = sock.getsockname()[:2]
    except (OSError, ValueError):
        return "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
