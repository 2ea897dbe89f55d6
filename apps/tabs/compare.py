"""The "Compare encoders" tab: a results folder's table and plot, and a live side-by-side."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gradio as gr

from embedsuite.app.tabs.encoder import plot_similarity, similarity_matrix
from embedsuite.app.ui import AppContext, register_tab, reveal, ui_errors

LIVE_EXAMPLE = """A man is playing the guitar.
Ein Mann spielt Gitarre.
Someone is performing music.
The stock market crashed today."""


def _choices(root: str | os.PathLike[str]) -> str:
    """What the user may type: the folders found, or how to make one."""
    found = result_folders(root)
    if found:
        return "The server's results folder holds: " + ", ".join(found) + "."
    return ("The server's results folder holds no results yet: write some with `embedsuite "
            "evaluate --out results/NAME` (the server reads results only under the folder "
            "set by `embedsuite serve --results-dir`).")


def _not_found(root: str | os.PathLike[str], folder: str) -> FileNotFoundError:
    return FileNotFoundError(f"No results folder {folder!r} in this server's results "
                             f"folder. {_choices(root)}")


def result_folders(root: str | os.PathLike[str]) -> list[str]:
    """Names (relative to ``root``) of the folders under ``root`` holding a results.json."""
    base = Path(root)
    if not base.is_dir():
        return []
    inside = base.resolve()
    found = ["."] if (base / "results.json").is_file() else []
    found += sorted(p.parent.name for p in base.glob("*/results.json")
                    if p.parent.resolve().is_relative_to(inside))  # no symlink out
    return found


def resolve_results(root: str | os.PathLike[str], folder: str) -> Path:
    """``folder`` inside ``root``; anything that leads outside (``..``, an absolute path,
    a symlink) or does not exist gets the same message, which reveals nothing."""
    name = (folder or "").strip()
    if not name:
        raise ValueError(f"Give the name of a results folder. {_choices(root)}")
    base = Path(root).resolve()
    try:
        d = (base / name).resolve()
    except (OSError, RuntimeError):
        raise _not_found(root, name) from None
    if not d.is_relative_to(base) or not d.is_dir():
        raise _not_found(root, name)
    return d


def load_results(folder: str, root: str | os.PathLike[str] = "results"
                 ) -> tuple[str, str | None, list[list[Any]]]:
    """Read ``results.md``, ``results.png`` and ``results.json`` of an ``evaluate`` run.

    Args:
        folder: The run's folder, relative to ``root``.
        root: The only folder results are read from (the server's ``--results-dir``).

    Raises:
        FileNotFoundError: No such folder under ``root``, or it has no results.json.
    """
    d = resolve_results(root, folder)
    res = d / "results.json"
    if not res.is_file():
        raise FileNotFoundError(f"{folder!r} has no results.json; is it an `embedsuite "
                                f"evaluate` output folder?")
    try:
        records = json.loads(res.read_text(encoding="utf-8"))
        rows = [[r["encoder"], r["task"], r["dataset"], r["metric"], round(float(r["value"]), 4),
                 r["n"]] for r in records]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{folder!r}/results.json is not a results file written by "
                         f"embedsuite ({type(exc).__name__})") from None
    md = (d / "results.md").read_text(encoding="utf-8") if (d / "results.md").is_file() else ""
    png = d / "results.png"
    return md.split("## All records")[0], (str(png) if png.is_file() else None), rows


def live_compare(ctx: AppContext, a: str, b: str, text: str, role: str) -> tuple[Any, Any]:
    """Similarity matrices of the same sentences under two encoders (from the allow-list),
    drawn on one colour scale."""
    if a == b:
        raise ValueError("Pick two different encoders to compare.")
    enc_a, enc_b = ctx.encoder_for(a), ctx.encoder_for(b)
    lines, sim_a = similarity_matrix(enc_a, text, role)
    _, sim_b = similarity_matrix(enc_b, text, role)
    lo = float(min(sim_a.min(), sim_b.min()))
    return (plot_similarity(lines, sim_a, f"{a} (role={role}; same scale as {b})", lo),
            plot_similarity(lines, sim_b, f"{b} (role={role}; same scale as {a})", lo))


@register_tab("compare", "Compare encoders", order=80)
def build(ctx: AppContext) -> None:
    """Two encoders side by side on your sentences, and results of `embedsuite evaluate`."""
    gr.Markdown("### Two encoders on the same sentences\nCosine similarity of each pair of "
                "lines under each encoder, on one colour scale. An encoder not loaded yet is "
                "loaded (or built, about a minute the first time) on the first comparison.")
    names = [n for n in ctx.allowed() if n != "tfidf"]
    with gr.Row():
        enc_a = gr.Dropdown(names, value=names[0], label="Encoder A")
        enc_b = gr.Dropdown(names, value=names[1] if len(names) > 1 else names[0],
                            label="Encoder B", interactive=len(names) > 1)
        role = gr.Radio(["query", "passage"], value="query", label="Role")
    text = gr.Textbox(label="Sentences (one per line)", value=LIVE_EXAMPLE, lines=5)
    go = gr.Button("Compare", variant="primary", interactive=len(names) > 1)
    with gr.Row():
        plot_a = gr.Plot(label="Encoder A", visible=False)
        plot_b = gr.Plot(label="Encoder B", visible=False)

    found = result_folders(ctx.results_dir)
    with gr.Accordion("Results of an evaluation run (embedsuite evaluate)", open=False):
        gr.Markdown(_choices(ctx.results_dir), elem_id="compare-results-hint")
        with gr.Row():
            folder = gr.Dropdown(found, value=found[0] if found else None,
                                 allow_custom_value=True, interactive=bool(found),
                                 label="Results folder (under the server's results folder)",
                                 scale=4)
            load = gr.Button("Load results", interactive=bool(found))
        md = gr.Markdown(label="Results table")
        img = gr.Image(label="results.png", type="filepath", interactive=False, visible=False)
        table = gr.Dataframe(headers=["encoder", "task", "dataset", "metric", "value", "n"],
                             interactive=False, label="All records", visible=False)

    @ui_errors
    def _load(results_folder: str) -> tuple[str, str | None, list[list[Any]]]:
        return load_results(results_folder, ctx.results_dir)

    @ui_errors
    def _live(encoder_a: str, encoder_b: str, sentences: str, role: str) -> tuple[Any, Any]:
        return live_compare(ctx, encoder_a, encoder_b, sentences, role)

    reveal(load.click(_load, inputs=folder, outputs=[md, img, table],
                      api_name="compare_results", show_progress_on=load), img, table)
    reveal(go.click(_live, inputs=[enc_a, enc_b, text, role], outputs=[plot_a, plot_b],
                    api_name="compare_live", show_progress_on=go), plot_a, plot_b)
