"""Fixtures for every test: an environment that a developer's shell cannot leak into."""

from __future__ import annotations

import pytest

CONFIG_VARIABLES = (
    "RUNLENS_CA_BUNDLE",
    "RUNLENS_URL",
    "DAGSTER_CLOUD_API_TOKEN",
    "DAGSTER_CLOUD_ORGANIZATION",
    "DAGSTER_CLOUD_DEPLOYMENT",
    "DAGSTER_CLOUD_URL",
)


def pytest_configure(config: pytest.Config) -> None:
    # Before any test module imports pyplot: figures render headless, whatever the shell's
    # MPLBACKEND. Set in this process only, so notebook kernels keep their inline backend.
    import matplotlib

    matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path_factory):
    """Strip runlens/Dagster+ settings and point the dg config files at nothing."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path_factory.getbasetemp() / "no-config"
    monkeypatch.setenv("DAGSTER_CLOUD_CLI_CONFIG", str(missing / "config"))
    monkeypatch.setenv("DG_CLI_CONFIG", str(missing / "dg.toml"))
