"""A protected server: the UI behind a login (gradio_client and the browser), the REST
routes behind an API key, and no network exposure without either."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import start_server, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]  # starts the app

USER, PASSWORD, KEY = "ann", "correct horse", "k-123"


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory, e5) -> Iterator[str]:  # type: ignore[no-untyped-def]
    logins = tmp_path_factory.mktemp("auth") / "logins.txt"
    logins.write_text(f"# test accounts\n{USER}:{PASSWORD}\n", encoding="utf-8")
    proc, url = start_server(logins.parent / "server.log", "--encoder", "e5-small",
                             "--auth-file", str(logins), "--api-key", KEY)
    try:
        yield url
    finally:
        stop_server(proc)


def _post(url: str, body: dict[str, Any], key: str | None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          **({"authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_rest_needs_the_key(protected: str) -> None:
    status, body = _post(f"{protected}/v1/sentiment", {"texts": "Lovely."}, None)
    assert status == 401 and "Bearer" in body["error"]["message"]
    status, body = _post(f"{protected}/v1/sentiment", {"texts": "Lovely."}, KEY)
    assert status == 200 and body["label"] == "positive"


def test_gradio_client_needs_the_login(protected: str) -> None:
    from gradio_client import Client

    with pytest.raises(Exception):  # noqa: B017 - gradio_client's own error types vary
        Client(protected, verbose=False).predict("Lovely.", "default (SST-2)",
                                                 api_name="/sentiment")
    client = Client(protected, auth=(USER, PASSWORD), verbose=False)
    table, _ = client.predict("Lovely.", "default (SST-2)", api_name="/sentiment")
    assert table["data"][0][1] == "positive"


def test_browser_shows_the_login_then_the_app(protected: str, browser: Any,
                                             tmp_path: Path) -> None:
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(protected)
        page.wait_for_selector("input[type=password]")
        assert page.get_by_role("tab").count() == 0
        page.screenshot(path=str(tmp_path / "login.png"))
        page.locator("input").first.fill(USER)
        page.locator("input[type=password]").fill("wrong")
        page.keyboard.press("Enter")
        page.wait_for_timeout(1500)
        assert page.get_by_role("tab").count() == 0
        page.locator("input").first.fill(USER)
        page.locator("input[type=password]").fill(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_selector("button[role=tab]")
        page.screenshot(path=str(tmp_path / "after-login.png"))
    finally:
        ctx.close()


def test_network_host_without_protection_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "embedsuite.app.cli", "serve", "--host",
                           "0.0.0.0", "--port", "1"], check=False, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "--insecure" in proc.stderr and "neither a UI password nor an API key" in proc.stderr
