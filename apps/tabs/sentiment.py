"""The "Sentiment" tab: classify text with the shipped head, or train your own from a CSV."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from embedsuite.app.services import sentiment_head, sentiment_proba
from embedsuite.app.tabs.encoder import split_lines
from embedsuite.app.ui import (
    MAX_BATCH,
    MAX_UPLOAD_BYTES,
    AppContext,
    register_tab,
    reveal,
    ui_errors,
)
from embedsuite.data.tables import read_labelled_csv
from embedsuite.encoders.base import Encoder
from embedsuite.explain import occlusion
from embedsuite.heads.sentiment import SentimentClassifier

logger = logging.getLogger(__name__)

__all__ = ["EXAMPLES", "HEAD_CHOICES", "classify", "headline", "label_probabilities",
           "parse_csv", "plot_confusion", "train_from_csv"]

#: Built-in examples and the label the shipped head gives each (checked by the tests).
EXAMPLE_LABELS = ["positive", "negative", "positive", "negative", "positive", "negative"]
EXAMPLES = [
    "A gorgeous, witty, seductive movie.",
    "The plot is thin and the jokes fall flat.",
    "Ein wunderbarer Film, ich habe jede Minute genossen.",
    "Un film ennuyeux et beaucoup trop long.",
    "La película es preciosa y muy emocionante.",
    "这部电影太无聊了，浪费时间。",
]

DEFAULT_HEAD = "default (SST-2)"
CUSTOM_HEAD = "custom (trained below)"
HEAD_CHOICES = [DEFAULT_HEAD, CUSTOM_HEAD]

#: Most rows a CSV may have for training in the browser (larger sets: use the CLI).
MAX_TRAIN_ROWS = 20_000
#: Most rows for the attention kind in the browser (it encodes every token state).
MAX_ATTENTION_ROWS = 5_000
#: Fewest rows per class for a held-out split.
MIN_PER_CLASS = 2
_LIMIT_HINT = (" The app's limits keep the page responsive; train on larger files with the "
               "command line: embedsuite train-sentiment FILE.csv OUT_DIR")


def classify(head: SentimentClassifier, text: str,
             proba_fn: Callable[[list[str]], np.ndarray] | None = None
             ) -> tuple[list[list[Any]], dict[str, float]]:
    """Label and score for each line of ``text``, and the first line's class probabilities.

    Args:
        head: The classifier.
        text: One text per line.
        proba_fn: Computes the probabilities instead of ``head.predict_proba`` (the app
            passes its micro-batched predictor).

    Returns:
        Rows ``[text, label, score]`` and ``{class: probability}`` of the first line
        (for ``gr.Label``; the classes are the head's, so a custom head shows its own).
    """
    lines = split_lines(text)
    proba = np.atleast_2d(proba_fn(lines) if proba_fn else head.predict_proba(lines))
    rows = [[ln, head.classes_[int(p.argmax())], round(float(p.max()), 4)]
            for ln, p in zip(lines, proba, strict=True)]
    return rows, label_probabilities(proba[0], list(head.classes_))


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def label_probabilities(proba: np.ndarray, classes: list[str]) -> dict[str, float]:
    """``{class: probability}`` of one text, every class of the head (for ``gr.Label``)."""
    return {str(c): round(float(p), 4) for c, p in zip(classes, proba, strict=True)}


def parse_csv(path: str | Path | None) -> tuple[list[str], list[str], int]:
    """Read an uploaded ``text,label`` CSV within the app's limits (bytes, rows, at least
    two examples per class: one to train, one to test).

    Returns:
        Texts, labels, and the number of rows skipped (empty text or label).

    Raises:
        ValueError: What :func:`~embedsuite.data.tables.read_labelled_csv` refuses.
    """
    if path is None or not str(path).strip():
        raise ValueError("No file uploaded: upload a CSV file with the columns 'text' and "
                         "'label'.")
    return read_labelled_csv(path, max_bytes=MAX_UPLOAD_BYTES, max_rows=MAX_TRAIN_ROWS,
                             min_per_class=MIN_PER_CLASS, limit_hint=_LIMIT_HINT,
                             taker="the app")


def _split(labels: list[str], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A stratified train / held-out split (at least one held-out example per class)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in sorted(set(labels)):
        idx = rng.permutation([i for i, y in enumerate(labels) if y == c]).tolist()
        k = min(max(1, round(len(idx) * test_fraction)), len(idx) - 1)
        test += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(test)


def plot_confusion(matrix: np.ndarray, classes: list[str]) -> Any:
    """A confusion matrix (rows: true label, columns: predicted) as a heat map."""
    from embedsuite.plotting import new_figure

    k = len(classes)
    fig = new_figure(figsize=(2.0 + 0.8 * k, 1.6 + 0.7 * k))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    names = [_short(c, 16) for c in classes]
    ax.set_xticks(range(k), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=9,
                    color="white" if matrix[i, j] > top / 2 else "black")
    ax.set_title("held-out confusion matrix", fontsize=9)
    fig.tight_layout()
    return fig


def train_from_csv(encoder: Encoder, path: str | Path | None, kind: str = "linear", *,
                   test_fraction: float = 0.2, seed: int = 0, out_dir: str | Path | None = None
                   ) -> tuple[SentimentClassifier, dict[str, Any], Any, str]:
    """Train a classifier on an uploaded CSV, measure it on a held-out split, save it.

    The returned head is refitted on all rows after measuring.

    Returns:
        The head, a JSON-ready report (accuracy, counts, confusion matrix), the
        confusion-matrix figure, and the path of a zip of the saved head folder.
    """
    texts, labels, skipped = parse_csv(path)
    if kind == "attention" and len(texts) > MAX_ATTENTION_ROWS:
        raise ValueError(f"The attention head trains on at most {MAX_ATTENTION_ROWS:,} rows in "
                         f"the app ({len(texts):,} given); choose 'linear' or use "
                         f"`embedsuite train-sentiment --kind attention`.")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    tr, te = _split(labels, test_fraction, seed)
    head = SentimentClassifier(encoder, kind=kind, random_state=seed)
    head.fit([texts[i] for i in tr], [labels[i] for i in tr])
    proba = np.atleast_2d(head.predict_proba([texts[i] for i in te]))
    pred = [head.classes_[int(k)] for k in proba.argmax(1)]
    classes = sorted(set(labels))
    matrix = np.zeros((len(classes), len(classes)), np.int64)
    for i, p in zip(te, pred, strict=True):
        matrix[classes.index(labels[i]), classes.index(p)] += 1
    acc = float(np.trace(matrix) / max(matrix.sum(), 1))
    head = SentimentClassifier(encoder, kind=kind, random_state=seed).fit(texts, labels)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="sentiment-"))
    folder = head.save(out / "sentiment-head")
    zip_path = shutil.make_archive(str(out / "sentiment-head"), "zip", root_dir=folder)
    report = {
        "held_out_accuracy": round(acc, 4),
        "n_train": len(tr),
        "n_held_out": len(te),
        "rows_skipped": skipped,
        "classes": {c: labels.count(c) for c in classes},
        "kind": head.head_kind,
        "confusion_matrix": matrix.tolist(),
        "note": "held-out accuracy of a head trained on the other rows; the saved head is "
                "then trained on all rows",
    }
    return head, report, plot_confusion(matrix, classes), zip_path


def headline(report: dict[str, Any]) -> str:
    """The training report's headline figures as Markdown (the JSON stays in a details box)."""
    classes = ", ".join(f"{c} {n:,}" for c, n in report["classes"].items())
    skipped = (f" · {report['rows_skipped']:,} empty row(s) skipped"
               if report.get("rows_skipped") else "")
    return (f"**Held-out accuracy: {report['held_out_accuracy']:.1%}** on "
            f"{report['n_held_out']:,} rows (trained on {report['n_train']:,}) · "
            f"{report['kind']} head · classes: {classes}{skipped}.  \n"
            f"The head you can use above and download was then trained on all rows.")


