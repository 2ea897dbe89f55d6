"""The app as an API (gradio_client): one call per head as the README shows, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]  # starts the app


@pytest.fixture(scope="module")
def client(app_url: str):  # type: ignore[no-untyped-def]
    from gradio_client import Client

    return Client(app_url, verbose=False)


def test_one_call_per_head(client) -> None:  # type: ignore[no-untyped-def]
    table, _bars = client.predict("What a wonderful film!", "default (SST-2)",
                                  api_name="/sentiment")
    assert table["data"][0][1] == "positive"
    hits = client.predict("Das Museum ist montags geschlossen.",
                          "I lost my keys.\nThe museum is closed on Mondays.", 3, "margin",
                          api_name="/translation_search")
    assert hits["data"][0][2] == "The museum is closed on Mondays."
    _heat, pairs = client.predict("Le train part à huit heures.\nJ'aime le thé.",
                                  "I like tea.\nThe train leaves at eight.", None, False,
                                  "margin", api_name="/translation_mine")
    assert len(pairs["data"]) >= 1
    recs, _map = client.predict(["b001", "f008"], [], 5, 0.0, api_name="/recommend")
    assert len(recs["data"]) == 5
    _marked, summary, _table = client.predict(
        "The Eiffel Tower was completed in 1889.", "When was the Eiffel Tower completed?",
        3, 0.0, api_name="/qa_answer")
    assert "1889" in summary


def test_bad_upload_is_a_message_not_a_crash(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    bad = tmp_path / "data.csv"
    bad.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(AppError, match="is a binary file, not a CSV"):
        client.predict(handle_file(str(bad)), "linear", api_name="/sentiment_train")
    one_class = tmp_path / "one.csv"
    one_class.write_text("text,label\ngood film,pos\nnice film,pos\ngreat,pos\n")
    with pytest.raises(AppError, match="class"):
        client.predict(handle_file(str(one_class)), "linear", api_name="/sentiment_train")
    # the app keeps serving
    table, _ = client.predict("Still here?", "default (SST-2)", api_name="/sentiment")
    assert table["data"][0][0] == "Still here?"


def test_rest_docs_render_without_internet(app_url: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """/docs draws the routes from local files (FastAPI's default CDN is unreachable here)."""
    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = ctx.new_page()
    try:
        page.goto(f"{app_url}/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert {"/v1/embed", "/v1/sentiment", "/v1/translation/search", "/v1/recommend",
                "/v1/qa"} <= {p.replace("\u200b", "") for p in paths}
        page.screenshot(path=str(tmp_path / "docs.png"))
    finally:
        ctx.close()


def test_maps_and_inside_views_through_the_api(client) -> None:  # type: ignore[no-untyped-def]
    recs, cmap = client.predict(["b001", "f008"], [], 5, 0.0, api_name="/recommend")
    picked = {row[1] for row in recs["data"]}
    col = {c: i for i, c in enumerate(cmap["columns"])}
    groups = [row[col["group"]] for row in cmap["data"]]
    assert groups.count("picked") == len(picked) == 5 and groups.count("liked") == 2
    assert groups[-5:] == ["picked"] * 5  # drawn last: on top

    from embedsuite.app.tabs.inside import CONTEXT_EXAMPLES

    word, sentences, _ = CONTEXT_EXAMPLES[0]
    _heat, rows = client.predict(word, "\n".join(sentences), True,
                                 api_name="/inside_contextual")
    assert len(rows["data"]) == len(sentences)
    headline, _bars, probe = client.predict("", 8, api_name="/inside_dimensions")
    assert "40 texts" in headline and probe["data"][-1][0] == "all (384)"
