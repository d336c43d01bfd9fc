"""`tandem doctor` against a real PostgreSQL: what an administrator sees for a healthy
installation and for each thing that commonly goes wrong."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance import doctor, exitcodes, migrator, tls
from appliance.config import load_config
from appliance.identifiers import quote_ident
from tests.harness import free_port, run_sync, tandem, write_config


def _by_name(findings) -> dict[str, doctor.Finding]:
    return {f.name: f for f in findings}


def _failures(findings) -> list[doctor.Finding]:
    return [f for f in findings if f.status == "fail"]


@pytest.fixture
def healthy(config, key):
    """The harness config, migrated, with its self-signed certificate and a 0600 key."""
    run_sync(migrator.migrate(config, key))
    tls.ensure_self_signed(config)
    assert config.security.key_file.stat().st_mode & 0o777 == 0o600
    return config


def test_healthy_installation(healthy, capsys):
    findings = doctor.run_checks(healthy)
    assert _failures(findings) == []
    found = _by_name(findings)
    assert found["database"].status == "ok" and found["database"].detail.startswith("reachable (PostgreSQL 15.")
    assert found["privileges"].status == "ok"
    assert found["migrations"].status == "ok"
    assert found["key file"].status == "ok"
    cert = [f for f in findings if f.name.startswith("certificate ")]
    assert len(cert) == 1 and cert[0].status == "ok" and "tandem.test" in cert[0].detail
    listen = healthy.http.listen[0]
    assert found[f"listen {listen}"] == doctor.Finding(f"listen {listen}", "ok", "free")

    assert doctor.main(healthy) == exitcodes.OK
    out = capsys.readouterr().out
    assert "ok    database: reachable (PostgreSQL 15." in out
    assert out.splitlines()[-1].endswith("0 failures; no problems found")


def test_key_file_readable_by_others(healthy, capsys):
    path = healthy.security.key_file
    os.chmod(path, 0o644)
    finding = _by_name(doctor.run_checks(healthy))["key file"]
    assert finding.status == "fail"
    assert finding.fix == f"chmod 600 {path}"

    assert doctor.main(healthy) == exitcodes.FAILURE
    out = capsys.readouterr().out
    assert f"FAIL  key file: {path} is readable by others (mode -rw-r--r--)\n      fix: chmod 600 {path}\n" in out
    # The database checks still ran with the (too open) key.
    assert "ok    database: reachable" in out


def test_unreachable_database(cluster_name, data_dir):
    port = free_port()  # nothing listens there
    path = write_config(data_dir / "tandem.toml", dsn=f"postgresql://tandem:secret@127.0.0.1:{port}/tandem",
                        cluster_name=cluster_name, data_dir=data_dir)
    findings = _by_name(doctor.run_checks(load_config(path)))
    database = findings["database"]
    assert database.status == "fail"
    assert database.detail.startswith(f"unreachable (postgresql://tandem:***@127.0.0.1:{port}/tandem)")
    assert "secret" not in database.detail
    assert "check that PostgreSQL is running" in database.fix
    assert "migrations" not in findings  # nothing to ask a server that is not there


def test_pending_migrations(config, key):
    finding = _by_name(doctor.run_checks(config))["migrations"]
    assert finding.status == "warn"
    assert "pending" in finding.detail
    assert finding.fix == "run: tandem migrate"


def test_edited_migration_history(healthy, database):
    async def tamper():
        conn = await asyncpg.connect(database)
        try:
            await conn.execute("UPDATE tandem.schema_migrations SET checksum = 'edited'")
        finally:
            await conn.close()
    run_sync(tamper())
    finding = _by_name(doctor.run_checks(healthy))["migrations"]
    assert finding.status == "fail"
    assert "was edited after it was applied" in finding.detail


def _certificate(directory: Path, name: str, not_after: dt.datetime, key=None, cert_key=None) -> tuple[Path, Path]:
    """A certificate for *.tandem.test ending at `not_after`; `cert_key` signs a
    certificate for another key than the one written (a mismatched pair)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject_key = cert_key or key
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tandem.test")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_after - dt.timedelta(days=90)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("tandem.test"), x509.DNSName("*.tandem.test")]),
                           critical=False)
            .sign(subject_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _files_config(database, cluster_name, data_dir, cert: Path, key: Path):
    extra = f'\n[[tls.certificates]]\ncert = "{cert}"\nkey = "{key}"\n'
    path = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                        tls_mode="files", extra=extra)
    return load_config(path)


def _certificate_finding(config) -> doctor.Finding:
    [finding] = [f for f in doctor.run_checks(config) if f.name.startswith("certificate ")]
    return finding


