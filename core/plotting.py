"""matplotlib, imported only when a plot is drawn (it comes with the ``[eval]`` extra)."""

from __future__ import annotations

from typing import Any

__all__ = ["MissingExtraError", "pyplot"]


class MissingExtraError(ImportError):
    """An optional dependency of one feature is not installed; the message names the extra."""


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend.

    Raises:
        MissingExtraError: matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError(
            "drawing plots needs matplotlib, which comes with an optional extra: "
            "pip install 'embedsuite[eval]' (or 'embedsuite[app]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
