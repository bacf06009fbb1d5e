"""Where the endpoint and the token come from.

Resolution order, first hit wins for each setting:

1. explicit arguments (``Client(url=..., token=...)``, ``runlens --url``);
2. the environment: ``RUNLENS_URL`` (any GraphQL endpoint), and Dagster's own
   ``DAGSTER_CLOUD_API_TOKEN``, ``DAGSTER_CLOUD_ORGANIZATION``, ``DAGSTER_CLOUD_DEPLOYMENT``;
3. the files ``dg plus login`` / ``dagster-cloud`` write: ``~/.dagster_cloud_cli/config``
   (``DAGSTER_CLOUD_CLI_CONFIG`` overrides the path), then ``~/.config/dg.toml`` under
   ``[cli.plus]`` (``DG_CLI_CONFIG`` overrides the path);
4. ``http://localhost:3000/graphql``, what ``dagster dev`` serves.

With an organization and no explicit URL the endpoint is Dagster+'s, where ``dg`` sends
it: ``{url or https://dagster.cloud}/{organization}/graphql``, with the deployment in a
header. A token read from a config file is only sent to the endpoint that same
configuration names, never to a URL given explicitly.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

DEFAULT_URL = "http://localhost:3000/graphql"
DAGSTER_PLUS_URL = "https://dagster.cloud"
DEFAULT_DEPLOYMENT = "prod"

ENV_URL = "RUNLENS_URL"
ENV_TOKEN = "DAGSTER_CLOUD_API_TOKEN"
ENV_ORGANIZATION = "DAGSTER_CLOUD_ORGANIZATION"
ENV_DEPLOYMENT = "DAGSTER_CLOUD_DEPLOYMENT"
ENV_CLOUD_CONFIG = "DAGSTER_CLOUD_CLI_CONFIG"
ENV_DG_CONFIG = "DG_CLI_CONFIG"
ENV_CA_BUNDLE = "RUNLENS_CA_BUNDLE"


@dataclass(frozen=True)
class Settings:
    """The resolved connection settings and where each came from.

    ``repr`` shows the endpoint and the sources, and masks the token.
    """

    url: str
    token: str | None = field(default=None, repr=False)
    organization: str | None = None
    deployment: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    ca_bundle: str | None = None

    @property
    def is_default(self) -> bool:
        """Whether nothing was configured and the endpoint is ``dagster dev``'s default."""
        return self.sources.get("url") == "default"

    def headers(self) -> dict[str, str]:
        """The HTTP headers every request carries (the token among them, if any)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Dagster-Cloud-Api-Token"] = self.token
        if self.organization:
            headers["Dagster-Cloud-Organization"] = self.organization
        if self.deployment:
            headers["Dagster-Cloud-Deployment"] = self.deployment
        return headers

    @property
    def display_url(self) -> str:
        """The endpoint as messages and reprs show it: a password in the URL is masked."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":[secure]@", 1)
        return parts._replace(netloc=netloc).geturl()

    def describe(self) -> str:
        """One line: the endpoint and where each setting came from."""
        parts = [f"url={self.display_url!r} (from {self.sources.get('url', '?')})"]
        if self.token:
            parts.append(f"token=[secure] (from {self.sources.get('token', '?')})")
        if self.organization:
            parts.append(f"organization={self.organization!r} (from {self.sources['organization']})")
        if self.deployment:
            parts.append(f"deployment={self.deployment!r} (from {self.sources['deployment']})")
        return ", ".join(parts)

    def token_hint(self) -> str:
        """Where a token would come from, for error messages."""
        if self.token:
            return f"the token in use comes from {self.sources.get('token')}; check it is valid for this deployment"
        return (
            f"no token is set: export {ENV_TOKEN}=... (or run `dg plus login`); "
            "avoid passing it on the command line, where the process list shows it"
        )


