"""Conventions of the app every tab keeps, checked on the built demo (no encoder loaded):
readable API names, controls that no failing event can turn into an "Error" badge, and
no empty result boxes on a fresh page."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("gradio")

#: Controls the user sets; no public event may have them as outputs.
CONTROLS = ("sentiment-head", "rec-liked", "rec-disliked", "rec-item")
#: Result boxes, hidden until there is a result.
RESULTS = ("sentiment-results", "sentiment-probabilities", "sentiment-explanation",
           "translation-results", "recommend-results", "qa-marked", "inside-neighbours",
           "inside-context-plot", "inside-context-neighbours", "inside-dims-headline",
           "inside-dims-plot", "inside-dims-probe", "encoder-info")


@pytest.fixture(scope="module")
def demo() -> Any:
    from embedsuite.app.blocks import build_demo

    return build_demo()


def _by_elem_id(demo: Any) -> dict[str, Any]:
    return {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}


def test_api_parameters_and_outputs_have_real_names(demo: Any) -> None:
    info = demo.get_api_info()
    endpoints = info["named_endpoints"]
    assert {"/sentiment", "/qa_answer", "/translation_search", "/recommend"} <= set(endpoints)
    for name, ep in endpoints.items():
        assert re.fullmatch(r"/[a-z][a-z_]+", name), name
        for p in ep["parameters"]:
            assert len(p["parameter_name"]) >= 4, (name, p["parameter_name"])
        for r in ep["returns"]:
            assert not re.fullmatch(r"value_\d+", str(r["label"])), (name, r["label"])
    # internal steps (picker refresh, head switch, Enter twins) are not listed
    assert not any("lambda" in n or n.startswith("/_") for n in endpoints)


def test_no_public_event_outputs_a_control(demo: Any) -> None:
    ids = _by_elem_id(demo)
    controls = {ids[c]._id for c in CONTROLS}
    for fn in demo.fns.values():
        outs = {o._id for o in fn.outputs}
        if fn.api_visibility == "public":
            assert not outs & controls, fn.api_name
        elif outs & controls:  # a private step that changes a control runs only on success
            assert fn.trigger_only_on_success, fn.name


def test_errors_show_as_messages_not_badges_on_results(demo: Any) -> None:
    """Each public event shows its progress on its button (or nowhere): a failure is a
    message, and the outputs keep what they showed, with no "Error" badge over them."""
    for fn in demo.fns.values():
        if fn.api_visibility != "public" or not fn.outputs:
            continue
        assert fn.show_progress_on or fn.show_progress == "hidden", fn.api_name


def test_maps_are_drawn_in_the_browser_with_titles_on_hover(demo: Any) -> None:
    """The text and catalogue maps are scatter plots with the texts on hover (no
    overlapping server-drawn labels)."""
    import gradio as gr

    ids = _by_elem_id(demo)
    for elem, colour, hover in (("inside-map", "label", "text"),
                                ("recommend-map", "group", "title")):
        plot = ids[elem]
        assert isinstance(plot, gr.ScatterPlot) and plot.visible is False, elem
        assert plot.color == colour and hover in plot.tooltip, elem


def test_fresh_page_has_no_empty_result_boxes(demo: Any) -> None:
    ids = _by_elem_id(demo)
    for elem in RESULTS:
        assert ids[elem].visible is False, elem


def test_advanced_parts_are_folded(demo: Any) -> None:
    import gradio as gr

    folded = {b.label for b in demo.blocks.values()
              if isinstance(b, gr.Accordion) and not b.open}
    assert {"Train your own classifier", "Threshold", "Advanced",
            "Results of an evaluation run (embedsuite evaluate)"} <= folded


def test_qa_threshold_defaults_to_the_shipped_heads_own(tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The tab's no-answer slider starts at the shipped head's threshold where its config
    sets one, else at a value that says "no answer" to an unrelated question (never 0)."""
    import json

    import embedsuite.heads.qa as qa_heads
    from embedsuite.app.tabs.qa import DEFAULT_THRESHOLD, shipped_threshold

    assert 0.0 < shipped_threshold() < 1.0
    cfg = tmp_path / "config.json"
    monkeypatch.setattr(qa_heads, "DEFAULT_HEAD_DIR", tmp_path)
    for value, expected in ((0.35, 0.35), (0.0, DEFAULT_THRESHOLD), (1.5, DEFAULT_THRESHOLD)):
        cfg.write_text(json.dumps({"params": {"no_answer_threshold": value}}))
        assert shipped_threshold() == expected
    cfg.write_text("not json")
    assert shipped_threshold() == DEFAULT_THRESHOLD


def test_side_by_side_plots_share_one_colour_scale(tmp_cache: Any) -> None:
    from types import SimpleNamespace

    from embedsuite.app.tabs.compare import live_compare
    from embedsuite.testing import FakeEncoder

    encs = {"a": FakeEncoder(dim=16, name="a", cache=tmp_cache),
            "b": FakeEncoder(dim=64, name="b", cache=tmp_cache)}
    ctx = SimpleNamespace(encoder_for=encs.__getitem__)
    fig_a, fig_b = live_compare(ctx, "a", "b",  # type: ignore[arg-type]
                                "red apple\napple red\nblue sky\ngreen tea", "query")
    scale_a, scale_b = (f.axes[0].images[0].get_clim() for f in (fig_a, fig_b))
    assert scale_a == scale_b and scale_a[1] == 1.0


def test_similarity_plot_annotates_small_matrices_only(tmp_cache: Any) -> None:
    from embedsuite.app.tabs.encoder import MAX_ANNOTATED, similarity
    from embedsuite.testing import FakeEncoder

    enc = FakeEncoder(dim=16, cache=tmp_cache)
    small, _ = similarity(enc, "red apple\napple red\nblue sky", "query")
    assert len(small.axes[0].texts) == 9
    many = "\n".join(f"sentence number {i}" for i in range(MAX_ANNOTATED + 28))
    big, rows = similarity(enc, many, "query")
    assert len(rows) == MAX_ANNOTATED + 28 and not big.axes[0].texts


def test_encoder_info_shows_no_server_paths(tmp_cache: Any) -> None:
    from embedsuite.app.tabs.encoder import encoder_info
    from embedsuite.testing import FakeEncoder

    info = encoder_info(FakeEncoder(cache=tmp_cache))
    assert info["name"] == "fake" and {"entries", "mb"} <= set(info["cache"])

    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    assert not [s for s in strings(info) if s.startswith("/") or str(tmp_cache.path) in s]
