"""The "Inside the encoder" tab: neighbours, a 2-D map of texts, one word in context,
what single dimensions mean, and the bias probes."""

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


#: Contextual-embedding examples: (word, sentences, the sense of each sentence). The first
#: is the default; tests check that each sense's occurrences are closer to each other than
#: to the other sense's.
CONTEXT_EXAMPLES: list[tuple[str, list[str], list[str]]] = [
    ("bank", ["After the flood, the river bank was covered in mud.",
              "Ducks swam near the muddy bank of the stream.",
              "The canoe drifted towards the far bank of the river.",
              "The bank charged me a fee for the transfer.",
              "The bank approved my loan.",
              "The cashier at the bank counted the notes twice."],
     ["river", "river", "river", "money", "money", "money"]),
    ("bat", ["A bat flew out of the cave at dusk.",
             "The bat hung upside down from the branch, asleep.",
             "He hit the ball hard with his cricket bat.",
             "She bought a new baseball bat for the season."],
     ["animal", "animal", "sport", "sport"]),
]
#: Most sentences the word-in-context view compares (its heat map stays readable).
MAX_CONTEXT_SENTENCES = 40
#: How many dimensions the bar chart shows by default.
TOP_DIMENSIONS = 12


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


def contextual(encoder: BaseEncoder, word: str, sentences: str, centre: bool = True,
               top: int = 5) -> tuple[Any, list[list[Any]]]:
    """The heat map of ``word``'s contextual vectors across ``sentences`` (one per line),
    and a row per occurrence: its sentence and its nearest words (``word (S2) 0.81``).
    ``centre``: take the direction all the tokens share off first (see
    :func:`embedsuite.explain.contextual_word`)."""
    from embedsuite.explain import contextual_word, occurrence_labels, plot_contextual

    if not (word or "").strip():
        raise ValueError("No word given: type the word to follow, e.g. 'bank'.")
    if len(word.split()) > 1:
        raise ValueError(f"{word.strip()!r} is several words; type one word (e.g. 'bank').")
    lines = split_lines(sentences, "sentences")
    if len(lines) > MAX_CONTEXT_SENTENCES:
        raise ValueError(f"{len(lines)} sentences given; this view compares at most "
                         f"{MAX_CONTEXT_SENTENCES} (one heat-map row each). Keep the ones "
                         f"that show the senses you want to compare.")
    result = contextual_word(encoder, word, lines, role="query", top=top,
                             centre=bool(centre))
    rows = [[label, ", ".join(f"{w} (S{i + 1}) {sc:.2f}" for w, i, sc in near)]
            for label, near in zip(occurrence_labels(result, 60), result.nearest, strict=True)]
    return plot_contextual(result), rows


def _labelled_input(text: str | None) -> tuple[list[str], list[str]]:
    from embedsuite.dimensions import labelled_set, parse_labelled_lines

    if not (text or "").strip():
        return labelled_set()
    split_lines(text, "labelled texts")  # the app's limits on lines and their length
    return parse_labelled_lines(text or "")


