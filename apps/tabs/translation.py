"""The "Translation retrieval" tab: find a sentence's translation, or mine pairs from two lists."""

from __future__ import annotations

import json
import logging
import math
import random
import warnings
from functools import lru_cache
from importlib import resources
from typing import Any

import gradio as gr
import numpy as np

from embedsuite.app.tabs.encoder import split_lines
from embedsuite.app.ui import AppContext, register_tab, reveal, ui_errors
from embedsuite.encoders.base import Encoder
from embedsuite.explain import plot_token_map, token_similarity
from embedsuite.heads.translation import (
    DEFAULT_MINE_THRESHOLD,
    DEFAULT_MINE_THRESHOLD_RAW,
    TranslationRetriever,
)

logger = logging.getLogger(__name__)

__all__ = ["demo_mining_inputs", "demo_search_inputs", "demo_sets", "language_choices",
           "mine_texts", "parse_threshold", "search_candidates", "search_table"]

ALL = "all languages"
SEARCH_HEADERS = ["query", "rank", "candidate", "score", "cosine", "margin", "line"]
MINE_HEADERS = ["source", "target", "score", "cosine", "source line", "target line"]
#: The tab's table: the query once per group of hits, cosine and margin (the score is one
#: of them, by the scoring chosen).
TABLE_HEADERS = ["query", "rank", "candidate", "cosine", "margin", "line"]


