"""The example notebooks run top to bottom against the live demo, and are committed clean."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from runlens import Client

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb", "02_step_durations.ipynb", "03_timeline_widget.ipynb", "04_failure_triage.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs"
            assert cell.execution_count is None, f"{path.name}: a cell has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name}: widget state is stored"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_against_the_live_demo(demo, path):
    client = Client(demo.url)
    background = None
    if path.stem.startswith("02") and len(client.runs(job="etl_job")) < 2:
        demo.dagster.execute("etl_job")  # two runs at least, so there is a trend to plot
    if path.stem.startswith("03"):
        background = demo.dagster.launch_in_background("slow_job")  # a run in progress to follow
    nb = nbformat.read(path, as_version=4)
    # The kernel (python3, this interpreter) talks to the live demo instead of starting one.
    env = dict(os.environ, RUNLENS_URL=demo.base_url)
    runner = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    try:
        runner.execute(env=env)  # raises CellExecutionError on the first cell that fails
    finally:
        if background is not None:
            demo.dagster.wait(background, timeout=300)
    print(f"\n{path.name}: executed in {time.monotonic() - started:.1f} s", file=sys.stderr)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "Warning" not in text and "Traceback" not in text, text
    if path.stem.startswith("03"):
        # The notebook followed the run launched above, to its end.
        assert f"Timeline(run={background[:8]}…" in text and "status=SUCCESS, complete" in text
        assert "identical: True" in text
