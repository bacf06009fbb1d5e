"""runlens.summary: run_summary over synthetic runs shaped like real Dagster runs (tests/builders.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from runlens.errors import InvalidArgument
from runlens.frames import concat_events, empty_events_frame
from runlens.models import Run
from runlens.summary import RunSummary, StepFailure, run_summary
from tests.builders import T0, RunBuilder, etl_run, live_run, ms

# The runs themselves (etl_run, live_run, canceled_run) are built in tests/builders.py.


# --------------------------------------------------------------------------- run_summary


def test_run_summary_of_a_failed_run():
    b = etl_run()
    summary = run_summary(b.frame())
    assert isinstance(summary, RunSummary)
    assert summary.run_id == "run-a" and summary.status == "FAILURE"
    assert summary.wall_time == ms(9400 - 1000)
    assert summary.queued == ms(1000)  # RUN_ENQUEUED → RUN_START
    assert summary.steps_by_status == {"SUCCESS": 5, "FAILURE": 1, "IN_PROGRESS": 0, "SKIPPED": 2, "CANCELED": 0}
    assert summary.slowest_steps[0] == ("transform", ms(3200))
    assert len(summary.slowest_steps) == 5
    assert [d for _, d in summary.slowest_steps] == sorted((d for _, d in summary.slowest_steps), reverse=True)
    assert summary.total_retry_wait == ms(1100)  # worker start-up of the retry excluded
    assert summary.materializations == ["raw/orders", "clean/orders"]
    assert summary.first_failure[:3] == ("process[apac]", "ValueError", "bad region apac")
    assert summary.n_events == len(b.records)


def test_run_summary_text_and_html():
    summary = run_summary(etl_run().frame())
    text = str(summary)
    lines = text.splitlines()
    assert lines[0].split() == ["Run", "run-a"]
    width = len("Retry wait")  # the longest label: values start two spaces after it
    assert all(line[width:width + 2] == "  " and line[width + 2] != " " for line in lines), text
    assert "Wall time" in text and "8.400 s" in text
    assert "process[apac]: ValueError: bad region apac" in text
    assert repr(summary) == text
    html = summary._repr_html_()
    assert html.startswith("<table>") and "<th" in html and "process[apac]: ValueError" in html


def test_run_summary_of_a_run_in_progress():
    summary = run_summary(live_run().frame())
    assert summary.status == "STARTED"
    assert summary.wall_time is None
    assert summary.queued == ms(500)  # RUN_STARTING → RUN_START when not queued
    assert summary.steps_by_status["IN_PROGRESS"] == 3 and summary.steps_by_status["SKIPPED"] == 1
    assert summary.first_failure is None and summary.materializations == []


def test_run_summary_prefers_the_run_model():
    run = Run(id="run-a", status="CANCELED", jobName="etl_job", creationTime=(T0 - 5000) / 1000,
              startTime=(T0 + 1000) / 1000, endTime=(T0 + 9999) / 1000)
    frame = concat_events([etl_run().frame(), live_run().frame()])
    summary = run_summary(frame, run)
    assert summary.status == "CANCELED" and summary.job_name == "etl_job"
    assert summary.wall_time == ms(8400)  # events win over the model's times
    assert summary.n_events == len(etl_run().records)
    with pytest.raises(InvalidArgument, match="one run"):
        run_summary(frame)
    with pytest.raises(InvalidArgument, match="no event of run 'run-z'"):
        run_summary(frame, Run(id="run-z", status="SUCCESS", jobName="etl_job", creationTime=T0 / 1000))
    with pytest.raises(InvalidArgument, match="takes run= as a runlens Run"):
        run_summary(frame, {"id": "run-a"})


def test_run_summary_of_an_empty_frame():
    summary = run_summary(empty_events_frame())
    assert summary.status == "UNKNOWN" and summary.n_events == 0 and summary.wall_time is None
    assert summary.steps_by_status == {"SUCCESS": 0, "FAILURE": 0, "IN_PROGRESS": 0, "SKIPPED": 0, "CANCELED": 0}
    assert "Events" in str(summary)


# --------------------------------------------------------------------------- where it failed (#12 defect 5)


_CAUSE_STACK = ('  File "/srv/dagster/_core/execution/plan/utils.py", line 54, in op_execution_error_boundary\n'
                '    yield\n'
                '  File "/home/me/etl/ops.py", line 41, in process\n'
                '    rows = parse(region)\n'
                '  File "/home/me/etl/parse.py", line 7, in parse\n'
                '    raise ValueError(f"bad region {region}")\n')


def _with_cause_stack(frame: pd.DataFrame, stacks: dict[str, str | None]) -> pd.DataFrame:
    """`frame` with an ``error_cause_stack`` column: `stacks` on each step's STEP_FAILURE."""
    column = pd.Series(pd.NA, index=frame.index, dtype="string")
    for step, stack in stacks.items():
        column[(frame["event_type"] == "STEP_FAILURE") & (frame["step_key"] == step)] = stack
    return frame.assign(error_cause_stack=column)


