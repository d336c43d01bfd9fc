"""The listening sockets of the web workers, bound by the supervisor.

The supervisor binds them before it drops privileges (ports 80 and 443 need root)
and before it forks: one socket per web worker per address, each with
SO_REUSEPORT, so the kernel spreads new connections over the workers and a
worker that dies takes only its own queue with it. Each worker keeps its own
sockets and closes everyone else's.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass, field

from appliance.config import Config, parse_listen
from appliance.errors import ConfigurationError, PermissionProblem

log = logging.getLogger(__name__)

BACKLOG = 1024


@dataclass
class Listeners:
    """`https[i]` / `redirect[i]` / `metrics[i]`: web worker i's sockets, one per configured address."""

    https: list[list[socket.socket]] = field(default_factory=list)
    redirect: list[list[socket.socket]] = field(default_factory=list)
    metrics: list[list[socket.socket]] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)            # [http] listen, as host:port
    redirect_addresses: list[str] = field(default_factory=list)   # [http] redirect_listen

    def for_worker(self, index: int) -> tuple[list[socket.socket], list[socket.socket]]:
        return self.https[index], self.redirect[index]

    def metrics_for(self, index: int) -> list[socket.socket]:
        """Web worker `index`'s sockets of the separate metrics listener (none unless configured)."""
        return self.metrics[index]

    def all(self) -> list[socket.socket]:
        return [s for group in self.https + self.redirect + self.metrics for s in group]

    def close(self) -> None:
        for sock in self.all():
            sock.close()


def bind(config: Config) -> Listeners:
    """Bind and listen on every address for every web worker.

    `[http] redirect_listen` is bound only when TLS is on (with tls.mode "off" there is
    nothing to redirect to); `[metrics] listen` (plain HTTP) only when metrics are
    enabled. Raises ConfigurationError (PermissionProblem for a port that needs root)
    with one line naming the key and the address.
    """
    listeners = Listeners()
    workers = config.http.workers
    redirect = config.http.redirect_addresses() if config.tls.mode != "off" else []
    metrics = [parse_listen(config.metrics.listen)] if config.metrics.enabled and config.metrics.listen else []
    groups = [("[http] listen", config.http.listen_addresses(), listeners.https),
              ("[http] redirect_listen", redirect, listeners.redirect),
              ("[metrics] listen", metrics, listeners.metrics)]
    for _, _, target in groups:
        target.extend([] for _ in range(workers))
    try:
        for key, addresses, target in groups:
            for host, port in addresses:
                where = f"{key}: {_show(host, port)}"
                family, address = _resolve(host, port, where)
                # Probe without SO_REUSEPORT first: sockets with it may share a port with
                # another process of the same user, so a second `tandem run` (or anything
                # else listening there) would go unnoticed and steal half the connections.
                _bind_one(family, address, where, reuse_port=False).close()
                for index in range(workers):
                    target[index].append(_bind_one(family, address, where, reuse_port=True))
                if target is listeners.https:
                    listeners.addresses.append(_show(host, port))
                elif target is listeners.redirect:
                    listeners.redirect_addresses.append(_show(host, port))
    except BaseException:
        listeners.close()
        raise
    return listeners


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolve(host: str, port: int, where: str) -> tuple[int, tuple]:
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"{where}: cannot resolve {host!r} ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    return family, address


def _bind_one(family: int, address: tuple, where: str, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # "[::]:443" means IPv6 only; list "0.0.0.0:443" as well for IPv4.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        if reuse_port:
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(f"{where} is already in use by another program (is tandem already "
                                     "running?); stop it or choose another address") from None
        if exc.errno == errno.EACCES:
            raise PermissionProblem(f"{where}: permission denied (ports below 1024 need tandem to be started "
                                    "as root, which then switches to [security] run_as)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigurationError(f"{where}: this machine has no such address") from None
        raise ConfigurationError(f"{where}: cannot listen there: {exc.strerror or exc}") from None
    return sock
