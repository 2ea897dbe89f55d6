"""The toy head's tab: registered like every tab in ``apps/tabs``."""

from __future__ import annotations

from typing import Any

import gradio as gr

from embedsuite.app.ui import TABS, AppContext, register_tab, ui_errors

NAME, TITLE = "toy", "Toy head"


def build(ctx: AppContext) -> None:
    """A text box and the toy head's label for it."""
    text = gr.Textbox(label="Text", lines=1)
    label = gr.JSON(label="Toy head says")
    head: Any = ctx.resources.get("toy-head")

    @ui_errors
    def classify(text: str) -> Any:
        if head is None:
            raise ValueError("no toy head was given to this app")
        return head.predict(text)

    text.submit(classify, inputs=[text], outputs=[label], api_name="toy_classify")


def register() -> None:
    """Register the tab (a module in ``apps/tabs`` would do this at import)."""
    if NAME not in TABS.names():
        register_tab(NAME, TITLE, order=99)(build)