@lru_cache(maxsize=1)
def demo_sets() -> dict[str, Any]:
    """The project's own demo sentences (``core/assets/translation_demo.json``)."""
    text = resources.files("embedsuite").joinpath("assets/translation_demo.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)["sets"]
    return data


def _demo(name: str) -> dict[str, Any]:
    sets = demo_sets()
    if name not in sets:
        raise ValueError(f"unknown demo set {name!r}; choose one of {sorted(sets)}")
    return dict(sets[name])


def _lang(demo: dict[str, Any], lang: str, what: str) -> list[str]:
    sents: dict[str, list[str]] = demo["sentences"]
    if lang not in sents:
        raise ValueError(f"the demo set has no {what} language {lang!r}; it has {sorted(sents)}")
    return list(sents[lang])


def demo_search_inputs(name: str, query_lang: str, cand_lang: str, line: int = 0
                       ) -> tuple[str, str]:
    """A query (line ``line`` of ``query_lang``) and candidates (``cand_lang`` or all others)."""
    demo = _demo(name)
    queries = _lang(demo, query_lang, "query")
    query = queries[int(line) % len(queries)]
    if cand_lang == ALL:
        cands = [s for lang, sents in demo["sentences"].items() if lang != query_lang
                 for s in sents]
    else:
        cands = _lang(demo, cand_lang, "candidate")
    return query, "\n".join(cands)


def demo_mining_inputs(name: str, src_lang: str, tgt_lang: str, seed: int = 0
                       ) -> tuple[str, str]:
    """Two sides for mining: ``src_lang`` in order, ``tgt_lang`` shuffled minus two lines."""
    demo = _demo(name)
    src = _lang(demo, src_lang, "source")
    tgt = _lang(demo, tgt_lang, "target")
    rng = random.Random(seed)
    tgt = rng.sample(tgt, len(tgt))[: max(2, len(tgt) - 2)]  # some sources lack a translation
    return "\n".join(src), "\n".join(tgt)


def search_candidates(encoder: Encoder, query: str, candidates: str, top_k: int = 5,
                      scoring: str = "margin") -> list[list[Any]]:
    """Rank the candidate lines as translations of each query line; rows of :data:`SEARCH_HEADERS`.

    Several query lines are searched together, so that the margin can use them as
    the source-side neighbourhood; a single query ranks as under cosine.
    """
    queries = [ln.strip() for ln in (query or "").splitlines() if ln.strip()]
    if not queries:
        raise ValueError("No sentence given: type the sentence whose translation you look for.")
    queries = split_lines("\n".join(queries), "query sentences")  # limits
    cands = split_lines(candidates, "candidates")
    if len(cands) < 2:
        raise ValueError("Give at least 2 candidate sentences (one per line).")
    tr = TranslationRetriever(encoder, scoring=scoring)  # type: ignore[arg-type]
    tr.index(cands)
    results = tr.search(queries, top_k=int(top_k))
    return [[q, rank, h["text"], h["score"], h["cosine"], h["margin"], h["index"] + 1]
            for q, hits in zip(queries, results, strict=True)
            for rank, h in enumerate(hits, 1)]


def search_table(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows of :data:`SEARCH_HEADERS` as the tab shows them (:data:`TABLE_HEADERS`): the
    query only on its first hit, no ``score`` column (it repeats cosine or margin)."""
    out = []
    for i, (q, rank, cand, _score, cos, margin, line) in enumerate(rows):
        first = i == 0 or rows[i - 1][0] != q or rank == 1
        out.append([q if first else "", rank, cand, round(cos, 3), round(margin, 3), line])
    return out


def parse_threshold(value: str | float | None) -> float | None:
    """The mining threshold box: empty (or ``None``) means automatic, else a number.

    Raises:
        ValueError: Not a number.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise ValueError(f"The threshold {value!r} is not a number; type e.g. 1.05 for "
                         f"margin or 0.85 for cosine, or leave the box empty (automatic)."
                         ) from None
    if math.isnan(number):
        return None
    return number


def language_choices(name: str, with_all: bool = False) -> list[tuple[str, str]]:
    """``(language name, code)`` pairs of a demo set, for a dropdown that shows names."""
    demo = _demo(name)
    names: dict[str, str] = demo.get("language_names", {})
    out = [(names.get(code, code), code) for code in demo["sentences"]]
    return [*out, (ALL, ALL)] if with_all else out


def explain_best_match(encoder: Encoder, query: str, candidates: str,
                       scoring: str = "margin") -> Any:
    """Token-to-token cosine map of the first query line and its best-ranked candidate."""
    rows = search_candidates(encoder, query, candidates, 1, scoring)
    first, best = rows[0][0], rows[0][2]
    ta, tb, sim = token_similarity(encoder, first, best)
    return plot_token_map(ta, tb, sim, title=f"{encoder.name}: query tokens (rows) vs best "
                                             f"match tokens (columns)")


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _heatmap(mat: np.ndarray, pairs: list[dict[str, Any]], title: str) -> Any:
    from embedsuite.plotting import new_figure

    n, m = mat.shape
    fig = new_figure(figsize=(min(2.0 + 0.45 * m, 14), min(1.6 + 0.4 * n, 12)))
    from matplotlib.patches import Rectangle  # installed: new_figure raised otherwise

    ax = fig.subplots()
    lo, hi = np.percentile(mat, [2, 100]) if mat.size else (0.0, 1.0)
    im = ax.imshow(mat, cmap="viridis", aspect="auto", vmin=float(lo), vmax=float(hi))
    # axis labels are line numbers: the sentences (any script, emoji) are in the table,
    # so missing font glyphs never matter
    ax.set_xticks(range(m), [str(j + 1) for j in range(m)], fontsize=7)
    ax.set_yticks(range(n), [str(i + 1) for i in range(n)], fontsize=7)
    ax.set_xlabel("target line")
    ax.set_ylabel("source line")
    for p in pairs:
        ax.add_patch(Rectangle((p["target_index"] - 0.5, p["source_index"] - 0.5), 1, 1,
                               fill=False, edgecolor="red", linewidth=1.5))
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def mine_texts(encoder: Encoder, source: str, target: str,
               threshold: float | None = None, scoring: str = "margin"
               ) -> tuple[Any, list[list[Any]]]:
    """Mine pairs between two boxes of lines: a heat map and rows of :data:`MINE_HEADERS`.

    ``threshold`` ``None`` (an empty box) means the head's automatic threshold.
    """
    src = split_lines(source, "source sentences")
    tgt = split_lines(target, "target sentences")
    tr = TranslationRetriever(encoder, scoring=scoring)  # type: ignore[arg-type]
    auto = threshold is None or (isinstance(threshold, float) and np.isnan(threshold))
    th = tr.auto_threshold(len(src), len(tgt)) if auto else float(threshold)  # type: ignore[arg-type]
    if th is not None and not math.isfinite(th):
        th = None  # keep all pairs
    pairs = tr.mine(src, tgt, threshold=th)
    mats = tr.similarity(src, tgt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = _heatmap(mats[scoring], pairs,
                       f"{scoring} ({encoder.name}); red boxes: mined pairs"
                       + ("" if th is None else f" with score >= {th:g}"))
    rows = [[p["source"], p["target"], p["score"], p["cosine"], p["source_index"] + 1,
             p["target_index"] + 1] for p in pairs]
    return fig, rows


@register_tab("translation", "Translation retrieval", order=20)
def build(ctx: AppContext) -> None:
    """Search mode (a sentence among candidates) and mining mode (two unaligned lists)."""
    sets = demo_sets()
    set_names = sorted(sets)
    langs = language_choices(set_names[0])
    q0, c0 = demo_search_inputs(set_names[0], "deu", "eng", 0)
    s0, t0 = demo_mining_inputs(set_names[0], "fra", "jpn", 0)
    gr.Markdown(
        "Find the translation of a sentence among candidates in any language, or align two "
        "unaligned lists (bitext mining). **margin** (Artetxe & Schwenk 2019) divides the "
        "cosine by the mean cosine of both sentences' 4 nearest neighbours; it is usually "
        "more accurate than plain cosine. Sides of 16 or more lines are first centred (their "
        "mean vector removed). The demo sentences were written for this project.")
    with gr.Row():
        demo_set = gr.Dropdown(set_names, value=set_names[0], label="Demo set")
        scoring = gr.Radio(["margin", "cosine"], value="margin", label="Scoring")
    with gr.Tab("Search"):
        with gr.Row():
            q_lang = gr.Dropdown(langs, value="deu", label="Query language (demo)")
            c_lang = gr.Dropdown(language_choices(set_names[0], with_all=True), value="eng",
                                 label="Candidate language (demo)")
            line = gr.Number(value=1, precision=0, minimum=1, label="Demo line")
            load = gr.Button("Load demo")
        query = gr.Textbox(label="Sentence(s) whose translation you look for (one per line; "
                           "several lines let the margin use them as neighbourhood)",
                           value=q0, lines=2)
        cands = gr.Textbox(label="Candidates (one per line, any language)", value=c0, lines=8)
        top_k = gr.Slider(1, 20, value=5, step=1, label="Top k")
        go = gr.Button("Find translation", variant="primary")
        hits = gr.Dataframe(headers=TABLE_HEADERS, label="Ranked candidates", interactive=False,
                            elem_id="translation-results", visible=False, wrap=True)
        explain_btn = gr.Button("Explain the best match (token-to-token similarity)")
        token_map = gr.Plot(label="Token similarity: first query line vs its best match",
                            visible=False)
    with gr.Tab("Mining"):
        with gr.Row():
            s_lang = gr.Dropdown(langs, value="fra", label="Source language (demo)")
            t_lang = gr.Dropdown(langs, value="jpn", label="Target language (demo)")
            load_m = gr.Button("Load demo (target shuffled, 2 lines removed)")
        with gr.Row():
            src = gr.Textbox(label="Source sentences (one per line)", value=s0, lines=10)
            tgt = gr.Textbox(label="Target sentences (one per line)", value=t0, lines=10)
        with gr.Accordion("Threshold", open=False):
            # a text box, not gr.Number: a Number shows an empty value as 0, which looks
            # like (and was sent as) a threshold of 0
            threshold = gr.Textbox(value="", placeholder="automatic", label="Threshold",
                                   max_lines=1,
                                   info=(f"empty: automatic (margin {DEFAULT_MINE_THRESHOLD} for "
                                         f"centred sides of 16+ lines, else "
                                         f"{DEFAULT_MINE_THRESHOLD_RAW})"),
                                   elem_id="translation-threshold")
            keep_all = gr.Checkbox(value=False, label="Keep all pairs (no threshold)")
        mine_btn = gr.Button("Mine pairs", variant="primary")
        pairs = gr.Dataframe(headers=MINE_HEADERS, label="Aligned pairs", interactive=False,
                             visible=False, wrap=True)
        plot = gr.Plot(label="Similarity heat map", visible=False)

    @ui_errors
    def _load(demo_set: str, query_language: str, candidate_language: str,
              demo_line: float | None) -> tuple[str, str]:
        return demo_search_inputs(demo_set, query_language, candidate_language,
                                  max(int(demo_line or 1), 1) - 1)

    @ui_errors
    def _load_m(demo_set: str, source_language: str, target_language: str
                ) -> tuple[str, str]:
        return demo_mining_inputs(demo_set, source_language, target_language)

    @ui_errors
    def _search(query: str, candidates: str, top_k: float, scoring: str) -> dict[str, Any]:
        rows = search_candidates(ctx.encoder, query, candidates, int(top_k), scoring)
        return {"headers": TABLE_HEADERS, "data": search_table(rows)}

    @ui_errors
    def _explain(query: str, candidates: str, scoring: str) -> Any:
        return explain_best_match(ctx.encoder, query, candidates, scoring)

    @ui_errors
    def _mine(source: str, target: str, threshold: str | float | None, keep_all: bool,
              scoring: str) -> tuple[Any, Any]:
        limit = parse_threshold(threshold)
        if keep_all:
            limit = -math.inf
        elif scoring == "cosine" and limit is not None and limit > 1.0:
            raise ValueError(f"a cosine never exceeds 1, so threshold {limit:g} rejects "
                             f"every pair; use e.g. 0.85 with cosine scoring or clear the box")
        fig, rows = mine_texts(ctx.encoder, source, target, limit, scoring)
        return fig, {"headers": MINE_HEADERS, "data": rows}

    load.click(_load, inputs=[demo_set, q_lang, c_lang, line], outputs=[query, cands],
               api_name="translation_demo", show_progress="hidden")
    load_m.click(_load_m, inputs=[demo_set, s_lang, t_lang], outputs=[src, tgt],
                 api_name="translation_demo_mining", show_progress="hidden")
    reveal(go.click(_search, inputs=[query, cands, top_k, scoring], outputs=hits,
                    api_name="translation_search", show_progress_on=go), hits)
    reveal(explain_btn.click(_explain, inputs=[query, cands, scoring], outputs=token_map,
                             api_name="translation_explain", show_progress_on=explain_btn),
           token_map)
    reveal(mine_btn.click(_mine, inputs=[src, tgt, threshold, keep_all, scoring],
                          outputs=[plot, pairs], api_name="translation_mine",
                          show_progress_on=mine_btn), plot, pairs)
