"""The Recommend tab in a real browser: liked science-fiction items bring science fiction."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import open_tab, table_rows
from tests.test_recommend_integration import SCIFI

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_liked_scifi_brings_scifi(page: Any) -> None:
    open_tab(page, "Recommend")
    # the tab opens with two science-fiction items liked (The Glass Orbit, First Light)
    page.get_by_role("button", name="Recommend from likes / dislikes").click()
    ids = [row[1] for row in table_rows(page, "recommend-results", min_rows=5)]
    assert len(ids) >= 5
    assert sum(i in SCIFI for i in ids[:5]) >= 3, ids


def test_catalogue_map_is_a_scatter_plot_with_the_picks(page: Any) -> None:
    """The map is drawn in the browser (titles on hover, no overlapping labels), coloured
    liked / disliked / picked / other; a screenshot goes to test-artifacts/screenshots/."""
    from tests.browser.test_walkthrough import SHOTS

    open_tab(page, "Recommend")
    page.get_by_role("button", name="Recommend from likes / dislikes").click()
    table_rows(page, "recommend-results", min_rows=5)
    plot = page.locator("#recommend-map")
    plot.locator("canvas, svg").first.wait_for()
    page.wait_for_timeout(800)
    assert not plot.locator("img").count()  # not a server-drawn picture
    SHOTS.mkdir(parents=True, exist_ok=True)
    plot.scroll_into_view_if_needed()
    plot.screenshot(path=str(SHOTS / "desktop-recommend-map.png"))
