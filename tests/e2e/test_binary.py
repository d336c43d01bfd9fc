"""The shipped artefact: dist/tandem (built by `python3 build.py binary`, which `build.py test`
runs first), on its own embedded PostgreSQL, as an administrator would run it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request

import pytest

from tests.harness import ROOT, descendants, free_port, https_get, living, wait_for, world_dir, write_config

BINARY = ROOT / "dist" / "tandem"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def binary():
    if not BINARY.exists():
        pytest.fail("dist/tandem is missing: build it with `python3 build.py binary` "
                    "(`python3 build.py test` does this first)")
    return BINARY


@pytest.fixture
def managed_config():
    data_dir = world_dir("tandem-e2e-")
    port = free_port()
    path = write_config(data_dir / "tandem.toml", dsn="", cluster_name="e2e", data_dir=data_dir,
                        listen=[f"127.0.0.1:{port}"], workers=2,
                        run_as="tandem" if os.geteuid() == 0 else "")
    yield path, port
    shutil.rmtree(data_dir, ignore_errors=True)


def _open(request) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        assert response.status == 200
        return response.read()


def run_binary(binary, *args, timeout=120):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def test_version(binary):
    result = run_binary(binary, "version")
    assert result.returncode == 0
    from appliance import __version__
    assert result.stdout.strip() == f"tandem {__version__}"


def test_check_config_and_bad_config(binary, managed_config, tmp_path):
    path, _ = managed_config
    result = run_binary(binary, "--config", str(path), "check-config")
    assert result.returncode == 0, result.stderr
    assert '"domain": "tandem.test"' in result.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text('[cluster]\ndomain = "x.example"\n[tls]\nmode = "maybe"\n')
    result = run_binary(binary, "--config", str(bad), "check-config")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "[tls] mode = 'maybe'" in result.stderr


def test_run_on_embedded_postgres_with_two_tenants(binary, managed_config):
    path, port = managed_config
    result = run_binary(binary, "--config", str(path), "migrate")
    assert result.returncode == 0, result.stderr
    for slug in ("acme", "globex"):
        result = run_binary(binary, "--config", str(path), "tenant", "create", slug)
        assert result.returncode == 0, result.stderr

    started = time.monotonic()
    process = subprocess.Popen([str(binary), "--config", str(path), "run"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: https_get(f"https://127.0.0.1:{port}/-/ready")[0] == 200, timeout=90,
                 message="/-/ready 200")
        ready_after = time.monotonic() - started

        def tenant_workers():
            titles = [cmd for _, _, cmd in descendants(process.pid)]
            return {slug for slug in ("acme", "globex") if f"tandem: tenant {slug}" in titles}
        assert wait_for(lambda: tenant_workers() == {"acme", "globex"}, timeout=20,
                        message="two tenant workers") == True  # noqa: E712
        titles = [cmd for _, _, cmd in descendants(process.pid)]
        assert sum(title.startswith("tandem: web worker") for title in titles) == 2
        assert any("postgres" in title for title in titles), titles
        print(f"binary: start to /-/ready in {ready_after:.1f} s")

        # The panel is inside the binary: the shell names the embedded build's hashed files,
        # and they are served from the bundle.
        status, shell = https_get(f"https://127.0.0.1:{port}/")
        assert status == 404   # an IP literal is nobody's host; the console is at the domain
        request = urllib.request.Request(f"https://127.0.0.1:{port}/tenants", headers={"Host": "tandem.test"})
        shell = _open(request).decode()
        script = re.search(r'<script type="module" src="(/assets/index-[\w-]+\.js)"', shell)
        assert script, shell
        asset = _open(urllib.request.Request(f"https://127.0.0.1:{port}{script.group(1)}",
                                             headers={"Host": "tandem.test"}))
        assert b"createRoot" in asset

        children = [pid for pid, _, _ in descendants(process.pid)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read()
    # Everything it started is gone: web and tenant workers and the embedded PostgreSQL.
    leftovers = [pid for pid in children if living(pid)]
    assert leftovers == [], output[-2000:]
