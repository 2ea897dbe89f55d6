"""The "Compare encoders" tab: a results folder's table and plot, and a live side-by-side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from embedsuite.app.tabs.encoder import similarity
from embedsuite.app.ui import AppContext, register_tab, ui_errors
from embedsuite.encoders import ENCODERS, get_encoder

LIVE_EXAMPLE = """A man is playing the guitar.
Ein Mann spielt Gitarre.
Someone is performing music.
The stock market crashed today."""


def load_results(folder: str) -> tuple[str, str | None, list[list[Any]]]:
    """Read ``results.md``, ``results.png`` and ``results.json`` of an ``evaluate`` run.

    Raises:
        FileNotFoundError: The folder or its ``results.json`` is missing.
    """
    d = Path((folder or "").strip()).expanduser()
    if not str(folder or "").strip() or not d.is_dir():
        raise FileNotFoundError(f"results folder {str(d)!r} not found; run "
                                f"`embedsuite evaluate --out DIR` and give DIR here")
    res = d / "results.json"
    if not res.is_file():
        raise FileNotFoundError(f"{d} has no results.json; is it an `embedsuite evaluate` "
                                f"output folder?")
    try:
        records = json.loads(res.read_text(encoding="utf-8"))
        rows = [[r["encoder"], r["task"], r["dataset"], r["metric"], round(float(r["value"]), 4),
                 r["n"]] for r in records]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{res} is not a results file written by embedsuite ({exc})") from None
    md = (d / "results.md").read_text(encoding="utf-8") if (d / "results.md").is_file() else ""
    png = d / "results.png"
    return md.split("## All records")[0], (str(png) if png.is_file() else None), rows


def live_compare(a: str, b: str, text: str, role: str) -> tuple[Any, Any]:
    """Similarity matrices of the same sentences under two encoders."""
    if a == b:
        raise ValueError("Pick two different encoders to compare.")
    fig_a, _ = similarity(get_encoder(a), text, role)
    fig_b, _ = similarity(get_encoder(b), text, role)
    return fig_a, fig_b


@register_tab("compare", "Compare encoders", order=80)
def build(ctx: AppContext) -> None:
    """Results of `embedsuite evaluate`, and two encoders side by side on your sentences."""
    gr.Markdown("### Transfer results\nA folder written by `embedsuite evaluate --out DIR`.")
    with gr.Row():
        folder = gr.Textbox(label="Results folder", value="results", scale=4)
        load = gr.Button("Load results")
    md = gr.Markdown()
    img = gr.Image(label="results.png", type="filepath", interactive=False)
    table = gr.Dataframe(headers=["encoder", "task", "dataset", "metric", "value", "n"],
                         interactive=False, label="All records")

    gr.Markdown("### Live: two encoders on the same sentences")
    names = [n for n in ENCODERS.names() if n != "tfidf"]
    with gr.Row():
        enc_a = gr.Dropdown(names, value=names[0], label="Encoder A")
        enc_b = gr.Dropdown(names, value=names[1] if len(names) > 1 else names[0],
                            label="Encoder B")
        role = gr.Radio(["query", "passage"], value="query", label="Role")
    text = gr.Textbox(label="Sentences (one per line)", value=LIVE_EXAMPLE, lines=5)
    go = gr.Button("Compare", variant="primary")
    with gr.Row():
        plot_a = gr.Plot(label="Encoder A")
        plot_b = gr.Plot(label="Encoder B")

    @ui_errors
    def _load(f: str) -> tuple[str, str | None, list[list[Any]]]:
        return load_results(f)

    @ui_errors
    def _live(a: str, b: str, t: str, r: str) -> tuple[Any, Any]:
        return live_compare(a, b, t, r)

    load.click(_load, inputs=folder, outputs=[md, img, table], api_name="compare_results")
    go.click(_live, inputs=[enc_a, enc_b, text, role], outputs=[plot_a, plot_b],
             api_name="compare_live")