def test_expired_certificate(database, cluster_name, data_dir):
    now = dt.datetime.now(dt.timezone.utc)
    cert, key = _certificate(data_dir, "expired", now - dt.timedelta(days=2))
    finding = _certificate_finding(_files_config(database, cluster_name, data_dir, cert, key))
    assert finding.name == f"certificate {cert}"
    assert finding.status == "fail"
    assert "expired" in finding.detail
    assert "systemctl reload tandem" in finding.fix


def test_certificate_expiring_soon(database, cluster_name, data_dir):
    now = dt.datetime.now(dt.timezone.utc)
    cert, key = _certificate(data_dir, "soon", now + dt.timedelta(days=10, hours=1))
    finding = _certificate_finding(_files_config(database, cluster_name, data_dir, cert, key))
    assert finding.status == "warn"
    assert finding.detail.startswith("expires in 10 days")
    assert "tandem.test, *.tandem.test" in finding.detail


def test_certificate_with_the_wrong_key(database, cluster_name, data_dir):
    now = dt.datetime.now(dt.timezone.utc)
    cert, key = _certificate(data_dir, "mismatch", now + dt.timedelta(days=300),
                             cert_key=ec.generate_private_key(ec.SECP256R1()))
    finding = _certificate_finding(_files_config(database, cluster_name, data_dir, cert, key))
    assert finding.status == "fail"
    assert "does not belong to this certificate" in finding.detail


def test_missing_certificate_file(database, cluster_name, data_dir):
    config = _files_config(database, cluster_name, data_dir, data_dir / "nope.pem", data_dir / "nope.key")
    finding = _certificate_finding(config)
    assert finding.status == "fail"
    assert "not found" in finding.detail


def test_tls_off(database, cluster_name, data_dir):
    path = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                        tls_mode="off")
    finding = _by_name(doctor.run_checks(load_config(path)))["certificates"]
    assert (finding.status, finding.detail) == ("ok", 'TLS terminated by the load balancer ([tls] mode = "off")')


def test_managed_mode_without_server_binaries(cluster_name, data_dir):
    empty = data_dir / "no-postgres-here"
    empty.mkdir()
    path = write_config(data_dir / "tandem.toml", dsn="", cluster_name=cluster_name, data_dir=data_dir)
    path.write_text(path.read_text().replace('dsn = ""', f'dsn = ""\nmanaged_bin_dir = "{empty}"'))
    findings = _by_name(doctor.run_checks(load_config(path)))
    binaries = findings["postgresql binaries"]
    assert binaries.status == "fail"
    assert "postgresql-15" in binaries.detail and binaries.fix == "apt-get install postgresql-15"
    # Doctor never starts the embedded server; a stopped appliance is not a failure.
    database = findings["database"]
    assert (database.status, database.detail) == (
        "warn", "embedded PostgreSQL is not running (the appliance is stopped)")
    assert not (data_dir / "postgresql").exists()


def test_control_login_without_the_privileges_to_create_tenants(pg_server, database, cluster_name, data_dir):
    role = f"{cluster_name}_limited"
    dbname = database.split("@/", 1)[1].split("?")[0]

    async def create_role():
        conn = await asyncpg.connect(database)
        try:
            await conn.execute(f"CREATE ROLE {quote_ident(role)} LOGIN PASSWORD 'limited'")
        finally:
            await conn.close()
    run_sync(create_role())
    socket_dir = pg_server.server.socket_dir
    dsn = f"postgresql://{role}:limited@/{dbname}?host={socket_dir}&port={pg_server.server.port}"
    path = write_config(data_dir / "tandem.toml", dsn=dsn, cluster_name=cluster_name, data_dir=data_dir)
    finding = _by_name(doctor.run_checks(load_config(path)))["privileges"]
    assert finding.status == "fail"
    assert finding.detail == f"{role} lacks CREATEROLE and CREATE on database {dbname} (needed to create tenants)"
    assert f'ALTER ROLE "{role}" CREATEROLE;' in finding.fix
    assert f'GRANT CREATE ON DATABASE "{dbname}" TO "{role}";' in finding.fix

    async def grant():
        conn = await asyncpg.connect(database)
        try:
            await conn.execute(f"ALTER ROLE {quote_ident(role)} CREATEROLE")
            await conn.execute(f"GRANT CREATE ON DATABASE {quote_ident(dbname)} TO {quote_ident(role)}")
        finally:
            await conn.close()
    run_sync(grant())
    finding = _by_name(doctor.run_checks(load_config(path)))["privileges"]
    assert (finding.status, finding.detail) == ("ok", f"{role} has CREATEROLE and CREATE on database {dbname}")


