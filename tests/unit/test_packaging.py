"""The project's promises about itself: light import, declared dependencies, help texts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def _imported_after(code: str) -> set[str]:
    script = f"import sys, json; {code}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def _roots(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_import_runlens_is_light():
    roots = _roots(_imported_after("import runlens"))
    assert not roots & {"matplotlib", "ipywidgets", "dagster", "pandas", "requests", "pydantic", "pyarrow", "msgspec",
                         "dask", "distributed"}


def test_cli_help_does_not_import_pandas_or_matplotlib():
    roots = _roots(_imported_after("import runlens.cli"))
    assert not roots & {"pandas", "matplotlib", "ipywidgets", "dagster"}


def test_run_get_does_not_import_pandas():
    # `runlens run get ID` shows one run: the client, its models and format_run. pandas alone
    # took 0.73 s to import on one of our machines, past the command's 0.6 s budget (bench #6).
    roots = _roots(_imported_after("import runlens.cli; from runlens.client import Client; "
                                   "from runlens.formatting import format_run"))
    assert "pydantic" in roots  # the path was imported
    assert not roots & {"pandas", "pyarrow", "matplotlib", "ipywidgets", "dagster"}


def test_client_does_not_import_matplotlib_or_dagster():
    roots = _roots(_imported_after("import runlens; runlens.Client; runlens.filter_events; runlens.step_durations"))
    assert "pandas" in roots
    assert not roots & {"matplotlib", "ipywidgets", "dagster"}


def test_environment_yml_names_every_core_dependency():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    core = {re.split(r"[<>=!~\[ ]", dep, maxsplit=1)[0].lower() for dep in pyproject["project"]["dependencies"]}
    env_text = (ROOT / "environment.yml").read_text()
    named = {re.split(r"[<>=!~ ]", line.strip()[2:], maxsplit=1)[0].lower()
             for line in env_text.splitlines() if line.strip().startswith("- ")}
    assert core <= named, f"environment.yml misses {sorted(core - named)}"
    assert "conda-forge" in env_text and "-e .[demo]" in env_text


def test_every_public_name_resolves():
    import runlens

    for name in runlens.__all__:
        assert getattr(runlens, name) is not None, name
    with pytest.raises(AttributeError):
        runlens.no_such_name  # noqa: B018


def test_every_error_is_a_runlens_error_with_an_exit_code():
    import runlens
    from runlens import errors

    for name in errors.__all__:
        cls = getattr(runlens, name)
        if issubclass(cls, Warning):
            assert cls is runlens.RunlensWarning and issubclass(runlens.UnknownEventTypeWarning, cls)
            continue
        assert issubclass(cls, runlens.RunlensError)
        assert cls.exit_code in (1, 2, 3, 4, 5)


def _commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_command_has_help_and_a_readme_mention():
    from runlens.cli import main

    readme = (ROOT / "README.md").read_text()
    for path, command in _commands(main):
        assert command.help, f"runlens {' '.join(path)} has no help text"
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, result.output
        if not hasattr(command, "commands"):
            assert f"runlens {' '.join(path)}" in readme, f"README does not mention runlens {' '.join(path)}"


def test_python_dash_m_runlens_works():
    out = subprocess.run([sys.executable, "-m", "runlens", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "run-events" in out.stdout


def test_console_script_is_declared():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["runlens"] == "runlens.cli:main"


def test_every_public_name_is_documented_in_the_readme():
    import runlens

    readme = (ROOT / "README.md").read_text()
    missing = [name for name in runlens.__all__ if name != "__version__" and f"`{name}" not in readme
               and f"runlens.{name}" not in readme and f".{name}(" not in readme]
    assert not missing, f"README does not document: {missing}"


# The README's module table, in order: each module imports only modules listed before it.
LAYERS = ["errors", "text", "timespec", "vocabulary", "event_types", "config", "transport", "frames", "models",
          "queries", "event_decoder", "push", "assets", "filters", "logs", "plan", "client", "_step_arrays", "steps",
          "critical", "summary", "anatomy", "trends", "history", "regressions", "dask", "baseline", "explain", "plotting",
          "accessor", "widgets", "formatting", "tail", "demo", "cli"]


def test_data_flows_one_way_through_the_layers():
    import ast

    package = ROOT / "runlens"
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in package.rglob("*.py"):
        layer = path.relative_to(package).with_suffix("").parts[0]
        if layer in ("__init__", "__main__"):
            continue
        assert layer in rank, f"{layer} is not in the README's module table (LAYERS)"
        tree = ast.parse(path.read_text())
        # Imports for type checkers only never run: they make no layer depend on another.
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.level) or id(node) in typing_only:
                continue
            if path.parent != package and node.level == 1:
                continue  # within a subpackage
            target = (node.module or "").split(".")[0]
            if target in rank and rank[target] > rank[layer]:
                upward.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not upward, upward