def dimension_report(encoder: BaseEncoder, labelled: str | None, top: int = TOP_DIMENSIONS
                     ) -> tuple[str, Any, list[list[Any]]]:
    """Effect size per dimension of ``label | text`` lines (empty: the shipped set):
    a headline, the bar chart of the ``top`` dimensions, and the probe's accuracy on the
    top-k dimensions (rows ``k``, accuracy, share of the all-dimension probe)."""
    from embedsuite.dimensions import dimension_effects, plot_dimensions, probe_curve

    labels, texts = _labelled_input(labelled)
    x = encoder.encode(texts, role="query")
    effects = dimension_effects(x, labels)
    curve = probe_curve(x, labels)
    full = curve[-1]
    best = int(effects.order[0])
    measure = "Cohen's d" if effects.kind == "cohen_d" else "F ratio"
    enough = next((p.k for p in curve if p.share >= 0.95), full.k)
    keeps = ("the single best dimension alone keeps" if enough == 1
             else f"the top {enough} dimensions alone keep")
    headline = (f"**{len(texts)} texts, labels {', '.join(effects.classes)}, "
                f"{x.shape[1]} dimensions.** Dimension {best} separates them best "
                f"({measure} {effects.scores[best]:+.2f}). A probe on all dimensions: "
                f"{full.accuracy:.0%} accuracy (cross-validated); "
                f"{keeps} at least 95% of that.")
    rows = [[f"all ({p.k})" if p.k == full.k else str(p.k), p.accuracy, p.share]
            for p in curve]
    return headline, plot_dimensions(effects, top), rows


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

    gr.Markdown("### One word in context\nThe same word gets a different vector in each "
                "sentence. Type a word and sentences that use it (one per line): the heat map "
                "shows how alike its vectors are, the table what each is closest to.")
    word0, sents0, _ = CONTEXT_EXAMPLES[0]
    with gr.Row():
        ctx_word = gr.Textbox(label="Word (Enter compares)", value=word0, max_lines=1, scale=1,
                              min_width=160, elem_id="inside-context-word")
        ctx_sents = gr.Textbox(label="Sentences that use it (one per line)",
                               value="\n".join(sents0), lines=6, scale=3,
                               min_width=320, elem_id="inside-context-sentences")
    gr.Examples([[w, "\n".join(ss)] for w, ss, _ in CONTEXT_EXAMPLES],
                inputs=[ctx_word, ctx_sents],
                example_labels=[f"{w}: {' vs '.join(dict.fromkeys(senses))}"
                                for w, _, senses in CONTEXT_EXAMPLES],
                label="Examples (click one, then Compare)")
    ctx_centre = gr.Checkbox(value=True, label="Remove the direction all token vectors share "
                                               "(centred cosine; raw cosines of any two words "
                                               "are 0.8-0.95)")
    ctx_btn = gr.Button("Compare the word in context")
    ctx_plot = gr.Plot(label="Cosine of the word's vectors, sentence by sentence",
                       visible=False, elem_id="inside-context-plot")
    ctx_table = gr.Dataframe(headers=["occurrence", "nearest words (sentence) cosine"],
                             label="Nearest words of each occurrence (the word itself, stop "
                                   "words and punctuation skipped)",
                             interactive=False, wrap=True, visible=False,
                             column_widths=["38%", "62%"],
                             elem_id="inside-context-neighbours")

    gr.Markdown("### What dimensions mean\nWhich single dimensions of the embedding "
                "separate labelled texts best (effect size per dimension), and how much of "
                "a linear probe's accuracy the top dimensions alone keep (5-fold "
                "cross-validation; dimensions ranked on the training folds only).")
    with gr.Row():
        dims_top = gr.Slider(2, 40, value=TOP_DIMENSIONS, step=1,
                             label="Dimensions in the chart", scale=3)
        dims_btn = gr.Button("Find the dimensions", scale=1)
    with gr.Accordion("Labelled texts (default: 40 short reviews, positive / negative)",
                      open=False):
        dims_in = gr.Textbox(label="Your own texts as 'label | text' lines (empty = the "
                                   "built-in set)", lines=6)
    dims_head = gr.Markdown(visible=False, elem_id="inside-dims-headline", label="Summary")
    dims_plot = gr.Plot(label="Most separating dimensions", visible=False,
                        elem_id="inside-dims-plot")
    dims_table = gr.Dataframe(headers=["top k dimensions", "probe accuracy",
                                       "share of all-dimension accuracy"],
                              label="Probe on the top-k dimensions only", interactive=False,
                              visible=False, elem_id="inside-dims-probe")

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
    def _context(word: str, sentences: str, centred: bool) -> tuple[Any, list[list[Any]]]:
        return contextual(ctx.encoder, word, sentences, centred)

    @ui_errors
    def _dims(labelled_texts: str, top_dimensions: float) -> tuple[str, Any, list[list[Any]]]:
        return dimension_report(ctx.encoder, labelled_texts, int(top_dimensions))

    @ui_errors
    def _bias(encoders: list[str], languages: list[str]) -> tuple[Any, list[Any]]:
        return bias_report(ctx, encoders, languages)

    reveal(nn_btn.click(_nn, inputs=[q, ref, k], outputs=nn_out, api_name="inside_neighbours",
                        show_progress_on=nn_btn), nn_out)
    reveal(q.submit(_nn, inputs=[q, ref, k], outputs=nn_out, api_visibility="private",
                    show_progress_on=nn_btn), nn_out)
    reveal(map_btn.click(_map, inputs=map_in, outputs=map_out, api_name="inside_map",
                         show_progress_on=map_btn), map_out)
    reveal(ctx_btn.click(_context, inputs=[ctx_word, ctx_sents, ctx_centre],
                         outputs=[ctx_plot, ctx_table],
                         api_name="inside_contextual", show_progress_on=ctx_btn),
           ctx_plot, ctx_table)
    reveal(ctx_word.submit(_context, inputs=[ctx_word, ctx_sents, ctx_centre],
                         outputs=[ctx_plot, ctx_table],
                           api_visibility="private", show_progress_on=ctx_btn),
           ctx_plot, ctx_table)
    reveal(dims_btn.click(_dims, inputs=[dims_in, dims_top],
                          outputs=[dims_head, dims_plot, dims_table],
                          api_name="inside_dimensions", show_progress_on=dims_btn),
           dims_head, dims_plot, dims_table)
    reveal(bias_btn.click(_bias, inputs=[encs, langs], outputs=[bias_plot, bias_table],
                          api_name="inside_bias", show_progress_on=bias_btn),
           bias_plot, bias_table)
