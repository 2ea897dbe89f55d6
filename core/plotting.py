"""Figures without global state: matplotlib is imported only when a plot is drawn.

matplotlib comes with the ``[eval]`` (or ``[app]``) extra. Library code builds
:class:`matplotlib.figure.Figure` objects directly, so it never selects or changes
the backend and never registers figures in matplotlib's global figure list (a
notebook keeps its own backend). ``fig.savefig(path)`` needs no backend, and
Gradio's ``gr.Plot`` shows such a figure.

Chinese, Japanese and Korean text: matplotlib's default font (DejaVu Sans) has no CJK
glyphs. When a Noto Sans CJK font is installed (Debian: ``fonts-noto-cjk``), every text
of a figure made by :func:`new_figure` falls back to it for the glyphs the default font
lacks; without one, CJK text is drawn as boxes after a single log line (no warning per
glyph).
"""

from __future__ import annotations

import functools
import logging
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CJK_FAMILIES", "MissingExtraError", "cjk_font", "font_families", "new_figure"]

logger = logging.getLogger(__name__)

#: CJK-capable families, preferred first (``fonts-noto-cjk`` installs all of them).
CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC",
                "Noto Sans CJK KR", "Noto Sans CJK HK", "Noto Sans JP", "Noto Sans SC")
#: Where fonts installed after matplotlib built its font list are looked for.
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")


class MissingExtraError(ImportError):
    """An optional dependency of one feature is not installed; the message names the extra."""


def _known_families() -> set[str]:
    from matplotlib import font_manager

    return {f.name for f in font_manager.fontManager.ttflist}


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The installed CJK-capable font family (see :data:`CJK_FAMILIES`), else ``None``.

    A font installed after matplotlib cached its font list is found in
    :data:`FONT_DIRS` and registered (``fontManager.addfont``; nothing else changes).
    """
    from matplotlib import font_manager

    found = _known_families()
    if not any(f in found for f in CJK_FAMILIES):
        for d in FONT_DIRS:
            root = Path(d).expanduser()
            if not root.is_dir():
                continue
            for p in sorted(root.rglob("NotoSans*CJK*")):
                if p.suffix.lower() in (".ttc", ".otf", ".ttf"):
                    try:
                        font_manager.fontManager.addfont(str(p))
                    except (OSError, RuntimeError, ValueError):
                        continue
        found = _known_families()
    family = next((f for f in CJK_FAMILIES if f in found), None)
    if family is None:
        logger.warning("no CJK font found (e.g. Debian's fonts-noto-cjk): Chinese, Japanese "
                       "and Korean text in plots is drawn as boxes")
    return family


def font_families() -> list[str]:
    """The font family list of plot texts: the default sans-serif, then a CJK fallback."""
    cjk = cjk_font()
    return ["sans-serif", cjk] if cjk else ["sans-serif"]


def _apply_fonts(fig: Figure) -> None:
    """Give every text of ``fig`` (and tick labels made later) the fallback family list."""
    from matplotlib.text import Text

    families = font_families()
    if len(families) < 2:
        return
    for ax in fig.axes:
        ax.tick_params(labelfontfamily=families)
    for text in fig.findobj(Text):
        text.set_fontfamily(families)




def _draw(self: Figure, renderer: Any) -> None:
    _apply_fonts(self)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        type(self).draw(self, renderer)


def _tight_layout(self: Figure, *args: Any, **kwargs: Any) -> None:
    _apply_fonts(self)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        type(self).tight_layout(self, *args, **kwargs)


def new_figure(**kwargs: Any) -> Figure:
    """A new stand-alone figure; ``kwargs`` go to ``Figure`` (``figsize``, ``dpi``...).

    Add axes with ``fig.subplots()`` or ``fig.add_subplot(...)``. Its texts fall back
    to a CJK font when one is installed (see the module docstring).

    Raises:
        MissingExtraError: matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError(
            "drawing plots needs matplotlib, which comes with an optional extra: "
            "pip install 'embedsuite[eval]' (or 'embedsuite[app]')") from None
    fig = Figure(**kwargs)
    # per figure, not rcParams: the fonts are set on this figure's texts just before
    # layout and drawing, so a notebook's own settings stay untouched
    fig.draw = types.MethodType(_draw, fig)  # type: ignore[method-assign]
    fig.tight_layout = types.MethodType(_tight_layout, fig)  # type: ignore[method-assign]
    return fig
