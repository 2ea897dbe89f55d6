"""The "Inside the encoder" tab: neighbours, a 2-D map of texts, and the bias probes."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import gradio as gr
import numpy as np

from embedsuite.app.tabs.encoder import split_lines
from embedsuite.app.ui import AppContext, register_tab, reveal, ui_errors
from embedsuite.encoders.base import BaseEncoder

MAP_EXAMPLE = """travel | The train to Berlin leaves at nine.
travel | Le train pour Berlin part à neuf heures.
travel | We are flying to Tokyo next week.
food | The soup needs more salt.
food | La soupe a besoin de sel.
food | 这道汤需要多放点盐。
sport | Our team won the football match.
sport | Unser Team hat das Spiel gewonnen.
finance | The central bank raised interest rates.
finance | Die Börse ist heute stark gefallen."""
#: The default neighbour query and the reference sentence it finds first (checked by tests).
NEIGHBOUR_EXAMPLE = "A cheap train ticket to Berlin"
NEIGHBOUR_EXPECTED = "The train to Berlin leaves at nine in the morning."


def reference_sentences() -> list[str]:
    """The project's built-in reference set (``core/assets/inside_reference.txt``)."""
    text = (resources.files("embedsuite") / "assets" / "inside_reference.txt").read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def neighbours(encoder: BaseEncoder, text: str, reference: str | None, k: int = 5
               ) -> list[list[Any]]:
    """The ``k`` reference sentences closest to ``text`` (rank, sentence, cosine)."""
    query = split_lines(text, "query text")[0]
    refs = split_lines(reference, "reference sentences") if reference and reference.strip() \
        else reference_sentences()
    q = encoder.encode(query, role="query")
    m = encoder.encode(refs, role="query")
    sims = m @ q
    order = np.argsort(-sims)[: max(1, int(k))]
    return [[i + 1, refs[j], round(float(sims[j]), 4)] for i, j in enumerate(order)]


def parse_labelled(text: str) -> tuple[list[str], list[str]]:
    """Lines ``label | text`` (or ``label<TAB>text``; unlabelled lines get ``-``)."""
    labels, texts = [], []
    for line in split_lines(text):
        sep = "\t" if "\t" in line else "|"
        if sep in line:
            lab, _, body = line.partition(sep)
            lab, body = lab.strip(), body.strip()
        else:
            lab, body = "-", line
        if not body:
            raise ValueError(f"line {line!r} has a label but no text; write 'label | text'")
        labels.append(lab or "-")
        texts.append(body)
    return labels, texts


def _map_xy(encoder: BaseEncoder, text: str) -> tuple[list[str], list[str], np.ndarray]:
    """Labels, texts and their 2-D PCA coordinates."""
    labels, texts = parse_labelled(text)
    if len(texts) < 3:
        raise ValueError(f"{len(texts)} texts given; a map needs at least 3")
    x = encoder.encode(texts, role="query")
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return labels, texts, xc @ vt[:2].T


def map_points(encoder: BaseEncoder, text: str) -> Any:
    """The PCA map as a table for ``gr.ScatterPlot`` (drawn in the browser: the texts show
    on hover, so labels never overlap). Columns ``x``, ``y``, ``label``, ``text``."""
    import pandas as pd

    labels, texts, xy = _map_xy(encoder, text)
    return pd.DataFrame({"x": np.round(xy[:, 0], 4), "y": np.round(xy[:, 1], 4),
                         "label": labels, "text": texts})


