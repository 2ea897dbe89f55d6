"""The "Inside the encoder" tab's views of one word in context and of single dimensions, as
a user sees them (screenshots saved in ``test-artifacts/screenshots/``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import open_tab, table_rows
from tests.browser.test_walkthrough import SHOTS, wide  # noqa: F401 (a shared fixture)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def inside_page(wide: Any) -> Any:  # noqa: F811 (the fixture imported above)
    open_tab(wide, "Inside the encoder")
    return wide


def test_contextual_example_shows_the_split(inside_page: Any) -> None:
    from embedsuite.app.tabs.inside import CONTEXT_EXAMPLES

    page = inside_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    plot, table = page.locator("#inside-context-plot"), "inside-context-neighbours"
    assert not plot.is_visible()  # hidden until there is a result
    page.get_by_role("button", name="Compare the word in context").click()
    rows = table_rows(page, table, min_rows=len(CONTEXT_EXAMPLES[0][1]))
    sentences, senses = CONTEXT_EXAMPLES[0][1], CONTEXT_EXAMPLES[0][2]
    assert [r[0] for r in rows] == [f"S{i + 1}: {s}" for i, s in enumerate(sentences)]
    river = {"river", "stream", "mud", "muddy", "flood", "canoe", "ducks", "swam"}
    for (_occ, near), sense in zip(rows, senses, strict=True):
        first = near.split(" (S")[0].lower()
        assert (first in river) == (sense == "river"), (sense, near)
    plot.locator("img").first.wait_for()
    page.wait_for_timeout(500)
    plot.scroll_into_view_if_needed()
    plot.screenshot(path=str(SHOTS / "desktop-inside-contextual-plot.png"))
    page.screenshot(path=str(SHOTS / "desktop-inside-contextual.png"), full_page=True)

    # a sentence without the word: a message saying what to fix; the results stay
    page.locator("#inside-context-sentences textarea").fill("The bank is closed.\nA river.")
    page.get_by_role("button", name="Compare the word in context").click()
    page.get_by_text("does not contain the word 'bank'").first.wait_for()
    assert plot.locator("img").count() == 1
    assert plot.get_by_text("Error", exact=True).count() == 0
    assert len(table_rows(page, table)) == len(sentences)


def test_dimensions_view_shows_the_chart_and_the_probe(inside_page: Any) -> None:
    page = inside_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_role("button", name="Find the dimensions").click()
    rows = table_rows(page, "inside-dims-probe", min_rows=7)
    assert [r[0] for r in rows] == ["1", "2", "4", "8", "16", "32", "all (384)"]
    assert "40 texts, labels negative, positive" in page.locator(
        "#inside-dims-headline").inner_text()
    page.locator("#inside-dims-plot img").first.wait_for()
    page.wait_for_timeout(500)
    page.locator("#inside-dims-plot").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "desktop-inside-dimensions.png"), full_page=True)
