"""The Sentiment tab in a real browser."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import open_tab, table_rows

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_positive_sentence_is_labelled_positive(page: Any) -> None:
    open_tab(page, "Sentiment")
    box = page.get_by_label("Text (one per line)")
    box.fill("What a wonderful, heart-warming film.\nThe plot was dull and the acting awful.")
    page.get_by_role("button", name="Classify").click()
    rows = table_rows(page, "sentiment-results", min_rows=2)
    assert rows[0][1] == "positive" and rows[1][1] == "negative"
    assert 0.5 < float(rows[0][2]) <= 1.0
    page.get_by_role("button", name="Explain: which words pushed the decision").click()
    page.locator("#sentiment-explanation").get_by_text("wonderful").first.wait_for()


def test_user_errors_show_messages_and_app_keeps_serving(page: Any) -> None:
    open_tab(page, "Sentiment")
    page.get_by_label("Text (one per line)").fill("   ")
    page.get_by_role("button", name="Classify").click()
    page.get_by_text("No texts given").first.wait_for()
    page.get_by_label("custom (trained below)").check()
    page.get_by_label("Text (one per line)").fill("fine text")
    page.get_by_role("button", name="Classify").click()
    page.get_by_text("No custom head yet").first.wait_for()
    assert "Traceback" not in page.content()
    page.get_by_label("default (SST-2)").check()
    page.get_by_role("button", name="Classify").click()
    assert table_rows(page, "sentiment-results", min_rows=1)[0][0] == "fine text"

