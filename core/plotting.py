"""Figures without global state: matplotlib is imported only when a plot is drawn.

matplotlib comes with the ``[eval]`` (or ``[app]``) extra. Library code builds
:class:`matplotlib.figure.Figure` objects directly, so it never selects or changes
the backend and never registers figures in matplotlib's global figure list (a
notebook keeps its own backend). ``fig.savefig(path)`` needs no backend, and
Gradio's ``gr.Plot`` shows such a figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MissingExtraError", "new_figure"]


class MissingExtraError(ImportError):
    """An optional dependency of one feature is not installed; the message names the extra."""


def new_figure(**kwargs: Any) -> Figure:
    """A new stand-alone figure; ``kwargs`` go to ``Figure`` (``figsize``, ``dpi``...).

    Add axes with ``fig.subplots()`` or ``fig.add_subplot(...)``.

    Raises:
        MissingExtraError: matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError(
            "drawing plots needs matplotlib, which comes with an optional extra: "
            "pip install 'embedsuite[eval]' (or 'embedsuite[app]')") from None
    return Figure(**kwargs)
