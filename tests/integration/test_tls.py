"""TLS as a client sees it: certificates chosen by SNI, TLS 1.2 at least, reload without
dropping connections, the self-signed default, and errors naming the file; and one
real forked web worker (ready, HTTPS, redirect, SIGHUP reload, SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance import exitcodes, tls
from appliance.config import load_config
from appliance.errors import ConfigurationError
from appliance.keys import MasterKey, ensure_key
from appliance.web.app import create_app
from tests.harness import ROOT, free_port, write_config

# ------------------------------------------------------------------ helpers


def issue(ca: trustme.CA, directory: Path, stem: str, *names: str) -> tuple[Path, Path]:
    """Write a certificate for `names` signed by `ca` (and its key) to directory/stem.{crt,key}."""
    leaf = ca.issue_cert(*names)
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


def der(cert_path: Path) -> bytes:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)


def make_config(directory: Path, pairs: list[tuple[Path, Path]], **kwargs):
    """A config serving `pairs` (mode files); its database is a socket dir with no server."""
    extra = "".join(f'\n[[tls.certificates]]\ncert = "{c}"\nkey = "{k}"\n' for c, k in pairs)
    nowhere = directory / "no-database"
    nowhere.mkdir(exist_ok=True)
    path = write_config(directory / "tandem.toml", cluster_name="ctls", data_dir=directory,
                        dsn=f"postgresql://tandem@/tandem?host={nowhere}&port=5432",
                        tls_mode="files" if pairs else kwargs.pop("tls_mode", "self-signed"),
                        extra=extra, **kwargs)
    return path, load_config(path)


def client_context(ca: trustme.CA | None = None, cafile: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if ca is not None:
        ca.configure_trust(context)
    return context


class TlsClient:
    """A blocking HTTP/1.1 keep-alive client over one TLS connection (run it in a thread
    when the server shares the test's event loop)."""

    def __init__(self, port: int, server_name: str, context: ssl.SSLContext):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname=server_name)
        self.server_name = server_name
        self.file = self.sock.makefile("rb")

    @property
    def peer_der(self) -> bytes:
        return self.sock.getpeercert(binary_form=True)

    def get(self, path: str = "/-/health") -> tuple[int, dict[str, str], bytes]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.server_name}\r\n\r\n".encode())
        status = int(self.file.readline().split()[1])
        headers = {}
        while (line := self.file.readline().decode().strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.file.read(int(headers.get("content-length", "0")))
        return status, headers, body

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def handshake(port: int, server_name: str, context: ssl.SSLContext) -> bytes:
    """The certificate the server presents for `server_name` (DER)."""
    client = TlsClient(port, server_name, context)
    try:
        return client.peer_der
    finally:
        client.close()


@contextlib.asynccontextmanager
async def serving(config, store: tls.CertificateStore):
    """The real web app on an HTTPS listener in this event loop; yields the port."""
    runner = web.AppRunner(create_app(config, MasterKey(os.urandom(32))))
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    await web.SockSite(runner, sock, ssl_context=store.context()).start()
    try:
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()


@pytest.fixture
def ca():
    return trustme.CA()


@pytest.fixture
def two_certs(tmp_path, ca):
    a = issue(ca, tmp_path, "a", "a.example")
    b = issue(ca, tmp_path, "b", "*.b.example")
    return a, b


# ------------------------------------------------------------------ SNI, versions

async def test_sni_chooses_the_matching_certificate(tmp_path, ca, two_certs):
    (a_cert, a_key), (b_cert, b_key) = two_certs
    # The wildcard certificate first, so "the default" and "the exact match" differ.
    _, config = make_config(tmp_path, [(b_cert, b_key), (a_cert, a_key)])
    store = tls.CertificateStore(config)
    context = client_context(ca)
    async with serving(config, store) as port:
        assert await asyncio.to_thread(handshake, port, "a.example", context) == der(a_cert)
        assert await asyncio.to_thread(handshake, port, "x.b.example", context) == der(b_cert)
        assert await asyncio.to_thread(handshake, port, "X.B.Example", context) == der(b_cert)
        # A wildcard covers exactly one label: neither the bare name nor two labels deep.
        unverified = ssl.create_default_context()
        unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
        for name in ("b.example", "y.x.b.example", "unknown.example"):
            assert await asyncio.to_thread(handshake, port, name, unverified) == der(b_cert), name
        # And the request itself is served over it.
        client = await asyncio.to_thread(TlsClient, port, "a.example", context)
        status, headers, body = await asyncio.to_thread(client.get)
        client.close()
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert headers["strict-transport-security"] == "max-age=31536000"


async def test_unknown_name_gets_the_first_certificate(tmp_path, ca, two_certs):
    (a_cert, a_key), (b_cert, b_key) = two_certs
    _, config = make_config(tmp_path, [(a_cert, a_key), (b_cert, b_key)])
    store = tls.CertificateStore(config)
    unverified = ssl.create_default_context()
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    async with serving(config, store) as port:
        assert await asyncio.to_thread(handshake, port, "unknown.example", unverified) == der(a_cert)
        # A client that sends no server name at all (an IP address) gets it too.
        raw = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port))
        with unverified.wrap_socket(raw, do_handshake_on_connect=False) as sock:
            await asyncio.to_thread(sock.do_handshake)
            assert sock.getpeercert(binary_form=True) == der(a_cert)


