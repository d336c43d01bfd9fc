"""The administrator's config file: `/etc/tandem/tandem.toml` plus `TANDEM_<SECTION>__<KEY>` overrides.

`load_config()` is the only way in. It validates everything at start and turns
the first problem into one line naming the file (or environment variable),
`section.key`, the value and what would be valid, so a typo never passes silently.
The key names are a contract with administrators (DESIGN.md); add keys freely,
document each in packaging/tandem.toml, never rename one.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from appliance.errors import ConfigurationError

DEFAULT_PATH = Path("/etc/tandem/tandem.toml")
ENV_PREFIX = "TANDEM_"
# Environment variables with our prefix that are not config overrides.
_NON_CONFIG_ENV = {"TANDEM_CONFIG"}

_DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_listen(value: str) -> tuple[str, int]:
    """'0.0.0.0:443', '[::]:443' or 'localhost:8443' -> (host, port). Raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT (for example \"0.0.0.0:443\" or \"[::]:443\")")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    return host, int(port)


class ClusterConfig(_Section):
    name: str = Field(default="cluster1", pattern=r"^[a-z][a-z0-9_]{0,19}$",
                      description="Cluster name; prefixes the PostgreSQL role of each tenant.")
    domain: str = Field(description="DNS domain of the cluster; tenants are <slug>.<domain>.")
    node_name: str = Field(default_factory=lambda: socket.gethostname().split(".")[0] or "node",
                           pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        labels = value.split(".")
        if not value or len(value) > 200 or not all(_DOMAIN_LABEL.match(label) for label in labels):
            raise ValueError("must be a DNS name such as \"cluster1.tandem.example.com\"")
        return value


class HttpConfig(_Section):
    listen: list[str] = ["0.0.0.0:443"]
    redirect_listen: list[str] = ["0.0.0.0:80"]
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    trusted_proxies: list[str] = []
    max_body_mb: int = Field(default=16, ge=1, le=4096)

    @field_validator("listen", "redirect_listen")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_listen(value)
        return values

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network such as \"10.0.0.5\" "
                                 f"or \"10.0.0.0/24\"") from None
        return values

    @model_validator(mode="after")
    def _need_listener(self) -> "HttpConfig":
        if not self.listen:
            raise ValueError("listen: at least one address is needed")
        return self

    def listen_addresses(self) -> list[tuple[str, int]]:
        return [parse_listen(v) for v in self.listen]

    def redirect_addresses(self) -> list[tuple[str, int]]:
        return [parse_listen(v) for v in self.redirect_listen]


class CertificateConfig(_Section):
    cert: Path
    key: Path


class TlsConfig(_Section):
    mode: Literal["self-signed", "files", "off"] = "self-signed"
    certificates: list[CertificateConfig] = []
    hsts_seconds: int = Field(default=31536000, ge=0)

    @model_validator(mode="after")
    def _files_need_certificates(self) -> "TlsConfig":
        if self.mode == "files" and not self.certificates:
            raise ValueError("mode = \"files\" needs at least one [[tls.certificates]] entry with cert and key")
        return self


class DatabaseConfig(_Section):
    dsn: str = Field(default="", description="Empty: embedded PostgreSQL under paths.data_dir.")
    migrate_on_start: bool = True
    migrate_parallelism: int = Field(default=4, ge=1, le=64)
    pool_size: int = Field(default=5, ge=1, le=200)
    connect_timeout_seconds: float = Field(default=10, gt=0, le=300)
    managed_bin_dir: str = Field(default="", description="PostgreSQL server binaries for embedded mode; "
                                                         "empty: pg_config, then /usr/lib/postgresql/*/bin.")
    managed_port: int = Field(default=5432, ge=1, le=65535,
                              description="Only names the unix socket; embedded PostgreSQL never listens on TCP.")

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        if value and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must be empty (embedded PostgreSQL) or a postgresql:// URL")
        return value

    @property
    def managed(self) -> bool:
        return not self.dsn


class PathsConfig(_Section):
    data_dir: Path = Path("/var/lib/tandem")


class SupervisorConfig(_Section):
    grace_seconds: float = Field(default=30, ge=0, le=3600)
    heartbeat_seconds: float = Field(default=5, gt=0, le=300)
    heartbeat_timeout_seconds: float = Field(default=0, ge=0, le=3600,
                                             description="0: six heartbeats.")
    tenant_memory_mb: int = Field(default=1024, ge=64)
    reconcile_seconds: float = Field(default=2, gt=0, le=60)
    restart_backoff_max_seconds: float = Field(default=60, gt=0)
    boot_failures_before_failed: int = Field(default=5, ge=1)
    failed_cooldown_seconds: float = Field(default=300, ge=0)

    @property
    def heartbeat_timeout(self) -> float:
        return self.heartbeat_timeout_seconds or 6 * self.heartbeat_seconds


class SecurityConfig(_Section):
    key_file: Path = Path("/var/lib/tandem/master.key")
    run_as: str = Field(default="tandem", pattern=r"^([a-z_][a-z0-9_-]{0,31})?$",
                        description="Service user when started as root; empty: never switch user.")


class OutboundConfig(_Section):
    proxy: str = ""
    ca_file: str = ""
    requests_per_second: float = Field(default=10.0, gt=0, le=10000,
                                       description="Request budget per (app host, credential), shared by a "
                                                   "tenant's integrations.")
    burst: int = Field(default=20, ge=1, le=10000, description="Requests above the budget allowed in a burst.")

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be empty or an http:// or https:// URL")
        return value


