"""The widgets in a real browser: Voilà renders tests/live/browser/widgets.ipynb, headless Chromium clicks it.

One Voilà server and one browser for the module; each page (a fresh kernel) is a view of the
notebook chosen by its query string. What the Gantt shows is read from the hidden
``.runlens-gantt-layout`` element the widget writes from the drawn figure's artists (no
pixels), and compared with Dagster's own numbers (tests/truth.py). Screenshots of each state
go to ``$RUNLENS_SCREENSHOTS`` (default: the pytest temporary directory).

Without Chromium, chromedriver, selenium or voila these tests skip, saying how to install
them, except when ``RUNLENS_REQUIRE_BROWSER`` is set (CI: .ci/run installs them), where they fail.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from runlens import Client
from tests.live.browser_page import Voila, browser_problem, chrome, gantt_data, wait_for
from tests.truth import dagster_truth

_PROBLEM = browser_problem()
if _PROBLEM and not os.environ.get("RUNLENS_REQUIRE_BROWSER"):
    pytest.skip(_PROBLEM, allow_module_level=True)

# Samples, on every animation frame, what the Gantt area shows: whether a decoded image is
# there, how many outputs it holds and how tall it is, and when the page first showed both
# the Gantt and the events table (for the first paint).
FRAME_SAMPLER = """
window.__runlens = {frames: [], painted: null};
(function sample() {
  const gantt = document.querySelector('.runlens-gantt');
  if (gantt) {
    const imgs = gantt.querySelectorAll('img');
    const shown = imgs.length === 1 && imgs[0].complete && imgs[0].naturalWidth > 0;
    const outputs = gantt.querySelectorAll('.jp-OutputArea-child').length;
    const rows = document.querySelectorAll('.runlens-events table tbody tr').length;
    window.__runlens.frames.push([Date.now(), imgs.length, shown ? 1 : 0, outputs,
                                  Math.round(gantt.getBoundingClientRect().height)]);
    if (shown && rows && window.__runlens.painted === null) window.__runlens.painted = Date.now();
  }
  requestAnimationFrame(sample);
})();
"""


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = Path(os.environ.get("RUNLENS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def page(demo, tmp_path_factory, shots):
    """``(voila, driver)``: one Voilà server on the live demo and one headless Chromium."""
    if _PROBLEM:
        pytest.fail(f"RUNLENS_REQUIRE_BROWSER is set but {_PROBLEM}")
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with Voila(demo.base_url, log=log) as voila:
        driver = chrome()
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FRAME_SAMPLER})
        try:
            yield voila, driver
        finally:
            driver.quit()


def by_css(root, selector: str):
    from selenium.webdriver.common.by import By

    return root.find_elements(By.CSS_SELECTOR, selector)


def open_view(page, **params) -> None:
    voila, driver = page
    driver.get(voila.url(**params))


def first_timeline(driver, timeout: float = 90):
    """The page's first timeline, once its Gantt data is there."""
    return wait_for(lambda: [t for t in by_css(driver, ".runlens-timeline") if gantt_data(t)][0], timeout,
                    "a timeline with its Gantt")


def table_rows(root) -> list[list[str]]:
    """The cells of the events table of a timeline (one round trip to the browser)."""
    return root.parent.execute_script(
        "return Array.from(arguments[0].querySelectorAll('.runlens-events table tbody tr'),"
        " tr => Array.from(tr.querySelectorAll('td'), td => td.textContent))", root)


def status_text(root) -> str:
    """The timeline's status line, found and read in one script (a redraw replaces it)."""
    return root.parent.execute_script(
        "const e = arguments[0].querySelector('.runlens-status'); return e ? e.innerText : '';", root)


def table_note(root) -> str:
    return by_css(root, ".runlens-events b")[0].text


def gantt_images(root) -> list:
    return by_css(root, ".runlens-gantt img")


def shoot(driver, shots: Path, name: str, element=None) -> Path:
    path = shots / f"{name}.png"
    if element is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
    driver.save_screenshot(str(path))
    return path


