"""The config file is the administrator's contract: every mistake stops start-up with
one line naming where (file or environment variable), which key, the value and what is valid."""

from pathlib import Path

import pytest

from appliance.config import load_config, parse_listen, redacted
from appliance.errors import ConfigurationError
from tests.harness import tandem

MINIMAL = '[cluster]\ndomain = "cluster1.tandem.example.com"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tandem.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os
    for name in list(os.environ):
        if name.startswith("TANDEM_"):
            monkeypatch.delenv(name)


def test_minimal_file_gets_documented_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.cluster.domain == "cluster1.tandem.example.com"
    assert config.http.listen == ["0.0.0.0:443"]
    assert config.http.redirect_listen == ["0.0.0.0:80"]
    assert config.tls.mode == "self-signed"
    assert config.database.managed
    assert str(config.paths.data_dir) == "/var/lib/tandem"
    assert config.supervisor.grace_seconds == 30
    assert config.security.run_as == "tandem"
    assert config.log.format == "text"


def test_domain_is_normalised(tmp_path):
    config = load_config(write(tmp_path, '[cluster]\ndomain = "Cluster1.Example.COM."\n'))
    assert config.cluster.domain == "cluster1.example.com"


@pytest.mark.parametrize("text, expected", [
    ('[cluster\ndomain = "x"', "not valid TOML"),
    (MINIMAL + "[htp]\nworkers = 2\n", "[htp]: unknown section; valid sections: auth, cluster, database"),
    (MINIMAL + "[http]\nworkerz = 2\n", "[http] workerz = 2: unknown key (a typo?); valid keys in [http]: listen"),
    (MINIMAL + '[http]\nworkers = "many"\n', "[http] workers = 'many': Input should be a valid integer"),
    (MINIMAL + "[http]\nworkers = 0\n", "[http] workers = 0: Input should be greater than or equal to 1"),
    (MINIMAL + '[http]\nlisten = ["443"]\n', "is not HOST:PORT"),
    (MINIMAL + '[http]\nlisten = ["0.0.0.0:99999"]\n', "port must be a number from 1 to 65535"),
    (MINIMAL + '[tls]\nmode = "on"\n', "[tls] mode = 'on': Input should be 'self-signed', 'files' or 'off'"),
    (MINIMAL + '[tls]\nmode = "files"\n', "[tls]: mode = \"files\" needs at least one [[tls.certificates]]"),
    (MINIMAL + '[database]\ndsn = "mysql://x"\n', "[database] dsn = 'mysql://x': must be empty"),
    (MINIMAL + '[log]\nlevel = "loud"\n', "[log] level = 'loud'"),
    (MINIMAL + '[http]\ntrusted_proxies = ["lb.example"]\n', "'lb.example' is not an IP address or network"),
    ('[cluster]\nname = "Cluster-1"\ndomain = "a.example"\n', "[cluster] name = 'Cluster-1'"),
    ('[cluster]\ndomain = "not a domain"\n', "[cluster] domain = 'not a domain': must be a DNS name"),
    ("[http]\nworkers = 2\n", "[cluster]: required, but not set"),
])
def test_bad_file_names_file_key_value_and_what_is_valid(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigurationError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_environment_overrides_one_key_and_keeps_the_rest(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL + '[http]\nworkers = 3\nlisten = ["127.0.0.1:8443"]\n')
    monkeypatch.setenv("TANDEM_HTTP__WORKERS", "7")
    monkeypatch.setenv("TANDEM_LOG__FORMAT", "json")
    config = load_config(path)
    assert config.http.workers == 7
    assert config.http.listen == ["127.0.0.1:8443"]
    assert config.log.format == "json"


def test_bad_environment_override_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TANDEM_HTTP__WORKERS", "lots")
    with pytest.raises(ConfigurationError) as info:
        load_config(write(tmp_path, MINIMAL))
    assert str(info.value).startswith("environment variable TANDEM_HTTP__WORKERS: [http] workers = 'lots'")


@pytest.mark.parametrize("name", ["TANDEM_HTPP__WORKERS", "TANDEM_WORKERS", "TANDEM_HTTP__WORKERZ"])
def test_environment_typos_are_errors(tmp_path, monkeypatch, name):
    monkeypatch.setenv(name, "2")
    with pytest.raises(ConfigurationError):
        load_config(write(tmp_path, MINIMAL))


def test_tandem_config_variable_is_not_an_override(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("TANDEM_CONFIG", str(path))
    assert load_config().source == str(path)


@pytest.mark.parametrize("value, expected", [
    ("0.0.0.0:443", ("0.0.0.0", 443)),
    ("[::]:8443", ("::", 8443)),
    ("localhost:80", ("localhost", 80)),
])
def test_parse_listen(value, expected):
    assert parse_listen(value) == expected


def test_redacted_hides_dsn_password(tmp_path):
    config = load_config(write(tmp_path, MINIMAL + '[database]\ndsn = "postgresql://tandem:s3cret@db:5432/tandem"\n'))
    data = redacted(config)
    assert data["database"]["dsn"] == "postgresql://tandem:***@db:5432/tandem"
    assert "s3cret" not in str(data)


def test_check_config_cli_exit_codes(tmp_path):
    good = write(tmp_path, MINIMAL + '[database]\ndsn = "postgresql://tandem:s3cret@db/tandem"\n')
    result = tandem("check-config", config=good)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout and '"domain": "cluster1.tandem.example.com"' in result.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "[http]\nworkerz = 2\n")
    result = tandem("check-config", config=bad)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"tandem: config error: {bad}: [http] workerz = 2: unknown key")


def test_config_option_after_the_subcommand(tmp_path):
    path = write(tmp_path, MINIMAL)
    result = tandem("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# {path}: ok")