@pytest.mark.parametrize("highest, accepted", [
    (ssl.TLSVersion.TLSv1_1, False),
    (ssl.TLSVersion.TLSv1_2, True),
    (ssl.TLSVersion.TLSv1_3, True),
])
async def test_tls_1_2_is_the_minimum(tmp_path, ca, two_certs, highest, accepted):
    _, config = make_config(tmp_path, [two_certs[0]])
    context = client_context(ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        # An old client would also offer old ciphers; let this one, so only the version decides.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.maximum_version = highest
    async with serving(config, tls.CertificateStore(config)) as port:
        if accepted:
            client = await asyncio.to_thread(TlsClient, port, "a.example", context)
            assert client.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2"}.get(highest, "TLSv1.3")
            assert (await asyncio.to_thread(client.get))[0] == 200
            client.close()
        else:
            with pytest.raises(ssl.SSLError) as refused:
                await asyncio.to_thread(handshake, port, "a.example", context)
            # Refused by the server (an alert, or asyncio's bare close after the failed
            # handshake), not by a client that could not even try.
            # asyncio's close is seen as EOF or as a clean close, depending on timing.
            assert (isinstance(refused.value, (ssl.SSLEOFError, ssl.SSLZeroReturnError))
                    or "ALERT_PROTOCOL_VERSION" in str(refused.value)), refused.value


# ------------------------------------------------------------------ reload

async def test_reload_serves_new_files_to_new_connections_only(tmp_path, ca, two_certs, caplog):
    (a_cert, a_key), (b_cert, b_key) = two_certs
    _, config = make_config(tmp_path, [(a_cert, a_key), (b_cert, b_key)])
    store = tls.CertificateStore(config)
    context = client_context(ca)
    main_context = store.context()
    async with serving(config, store) as port:
        before = await asyncio.to_thread(TlsClient, port, "a.example", context)
        assert (await asyncio.to_thread(before.get))[0] == 200
        old = der(a_cert)
        assert before.peer_der == old

        # Renewed: same names, new key and certificate, written over the old files.
        issue(ca, tmp_path, "a", "a.example")
        assert der(a_cert) != old
        with caplog.at_level(logging.INFO, logger="appliance.tls"):
            store.reload()
        assert "reloaded" in caplog.text
        assert store.context() is main_context  # the listeners keep their context

        assert await asyncio.to_thread(handshake, port, "a.example", context) == der(a_cert)
        # The connection opened before the reload carries on, on its old certificate.
        status, _, body = await asyncio.to_thread(before.get)
        assert status == 200 and json.loads(body) == {"status": "ok"}
        assert before.peer_der == old
        before.close()


async def test_reload_with_a_bad_file_keeps_serving_the_old_certificate(tmp_path, ca, two_certs):
    (a_cert, a_key), _ = two_certs
    _, config = make_config(tmp_path, [(a_cert, a_key)])
    store = tls.CertificateStore(config)
    old = der(a_cert)
    # Half a renewal: a new certificate next to the old key.
    other_cert, _ = issue(ca, tmp_path, "other", "a.example")
    a_cert.write_bytes(other_cert.read_bytes())
    with pytest.raises(ConfigurationError, match=r"\[tls\].*does not match"):
        store.reload()
    async with serving(config, store) as port:
        assert await asyncio.to_thread(handshake, port, "a.example", client_context(ca)) == old


# ------------------------------------------------------------------ self-signed

def test_self_signed_is_generated_once_and_reused(tmp_path):
    _, config = make_config(tmp_path, [])
    cert_path, key_path = tls.ensure_self_signed(config)
    first = der(cert_path)
    assert (cert_path, key_path) == tls.ensure_self_signed(config)
    assert der(cert_path) == first
    assert oct(config.tls_dir.stat().st_mode & 0o777) == "0o700"
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"tandem.test", "*.tandem.test", "localhost"}
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=824) < lifetime < dt.timedelta(days=826)