def bars_match(data: dict, truth: dict) -> bool:
    """The Gantt has a row for each step of Dagster's step stats, with one bar per attempt.

    Steps Dagster has no stats for (skipped ones) have a row and no bar.
    """
    drawn = dict(zip(data["rows"], data["attempts"]))
    stats = {k: s["attempts"] for k, s in truth["step_stats"].items()}
    return set(stats) <= set(drawn) and all(drawn[k] == stats.get(k, 0) for k in drawn)


def frames(driver) -> list[list[int]]:
    return driver.execute_script("return window.__runlens.frames")


def test_timeline_and_runs_browser_in_the_page(demo, page, shots):
    _, driver = page
    client = Client(demo.url, progress=False)
    failing = demo.runs["failing"]
    truth = dagster_truth(demo.dagster.home, failing)
    open_view(page, view="widgets", run=failing)
    tl = first_timeline(driver)

    # The Gantt: one image, one bar per attempt of each step (Dagster's step stats).
    data = gantt_data(tl)
    assert bars_match(data, truth), (data, truth["step_stats"])
    assert data["status"] == truth["status"] == "FAILURE"
    (img,) = gantt_images(tl)
    wait_for(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img), 10,
             "the Gantt image to load")
    # The events table: every event of the run (the run is shorter than the 500 rows shown).
    rows = table_rows(tl)
    assert len(rows) == truth["n_events"] and table_note(tl) == f"{truth['n_events']} events"
    assert [int(r[0]) for r in rows] == list(range(truth["n_events"]))
    shoot(driver, shots, "1-timeline", tl)

    # Types filter, clicked in the page: the table shows the failures only.
    from selenium.webdriver.support.ui import Select

    failures = Counter(truth["event_types"])["STEP_FAILURE"]
    types = Select(by_css(tl, ".runlens-types select")[0])
    option = next(o for o in types.options if o.text.startswith("STEP_FAILURE ("))
    option.click()
    wait_for(lambda: "matching" in table_note(tl), 30, "the table to follow the Types filter")
    rows = table_rows(tl)
    assert len(rows) == failures >= 1 and {r[3] for r in rows} == {"STEP_FAILURE"}
    assert table_note(tl) == f"{failures} matching events"
    shoot(driver, shots, "2-types-filter", tl)

    # Picking the failed step shows its error, as Dagster reported it.
    failed_step = next(k for k, s in truth["step_stats"].items() if s["status"] == "FAILURE")
    errors = client.events(failing)
    errors = errors[(errors["step_key"] == failed_step) & errors["error_class"].notna()]
    redraws = gantt_data(tl)["redraws"]
    Select(by_css(tl, ".runlens-step-select select")[0]).select_by_visible_text(f"{failed_step} · failure")
    detail = wait_for(lambda: [d for d in by_css(tl, ".runlens-detail") if failed_step in d.text][0], 30,
                      "the step panel")
    for e in errors.itertuples():
        assert e.error_class in detail.text and e.error_message.strip().splitlines()[0] in detail.text
    assert wait_for(lambda: gantt_data(tl)["redraws"] > redraws, 30, "the Gantt to highlight the step")
    shoot(driver, shots, "3-failed-step", detail)

    # The runs browser: picking the seeded etl_job run shows its timeline, a retried step with two bars.
    browser = wait_for(lambda: by_css(driver, ".runlens-runs-browser")[0], 60, "the runs browser")
    etl = demo.runs["etl"]
    runs = Select(by_css(browser, ".runlens-run-select select")[0])
    next(o for o in runs.options if o.text.endswith(etl[:8])).click()
    etl_truth = dagster_truth(demo.dagster.home, etl)
    assert max(s["attempts"] for s in etl_truth["step_stats"].values()) >= 2  # the demo's retried step
    wait_for(lambda: bars_match(gantt_data(by_css(browser, ".runlens-timeline")[0]), etl_truth), 60,
             f"the runs browser's Gantt of {etl[:8]}: {etl_truth['step_stats']}")
    assert etl in by_css(browser, ".runlens-summary")[0].text
    shoot(driver, shots, "4-runs-browser", browser)