def text_map(encoder: BaseEncoder, text: str) -> Any:
    """A PCA map (2-D) of labelled texts, coloured by label (a matplotlib figure)."""
    from embedsuite.plotting import new_figure

    labels, texts, xy = _map_xy(encoder, text)
    fig = new_figure(figsize=(8, 6))
    ax = fig.subplots()
    for lab in dict.fromkeys(labels):
        idx = [i for i, lb in enumerate(labels) if lb == lab]
        ax.scatter(xy[idx, 0], xy[idx, 1], label=lab, s=40)
    for (px, py), t in zip(xy, texts, strict=True):
        ax.annotate(t if len(t) <= 30 else t[:29] + "…", (px, py), fontsize=7, alpha=0.8,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_title(f"{encoder.name}: texts projected on their first two principal components",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bias_for(ctx: AppContext, name: str, tests: list[Any]) -> list[Any]:
    from embedsuite.bias import run_bias_tests

    return run_bias_tests(ctx.encoder_for(name), tests)


def bias_report(ctx: AppContext, encoders: list[str], langs: list[str]) -> tuple[Any, list[Any]]:
    """Run (or reuse) the association tests for the chosen encoders; plot + table rows."""
    from embedsuite.bias import load_tests, plot_effect_sizes

    if not encoders:
        raise ValueError("Pick at least one encoder.")
    if not langs:
        raise ValueError("Pick at least one language.")
    tests = load_tests(langs)
    results = {}
    for name in encoders:
        key = f"bias:{name}:{','.join(sorted(langs))}"
        results[name] = ctx.resource(key, functools.partial(_bias_for, ctx, name, tests))
    rows = [[n, r.test, r.language, round(r.effect_size, 3), round(r.p_value, 4), r.n_targets]
            for n, rs in results.items() for r in rs]
    return plot_effect_sizes(results), rows


@register_tab("inside", "Inside the encoder", order=85)
def build(ctx: AppContext) -> None:
    """Neighbours in a reference set, a 2-D map of texts, bias probes per encoder."""
    gr.Markdown("### Nearest neighbours\nThe reference sentences closest to a text "
                "(default: a small multilingual set written for this project).")
    with gr.Row():
        q = gr.Textbox(label="Text (Enter searches)", value=NEIGHBOUR_EXAMPLE, scale=3,
                       max_lines=1)
        k = gr.Slider(1, 20, value=5, step=1, label="How many")
    with gr.Accordion("Your own reference sentences", open=False):
        ref = gr.Textbox(label="Reference sentences (one per line; empty = built-in set)",
                         lines=3)
    nn_btn = gr.Button("Find neighbours", variant="primary")
    nn_out = gr.Dataframe(headers=["rank", "sentence", "cosine"], label="Neighbours",
                          interactive=False, visible=False, wrap=True,
                          elem_id="inside-neighbours")

    gr.Markdown("### Map of texts\nOne text per line as `label | text`; the label colours "
                "the point (use a language or a topic).")
    map_in = gr.Textbox(label="Labelled texts", value=MAP_EXAMPLE, lines=8)
    map_btn = gr.Button("Draw map")
    map_out = gr.ScatterPlot(x="x", y="y", color="label", tooltip=["text", "label"],
                             label="Map (first two principal components; hover for the text)",
                             x_title="component 1", y_title="component 2",
                             visible=False, elem_id="inside-map")

    gr.Markdown("### Bias probes\nWEAT/SEAT association tests (effect size d, permutation "
                "p-value) on word and sentence lists written for this project. The first run "
                "per encoder embeds about 1,000 short texts.")
    with gr.Row():
        encs = gr.CheckboxGroup([n for n in ctx.allowed() if n != "tfidf"],
                                value=[ctx.encoder_name],
                                label="Encoders")
        langs = gr.CheckboxGroup([("English", "en"), ("German", "de"), ("French", "fr"),
                                  ("Spanish", "es")], value=["en"], label="Languages")
    bias_btn = gr.Button("Run bias tests")
    bias_plot = gr.Plot(label="Effect sizes", visible=False)
    bias_table = gr.Dataframe(headers=["encoder", "test", "language", "effect size", "p-value",
                                       "n targets"], interactive=False, label="Bias tests",
                              visible=False)

    @ui_errors
    def _nn(text: str, reference_sentences: str, how_many: float) -> list[list[Any]]:
        return neighbours(ctx.encoder, text, reference_sentences, int(how_many))

    @ui_errors
    def _map(labelled_texts: str) -> Any:
        return map_points(ctx.encoder, labelled_texts)

    @ui_errors
    def _bias(encoders: list[str], languages: list[str]) -> tuple[Any, list[Any]]:
        return bias_report(ctx, encoders, languages)

    reveal(nn_btn.click(_nn, inputs=[q, ref, k], outputs=nn_out, api_name="inside_neighbours",
                        show_progress_on=nn_btn), nn_out)
    reveal(q.submit(_nn, inputs=[q, ref, k], outputs=nn_out, api_visibility="private",
                    show_progress_on=nn_btn), nn_out)
    reveal(map_btn.click(_map, inputs=map_in, outputs=map_out, api_name="inside_map",
                         show_progress_on=map_btn), map_out)
    reveal(bias_btn.click(_bias, inputs=[encs, langs], outputs=[bias_plot, bias_table],
                          api_name="inside_bias", show_progress_on=bias_btn),
           bias_plot, bias_table)
