"""The "Question answering" tab: ask questions about a pasted or uploaded text."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from embedsuite.app.services import qa_head
from embedsuite.app.ui import (
    MAX_TEXT_CHARS,
    MAX_UPLOAD_BYTES,
    AppContext,
    register_tab,
    reveal,
    ui_errors,
)
from embedsuite.data.uploads import decode_upload
from embedsuite.validation import check_text

#: longest document the tab reads (only the best windows are read per question)
MAX_DOC_CHARS = 5 * MAX_TEXT_CHARS
MAX_QUESTION_CHARS = 500
#: The tab's no-answer threshold when the shipped head's config sets none: the shipped head
#: scores unrelated questions below ~0.05 and the examples' answers above 0.3 (0 would
#: always return some span).
DEFAULT_THRESHOLD = 0.2
#: Tokens shown each side of the best span in the start / end score plot.
PLOT_CONTEXT_TOKENS = 30

#: (language, document, question) examples written for this project
EXAMPLES: list[tuple[str, str, str]] = [
    ("English",
     "The Millbrook lighthouse was built in 1872 on a rocky island two kilometres off the "
     "coast. Its lamp was first lit with whale oil, replaced by kerosene in 1901 and by an "
     "electric bulb in 1934. The last keeper, Margaret Olsen, left the island in 1968, when "
     "the light became automatic. Today the tower is a museum that opens from May to "
     "September.",
     "Who was the last keeper of the lighthouse?"),
    ("Deutsch",
     "Die Stadtbibliothek von Hellbrunn wurde 1956 eröffnet und besitzt heute rund 240.000 "
     "Bücher. Im Jahr 2011 zog sie in einen Neubau am Marktplatz, den der Architekt Jonas "
     "Weber entworfen hat. Jeden Donnerstag liest dort eine Autorin oder ein Autor aus einem "
     "neuen Werk.",
     "Wer hat den Neubau entworfen?"),
    ("Français",
     "Le festival de musique de Val-Clair a lieu chaque année au mois de juillet. Fondé en "
     "1987 par la pianiste Claire Dumas, il accueille environ 30 000 visiteurs. Les concerts "
     "se déroulent dans l'ancienne abbaye et sur la place du village.",
     "En quelle année le festival a-t-il été fondé ?"),
    ("Español",
     "El río Lunares nace en la sierra de Corvo, a 1.850 metros de altitud, y recorre 214 "
     "kilómetros antes de desembocar en el mar. Su principal afluente es el arroyo Pinar. "
     "En sus orillas se cultivan sobre todo naranjas y arroz.",
     "¿Cuántos kilómetros recorre el río?"),
    ("中文",
     "青山大桥位于江城市北部，于二〇〇八年建成通车。大桥全长三千二百米，连接江北新区和老城区。"
     "设计者是工程师李明华，他此前还设计过两座跨江铁路桥。",
     "青山大桥的设计者是谁？"),
    ("Русский",
     "Озеро Светлое находится в сорока километрах к северу от города Заречный. Его глубина "
     "достигает двадцати трёх метров. Зимой озеро замерзает, и местные жители ловят рыбу "
     "со льда. Первую карту озера составил географ Иван Петров в 1903 году.",
     "Кто составил первую карту озера?"),
    ("English question, French text",
     "Le festival de musique de Val-Clair a lieu chaque année au mois de juillet. Fondé en "
     "1987 par la pianiste Claire Dumas, il accueille environ 30 000 visiteurs. Les concerts "
     "se déroulent dans l'ancienne abbaye et sur la place du village.",
     "Who founded the festival?"),
]
#: The answer the shipped head gives each example (checked by the tests).
EXAMPLE_ANSWERS = ["Margaret Olsen", "Jonas Weber", "1987", "214", "李明华", "Иван Петров",
                   "Claire Dumas"]


def shipped_threshold() -> float:
    """The tab's no-answer threshold: the shipped head's own (its ``config.json``, read
    without loading the head) where it sets one between 0 and 1, else
    :data:`DEFAULT_THRESHOLD`."""
    from embedsuite.heads.qa import DEFAULT_HEAD_DIR

    try:
        cfg = json.loads((DEFAULT_HEAD_DIR / "config.json").read_text(encoding="utf-8"))
        value = float(cfg["params"]["no_answer_threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_THRESHOLD
    return value if 0.0 < value < 1.0 else DEFAULT_THRESHOLD


def read_upload(path: str | os.PathLike[str] | None) -> str:
    """The text of an uploaded ``.txt`` file (UTF-8), within the app's limits.

    Raises:
        ValueError: No file, too large, not UTF-8 text, or empty.
    """
    if not path:
        raise ValueError("No file given: upload a UTF-8 .txt file.")
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise ValueError(f"The file has {size:,} bytes; the app takes at most "
                         f"{MAX_UPLOAD_BYTES:,}.")
    text = decode_upload(p.read_bytes(), p.name,
                         binary_hint="not text: upload a UTF-8 .txt file.",
                         utf8_hint="; save it as UTF-8 .txt and retry.")
    if not text.strip():
        raise ValueError(f"{p.name} is empty; expected some text.")
    if len(text) > MAX_DOC_CHARS:
        raise ValueError(f"The text has {len(text):,} characters; the tab reads at most "
                         f"{MAX_DOC_CHARS:,}. Split it or use the Python API.")
    return text


def _check_inputs(document: str | None, question: str | None) -> tuple[str, str]:
    doc = check_text(document or "", "document")
    q = check_text(question or "", "question").strip()
    if len(doc) > MAX_DOC_CHARS:
        raise ValueError(f"The document has {len(doc):,} characters; the tab reads at most "
                         f"{MAX_DOC_CHARS:,}. Split it or use the Python API.")
    if len(q) > MAX_QUESTION_CHARS:
        raise ValueError(f"The question has {len(q):,} characters; keep it under "
                         f"{MAX_QUESTION_CHARS}.")
    return doc, q


def highlight(document: str, results: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The document as ``gr.HighlightedText`` segments: the answer and non-overlapping
    alternatives labelled, the rest plain (exact slices of the document)."""
    spans: list[tuple[int, int, str]] = []
    for k, r in enumerate(results):
        s, e = int(r["start"]), int(r["end"])
        if e <= s or any(s < e2 and s2 < e for s2, e2, _ in spans):
            continue
        spans.append((s, e, "answer" if k == 0 else f"alternative {k}"))
    spans.sort()
    out: list[tuple[str, str | None]] = []
    pos = 0
    for s, e, label in spans:
        if s > pos:
            out.append((document[pos:s], None))
        out.append((document[s:e], label))
        pos = e
    if pos < len(document):
        out.append((document[pos:], None))
    return out