async def test_self_signed_is_served_and_trusted_by_its_own_file(tmp_path):
    _, config = make_config(tmp_path, [])
    cert_path, _ = tls.ensure_self_signed(config)
    # What an admin does: `curl --cacert self-signed.crt https://acme.tandem.test/`.
    context = client_context(cafile=cert_path)
    async with serving(config, tls.CertificateStore(config)) as port:
        for name in ("acme.tandem.test", "tandem.test", "localhost"):
            assert await asyncio.to_thread(handshake, port, name, context) == der(cert_path)


def test_self_signed_is_regenerated_when_the_domain_changes(tmp_path, caplog):
    _, config = make_config(tmp_path, [])
    cert_path, _ = tls.ensure_self_signed(config)
    first = der(cert_path)
    _, moved = make_config(tmp_path, [], domain="cluster2.example.org")
    with caplog.at_level(logging.INFO, logger="appliance.tls"):
        tls.ensure_self_signed(moved)
    assert der(cert_path) != first
    assert "domain changed" in caplog.text and "tandem.test" in caplog.text
    assert tls.CertificateStore(moved).names == [("cluster2.example.org", "*.cluster2.example.org", "localhost")]


def test_self_signed_is_regenerated_before_it_expires(tmp_path, monkeypatch):
    _, config = make_config(tmp_path, [])
    monkeypatch.setattr(tls, "SELF_SIGNED_DAYS", 20)
    cert_path, _ = tls.ensure_self_signed(config)
    short = der(cert_path)
    assert tls.certificate_info(config)[0].days_left == 19
    monkeypatch.setattr(tls, "SELF_SIGNED_DAYS", 825)
    tls.ensure_self_signed(config)
    assert der(cert_path) != short
    assert tls.certificate_info(config)[0].days_left == 824


# ------------------------------------------------------------------ errors, doctor

@pytest.mark.parametrize("breakage, expected", [
    ("missing cert", r"\[tls\] certificates\[0\]: certificate file {cert} not found"),
    ("missing key", r"\[tls\] certificates\[0\]: key file {key} not found"),
    ("other key", r"\[tls\] certificates\[0\]: key {key} does not match certificate {cert}"),
    ("not pem", r"\[tls\] certificates\[0\]: {cert} does not hold a PEM certificate"),
])
def test_bad_files_are_configuration_errors_naming_the_path(tmp_path, ca, breakage, expected):
    cert, key = issue(ca, tmp_path, "a", "a.example")
    if breakage == "missing cert":
        cert.unlink()
    elif breakage == "missing key":
        key.unlink()
    elif breakage == "other key":
        _, other_key = issue(ca, tmp_path, "other", "a.example")
        key.write_bytes(other_key.read_bytes())
    else:
        cert.write_text("this is not a certificate\n")
    config_path, config = make_config(tmp_path, [(cert, key)])
    with pytest.raises(ConfigurationError) as error:
        tls.CertificateStore(config)
    message = str(error.value)
    assert message.startswith(f"{config_path}: ")
    assert re.search(expected.format(cert=re.escape(str(cert)), key=re.escape(str(key))), message), message


def test_certificate_info_for_doctor(tmp_path, ca):
    good = issue(ca, tmp_path, "a", "a.example", "www.a.example")
    mismatched_cert, _ = issue(ca, tmp_path, "m", "m.example")
    _, config = make_config(tmp_path, [good, (mismatched_cert, good[1]), (tmp_path / "gone.crt", good[1])])
    ok, mismatch, missing = tls.certificate_info(config)
    assert ok.names == ("a.example", "www.a.example")
    assert ok.key_matches and ok.problem == ""
    assert ok.not_before < dt.datetime.now(dt.timezone.utc) < ok.not_after
    assert ok.days_left == (ok.not_after - dt.datetime.now(dt.timezone.utc)).days
    assert not mismatch.key_matches and "does not match" in mismatch.problem
    assert missing.not_after is None and str(tmp_path / "gone.crt") in missing.problem


