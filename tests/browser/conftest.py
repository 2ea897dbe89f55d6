"""Browser tests: the real app in a subprocess on a free localhost port, driven by
Debian's chromium through Playwright for Python (Playwright's own browser download
does not work here). Each test saves a screenshot under its pytest temp dir.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(log: Path, *extra: str, timeout_s: float = 300
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """``embedsuite serve`` on a free localhost port, once ``/health`` says ready."""
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "embedsuite.app.cli", "serve", "--port", str(port), *extra],
            stdout=fh, stderr=subprocess.STDOUT, env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the app exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            pytest.fail(f"the app was not ready in {timeout_s:g} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory, e5) -> Iterator[str]:  # type: ignore[no-untyped-def]
    e5.encode("make sure the shared encoder is built before the app starts")
    proc, url = start_server(tmp_path_factory.mktemp("app") / "server.log")
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from tests.conftest import skip_or_fail

    exe = shutil.which("chromium")
    if exe is None:
        skip_or_fail("Debian's chromium is not installed (the test command installs it as "
                     "root: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, app_url: str, tmp_path: Path) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(120_000)
    pg.goto(app_url)
    pg.wait_for_selector("button[role=tab]")
    yield pg
    pg.screenshot(path=str(tmp_path / "screenshot.png"), full_page=True)
    ctx.close()


def open_tab(page: Any, title: str) -> None:
    """Click the tab whose label is ``title``."""
    page.get_by_role("tab", name=title).click()


def table_rows(page: Any, elem_id: str, min_rows: int = 1, timeout_s: float = 180
               ) -> list[list[str]]:
    """The body rows of the gr.Dataframe with ``elem_id``, as lists of cell texts.

    Waits until at least ``min_rows`` rows hold text.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        rows = page.locator(f"#{elem_id} [role=row]")
        out = []
        for i in range(rows.count()):
            cells = [c.strip() for c in rows.nth(i).locator("[role=gridcell]").all_inner_texts()]
            if any(cells):
                out.append(cells)
        if len(out) >= min_rows or time.monotonic() > deadline:
            return out
        page.wait_for_timeout(500)