def test_followed_run_grows_in_the_page_and_stops_when_it_ends(demo, page, shots):
    _, driver = page
    # Three steps of 5 s, each logging once a second (a new batch on most polls): the run is
    # still running when the page, rendered by a fresh kernel, first shows it.
    config = {"ops": {op: {"config": {"seconds": 5.0}} for op in ("slow_start", "slow_middle", "slow_end")}}
    run_id = demo.dagster.launch_in_background("slow_job", config)
    open_view(page, view="follow", run=run_id, interval=1)
    tl = first_timeline(driver, timeout=120)
    seen: list[dict] = []
    shot_running = None
    deadline = time.monotonic() + 180
    while "followed to the end" not in status_text(tl):
        data = gantt_data(tl)
        if not seen or data != seen[-1]:
            seen.append(data)
        if shot_running is None and data["running"] and data["bars"] >= 2:
            shot_running = shoot(driver, shots, "5-follow-running", tl)
        assert time.monotonic() < deadline, f"still following after 180 s: {seen[-1]}"
        time.sleep(0.2)
    status = demo.dagster.wait(run_id, timeout=120)
    truth = dagster_truth(demo.dagster.home, run_id)
    final = wait_for(lambda: (d := gantt_data(tl))["events"] == truth["n_events"] and d, 30, "the last events")
    shoot(driver, shots, "6-follow-ended", tl)
    seen.append(final)

    # It grew while the run ran: more events and bars over time, some of them still running.
    assert status == truth["status"] == "SUCCESS" and final["status"] == "SUCCESS"
    assert shot_running is not None, f"never saw a bar running: {seen}"
    assert [d["events"] for d in seen] == sorted(d["events"] for d in seen)
    assert [d["bars"] for d in seen] == sorted(d["bars"] for d in seen)
    assert seen[0]["bars"] < final["bars"] and len({d["events"] for d in seen}) >= 3
    assert bars_match(final, truth) and final["bars"] == 3
    assert final["running"] == 0
    # ... and stopped when it ended: no redraw afterwards.
    time.sleep(3)
    assert gantt_data(tl)["redraws"] == final["redraws"]

    # Redraws replaced the Gantt in place: never two images, never two outputs, and after the
    # first paint no frame without a decoded image (a flicker) or with the area collapsed.
    samples = frames(driver)
    first = next(i for i, f in enumerate(samples) if f[2])
    after = samples[first:]
    assert max(f[1] for f in samples) == 1 and max(f[3] for f in samples) == 1
    blank = [f for f in after if not f[2]]
    heights = [f[4] for f in after]
    print(f"\nfollow in the browser: {len(seen)} states, {final['redraws']} redraws, {len(after)} frames "
          f"sampled after the first paint, {len(blank)} without a decoded Gantt; height {min(heights)}-"
          f"{max(heights)} px", file=sys.stderr)
    assert not blank, f"{len(blank)} frames showed no Gantt between redraws (flicker)"
    assert min(heights) >= 0.9 * heights[0]


def test_first_paint_of_a_50000_event_run(demo, page, shots):
    _, driver = page
    n = 50_000
    open_view(page, view="big", n=n)
    tl = first_timeline(driver, timeout=180)
    painted = wait_for(lambda: driver.execute_script("return window.__runlens.painted"), 60, "the first paint")
    clock = by_css(driver, ".runlens-test-clock")[0]
    started, built, cpu = (float(clock.get_attribute(f"data-{k}")) for k in ("started", "built", "cpu"))
    from benchmarks import synthetic
    from runlens.frames import events_frame
    from runlens.steps import step_durations

    steps = step_durations(events_frame(list(synthetic.iter_events(n)), synthetic.RUN_ID))
    data = gantt_data(tl)
    assert data["events"] == n and data["rows"] == [str(k) for k in steps["step_key"]]
    assert data["attempts"] == [len(spans) for spans in steps["attempt_spans"]]
    assert len(table_rows(tl)) == 500 and table_note(tl).startswith(f"{n:,} events; showing the first 500")
    print(f"\nfirst paint of a {n:,}-event run ({len(steps)} steps): widget built in {built:.2f} s ({cpu:.2f} s CPU), "
          f"Gantt and table on screen {painted / 1000 - started:.2f} s after timeline() was called",
          file=sys.stderr)
    shoot(driver, shots, "7-first-paint-50k", tl)