def test_a_certificate_without_alt_names_is_known_by_its_common_name(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Legacy.Example")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "legacy.crt", tmp_path / "legacy.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    _, config = make_config(tmp_path, [(cert_path, key_path)])
    assert tls.CertificateStore(config).names == [("legacy.example",)]


# ------------------------------------------------------------------ a real forked web worker

# A stand-in for the supervisor: bind the listeners as it does, fork, run the web
# worker in the child, and relay the channel and the exit status on stdout.
LAUNCHER = r"""
import os, socket, sys
from appliance.config import load_config
from appliance import tls, webworker

path = sys.argv[1]
config = load_config(path)

def listen(addresses):
    socks = []
    for host, port in addresses:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, port))
        s.listen(128)
        socks.append(s)
    return socks

sockets = listen(config.http.listen_addresses())
redirect = listen(config.http.redirect_addresses())
if config.tls.mode == "self-signed":
    tls.ensure_self_signed(config)
read_fd, write_fd = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_fd)
    webworker.main(config, path, 0, sockets, redirect, write_fd)
os.close(write_fd)
for s in sockets + redirect:
    s.close()
print("pid", pid, flush=True)
with os.fdopen(read_fd, "rb") as channel:
    for line in channel:
        print("channel", line.decode().rstrip("\n"), flush=True)
_, status = os.waitpid(pid, 0)
print("exit", os.waitstatus_to_exitcode(status), flush=True)
"""


class Launched:
    def __init__(self, config_path: Path, stderr_path: Path):
        self.stderr_path = stderr_path
        self.process = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(config_path)], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=stderr_path.open("wb"), text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.worker_pid = int(self.expect("pid"))

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("")

    def expect(self, prefix: str, timeout: float = 15) -> str:
        """The rest of the next line starting with `prefix` (skipping others, e.g. beats)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line in {timeout}s; log:\n{self.log()}") from None
            if not line:
                raise AssertionError(f"launcher ended before {prefix!r}; log:\n{self.log()}")
            if line.startswith(prefix + " ") or line == prefix:
                return line[len(prefix):].strip()

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.worker_pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def wait_until(predicate, timeout: float = 10, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def plain_get(port: int, host: str, path: str) -> tuple[int, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head and (chunk := sock.recv(4096)):
            head += chunk
    lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers


def test_forked_web_worker_serves_reloads_and_stops(tmp_path, ca):
    cert, key = issue(ca, tmp_path, "a", "a.example")
    port, redirect_port = free_port(), free_port()
    config_path, config = make_config(tmp_path, [(cert, key)], listen=[f"127.0.0.1:{port}"],
                                      redirect=[f"127.0.0.1:{redirect_port}"])
    ensure_key(config.security.key_file)
    launched = Launched(config_path, tmp_path / "worker.log")
    try:
        assert launched.expect("channel") == "ready"
        assert launched.expect("channel") == "beat"
        context = client_context(ca)
        client = TlsClient(port, "a.example", context)
        status, _, body = client.get()
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        old = der(cert)
        assert client.peer_der == old
        # The plain-HTTP listener sends browsers to HTTPS.
        status, headers = plain_get(redirect_port, "acme.tandem.test", "/x?y=1")
        assert status == 308 and headers["location"] == f"https://acme.tandem.test:{port}/x?y=1"

        # Renewed files and a config file broken meanwhile: SIGHUP reloads the
        # certificates and keeps running on the settings it has.
        issue(ca, tmp_path, "a", "a.example")
        config_path.write_text("[cluster\nbroken")
        os.kill(launched.worker_pid, signal.SIGHUP)
        wait_until(lambda: handshake(port, "a.example", context) == der(cert), message="the new certificate")
        assert "config file not re-read" in launched.log()
        status, _, _ = client.get()  # the connection from before still works
        assert status == 200 and client.peer_der == old
        client.close()

        os.kill(launched.worker_pid, signal.SIGTERM)
        assert launched.expect("exit") == "0"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        launched.stop()


def test_forked_web_worker_reports_a_boot_failure(tmp_path, ca):
    cert, key = issue(ca, tmp_path, "a", "a.example")
    key.unlink()
    config_path, config = make_config(tmp_path, [(cert, key)])
    ensure_key(config.security.key_file)
    launched = Launched(config_path, tmp_path / "worker.log")
    try:
        reason = launched.expect("channel fail")
        assert "[tls]" in reason and str(key) in reason
        assert launched.expect("exit") == str(exitcodes.BOOT_FAILURE)
    finally:
        launched.stop()
