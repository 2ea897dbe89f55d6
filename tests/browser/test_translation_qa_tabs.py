"""The Translation retrieval and Question answering tabs in a real browser."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import open_tab, table_rows

pytestmark = [pytest.mark.browser, pytest.mark.integration]

GERMAN = "Das Museum ist montags geschlossen."


def test_german_translation_ranks_first(page: Any) -> None:
    open_tab(page, "Translation retrieval")
    page.get_by_label("Sentence(s) whose translation you look for", exact=False).fill(
        "The museum is closed on Mondays.")
    page.get_by_label("Candidates (one per line, any language)").fill("\n".join([
        "Das Kino ist sonntags geöffnet.", "Ich habe meinen Schlüssel verloren.", GERMAN,
        "Der Zug nach Berlin fährt um acht Uhr ab.", "Le musée est fermé le lundi? Non 🙂"]))
    page.get_by_role("button", name="Find translation").click()
    rows = table_rows(page, "translation-results", min_rows=1)
    assert GERMAN in rows[0]


def test_qa_answer_span_is_right(page: Any) -> None:
    open_tab(page, "Question answering")
    page.get_by_label("Text (paste, or upload a .txt)").fill(
        "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. "
        "It is 330 metres tall and was the tallest structure in the world until 1930.")
    page.get_by_label("Question").fill("In which year was the Eiffel Tower completed?")
    page.get_by_role("button", name="Answer", exact=True).click()
    summary = page.locator("#qa-summary")
    summary.get_by_text("Answer:").wait_for()
    assert "1889" in summary.inner_text()


def test_qa_empty_question_shows_message(page: Any) -> None:
    open_tab(page, "Question answering")
    page.get_by_label("Question").fill("")
    page.get_by_role("button", name="Answer", exact=True).click()
    page.get_by_text("question is empty or whitespace only").first.wait_for()
    assert "Traceback" not in page.content()
