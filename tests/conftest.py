from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from appliance.config import load_config
from tests.harness import PostgresServer, world_dir, write_config


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cluster_name() -> str:
    # Roles are server-wide: a cluster name per test keeps tests' tenant roles apart.
    return "c" + secrets.token_hex(4)


@pytest.fixture
def database(pg_server, cluster_name):
    name = pg_server.create_database()
    yield pg_server.dsn(name)
    pg_server.drop_database(name, role_prefix=cluster_name + "_")


@pytest.fixture
def data_dir() -> Path:
    import shutil
    path = world_dir("tandem-test-data-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def config_path(database, cluster_name, data_dir) -> Path:
    return write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir)


@pytest.fixture
def config(config_path):
    return load_config(config_path)


@pytest.fixture
def key(config):
    from appliance.keys import ensure_key
    return ensure_key(config.security.key_file)