def test_listen_port_in_use(config, key):
    host, port = config.http.listen_addresses()[0]
    with socket.socket() as holder:
        holder.bind((host, port))
        holder.listen()
        finding = _by_name(doctor.run_checks(config))[f"listen {config.http.listen[0]}"]
    assert (finding.status, finding.detail) == ("warn", "in use (is tandem running?)")


@pytest.mark.parametrize("free, status", [(100 * doctor.MIB, "fail"), (500 * doctor.MIB, "warn"),
                                          (5 * doctor.GIB, "ok")])
def test_free_disk_space(config, monkeypatch, free, status):
    monkeypatch.setattr(doctor.os, "statvfs", lambda path: SimpleNamespace(f_bavail=free // 4096, f_frsize=4096))
    finding = doctor.check_disk(config)
    assert finding.status == status
    assert finding.detail.endswith(f"free on {config.paths.data_dir}")


def test_a_crashing_check_becomes_a_failure_and_the_others_still_run(healthy, monkeypatch):
    def broken(config):
        raise RuntimeError("boom")
    monkeypatch.setattr(tls, "certificate_info", broken)
    findings = doctor.run_checks(healthy)
    found = _by_name(findings)
    assert found["certificates"].status == "fail"
    assert found["certificates"].detail == "the check itself failed: RuntimeError: boom"
    assert found["database"].status == "ok" and f"listen {healthy.http.listen[0]}" in found


def test_tandem_doctor_command(healthy, config_path):
    result = tandem("doctor", config=config_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"ok    config: {config_path} is valid"
    assert "ok    migrations: current (schema tandem and 0 tenant schemas)" in lines
    assert lines[-1].endswith("0 failures; no problems found")

    os.chmod(healthy.security.key_file, 0o640)
    result = tandem("doctor", "--json", config=config_path)
    assert result.returncode == exitcodes.FAILURE
    findings = json.loads(result.stdout)
    [key_file] = [f for f in findings if f["name"] == "key file"]
    assert key_file["status"] == "fail" and key_file["fix"] == f"chmod 600 {healthy.security.key_file}"


def test_files_are_judged_for_the_service_user(database, cluster_name, data_dir, key):
    """Run as root with run_as set, the appliance works as that user: files root owns
    are a failure even though root (running doctor) can read them. `postgres` exists
    on the test machine and stands in for `tandem`."""
    path = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                        run_as="postgres")
    config = load_config(path)
    found = _by_name(doctor.run_checks(config))
    assert found["user"].status == "ok" and "switches to postgres" in found["user"].detail
    assert found["data dir"].status == "fail"
    assert found["data dir"].fix == f"chown -R postgres:postgres {data_dir}"
    assert found["key file"].status == "fail"
    assert found["key file"].detail == f"{config.security.key_file} is owned by root, not by postgres"

    os.chown(data_dir, *_ids("postgres"))
    os.chown(config.security.key_file, *_ids("postgres"))
    os.chmod(data_dir, 0o700)
    found = _by_name(doctor.run_checks(config))
    assert found["data dir"].status == "ok" and found["key file"].status == "ok"


def test_service_user_that_does_not_exist(database, cluster_name, data_dir):
    path = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                        run_as="nosuchuser")
    finding = _by_name(doctor.run_checks(load_config(path)))["user"]
    assert finding.status == "fail"
    assert finding.detail == "service user 'nosuchuser' ([security] run_as) does not exist"
    assert finding.fix.startswith("useradd --system") and finding.fix.endswith(" nosuchuser")


def _ids(name: str) -> tuple[int, int]:
    import pwd
    user = pwd.getpwnam(name)
    return user.pw_uid, user.pw_gid


def test_self_signed_certificate_for_an_old_domain(healthy, database, cluster_name, data_dir):
    path = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                        domain="renamed.test")
    finding = _certificate_finding(load_config(path))
    assert finding.status == "warn"
    assert "not for [cluster] domain renamed.test" in finding.detail
    assert finding.fix.startswith("systemctl restart tandem")


@pytest.mark.parametrize("content, status", [(None, "fail"), ("not a certificate\n", "fail"), ("pem", "ok")])
def test_outbound_ca_file(database, cluster_name, data_dir, content, status):
    ca = data_dir / "corporate-ca.pem"
    if content == "pem":
        cert, _ = _certificate(data_dir, "ca", dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=300))
        ca.write_bytes(cert.read_bytes())
    elif content is not None:
        ca.write_text(content)
    path = write_config(data_dir / "tandem.toml", dsn=database, cluster_name=cluster_name, data_dir=data_dir,
                        extra=f'\n[outbound]\nca_file = "{ca}"\n')
    finding = _by_name(doctor.run_checks(load_config(path)))["outbound CA file"]
    assert finding.status == status, finding
    if status == "fail":
        assert finding.fix
