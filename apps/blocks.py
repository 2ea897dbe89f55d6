"""The Gradio app: one tab per head plus the shared-encoder tab.

``build_demo()`` returns a ``gr.Blocks``; nothing launches at import.
Tabs live in ``apps/tabs/`` and register themselves with
:func:`embedsuite.app.ui.register_tab`.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

import gradio as gr

from embedsuite.app.ui import TABS, AppContext
from embedsuite.encoders import DEFAULT_ENCODER

__all__ = ["build_demo", "discover_tabs"]


def discover_tabs() -> list[str]:
    """Import every module of ``embedsuite.app.tabs`` so that each registers its tab."""
    import embedsuite.app.tabs as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return TABS.names()


def build_demo(encoder_name: str = DEFAULT_ENCODER, ctx: AppContext | None = None,
               workers: int | None = None) -> gr.Blocks:
    """Build the whole app around one shared encoder.

    Args:
        encoder_name: The shared encoder every tab uses.
        ctx: An existing context (tests pass their own); default a new one.
        workers: How many model calls run at once across ALL tabs (default: the CPU
            cores). Every handler is CPU-bound on the same encoder, so running more at
            once than there are cores only makes each slower: gradio's default limit of
            1 per event would let the 20-odd events of the app run 20 handlers at once.
            One shared pool ("model") of ``workers`` slots keeps each handler's time
            close to its single-user time; waiting requests queue in order.
    """
    ctx = ctx or AppContext(encoder_name=encoder_name)
    discover_tabs()
    with gr.Blocks(title="embedsuite") as demo:
        gr.Markdown(
            f"# embedsuite\nNLP task heads on one shared encoder: **{ctx.encoder_name}**. "
            "Every tab reuses the same loaded encoder and its embedding cache."
        )
        for _, spec in sorted(TABS.items(), key=lambda kv: kv[1].order):
            with gr.Tab(spec.title):
                spec.build(ctx)

        def _end_session(request: gr.Request) -> None:
            ctx.end_session(getattr(request, "session_hash", None))

        demo.unload(_end_session)  # a closed page's temporary folders go at once
    pool = workers or os.cpu_count() or 2
    for fn in demo.fns.values():
        fn.concurrency_id = "model"
        fn.concurrency_limit = pool
    return demo
