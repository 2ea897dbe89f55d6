"""The "Shared encoder" tab: what the encoder is, and how it sees a few sentences."""

from __future__ import annotations

import os
from typing import Any

import gradio as gr

from embedsuite.app.ui import (
    MAX_BATCH,
    MAX_TEXT_CHARS,
    AppContext,
    register_tab,
    reveal,
    ui_errors,
)
from embedsuite.encoders.base import BaseEncoder, check_role

EXAMPLE = """The weather is lovely today.
Das Wetter ist heute herrlich.
今日はいい天気ですね。
The stock market fell sharply.
La bourse a fortement baissé."""


def split_lines(text: str | None, what: str = "texts") -> list[str]:
    """Non-empty lines of ``text``, within the app's limits.

    Raises:
        ValueError: No line, too many lines, or a line over the length limit.
    """
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"No {what} given: type at least one line of text.")
    if len(lines) > MAX_BATCH:
        raise ValueError(f"{len(lines)} lines given; the app takes at most {MAX_BATCH} at once. "
                         f"Use the command line or the Python API for larger batches.")
    for i, ln in enumerate(lines, 1):
        if len(ln) > MAX_TEXT_CHARS:
            raise ValueError(f"Line {i} has {len(ln):,} characters; the app takes at most "
                             f"{MAX_TEXT_CHARS:,} per text.")
    return lines


#: Largest matrix whose cells carry their value as text (beyond it the colours speak).
MAX_ANNOTATED = 12


def _no_paths(value: Any) -> Any:
    """``value`` with every absolute file path replaced by its last part (users of a web
    page need not learn the server's folders)."""
    if isinstance(value, dict):
        return {k: _no_paths(v) for k, v in value.items() if k != "path"}
    if isinstance(value, list):
        return [_no_paths(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.basename(value.rstrip(os.sep)) or value
    return value


def encoder_info(encoder: BaseEncoder) -> dict[str, Any]:
    """The encoder's description plus the cache's size, without server paths."""
    info = encoder.describe()
    cache = encoder.cache.info()
    info["cache"] = {"entries": cache["entries"],
                     "mb": round(int(cache["file_bytes"]) / 1e6, 1)}  # type: ignore[call-overload]
    return dict(_no_paths(info))


def nearest_summary(lines: list[str], rows: list[list[Any]]) -> str:
    """Markdown: for each line, the most similar other line."""
    if len(lines) < 2:
        return "Give at least two lines to compare."
    out = ["| sentence | most similar | cosine |", "|---|---|---|"]
    for i, row in enumerate(rows):
        sims = [(row[j + 1], j) for j in range(len(lines)) if j != i]
        best, j = max(sims)
        out.append(f"| {lines[i]} | {lines[j]} | {best:.3f} |")
    return "\n".join(out)


def similarity_matrix(encoder: BaseEncoder, text: str, role: str
                      ) -> tuple[list[str], Any]:
    """The lines of ``text`` and their cosine similarity matrix."""
    lines = split_lines(text)
    vecs = encoder.encode(lines, role=check_role(role))
    return lines, vecs @ vecs.T


def plot_similarity(lines: list[str], sim: Any, title: str, vmin: float | None = None) -> Any:
    """A similarity matrix as a heat map; ``vmin`` shared by side-by-side plots."""
    from embedsuite.plotting import new_figure

    n = len(lines)
    labels = [ln if len(ln) <= 28 else ln[:27] + "…" for ln in lines]
    size = min(max(4.0, 1.5 + 0.7 * n), 12.0)
    fig = new_figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    lo = float(sim.min()) if vmin is None else vmin
    im = ax.imshow(sim, cmap="viridis", vmin=lo, vmax=1.0)
    step = max(1, n // 30)  # at most ~30 labels per axis
    fs = 8 if n <= MAX_ANNOTATED else 6
    ax.set_xticks(range(0, n, step), labels[::step], rotation=45, ha="right", fontsize=fs)
    ax.set_yticks(range(0, n, step), labels[::step], fontsize=fs)
    if n <= MAX_ANNOTATED:
        mid = (lo + 1.0) / 2
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if sim[i, j] < mid else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def similarity(encoder: BaseEncoder, text: str, role: str, vmin: float | None = None
               ) -> tuple[Any, list[list[Any]]]:
    """Cosine similarity matrix of the lines of ``text`` as a heat map and a table."""
    lines, sim = similarity_matrix(encoder, text, role)
    fig = plot_similarity(lines, sim, f"cosine similarity ({encoder.name}, role={role})", vmin)
    rows = [[lines[i], *[round(float(x), 3) for x in sim[i]]] for i in range(len(lines))]
    return fig, rows


@register_tab("encoder", "Shared encoder", order=90)
def build(ctx: AppContext) -> None:
    """Encoder facts, cache size, and a similarity matrix of user sentences."""
    gr.Markdown("Every tab uses this one encoder; its vectors are cached on disk and reused.")
    texts = gr.Textbox(label="Sentences (one per line, any language)", value=EXAMPLE, lines=6)
    role = gr.Radio(["query", "passage"], value="query", label="Role (prompt)")
    go = gr.Button("Compare", variant="primary")
    summary = gr.Markdown(elem_id="encoder-summary", label="Most similar sentence")
    plot = gr.Plot(label="Similarity", visible=False)
    table = gr.Dataframe(label="Similarity matrix", interactive=False, visible=False)
    with gr.Accordion("Encoder and cache facts", open=False):
        refresh = gr.Button("Show encoder and cache info")
        info = gr.JSON(label="Encoder", visible=False, elem_id="encoder-info")

    @ui_errors
    def _info() -> dict[str, Any]:
        return encoder_info(ctx.encoder)

    @ui_errors
    def _sim(sentences: str, role: str) -> tuple[str, Any, Any]:
        fig, rows = similarity(ctx.encoder, sentences, role)
        n = len(rows)
        table = {"headers": ["sentence", *[str(i + 1) for i in range(n)]], "data": rows}
        return nearest_summary([row[0] for row in rows], rows), fig, table

    reveal(refresh.click(_info, outputs=info, api_name="encoder_info",
                         show_progress_on=refresh), info)
    reveal(go.click(_sim, inputs=[texts, role], outputs=[summary, plot, table],
                    api_name="similarity", show_progress_on=go), plot, table)
