"""A Voilà server and a headless Chromium for the browser tests (not a test module).

The browser comes from the system's packages (``apt-get install chromium chromium-driver``
on Debian/Ubuntu): browser downloads from other hosts are not reachable from CI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from runlens.demo.server import _free_port

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = Path(__file__).resolve().parent / "browser" / "widgets.ipynb"
HOW_TO_INSTALL = ("the browser tests need Chromium, its driver and the `browser` extra: "
                  "`sudo apt-get install -y chromium chromium-driver` (Debian/Ubuntu) and "
                  "`pip install -e '.[browser]'`; CI (.ci/run) installs them")
CHROMIUMS = ("chromium", "chromium-browser", "google-chrome")


def chromium_binary() -> str | None:
    return next((path for path in map(shutil.which, CHROMIUMS) if path), None)


def browser_problem() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    missing = [name for name in ("selenium", "voila") if importlib.util.find_spec(name) is None]
    if chromium_binary() is None:
        missing.append("a chromium binary")
    if shutil.which("chromedriver") is None:
        missing.append("chromedriver")
    return f"missing {', '.join(missing)}: {HOW_TO_INSTALL}" if missing else None


class Voila:
    """``voila NOTEBOOK`` on 127.0.0.1 with a token; ``url(**params)`` is the page for those params.

    The kernel of each page reads the page's query string (``QUERY_STRING``) and talks to
    ``RUNLENS_URL``. It imports this repository's ``tests`` package (``PYTHONPATH``).
    """

    def __init__(self, runlens_url: str, notebook: Path = NOTEBOOK, log: Path | None = None):
        self.port = _free_port("127.0.0.1")
        self.token = secrets.token_hex(16)
        self.notebook = notebook
        self.runlens_url = runlens_url
        self.log = log
        self.process: subprocess.Popen | None = None
        self._out = None

    def url(self, **params: Any) -> str:
        return f"http://127.0.0.1:{self.port}/?{urlencode({'token': self.token, **params})}"

    def __enter__(self) -> Voila:
        env = dict(os.environ, RUNLENS_URL=self.runlens_url,
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
        self._out = open(self.log, "wb") if self.log else None  # closed in __exit__
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voila", str(self.notebook), "--no-browser", f"--port={self.port}",
             "--Voila.ip=127.0.0.1", f"--token={self.token}", "--show_tracebacks=True"],
            env=env, stdout=self._out or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.notebook.parent)
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"Voilà did not start (exit code {self.process.returncode}); log: {self.log}")
            time.sleep(0.2)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/voila/static/", timeout=2):
                return True
        except urllib.error.HTTPError:  # an answer all the same (404 for this directory)
            return True
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        finally:
            if self._out is not None:
                self._out.close()


def chrome(width: int = 1400, height: int = 1000):
    """A headless Chromium driven through the system's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(120)
    return driver


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; AssertionError saying ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as exc:  # noqa: BLE001 - a page still rendering: try again
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def gantt_data(root) -> dict | None:
    """The data of the Gantt shown in ``root`` (a timeline's element), from its hidden layout element.

    Found and read in one script: a redraw replaces the element, so finding it in one round
    trip and reading it in another can meet a stale element (seen in CI while following).
    """
    text = root.parent.execute_script(
        "const e = arguments[0].querySelector('.runlens-gantt-layout');"
        " return e ? e.getAttribute('data-gantt') : null;", root)
    return json.loads(text) if text else None
