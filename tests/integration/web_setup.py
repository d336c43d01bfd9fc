"""Shared by the web-tier tests: a migrated cluster database with tenants in chosen
states (built once per test module), and a raw HTTP/1.1 client that sends a Host
header exactly as given (aiohttp's client would tidy some of the malformed ones)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from appliance import db, migrator, tenants
from appliance.config import Config, load_config
from appliance.keys import MasterKey, ensure_key
from tests.harness import PostgresServer, run_sync, world_dir, write_config


@dataclass
class Cluster:
    config: Config
    key: MasterKey
    config_path: Path
    data_dir: Path
    database: str


@contextlib.contextmanager
def prepared_cluster(pg_server: PostgresServer, states: dict[str, str], *, extra: str = "", **config_kwargs):
    """A migrated database whose tenants are `states` (slug -> "active" | "disabled" |
    "deleting"); dropped afterwards with its roles."""
    name = "c" + secrets.token_hex(4)
    database = pg_server.create_database()
    data_dir = world_dir("tandem-test-web-")
    try:
        path = write_config(data_dir / "tandem.toml", dsn=pg_server.dsn(database), cluster_name=name,
                            data_dir=data_dir, extra=extra, **config_kwargs)
        config = load_config(path)
        key = ensure_key(config.security.key_file)

        async def prepare():
            await migrator.migrate(config, key)
            async with db.control(config, key) as conn:
                for slug, state in states.items():
                    await tenants.create_tenant(config, key, conn, slug)
                    if state == "disabled":
                        await tenants.set_state(conn, slug, "disabled", "test")
                    elif state == "deleting":
                        await conn.execute("UPDATE tandem.tenants SET state = 'deleting' WHERE slug = $1", slug)
        run_sync(prepare())
        yield Cluster(config, key, path, data_dir, database)
    finally:
        pg_server.drop_database(database, role_prefix=name + "_")
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]      # lower-case names
    body: bytes


async def raw_get(port: int, path: str, host: str | None, extra_headers: dict[str, str] | None = None,
                  ssl_context=None, version: str = "1.1") -> RawResponse:
    """GET `path` from 127.0.0.1:`port` with this exact Host header (None: none at all)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_context,
                                                   server_hostname="localhost" if ssl_context else None)
    try:
        lines = [f"GET {path} HTTP/{version}"]
        if host is not None:
            lines.append(f"Host: {host}")
        lines += [f"{k}: {v}" for k, v in (extra_headers or {}).items()]
        lines += ["Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode("latin-1"))
        await writer.drain()
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := (await reader.readline()).decode("latin-1").strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.read()
        return RawResponse(status, headers, body)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