def normalize_url(url: str) -> str:
    """Check a URL and point it at the GraphQL endpoint.

    A URL without ``/graphql`` gets it appended; a bare ``host:port`` is refused with a
    hint rather than guessed at.

    Raises
    ------
    ConfigError
        If the URL has no ``http://`` or ``https://`` scheme or no host.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = url.split("@", 1)[-1] if "@" in url else url  # never echo a password
        raise ConfigError(
            f"not a URL runlens can use: {shown!r}. Give the full address with its scheme, "
            "e.g. http://localhost:3000 or https://myorg.dagster.cloud/prod"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/graphql"):
        path += "/graphql"
    return f"{parts.scheme}://{parts.netloc}{path}"


def _read_flat_yaml(path: Path) -> dict[str, str]:
    # The dagster-cloud CLI writes a flat ``key: value`` YAML file; reading it needs no
    # YAML library (and runlens does not depend on one).
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].rstrip()
        if not line or line.lstrip().startswith("#") or ":" not in line or line[0].isspace():
            continue
        key, _, value = line.partition(":")
        value = value.strip().strip("'\"")
        if value and value not in ("null", "~"):
            out[key.strip()] = value
    return out


def _config_files(env: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """The first dg / dagster-cloud config file that exists, and its path."""
    home = Path(env.get("HOME") or Path.home())
    cloud = Path(env[ENV_CLOUD_CONFIG]) if env.get(ENV_CLOUD_CONFIG) else home / ".dagster_cloud_cli" / "config"
    if cloud.is_file():
        try:
            return _read_flat_yaml(cloud), str(cloud)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {cloud}: {exc}") from None
    dg = Path(env[ENV_DG_CONFIG]) if env.get(ENV_DG_CONFIG) else home / ".config" / "dg.toml"
    if dg.is_file():
        try:
            data = tomllib.loads(dg.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {dg}: {exc}") from None
        plus = data.get("cli", {}).get("plus", {})
        return {k: str(v) for k, v in plus.items() if v is not None}, str(dg)
    return {}, None


def resolve(
    url: str | None = None,
    *,
    token: str | None = None,
    organization: str | None = None,
    deployment: str | None = None,
    ca_bundle: str | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Resolve the connection settings from arguments, environment and config files.

    Parameters
    ----------
    url, token, organization, deployment : str, optional
        Explicit values; they win over everything else.
    ca_bundle : str, optional
        A PEM file of certificate authorities to trust instead of the system's (a
        corporate CA); defaults to ``$RUNLENS_CA_BUNDLE``. Verification is never off.
    env : dict, optional
        The environment to read (defaults to ``os.environ``; tests pass their own).

    Returns
    -------
    Settings

    Raises
    ------
    ConfigError
        On a malformed URL, an unreadable config file, or a Dagster+ organization
        without a token.
    """
    for name, value in (("url", url), ("token", token), ("organization", organization),
                        ("deployment", deployment), ("ca_bundle", ca_bundle)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"the {name} must be a string, not a {type(value).__name__}")
    env = dict(os.environ if env is None else env)
    sources: dict[str, str] = {}

    def pick(name: str, arg: str | None, env_name: str | None) -> str | None:
        if arg:
            sources[name] = "argument"
            return arg
        if env_name and env.get(env_name):
            sources[name] = f"${env_name}"
            return env[env_name]
        return None

    if url is not None and not url.strip():
        raise ConfigError("the URL is empty: give the webserver's address, e.g. http://localhost:3000")
    explicit_url = pick("url", url, ENV_URL)
    token = pick("token", token, ENV_TOKEN)
    organization = pick("organization", organization, ENV_ORGANIZATION)
    deployment = pick("deployment", deployment, ENV_DEPLOYMENT)

    file_values, file_path = ({}, None) if explicit_url and token else _config_files(env)
    if file_path:
        # A token from a file belongs to that file's endpoint: never send it elsewhere.
        if token is None and not explicit_url and file_values.get("user_token"):
            token, sources["token"] = file_values["user_token"], file_path
        if organization is None and file_values.get("organization"):
            organization, sources["organization"] = file_values["organization"], file_path
        if deployment is None and file_values.get("default_deployment"):
            deployment, sources["deployment"] = file_values["default_deployment"], file_path

    if explicit_url:
        endpoint = normalize_url(explicit_url)
    elif organization:
        base = (file_values.get("url") or DAGSTER_PLUS_URL).rstrip("/")
        endpoint = normalize_url(f"{base}/{organization}")
        sources["url"] = f"Dagster+ organization ({sources['organization']})"
        if deployment is None:
            deployment, sources["deployment"] = DEFAULT_DEPLOYMENT, "default"
        if not token:
            raise ConfigError(
                f"Dagster+ organization {organization!r} is set but no API token: "
                f"export {ENV_TOKEN}=... or run `dg plus login`"
            )
    else:
        endpoint, sources["url"] = DEFAULT_URL, "default"
    ca_bundle = pick("ca_bundle", ca_bundle, ENV_CA_BUNDLE)
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise ConfigError(f"the CA bundle {ca_bundle!r} (from {sources['ca_bundle']}) is not a file")
    return Settings(endpoint, token, organization, deployment, sources, ca_bundle)
