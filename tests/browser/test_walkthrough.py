"""What a user sees: errors never turn controls into "Error" badges, the class
probabilities follow the head in use, Enter answers a question, and every tab at desktop
and phone width (screenshots saved in ``test-artifacts/screenshots/``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import open_tab, table_rows

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: Where the screenshots of every tab go (gitignored; CI keeps them as artefacts).
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TABS = ["Sentiment", "Translation retrieval", "Recommend", "Question answering",
        "Compare encoders", "Inside the encoder", "Shared encoder"]
WIDTHS = {"desktop": 1280, "mobile": 390}
BINARY = bytes(range(256)) * 20


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _error_badges(page: Any, elem_id: str) -> int:
    """How many "Error" status badges the component ``elem_id`` shows."""
    return int(page.locator(f"#{elem_id}").get_by_text("Error", exact=True).count())


def _toast(page: Any, text: str) -> None:
    page.get_by_text(text).first.wait_for()


@pytest.fixture
def wide(browser: Any, app_url: str) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": WIDTHS["desktop"], "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(120_000)
    pg.goto(app_url)
    pg.wait_for_selector("button[role=tab]")
    yield pg
    ctx.close()


def test_errors_leave_controls_and_results_alone(wide: Any, tmp_path: Path) -> None:
    page = wide
    open_tab(page, "Sentiment")
    page.get_by_label("custom (trained below)").check()
    page.get_by_role("button", name="Classify").click()
    _toast(page, "No custom head yet")
    bad = tmp_path / "data.csv"
    bad.write_bytes(BINARY)
    page.get_by_text("Train your own classifier", exact=True).click()
    page.locator("#sentiment-upload input[type=file]").set_input_files(str(bad))
    page.get_by_role("button", name="Train", exact=True).click()
    _toast(page, "is a binary file, not a CSV")
    assert _error_badges(page, "sentiment-head") == 0
    assert page.locator("#sentiment-head input[type=radio]").count() == 2  # still a radio

    open_tab(page, "Recommend")
    page.get_by_text("Options: diversity, how many, your own catalogue", exact=True).click()
    page.locator("#rec-upload input[type=file]").set_input_files(str(bad))
    page.get_by_role("button", name="Load uploaded catalogue").click()
    _toast(page, "is a binary file, not a CSV")
    for picker in ("rec-liked", "rec-disliked", "rec-item"):
        assert _error_badges(page, picker) == 0, picker
    assert "The Glass Orbit" in page.locator("#rec-liked").inner_text()  # picks kept
    assert "Catalogue: demo" in page.locator("#rec-status").inner_text()

    open_tab(page, "Question answering")
    page.get_by_role("button", name="Answer", exact=True).click()
    summary = page.locator("#qa-summary")
    summary.get_by_text("Margaret Olsen").first.wait_for()
    page.locator("#qa-question textarea, #qa-question input").first.fill("   ")
    page.get_by_role("button", name="Answer", exact=True).click()
    _toast(page, "question is empty or whitespace only")
    # the previous answer stays whole (text, highlight and table), with no Error badge
    assert "Margaret Olsen" in summary.inner_text()
    assert _error_badges(page, "qa-marked") == 0 and _error_badges(page, "qa-summary") == 0
    assert "Traceback" not in page.content()


def test_class_probabilities_follow_the_head(wide: Any, tmp_path: Path) -> None:
    page = wide
    open_tab(page, "Sentiment")
    page.get_by_label("Text (one per line)").fill("What a wonderful, heart-warming film.")
    page.get_by_role("button", name="Classify").click()
    probs = page.locator("#sentiment-probabilities")
    probs.get_by_text("positive").first.wait_for()
    assert "negative" in probs.inner_text() and "neutral" not in probs.inner_text()

    rows = [("a great film", "positive"), ("wonderful acting", "positive"),
            ("I loved it", "positive"), ("a lovely story", "positive"),
            ("a dull film", "negative"), ("awful acting", "negative"),
            ("I hated it", "negative"), ("a boring story", "negative"),
            ("the film is 90 minutes long", "neutral"), ("it was shown on Tuesday", "neutral"),
            ("the cinema is in town", "neutral"), ("the actors wore coats", "neutral")]
    csv = tmp_path / "three.csv"
    csv.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows), encoding="utf-8")
    page.get_by_text("Train your own classifier", exact=True).click()
    page.locator("#sentiment-upload input[type=file]").set_input_files(str(csv))
    page.get_by_role("button", name="Train", exact=True).click()
    page.locator("#sentiment-train-summary").get_by_text("Held-out accuracy").wait_for()
    # training selects the new head; its three classes replace the default head's two
    page.locator("#sentiment-head input[value='custom (trained below)']").wait_for()
    assert page.locator("#sentiment-head input[value='custom (trained below)']").is_checked()
    page.get_by_role("button", name="Classify").click()
    probs.get_by_text("neutral").first.wait_for()
    assert {"positive", "negative", "neutral"} <= set(probs.inner_text().split())


def test_enter_answers_the_question(wide: Any) -> None:
    page = wide
    open_tab(page, "Question answering")
    box = page.locator("#qa-question textarea, #qa-question input").first
    box.fill("When was the lighthouse built?")
    box.press("Enter")
    summary = page.locator("#qa-summary")
    summary.get_by_text("Answer:").wait_for()
    assert "1872" in summary.inner_text()
    assert box.input_value() == "When was the lighthouse built?"  # no newline added


def _show_tab(page: Any, title: str) -> None:
    """Click tab ``title``; at phone width it may sit in the tab bar's overflow menu."""
    tab = page.get_by_role("tab", name=title)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    page.get_by_role("button", name="More tabs").click()  # the tab bar's "..." menu
    page.locator(".overflow-dropdown button", has_text=title).first.click()
    page.get_by_role("tab", name=title, selected=True).wait_for()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_screenshots_of_every_tab(browser: Any, app_url: str, width: str) -> None:
    """A fresh page per tab: no empty result boxes, and a screenshot of each for review."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": WIDTHS[width], "height": 900})
    try:
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(app_url)
        page.wait_for_selector("button[role=tab]")
        for title in TABS:
            _show_tab(page, title)
            panel = page.locator("[role=tabpanel]:visible").first
            panel.wait_for()
            page.wait_for_timeout(300)
            out = SHOTS / f"{width}-{_slug(title)}.png"
            page.screenshot(path=str(out), full_page=True)
            assert out.stat().st_size > 5_000
            # nothing on a fresh page is an empty result table
            assert panel.locator("[role=grid]:visible").count() == 0, title
    finally:
        ctx.close()


def test_result_screenshots(wide: Any) -> None:
    """The default action of the three head tabs, as a user sees it after one click."""
    page = wide
    SHOTS.mkdir(parents=True, exist_ok=True)
    open_tab(page, "Sentiment")
    page.get_by_role("button", name="Classify").click()
    assert len(table_rows(page, "sentiment-results", min_rows=3)) == 3
    page.locator("#sentiment-probabilities").get_by_text("positive").first.wait_for()
    page.screenshot(path=str(SHOTS / "desktop-sentiment-result.png"), full_page=True)
    open_tab(page, "Question answering")
    page.get_by_role("button", name="Answer", exact=True).click()
    page.locator("#qa-summary").get_by_text("Margaret Olsen").first.wait_for()
    page.screenshot(path=str(SHOTS / "desktop-question-answering-result.png"), full_page=True)
    open_tab(page, "Translation retrieval")
    page.get_by_role("button", name="Find translation").click()
    rows = table_rows(page, "translation-results", min_rows=5)
    assert rows[0][0] and not rows[1][0]  # the query once, not on every row
    page.screenshot(path=str(SHOTS / "desktop-translation-result.png"), full_page=True)
    open_tab(page, "Recommend")
    page.get_by_role("button", name="Recommend from likes / dislikes").click()
    table_rows(page, "recommend-results", min_rows=5)
    page.screenshot(path=str(SHOTS / "desktop-recommend-result.png"), full_page=True)
    open_tab(page, "Inside the encoder")
    page.get_by_role("button", name="Find neighbours").click()
    rows = table_rows(page, "inside-neighbours", min_rows=3)
    assert "Berlin" in rows[0][1]
    page.get_by_role("button", name="Draw map").click()
    page.locator("#inside-map canvas, #inside-map svg").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "desktop-inside-the-encoder-result.png"), full_page=True)
