"""The "Recommend" tab: likes / dislikes or a free-text wish -> picks, with reasons and a map.

The project's own demo catalogue (``embedsuite.data.catalogue``, books,
films, courses, podcasts and games) is loaded by default; a CSV with the columns
``id,title,description`` (extra columns are kept as metadata) can be uploaded.
Handlers are module-level functions that take the head and return plain data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from embedsuite.app.services import demo_recommender
from embedsuite.app.ui import (
    MAX_TEXT_CHARS,
    MAX_UPLOAD_BYTES,
    AppContext,
    register_tab,
    reveal,
    ui_errors,
)
from embedsuite.data.catalogue import demo_catalogue
from embedsuite.data.catalogue import read_catalogue_csv as _read_catalogue
from embedsuite.encoders.base import Encoder
from embedsuite.explain import closest_words
from embedsuite.heads.recommend import ContentRecommender

#: Uploaded catalogues are embedded in the app; larger ones belong in the Python API / CLI.
MAX_CATALOGUE_ITEMS = 5_000
RESULT_HEADERS = ["rank", "id", "title", "kind", "score", "because", "words close to your taste"]
#: The tab's defaults (likes, dislikes, wish, item) and the top pick the demo catalogue
#: gives each (checked by the tests).
DEFAULT_LIKED = ["b001", "f008"]
DEFAULT_DISLIKED = ["f013"]
DEFAULT_WISH = "a funny space adventure for kids"
DEFAULT_ITEM = "f004"
EXPECTED_TOP = {"picks": "f002", "wish": "f004", "similar": "b006"}


def read_catalogue_csv(source: str | os.PathLike[str] | bytes) -> list[dict[str, Any]]:
    """An uploaded catalogue CSV within the app's limits (bytes, items, text per item).

    Raises:
        ValueError: What :func:`embedsuite.data.catalogue.read_catalogue_csv` refuses.
    """
    return _read_catalogue(source, max_bytes=MAX_UPLOAD_BYTES, max_items=MAX_CATALOGUE_ITEMS,
                           max_text_chars=MAX_TEXT_CHARS, taker="the app",
                           limit_hint=" Use the Python API (ContentRecommender) for larger "
                                      "catalogues.")


def fit_catalogue(encoder: Encoder, items: list[dict[str, Any]]) -> ContentRecommender:
    """A content recommender on ``items``."""
    return ContentRecommender(encoder, rating_center=None).fit(items)


def _title(head: ContentRecommender, iid: str) -> str:
    i = head.index_[iid]
    return str(head.metadata_[i].get("title") or head.texts_[i][:60])


def choices(head: ContentRecommender) -> list[tuple[str, str]]:
    """``(label, id)`` pairs for the item pickers."""
    out = []
    for iid, meta in zip(head.item_ids_, head.metadata_, strict=True):
        kind = meta.get("kind")
        label = _title(head, iid) + (f" ({kind})" if kind else "")
        out.append((label, iid))
    return out


def _ids(values: list[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [values] if values else []
    return [v for v in values if v]




def taste_words(head: ContentRecommender, item_ids: list[str], profile: np.ndarray | None,
                top: int = 4) -> list[str]:
    """For each item, the words of its text closest to ``profile`` (the user's taste).

    The profile lives in the encoder's passage space (a weighted sum of the liked
    items' vectors, or a wish's vector); token vectors of the item's text are compared
    with it (see :func:`embedsuite.explain.closest_words`). Encoders without token
    embeddings give empty strings.
    """
    if profile is None or not head.active_encoder.has_token_embeddings or not item_ids:
        return ["" for _ in item_ids]
    out = []
    for iid in item_ids:
        words = closest_words(head.active_encoder, head.texts_[head.index_[iid]], profile, top=top)
        out.append(", ".join(w["word"] for w in words))
    return out


def profile_vector(head: ContentRecommender, weights: dict[str, float]) -> np.ndarray | None:
    """Weighted sum of the items' passage embeddings (``None`` if it vanishes)."""
    v = sum(float(w) * head.embeddings_[head.index_[i]] for i, w in weights.items())
    if isinstance(v, (int, float)):
        return None
    n = float(np.linalg.norm(v))
    return None if n < 1e-9 else (v / n).astype(np.float32)


