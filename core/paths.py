"""Where embedsuite keeps its caches and where the shared evaluation data lies."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_dir"]

_REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The cache root: ``$EMBEDSUITE_CACHE``, else ``$XDG_CACHE_HOME/embedsuite``.

    Without either, ``~/.cache/embedsuite``.
    """
    env = os.environ.get("EMBEDSUITE_CACHE")
    if env:
        root = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "embedsuite"
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_dir() -> Path:
    """The shared evaluation data: ``$EMBEDSUITE_DATA``, else ``../shared/data`` beside the repo."""
    env = os.environ.get("EMBEDSUITE_DATA")
    if env:
        return Path(env)
    return _REPO_ROOT.parent / "shared" / "data"
