"""TLS for the web workers: the certificates, chosen by SNI, and the self-signed default.

- `ensure_self_signed(config)`: with `tls.mode = "self-signed"`, the supervisor calls
  it once before it forks the web workers, so the pair exists before anyone reads it
  and workers never race to create it. It is generated on the first start and kept
  under `paths.data_dir/tls/`, and replaced when it is about to expire or when the
  cluster domain no longer matches it.
- `CertificateStore(config)`: each web worker's certificates and SSLContexts. The main
  context's `sni_callback` switches every new handshake to the context of the
  certificate whose name matches the requested server name; `reload()` (SIGHUP)
  swaps those contexts, so new connections get renewed files while established
  ones carry on with the certificate they started with.
- `certificate_info(config)`: what `tandem doctor` shows about each certificate.

Problems with a certificate or key file raise ConfigurationError naming [tls] and
the path, so a bad file stops start-up with one line an administrator can act on.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.config import Config
from appliance.errors import ConfigurationError

log = logging.getLogger(__name__)

SELF_SIGNED_CERT = "self-signed.crt"
SELF_SIGNED_KEY = "self-signed.key"
# The longest validity browsers accept for a certificate they are told to trust.
SELF_SIGNED_DAYS = 825
RENEW_WITHIN_DAYS = 30

# Mozilla's "intermediate" TLS 1.2 suites (forward secrecy, AEAD only); TLS 1.3
# suites are OpenSSL's defaults, all of them modern.
CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
])


@dataclass(frozen=True)
class CertInfo:
    """One certificate as `tandem doctor` reports it. `problem` is "" when it can be
    served; otherwise it says why not (and the dates/names may be missing)."""

    path: Path
    key_path: Path
    names: tuple[str, ...]
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    days_left: int | None
    key_matches: bool
    problem: str = ""


@dataclass(frozen=True)
class _Served:
    """A loaded certificate and the context that serves it."""

    cert_path: Path
    key_path: Path
    names: tuple[str, ...]
    not_after: dt.datetime
    context: ssl.SSLContext


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------- self-signed

def self_signed_paths(config: Config) -> tuple[Path, Path]:
    """(certificate, key) of the generated pair; they may not exist yet."""
    return config.tls_dir / SELF_SIGNED_CERT, config.tls_dir / SELF_SIGNED_KEY


def self_signed_names(domain: str) -> tuple[str, ...]:
    """The names a self-signed certificate for this cluster domain covers."""
    return (domain, f"*.{domain}", "localhost")


def ensure_self_signed(config: Config, owner: tuple[int, int] | None = None) -> tuple[Path, Path]:
    """Make sure the self-signed pair for `config.cluster.domain` exists and is usable.

    Generates it (ECDSA P-256, SHA-256, SANs: the domain, `*.<domain>`, localhost,
    valid SELF_SIGNED_DAYS) when missing, unreadable, not matching its key, expired
    or expiring within RENEW_WITHIN_DAYS, or made for another domain; otherwise reuses
    it. The directory is 0700, the key 0600; with `owner` (uid, gid) both belong to
    that user (call as the service user, or pass its ids when still root).
    Returns (cert_path, key_path). Raises ConfigurationError when the directory
    cannot be written.
    """
    cert_path, key_path = self_signed_paths(config)
    domain = config.cluster.domain
    try:
        config.tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(config.tls_dir, 0o700)
        if owner is not None:
            os.chown(config.tls_dir, *owner)
    except OSError as exc:
        raise ConfigurationError(f"[tls] mode = \"self-signed\": cannot create {config.tls_dir} "
                                 f"([paths] data_dir): {exc.strerror}") from None
    with _locked(config.tls_dir / ".lock"):
        why = _why_regenerate(cert_path, key_path, domain)
        if why is None:
            return cert_path, key_path
        log.info("generating a self-signed TLS certificate for %s and *.%s: %s", domain, domain, why)
        _write_self_signed(cert_path, key_path, domain, owner)
    return cert_path, key_path


def _why_regenerate(cert_path: Path, key_path: Path, domain: str) -> str | None:
    if not cert_path.exists() and not key_path.exists():
        return "none yet (first start)"
    try:
        cert, key = _read_pair(cert_path, key_path)
    except ConfigurationError as exc:
        log.warning("replacing the self-signed certificate: %s", exc)
        return "the previous one could not be used"
    if not _key_matches(cert, key):
        return "the previous certificate does not match its key"
    left = cert.not_valid_after_utc - _now()
    if left < dt.timedelta(days=RENEW_WITHIN_DAYS):
        return f"the previous one expires {cert.not_valid_after_utc:%Y-%m-%d}"
    names = set(_dns_names(cert))
    if not {domain, f"*.{domain}"} <= names:
        old = sorted(n for n in names if not n.startswith("*.") and n != "localhost")
        return f"the cluster domain changed (was {', '.join(old) or 'unknown'})"
    return None


def _write_self_signed(cert_path: Path, key_path: Path, domain: str, owner: tuple[int, int] | None) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tandem (self-signed)")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # An hour back, so a client whose clock is a little behind still accepts it.
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in self_signed_names(domain)]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    # Key first: a reader that sees the new key with the old certificate refuses the
    # pair (mismatch) and keeps what it had, rather than serving a broken one.
    _write_atomically(key_path, key_pem, 0o600, owner)
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, owner)


def _write_atomically(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    tmp = path.with_name(path.name + ".new")
    try:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigurationError(f"[tls] mode = \"self-signed\": cannot write {path}: {exc.strerror}") from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise generators across processes (the supervisor and, say, a CLI command)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------- reading files

def _configured_pairs(config: Config) -> list[tuple[Path, Path, str]]:
    """(cert, key, where-in-the-config) for each certificate the config asks for."""
    source = f"{config.source}: " if config.source else ""
    if config.tls.mode == "files":
        return [(c.cert, c.key, f"{source}[tls] certificates[{i}]")
                for i, c in enumerate(config.tls.certificates)]
    if config.tls.mode == "self-signed":
        cert, key = self_signed_paths(config)
        return [(cert, key, f"{source}[tls] mode = \"self-signed\"")]
    return []


def _read_file(path: Path, what: str, where: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{where}: {what} file {path} not found") from None
    except PermissionError:
        raise ConfigurationError(f"{where}: {what} file {path} is not readable by this user "
                                 f"(uid {os.getuid()})") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{where}: {what} file {path} is a directory") from None
    except OSError as exc:
        raise ConfigurationError(f"{where}: {what} file {path} cannot be read: {exc.strerror}") from None


def _read_pair(cert_path: Path, key_path: Path, where: str = "[tls]"):
    """Parse a PEM certificate (chain, leaf first) and its PEM private key."""
    cert_pem = _read_file(cert_path, "certificate", where)
    key_pem = _read_file(key_path, "key", where)
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise ConfigurationError(f"{where}: {cert_path} does not hold a PEM certificate "
                                 "(-----BEGIN CERTIFICATE-----)") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ConfigurationError(f"{where}: key file {key_path} is encrypted; Tandem needs it without a "
                                 "passphrase (protect it with mode 0600 instead)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigurationError(f"{where}: {key_path} does not hold a PEM private key "
                                 "(-----BEGIN PRIVATE KEY-----)") from None
    return cert, key


def _key_matches(cert: x509.Certificate, key) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The certificate's DNS subjectAltNames, or its common name when it has none."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(n.lower().rstrip(".") for n in names)


# ---------------------------------------------------------------- serving

def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def _load(cert_path: Path, key_path: Path, where: str) -> _Served:
    cert, key = _read_pair(cert_path, key_path, where)
    if not _key_matches(cert, key):
        raise ConfigurationError(f"{where}: key {key_path} does not match certificate {cert_path}")
    names = _dns_names(cert)
    if not names:
        raise ConfigurationError(f"{where}: certificate {cert_path} names no host (no DNS subjectAltName, "
                                 "no common name)")
    context = _server_context()
    try:
        context.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as exc:
        # The files changed between our read and OpenSSL's, or OpenSSL refuses them.
        raise ConfigurationError(f"{where}: {cert_path} / {key_path} cannot be used: {exc}") from None
    left = cert.not_valid_after_utc - _now()
    if left <= dt.timedelta(0):
        log.error("TLS certificate %s (%s) EXPIRED on %s; clients will refuse it", cert_path,
                  ", ".join(names), f"{cert.not_valid_after_utc:%Y-%m-%d}")
    elif left < dt.timedelta(days=14):
        log.warning("TLS certificate %s (%s) expires in %d days", cert_path, ", ".join(names), left.days)
    return _Served(cert_path, key_path, names, cert.not_valid_after_utc, context)


class CertificateStore:
    """The certificates one web worker serves, and the SSLContext for its listeners.

    Build it in the web worker (after the supervisor's `ensure_self_signed`). Raises
    ConfigurationError when a file is missing, unreadable or its key does not match,
    and for `tls.mode = "off"` (nothing to serve). Not thread-safe; use from the
    worker's event loop thread.
    """

    def __init__(self, config: Config):
        self._config = config
        self._served = self._load_all(config)
        self._main = _server_context()
        self._main.load_cert_chain(self._served[0].cert_path, self._served[0].key_path)
        self._main.sni_callback = self._choose
        self._index(self._served)

    def context(self) -> ssl.SSLContext:
        """The context to give every TLS listener. The same object for the store's lifetime."""
        return self._main

    @property
    def names(self) -> list[tuple[str, ...]]:
        """Names of each certificate, in configured order (the first is the default)."""
        return [s.names for s in self._served]

    def reload(self, config: Config | None = None) -> None:
        """Re-read the certificate files (of `config`'s [tls] section when given, e.g. a
        re-read config file; else the one the store was built with).

        All files are loaded before anything changes: on ConfigurationError the store
        keeps serving what it had. New handshakes use the new certificates; connections
        already established are untouched.
        """
        config = config or self._config
        served = self._load_all(config)
        # Only for a handshake that never reaches the SNI callback; SSL objects already
        # created keep their own copy of the old certificate.
        try:
            self._main.load_cert_chain(served[0].cert_path, served[0].key_path)
        except (ssl.SSLError, OSError) as exc:  # the files changed again since _load_all
            raise ConfigurationError(f"[tls] {served[0].cert_path}: changed while being reloaded ({exc}); "
                                     "reload again") from None
        self._index(served)
        self._served = served
        self._config = config
        log.info("TLS certificates reloaded: %s", "; ".join(", ".join(s.names) for s in served))

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        """The context for a requested server name: an exact name first, then a wildcard
        covering exactly one more label, else the first certificate."""
        if server_name:
            name = server_name.lower().rstrip(".")
            context = self._exact.get(name)
            if context is not None:
                return context
            _, dot, parent = name.partition(".")
            if dot:
                context = self._wildcard.get(parent)
                if context is not None:
                    return context
        return self._served[0].context

    def _choose(self, ssl_object, server_name: str | None, initial: ssl.SSLContext) -> None:
        # Called by OpenSSL during each handshake, before the certificate is sent.
        ssl_object.context = self.context_for(server_name)
        return None

    def _index(self, served: tuple[_Served, ...]) -> None:
        exact: dict[str, ssl.SSLContext] = {}
        wildcard: dict[str, ssl.SSLContext] = {}
        for entry in served:
            for name in entry.names:
                if name.startswith("*."):
                    wildcard.setdefault(name[2:], entry.context)
                else:
                    exact.setdefault(name, entry.context)
        # Swapped as whole dicts: a handshake sees either the old or the new set.
        self._exact, self._wildcard = exact, wildcard

    @staticmethod
    def _load_all(config: Config) -> tuple[_Served, ...]:
        pairs = _configured_pairs(config)
        if not pairs:
            raise ConfigurationError("[tls] mode = \"off\": there are no certificates to serve")
        return tuple(_load(cert, key, where) for cert, key, where in pairs)


def certificate_info(config: Config) -> list[CertInfo]:
    """Each configured certificate, for `tandem doctor`. Never raises for a bad file:
    its CertInfo says what is wrong in `problem`. Empty with `tls.mode = "off"`."""
    out = []
    for cert_path, key_path, where in _configured_pairs(config):
        try:
            cert, key = _read_pair(cert_path, key_path, where)
        except ConfigurationError as exc:
            problem = str(exc)
            if config.tls.mode == "self-signed" and not cert_path.exists():
                problem += " (`tandem run` generates it at start)"
            out.append(CertInfo(cert_path, key_path, (), None, None, None, False, problem))
            continue
        matches = _key_matches(cert, key)
        not_after = cert.not_valid_after_utc
        days_left = (not_after - _now()).days
        problem = ""
        if not matches:
            problem = f"{where}: key {key_path} does not match certificate {cert_path}"
        elif not_after <= _now():
            problem = f"{where}: certificate {cert_path} expired on {not_after:%Y-%m-%d}"
        out.append(CertInfo(cert_path, key_path, _dns_names(cert), cert.not_valid_before_utc, not_after,
                            days_left, matches, problem))
    return out