def answer_question(head: Any, document: str | None, question: str | None, top_k: int = 3,
                    threshold: float = 0.0) -> tuple[list[tuple[str, str | None]], str,
                                                     list[list[Any]]]:
    """Answer one question about ``document``: highlighted text, a summary, alternatives.

    Returns:
        ``(highlighted segments, markdown summary, rows [rank, answer, score, window,
        start, end])``.
    """
    doc, q = _check_inputs(document, question)
    k = max(1, min(int(top_k), 10))
    res = head.answer(q, doc, top_k=max(k, 2), no_answer_threshold=float(threshold))
    res = res if isinstance(res, list) else [res]
    best = res[0]
    n_windows = len(head._windows(doc))
    if best["answer"]:
        summary = (f"**Answer:** {html.escape(best['answer'])}  \n"
                   f"score {best['score']:.3f} · characters {best['start']}–{best['end']} · "
                   f"window {best['window'] + 1} of {n_windows}")
    else:
        summary = (f"**No answer** above the threshold {threshold:.2f} (best score "
                   f"{best['score']:.3f}); the alternatives below are the best guesses.")
    rows = [[i + 1, r["answer"], round(float(r["score"]), 3), int(r["window"]) + 1,
             int(r["start"]), int(r["end"])] for i, r in enumerate(res[:k + 1]) if r["answer"]]
    shown = [r for r in res if r["answer"]][:k]
    return highlight(doc, shown), summary, rows