def explain_line(head: SentimentClassifier, text: str, line: int = 1
                 ) -> list[tuple[str, float | None]]:
    """Occlusion explanation of one line as (piece, weight in [-1, 1]) for gr.HighlightedText.

    Raises:
        ValueError: No such line.
    """
    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        raise ValueError(f"Line {line} does not exist; the text has {len(lines)} line(s).")
    target = lines[line - 1]
    exp = occlusion(head.predict_proba, head.classes_, target)
    peak = max((abs(w["weight"]) for w in exp["words"]), default=0.0) or 1.0
    pieces: list[tuple[str, float | None]] = [(f"{exp['label']} ({exp['score']:.2f}): ", None)]
    pos = 0
    for w in exp["words"]:
        if w["start"] > pos:
            pieces.append((target[pos : w["start"]], None))
        pieces.append((w["word"], round(w["weight"] / peak, 3)))
        pos = w["end"]
    if pos < len(target):
        pieces.append((target[pos:], None))
    return pieces


@register_tab("sentiment", "Sentiment", order=10)
def build(ctx: AppContext) -> None:
    """Classify text with the shipped SST-2 head, or train and use a custom one."""
    gr.Markdown(
        "Sentiment of each line (any language: the head was trained on English SST-2 movie "
        f"reviews, the encoder is multilingual). Up to {MAX_BATCH} lines at once."
    )
    custom = gr.State(None)
    with gr.Row():
        text = gr.Textbox(label="Text (one per line)", lines=5, value="\n".join(EXAMPLES[:3]),
                          scale=3, min_width=320)
        which = gr.Radio(HEAD_CHOICES, value=DEFAULT_HEAD, label="Head", scale=1, min_width=240,
                         elem_id="sentiment-head",
                         info="custom: train one under 'Train your own classifier'")
    go = gr.Button("Classify", variant="primary")
    gr.Examples([[e] for e in EXAMPLES], inputs=[text], label="Examples (click to fill in)")
    with gr.Row():
        table = gr.Dataframe(headers=["text", "label", "score"], label="Predictions",
                             interactive=False, elem_id="sentiment-results", visible=False,
                             wrap=True, scale=3)
        probs = gr.Label(label="Class probabilities (line 1)", elem_id="sentiment-probabilities",
                         visible=False, scale=2)
    with gr.Row():
        line_no = gr.Number(value=1, precision=0, minimum=1, label="Explain line", scale=1)
        explain_btn = gr.Button("Explain: which words pushed the decision", scale=3)
    explanation = gr.HighlightedText(
        label="Word influence (occlusion: red pushes towards the label, blue against it)",
        elem_id="sentiment-explanation", show_legend=False, visible=False)

    with gr.Accordion("Train your own classifier", open=False):
        gr.Markdown("Upload a CSV with the columns `text` and `label` (any label names, two or "
                    "more). 20 % of each class is held out to measure accuracy, then the head "
                    "is trained on all rows; it is used at once above (choose *custom*) and "
                    "offered as a zip.")
        with gr.Row():
            upload = gr.File(label="CSV (text,label)", file_types=[".csv", ".tsv", ".txt"],
                             type="filepath", elem_id="sentiment-upload")
            kind = gr.Radio(["linear", "attention"], value="linear",
                            label="Head kind (linear: seconds; attention: slower, stronger)")
        train = gr.Button("Train", variant="primary")
        summary = gr.Markdown(elem_id="sentiment-train-summary", label="Training summary")
        with gr.Row():
            confusion = gr.Plot(label="Confusion matrix", visible=False)
            download = gr.File(label="Saved head (zip)", interactive=False, visible=False)
        with gr.Accordion("Full report (JSON)", open=False):
            report = gr.JSON(label="Held-out result")

    def _default() -> SentimentClassifier:
        return sentiment_head(ctx)

    @ui_errors
    def _classify(text: str, head_choice: str, custom_head: SentimentClassifier | None
                  ) -> tuple[Any, Any]:
        if head_choice.startswith("custom"):
            if custom_head is None:
                raise ValueError("No custom head yet: upload a CSV and press Train first, or "
                                 "choose the default head.")
        else:
            return classify(_default(), text, lambda lines: sentiment_proba(ctx, lines))
        rows, proba = classify(custom_head, text)
        return rows, proba

    @ui_errors
    def _explain(text: str, line: float, head_choice: str,
                 custom_head: SentimentClassifier | None) -> list[tuple[str, float | None]]:
        if head_choice.startswith("custom") and custom_head is not None:
            use = custom_head
        elif head_choice.startswith("custom"):
            raise ValueError("No custom head yet: upload a CSV and press Train first, or "
                             "choose the default head.")
        else:
            use = _default()
        return explain_line(use, text, int(line or 1))

    @ui_errors(long=True)  # trains / embeds a whole upload
    def _train(csv_file: str | None, head_kind: str, request: gr.Request
               ) -> tuple[Any, str, Any, Any, str]:
        out = ctx.session_dir(getattr(request, "session_hash", None), "sentiment-")
        head, rep, fig, zip_path = train_from_csv(ctx.encoder, csv_file, head_kind, out_dir=out)
        return head, headline(rep), rep, fig, zip_path

    reveal(go.click(_classify, inputs=[text, which, custom], outputs=[table, probs],
                    api_name="sentiment", show_progress_on=go), table, probs)
    reveal(explain_btn.click(_explain, inputs=[text, line_no, which, custom],
                             outputs=explanation, api_name="sentiment_explain",
                             show_progress_on=explain_btn), explanation)
    # the Head radio is never an output of the training step: an error there leaves it as is
    trained = train.click(_train, inputs=[upload, kind],
                          outputs=[custom, summary, report, confusion, download],
                          api_name="sentiment_train", show_progress_on=train)
    reveal(trained, confusion, download)
    trained.success(lambda: CUSTOM_HEAD, outputs=which, api_visibility="private", queue=False)
