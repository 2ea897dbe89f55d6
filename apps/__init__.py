"""embedsuite's user-facing layer: the Gradio app and the ``embedsuite`` command line."""

from __future__ import annotations
