"""Where the endpoint and token come from, in order."""

from __future__ import annotations

import pytest

from runlens.config import DEFAULT_URL, normalize_url, resolve
from runlens.errors import ConfigError


def env(tmp_path, **extra):
    base = {"DAGSTER_CLOUD_CLI_CONFIG": str(tmp_path / "none"), "DG_CLI_CONFIG": str(tmp_path / "none.toml")}
    base.update(extra)
    return base


def test_default_is_dagster_dev(tmp_path):
    settings = resolve(env=env(tmp_path))
    assert settings.url == DEFAULT_URL == "http://localhost:3000/graphql"
    assert settings.token is None and settings.sources["url"] == "default"
    assert "Dagster-Cloud-Api-Token" not in settings.headers()


@pytest.mark.parametrize(
    "given, expected",
    [
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000/graphql"),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000/graphql"),
        ("http://h:3000/graphql", "http://h:3000/graphql"),
        ("https://h/prefix", "https://h/prefix/graphql"),
        (" http://h:1/graphql/ ", "http://h:1/graphql"),
    ],
)
def test_graphql_is_appended(given, expected):
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["localhost:3000", "127.0.0.1", "ftp://h", "http://", ""])
def test_url_without_scheme_or_host_is_refused(bad):
    with pytest.raises(ConfigError, match="full address with its scheme"):
        normalize_url(bad)


def test_argument_beats_environment(tmp_path):
    settings = resolve("http://a:1", env=env(tmp_path, RUNLENS_URL="http://b:2"))
    assert settings.url == "http://a:1/graphql" and settings.sources["url"] == "argument"
    settings = resolve(env=env(tmp_path, RUNLENS_URL="http://b:2"))
    assert settings.url == "http://b:2/graphql" and settings.sources["url"] == "$RUNLENS_URL"


def test_dagster_plus_from_environment(tmp_path):
    settings = resolve(
        env=env(tmp_path, DAGSTER_CLOUD_API_TOKEN="user:secret-token-123", DAGSTER_CLOUD_ORGANIZATION="acme")
    )
    assert settings.url == "https://dagster.cloud/acme/graphql"
    headers = settings.headers()
    assert headers["Dagster-Cloud-Api-Token"] == "user:secret-token-123"
    assert headers["Dagster-Cloud-Organization"] == "acme"
    assert headers["Dagster-Cloud-Deployment"] == "prod"
    assert "secret-token-123" not in repr(settings) and "secret-token-123" not in settings.describe()


def test_organization_without_token_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="DAGSTER_CLOUD_API_TOKEN"):
        resolve(env=env(tmp_path, DAGSTER_CLOUD_ORGANIZATION="acme"))


def test_dagster_cloud_cli_config_file(tmp_path):
    path = tmp_path / "config"
    path.write_text("organization: hooli\ndefault_deployment: staging\nuser_token: 'tok-from-file-999'\n")
    settings = resolve(env=env(tmp_path, DAGSTER_CLOUD_CLI_CONFIG=str(path)))
    assert settings.url == "https://dagster.cloud/hooli/graphql"
    assert settings.deployment == "staging"
    assert settings.token == "tok-from-file-999" and settings.sources["token"] == str(path)


def test_dg_toml_config_file(tmp_path):
    path = tmp_path / "dg.toml"
    path.write_text('[cli.plus]\norganization = "hooli"\nuser_token = "tok-toml"\nurl = "https://eu.dagster.cloud"\n')
    settings = resolve(env=env(tmp_path, DG_CLI_CONFIG=str(path)))
    assert settings.url == "https://eu.dagster.cloud/hooli/graphql"
    assert settings.token == "tok-toml"


def test_file_token_is_never_sent_to_an_explicit_url(tmp_path):
    path = tmp_path / "config"
    path.write_text("organization: hooli\nuser_token: tok-from-file-999\n")
    settings = resolve("http://127.0.0.1:3000", env=env(tmp_path, DAGSTER_CLOUD_CLI_CONFIG=str(path)))
    assert settings.token is None
    assert "Dagster-Cloud-Api-Token" not in settings.headers()


def test_unreadable_toml_is_a_config_error(tmp_path):
    path = tmp_path / "dg.toml"
    path.write_text("[cli.plus\n")
    with pytest.raises(ConfigError, match="cannot read"):
        resolve(env=env(tmp_path, DG_CLI_CONFIG=str(path)))


def test_a_password_in_the_url_is_masked_in_reprs(tmp_path):
    settings = resolve("http://user:hunter2@h:3000", env=env(tmp_path))
    assert settings.url == "http://user:hunter2@h:3000/graphql"  # what requests use
    assert "hunter2" not in settings.describe() and "hunter2" not in settings.display_url
    assert settings.display_url == "http://user:[secure]@h:3000/graphql"


def test_an_empty_explicit_url_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        resolve("  ", env=env(tmp_path))
    assert resolve(env=env(tmp_path, RUNLENS_URL="")).url == DEFAULT_URL  # an empty variable is unset


def test_a_ca_bundle_replaces_the_system_cas_but_never_disables_verification(tmp_path):
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    import runlens

    client = runlens.Client("https://h", env=env(tmp_path, RUNLENS_CA_BUNDLE=str(bundle)))
    assert client.transport.session.verify == str(bundle)
    assert runlens.Client("https://h", env=env(tmp_path)).transport.session.verify is True
    with pytest.raises(ConfigError, match="not a file"):
        resolve("https://h", ca_bundle=str(tmp_path / "missing.pem"), env=env(tmp_path))