class AuthConfig(_Section):
    session_idle_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30,
                                      description="A session unused this long ends.")
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 90,
                                        description="A session ends this long after sign-in, used or not.")
    lockout_failures: int = Field(default=5, ge=1, le=100,
                                  description="Failed sign-ins in a row that lock an account.")
    lockout_minutes: int = Field(default=15, ge=1, le=60 * 24 * 7,
                                 description="How long a locked account stays locked (an admin can lift it).")
    address_attempts_per_minute: int = Field(default=20, ge=1, le=10000,
                                             description="Sign-in attempts allowed per client address per minute.")
    token_max_days: int = Field(default=365, ge=1, le=3650, description="Longest lifetime of an API token.")
    password_min_length: int = Field(default=12, ge=8, le=128)


class MetricsConfig(_Section):
    enabled: bool = True
    path: str = Field(default="/-/metrics", pattern=r"^/[A-Za-z0-9/_.-]*$",
                      description="Served on the main listeners at this path, to `allow` only.")
    allow: list[str] = Field(default=["127.0.0.1/32", "::1/128"],
                             description="Client networks that may read the metrics.")
    listen: str = Field(default="", description="Optional separate plain-HTTP listener (HOST:PORT) for metrics.")

    @field_validator("allow")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP network such as \"10.0.0.0/24\"") from None
        return values

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if value:
            parse_listen(value)
        return value


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class Config(BaseSettings):
    """The whole validated configuration. Immutable; reload means load again."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    cluster: ClusterConfig
    http: HttpConfig = HttpConfig()
    tls: TlsConfig = TlsConfig()
    database: DatabaseConfig = DatabaseConfig()
    paths: PathsConfig = PathsConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    security: SecurityConfig = SecurityConfig()
    outbound: OutboundConfig = OutboundConfig()
    auth: AuthConfig = AuthConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()

    # Where it came from, for messages; not a config key.
    source: str = Field(default="", exclude=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        # Environment overrides the file, key by key.
        return (env_settings, init_settings)

    @property
    def pg_dir(self) -> Path:
        return self.paths.data_dir / "postgresql"

    @property
    def socket_dir(self) -> Path:
        return self.paths.data_dir / "run"

    @property
    def tls_dir(self) -> Path:
        return self.paths.data_dir / "tls"


def default_path() -> Path:
    return Path(os.environ.get("TANDEM_CONFIG", str(DEFAULT_PATH)))


def load_config(path: Path | str | None = None) -> Config:
    """Read the file, merge the process's TANDEM_* overrides, validate.

    Raises ConfigurationError whose message is one line for the administrator.
    """
    path = Path(path) if path else default_path()
    env = os.environ
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: config file not found (create it; packaging/tandem.toml "
                                 f"is a documented example, or pass --config PATH)") from None
    except PermissionError:
        raise ConfigurationError(f"{path}: config file is not readable by this user") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: config file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None

    _check_env_names(env, path)
    try:
        return Config(**data, source=str(path))
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc, path, data, env)) from None


def _check_env_names(env: Any, path: Path) -> None:
    sections = set(Config.model_fields) - {"source"}
    for name in env:
        if not name.startswith(ENV_PREFIX) or name in _NON_CONFIG_ENV:
            continue
        section = name[len(ENV_PREFIX):].split("__", 1)[0].lower()
        if section not in sections or "__" not in name:
            raise ConfigurationError(f"environment variable {name}: not a Tandem setting (overrides look "
                                     f"like TANDEM_<SECTION>__<KEY>; sections: {', '.join(sorted(sections))})")


def _describe(exc: ValidationError, path: Path, data: dict, env: Any) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = [str(part) for part in first["loc"] if not isinstance(part, int)]
    section = loc[0] if loc else ""
    key = ".".join(loc[1:]) if len(loc) > 1 else ""
    env_name = ENV_PREFIX + "__".join(p.upper() for p in loc)
    origin = f"environment variable {env_name}" if env_name in env else str(path)
    where = f"[{section}] {key}" if key else f"[{section}]"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (a typo?)"
        if len(loc) == 1:
            where = f"[{section}]"
            message = f"unknown section; valid sections: {', '.join(sorted(set(Config.model_fields) - {'source'}))}"
        else:
            model = _section_model(section)
            if model is not None:
                message += f"; valid keys in [{section}]: {', '.join(model.model_fields)}"
    elif first["type"] == "missing":
        message = "required, but not set"
    else:
        message = message.removeprefix("Value error, ")
    value = first.get("input")
    shown = "" if first["type"] in ("missing",) or isinstance(value, dict) else f" = {value!r}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{origin}: {where}{shown}: {message}{more}"


def _section_model(section: str) -> type[BaseModel] | None:
    field = Config.model_fields.get(section)
    annotation = getattr(field, "annotation", None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


_SECRET_KEYS = ("password", "secret", "token")


def redacted(config: Config) -> dict[str, Any]:
    """The resolved config as plain data with secrets masked, for `check-config` and logs."""
    data = config.model_dump(mode="json")
    dsn = data["database"]["dsn"]
    if dsn:
        data["database"]["dsn"] = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)
    proxy = data["outbound"]["proxy"]
    if proxy:
        data["outbound"]["proxy"] = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", proxy)
    return data
