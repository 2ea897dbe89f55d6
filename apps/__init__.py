"""embedsuite's user-facing layer: the Gradio app and the ``embedsuite`` command line.

>>> from embedsuite.app import build_demo      # needs the ``[app]`` extra
>>> demo = build_demo("e5-small")              # a gr.Blocks; nothing launches at import

``embedsuite.app.cli`` is the command line. Gradio is imported only when the app is
built, so the command line's other commands stay light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_demo"]


def __getattr__(name: str) -> Any:
    if name == "build_demo":
        from embedsuite.app.blocks import build_demo

        return build_demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