def plot_span_scores(head: Any, document: str | None, question: str | None) -> Any:
    """Start / end scores over the tokens of the window holding the best answer."""
    from embedsuite.plotting import new_figure

    doc, q = _check_inputs(document, question)
    windows = head.token_scores(q, doc)
    best = max(windows, key=lambda w: float(w["start"].max() + w["end"].max()))
    offs, st, en = best["offsets"], best["start"], best["end"]
    i, j = int(st.argmax()), int(en.argmax())
    lo = max(0, min(i, j) - PLOT_CONTEXT_TOKENS)
    hi = min(len(offs), max(i, j) + PLOT_CONTEXT_TOKENS + 1)
    offs, st, en, i, j = offs[lo:hi], st[lo:hi], en[lo:hi], i - lo, j - lo
    labels = [doc[a:b] for a, b in offs]
    width = max(8.0, min(0.22 * len(labels), 16.0))
    fig = new_figure(figsize=(width, 3.6))
    ax = fig.subplots()
    x = np.arange(len(labels))
    ax.plot(x, st, label="start score", color="tab:green")
    ax.plot(x, en, label="end score", color="tab:red")
    if j >= i:
        ax.axvspan(i - 0.5, j + 0.5, color="gold", alpha=0.3, label="best start..end")
    step = max(1, len(labels) // 120)
    ax.set_xticks(x[::step], labels[::step], rotation=90, fontsize=9)
    ax.set_ylabel("logit")
    ax.set_title(f"Start / end scores around the best span (window {best['window'] + 1})",
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@register_tab("qa", "Question answering", order=40)
def build(ctx: AppContext) -> None:
    """Paste or upload a text, ask a question, see the answer highlighted."""
    def head() -> Any:
        return qa_head(ctx)

    gr.Markdown(
        "Extractive question answering: the answer is a span of your text, found by a small "
        "span head trained on English SQuAD on top of the shared encoder (it also reads other "
        "languages). Long texts are cut into overlapping windows; the best windows are read."
    )
    with gr.Row():
        with gr.Column(scale=3):
            document = gr.Textbox(label="Text (paste, or upload a .txt)",
                                  value=EXAMPLES[0][1], lines=8, max_lines=30)
        with gr.Column(scale=2):
            question = gr.Textbox(label="Question (Enter answers)", value=EXAMPLES[0][2],
                                  lines=1, max_lines=1, elem_id="qa-question")
            go = gr.Button("Answer", variant="primary")
            upload = gr.File(label="Upload a .txt file", file_types=[".txt"], type="filepath",
                             height=120)
            with gr.Accordion("Advanced", open=False):
                top_k = gr.Slider(1, 10, value=3, step=1, label="Answers to show")
                threshold = gr.Slider(0.0, 1.0, value=shipped_threshold(), step=0.01,
                                      label="No-answer threshold (best score under it: "
                                            "no answer)")
    gr.Examples(examples=[[d, q] for _, d, q in EXAMPLES], inputs=[document, question],
                example_labels=[lang for lang, _, _ in EXAMPLES],
                label="Examples (click one, then Answer)")
    summary = gr.Markdown(elem_id="qa-summary", label="Answer")
    marked = gr.HighlightedText(label="Answer in the text", combine_adjacent=False,
                                show_legend=True, visible=False, elem_id="qa-marked")
    table = gr.Dataframe(headers=["rank", "answer", "score", "window", "start", "end"],
                         label="Top answers", interactive=False, visible=False, wrap=True,
                         column_widths=["8%", "44%", "12%", "12%", "12%", "12%"])
    with gr.Accordion("Why this span: the head's start and end scores", open=False):
        scores_btn = gr.Button("Show start / end scores around the answer")
        scores_plot = gr.Plot(label="Start and end scores per token", visible=False)

    @ui_errors
    def _upload(text_file: str | None) -> str:
        return read_upload(text_file)

    @ui_errors
    def _answer(text: str, question: str, answers_to_show: float,
                no_answer_threshold: float) -> tuple[Any, str, Any]:
        return answer_question(head(), text, question, int(answers_to_show),
                               float(no_answer_threshold))

    @ui_errors
    def _scores(text: str, question: str) -> Any:
        return plot_span_scores(head(), text, question)

    reveal(scores_btn.click(_scores, inputs=[document, question], outputs=scores_plot,
                            api_name="qa_scores", show_progress_on=scores_btn), scores_plot)
    upload.upload(_upload, inputs=upload, outputs=document, api_name="qa_load_text",
                  show_progress="hidden")
    reveal(go.click(_answer, inputs=[document, question, top_k, threshold],
                    outputs=[marked, summary, table], api_name="qa_answer",
                    show_progress_on=go), marked, table)
    reveal(question.submit(_answer, inputs=[document, question, top_k, threshold],
                           outputs=[marked, summary, table], api_visibility="private",
                           show_progress_on=go), marked, table)