def _rows(head: ContentRecommender, results: list[dict[str, Any]],
          profile: np.ndarray | None = None) -> list[list[Any]]:
    ids = [r["item_id"] for r in results]
    words = taste_words(head, ids, profile)
    rows = []
    for rank, (r, wd) in enumerate(zip(results, words, strict=True), 1):
        meta = head.metadata_[head.index_[r["item_id"]]]
        because = "; ".join(_title(head, b) for b in r["because"])
        rows.append([rank, r["item_id"], _title(head, r["item_id"]), str(meta.get("kind", "")),
                     round(r["score"], 4), because, wd])
    return rows


def recommend_from_picks(head: ContentRecommender, liked: list[str] | None,
                         disliked: list[str] | None, k: int = 8, diversity: float = 0.0
                         ) -> tuple[list[list[Any]], list[str]]:
    """Recommend from liked (+1) and disliked (-1) items.

    Returns:
        Table rows (see :data:`RESULT_HEADERS`) and the picked ids.

    Raises:
        ValueError: Nothing picked, or an item both liked and disliked.
    """
    like, dislike = _ids(liked), _ids(disliked)
    if not like and not dislike:
        raise ValueError("Pick at least one liked item (or type a wish and use 'Recommend "
                         "from wish').")
    both = sorted(set(like) & set(dislike))
    if both:
        raise ValueError(f"{[_title(head, b) for b in both]} is both liked and disliked; "
                         f"pick it in only one list.")
    history = [(i, 1.0) for i in like] + [(i, -1.0) for i in dislike]
    res = head.recommend(history, k=int(k), mmr_lambda=1.0 - float(diversity),
                         rating_center=None)
    profile = profile_vector(head, {i: w for i, w in history})
    return _rows(head, res, profile), [r["item_id"] for r in res]


def recommend_from_text(head: ContentRecommender, wish: str, k: int = 8,
                        diversity: float = 0.0) -> tuple[list[list[Any]], list[str]]:
    """Recommend from a free-text wish (any language)."""
    wish = (wish or "").strip()
    if not wish:
        raise ValueError("Type a wish first, e.g. 'a funny space adventure for kids'.")
    if len(wish) > MAX_TEXT_CHARS:
        raise ValueError(f"The wish has {len(wish):,} characters; the app takes at most "
                         f"{MAX_TEXT_CHARS:,}.")
    res: list[dict[str, Any]] = head.recommend_for_text(  # type: ignore[assignment]
        wish, k=int(k), mmr_lambda=1.0 - float(diversity))
    wish_vec = head.active_encoder.encode(wish, role="query")
    return _rows(head, res, wish_vec), [r["item_id"] for r in res]


def similar_to(head: ContentRecommender, item_id: str | None, k: int = 8,
               diversity: float = 0.0) -> tuple[list[list[Any]], list[str]]:
    """Items like one item."""
    if not item_id:
        raise ValueError("Choose an item to find similar ones.")
    res = head.similar(item_id, k=int(k), mmr_lambda=1.0 - float(diversity))
    return _rows(head, res), [r["item_id"] for r in res]


#: The map's groups, drawn in this order (picks on top), and their colours.
MAP_GROUPS = {"other": "#c0c4cc", "disliked": "#d62728", "liked": "#2ca02c",
              "picked": "#1f3fbf"}


