"""The shared-encoder tab in a real browser."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.browser.conftest import open_tab

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_similarity_matrix_shows_translation_closest(page: Any) -> None:
    open_tab(page, "Shared encoder")
    box = page.get_by_label("Sentences (one per line, any language)")
    box.fill("The weather is lovely today.\nDas Wetter ist heute herrlich.\nI lost my keys.")
    page.get_by_role("button", name="Compare").click()
    summary = page.locator("#encoder-summary")
    summary.locator("table").wait_for()
    rows = summary.locator("tbody tr")
    cells = [c.strip() for c in rows.nth(0).locator("td").all_inner_texts()]
    # the German translation is the closest line to the English one
    assert cells[:2] == ["The weather is lovely today.", "Das Wetter ist heute herrlich."]
    assert 0.0 < float(cells[2]) <= 1.0


def test_empty_input_shows_message_and_app_keeps_serving(page: Any) -> None:
    open_tab(page, "Shared encoder")
    page.get_by_label("Sentences (one per line, any language)").fill("   ")
    page.get_by_role("button", name="Compare").click()
    page.get_by_text("No texts given").first.wait_for()
    assert "Traceback" not in page.content()
    page.get_by_text("Encoder and cache facts", exact=True).click()  # the accordion
    page.get_by_role("button", name="Show encoder and cache info").click()
    info = page.locator("#encoder-info")
    info.get_by_text("e5-small").first.wait_for()
    shown = info.inner_text()
    assert os.path.expanduser("~") not in shown and ".sqlite" not in shown  # no server paths
