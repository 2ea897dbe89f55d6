"""The "Shared encoder" tab: what the encoder is, and how it sees a few sentences."""

from __future__ import annotations

from typing import Any

import gradio as gr

from embedsuite.app.ui import MAX_BATCH, MAX_TEXT_CHARS, AppContext, register_tab, ui_errors
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


def encoder_info(encoder: BaseEncoder) -> dict[str, Any]:
    """The encoder's description plus the cache's size."""
    info = encoder.describe()
    cache = encoder.cache.info()
    info["cache"] = {"path": cache["path"], "entries": cache["entries"],
                     "mb": round(int(cache["file_bytes"]) / 1e6, 1)}  # type: ignore[call-overload]
    return info


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


def similarity(encoder: BaseEncoder, text: str, role: str) -> tuple[Any, list[list[Any]]]:
    """Cosine similarity matrix of the lines of ``text`` as a heat map and a table."""
    from embedsuite.plotting import new_figure

    lines = split_lines(text)
    vecs = encoder.encode(lines, role=check_role(role))
    sim = vecs @ vecs.T
    labels = [ln if len(ln) <= 28 else ln[:27] + "…" for ln in lines]
    size = max(4.0, 1.5 + 0.7 * len(lines))
    fig = new_figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    im = ax.imshow(sim, cmap="viridis", vmin=float(sim.min()), vmax=1.0)
    ax.set_xticks(range(len(lines)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(lines)), labels, fontsize=8)
    for i in range(len(lines)):
        for j in range(len(lines)):
            ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if sim[i, j] < sim.mean() else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(f"cosine similarity ({encoder.name}, role={role})", fontsize=9)
    fig.tight_layout()
    rows = [[lines[i], *[round(float(x), 3) for x in sim[i]]] for i in range(len(lines))]
    return fig, rows


@register_tab("encoder", "Shared encoder", order=90)
def build(ctx: AppContext) -> None:
    """Encoder facts, cache size, and a similarity matrix of user sentences."""
    gr.Markdown("Every tab uses this one encoder; its vectors are cached on disk and reused.")
    with gr.Row():
        info = gr.JSON(label="Encoder")
        refresh = gr.Button("Show encoder and cache info")
    texts = gr.Textbox(label="Sentences (one per line, any language)", value=EXAMPLE, lines=6)
    role = gr.Radio(["query", "passage"], value="query", label="Role (prompt)")
    go = gr.Button("Compare", variant="primary")
    summary = gr.Markdown(elem_id="encoder-summary")
    plot = gr.Plot(label="Similarity")
    table = gr.Dataframe(label="Similarity matrix", interactive=False)

    @ui_errors
    def _info() -> dict[str, Any]:
        return encoder_info(ctx.encoder)

    @ui_errors
    def _sim(text: str, r: str) -> tuple[str, Any, Any]:
        fig, rows = similarity(ctx.encoder, text, r)
        n = len(rows)
        table = {"headers": ["sentence", *[str(i + 1) for i in range(n)]], "data": rows}
        return nearest_summary([row[0] for row in rows], rows), fig, table

    refresh.click(_info, outputs=info, api_name="encoder_info")
    go.click(_sim, inputs=[texts, role], outputs=[summary, plot, table], api_name="similarity")