def test_run_summary_says_where_the_user_code_failed():
    """#12 defect 5: the last frame of the user's stack (the error's cause) is shown."""
    summary = run_summary(_with_cause_stack(etl_run().frame(), {"process[apac]": _CAUSE_STACK}))
    failure = summary.first_failure
    assert isinstance(failure, StepFailure)
    assert failure.where == 'File "/home/me/etl/parse.py", line 7, in parse'
    assert failure.stack == _CAUSE_STACK
    text = str(summary)
    assert 'Where       File "/home/me/etl/parse.py", line 7, in parse' in text, text
    html = summary._repr_html_()
    assert "parse.py&quot;, line 7" in html and "<pre>" in html and "ops.py&quot;, line 41" in html


def test_where_falls_back_without_a_cause_stack():
    frame = etl_run().frame()
    for events in (frame.drop(columns=["error_cause_stack"], errors="ignore"),
                   _with_cause_stack(frame, {"process[apac]": None})):
        summary = run_summary(events)
        assert summary.first_failure[:3] == ("process[apac]", "ValueError", "bad region apac")
        assert summary.first_failure.where is None and summary.first_failure.stack is None
        assert "Where" not in str(summary) and "<pre>" not in summary._repr_html_()
    # Not wrapped by Dagster (a Failure raised in the op): the error's own stack is the user's.
    b = RunBuilder().event(0, "RUN_START").event(10, "STEP_START", "s")
    b.event(20, "STEP_FAILURE", "s", error={
        "message": "dagster._core.definitions.events.Failure: no data\n", "className": "Failure",
        "stack": ['  File "/home/me/etl/ops.py", line 12, in s\n', '    raise Failure("no data")\n']})
    failure = run_summary(b.frame()).first_failure
    assert failure[:3] == ("s", "Failure", "no data")
    assert failure.where == 'File "/home/me/etl/ops.py", line 12, in s'



# ---------------------------------------------------------------- the failing step's stderr


class _LogsClient:
    """Stands for a Client: only ``logs`` is used, and each call is recorded."""

    def __init__(self, text=None, error=None):
        self.text, self.error, self.calls = text, error, []

    def logs(self, run_id, step, **kwargs):
        self.calls.append((run_id, step, kwargs))
        if self.error:
            raise self.error
        return self.text


def test_run_summary_fetches_nothing_without_logs():
    summary = run_summary(etl_run().frame())
    assert summary.failure_log is None and "Stderr" not in str(summary)


def test_run_summary_shows_the_failing_steps_stderr_tail_from_a_client():
    text = "".join(f"line {i}\n" for i in range(40)) + "\x1b[31mValueError: boom\x1b[0m\n"
    client = _LogsClient(text)
    summary = run_summary(etl_run().frame(), logs=client, log_lines=3)
    assert client.calls == [("run-a", "process[apac]", {"max_bytes": 64_000})]
    assert summary.failure_log == ["line 38", "line 39", "ValueError: boom"]
    assert "Stderr      line 38\n            line 39\n            ValueError: boom" in str(summary)
    assert "<pre style='margin:0;max-height:20em;overflow:auto'>line 38\nline 39\nValueError: boom</pre>" in \
        summary._repr_html_()


def test_run_summary_takes_a_logtext_of_several_steps_and_picks_the_failing_one():
    from runlens.logs import LogFile, LogPart, LogText, join_parts

    parts = [LogPart(LogFile("a", ("extract",)), "stderr", "extract ok\n"),
             LogPart(LogFile("b", ("process[apac]",)), "stderr", "Traceback\nKeyError: 'x'\n")]
    text = LogText(join_parts(parts), run_id="run-a", step=None, stream="stderr", parts=parts, notes=[])
    summary = run_summary(etl_run().frame(), logs=text)
    assert summary.failure_log == ["Traceback", "KeyError: 'x'"]


def test_run_summary_says_when_the_step_has_no_logs():
    from runlens.errors import LogsNotFound

    client = _LogsClient(error=LogsNotFound("step 'process[apac]' of run run-a has no captured compute logs"))
    summary = run_summary(etl_run().frame(), logs=client)
    assert summary.failure_log is None and "has no captured compute logs" in summary.failure_log_note
    assert "Logs        step 'process[apac]'" in str(summary)


def test_run_summary_rejects_logs_of_another_kind():
    with pytest.raises(InvalidArgument, match="takes a runlens Client or the log text"):
        run_summary(etl_run().frame(), logs=42)