def catalogue_points(head: ContentRecommender, picks: list[str],
                     liked: list[str] | str | None = None,
                     disliked: list[str] | str | None = None) -> Any:
    """The catalogue's 2-D PCA map as a table for ``gr.ScatterPlot`` (drawn in the browser,
    titles on hover, so labels never overlap): columns ``x``, ``y``, ``title``, ``kind``
    and ``group`` (liked, disliked, picked or other), the "other" items first so the
    highlighted ones are drawn on top."""
    import pandas as pd

    xy = _map_coords(head)
    group = ["other"] * len(xy)
    for ids, name in ((_ids(disliked), "disliked"), (_ids(liked), "liked"),
                      (list(picks), "picked")):
        for iid in ids:
            if iid in head.index_:
                group[head.index_[iid]] = name
    rank = {g: i for i, g in enumerate(MAP_GROUPS)}
    order = sorted(range(len(xy)), key=lambda i: (rank[group[i]], i))
    return pd.DataFrame({
        "x": np.round(xy[order, 0], 4), "y": np.round(xy[order, 1], 4),
        "title": [_title(head, head.item_ids_[i]) for i in order],
        "kind": [str(head.metadata_[i].get("kind") or "item") for i in order],
        "group": [group[i] for i in order]})


def _map_coords(head: ContentRecommender) -> np.ndarray:
    cached = getattr(head, "_map_cache", None)
    if cached is None or len(cached) != head.n_items:
        cached = head.map_2d()
        head._map_cache = cached  # type: ignore[attr-defined]
    return cached


@register_tab("recommend", "Recommend", order=30)
def build(ctx: AppContext) -> None:
    """Catalogue picker, likes/dislikes or wish, diversity, results and a catalogue map."""

    def _head(key: str | None) -> ContentRecommender:
        if key and key in ctx.resources:
            return ctx.resources[key]
        return demo_recommender(ctx)

    gr.Markdown(
        "Recommend items from a catalogue by their text. Pick items you liked (and disliked), "
        "or type a wish in any language. Raise **diversity** to spread the picks out "
        "(maximal marginal relevance). The demo catalogue is the project's own 110 books, "
        "films, courses, podcasts and games; upload a CSV `id,title,description` to use yours."
    )
    demo_choices = [(f"{it['title']} ({it['kind']})" if it.get("kind") else it["title"], it["id"])
                    for it in demo_catalogue()]
    key = gr.State("")
    with gr.Row():
        liked = gr.Dropdown(demo_choices, value=DEFAULT_LIKED, multiselect=True,
                            allow_custom_value=True, label="Liked items", elem_id="rec-liked",
                            min_width=300)
        disliked = gr.Dropdown(demo_choices, value=DEFAULT_DISLIKED, multiselect=True,
                               allow_custom_value=True, label="Disliked items",
                               elem_id="rec-disliked", min_width=300)
    go = gr.Button("Recommend from likes / dislikes", variant="primary")
    with gr.Row():
        wish = gr.Textbox(label="…or a wish (any language; Enter recommends)", value=DEFAULT_WISH,
                          max_lines=1, scale=3)
        go_text = gr.Button("Recommend from wish", variant="primary", scale=1)
    with gr.Row():
        anchor = gr.Dropdown(demo_choices, value=DEFAULT_ITEM, allow_custom_value=True,
                             label="…or items like this one", elem_id="rec-item", scale=3)
        go_sim = gr.Button("Similar items", scale=1)
    with gr.Accordion("Options: diversity, how many, your own catalogue", open=False):
        with gr.Row():
            diversity = gr.Slider(0.0, 1.0, value=0.0, step=0.05,
                                  label="Diversity (0 = most relevant, 1 = most diverse)")
            k = gr.Slider(1, 20, value=8, step=1, label="How many")
        with gr.Row():
            upload = gr.File(label="Catalogue CSV (id,title,description)", file_types=[".csv"],
                             type="filepath", height=120, elem_id="rec-upload")
            with gr.Column():
                load_btn = gr.Button("Load uploaded catalogue")
                demo_btn = gr.Button("Use demo catalogue")
    status = gr.Markdown("Catalogue: demo (110 items).", elem_id="rec-status",
                         label="Catalogue")
    table = gr.Dataframe(headers=RESULT_HEADERS, label="Recommendations", interactive=False,
                         elem_id="recommend-results", visible=False, wrap=True)
    plot = gr.ScatterPlot(x="x", y="y", color="group", color_map=MAP_GROUPS,
                          tooltip=["title", "kind", "group"],
                          label="Catalogue map (first two principal components of the item "
                                "vectors; hover for the title)",
                          x_title="component 1", y_title="component 2", visible=False,
                          elem_id="recommend-map")

    def _pickers(catalogue: str) -> tuple[Any, Any, Any]:
        ch = choices(_head(catalogue))
        return (gr.Dropdown(choices=ch, value=[]), gr.Dropdown(choices=ch, value=[]),
                gr.Dropdown(choices=ch, value=None))

    @ui_errors(long=True)  # trains / embeds a whole upload
    def _load(catalogue_csv: str | None) -> tuple[Any, ...]:
        if not catalogue_csv:
            raise ValueError("Upload a CSV file first (columns id,title,description).")
        items = read_catalogue_csv(catalogue_csv)
        digest = hashlib.sha256(Path(catalogue_csv).read_bytes()).hexdigest()[:16]
        rkey = f"recommend:upload:{digest}"
        head = ctx.resource(rkey, lambda: fit_catalogue(ctx.encoder, items))
        return (rkey, f"Catalogue: **{Path(catalogue_csv).name}**, {head.n_items} items.",
                catalogue_points(head, []))

    @ui_errors
    def _demo() -> tuple[Any, ...]:
        head = _head("")
        return "", f"Catalogue: demo, {head.n_items} items.", catalogue_points(head, [])

    def _shown(rows: list[list[Any]], fig: Any) -> tuple[Any, Any]:
        return {"headers": RESULT_HEADERS, "data": rows}, fig

    @ui_errors
    def _rec(catalogue: str, liked: list[str], disliked: list[str], how_many: float,
             diversity: float) -> tuple[Any, Any]:
        head = _head(catalogue)
        rows, picks = recommend_from_picks(head, liked, disliked, int(how_many), diversity)
        return _shown(rows, catalogue_points(head, picks, liked, disliked))

    @ui_errors
    def _rec_text(catalogue: str, wish: str, how_many: float, diversity: float
                  ) -> tuple[Any, Any]:
        head = _head(catalogue)
        rows, picks = recommend_from_text(head, wish, int(how_many), diversity)
        return _shown(rows, catalogue_points(head, picks))

    @ui_errors
    def _similar(catalogue: str, item: str | None, how_many: float, diversity: float
                 ) -> tuple[Any, Any]:
        head = _head(catalogue)
        rows, picks = similar_to(head, item, int(how_many), diversity)
        return _shown(rows, catalogue_points(head, picks, [item] if item else []))

    # the pickers are never outputs of a step that can fail: they change only after a
    # catalogue loaded, so a bad upload leaves them (and the old results) as they were
    outs = [key, status, plot]
    pickers = [liked, disliked, anchor]
    for loaded in (
            load_btn.click(_load, inputs=upload, outputs=outs,
                           api_name="recommend_load_catalogue", show_progress_on=load_btn),
            demo_btn.click(_demo, outputs=outs, api_name="recommend_demo_catalogue",
                           show_progress_on=demo_btn)):
        loaded.success(_pickers, inputs=key, outputs=pickers, api_visibility="private")
        reveal(loaded, plot)
    for event in (
            go.click(_rec, inputs=[key, liked, disliked, k, diversity], outputs=[table, plot],
                     api_name="recommend", show_progress_on=go),
            go_text.click(_rec_text, inputs=[key, wish, k, diversity], outputs=[table, plot],
                          api_name="recommend_text", show_progress_on=go_text),
            wish.submit(_rec_text, inputs=[key, wish, k, diversity], outputs=[table, plot],
                        api_visibility="private", show_progress_on=go_text),
            go_sim.click(_similar, inputs=[key, anchor, k, diversity], outputs=[table, plot],
                         api_name="recommend_similar", show_progress_on=go_sim)):
        reveal(event, table, plot)
