"""Where embedsuite keeps its caches and where the shared evaluation data lies."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ASSETS_DIR", "DataDirError", "cache_dir", "data_dir", "in_checkout"]

_REPO_ROOT = Path(__file__).resolve().parent.parent
#: The package's shipped data: the default heads, demo catalogue, bias word lists.
ASSETS_DIR = Path(__file__).resolve().parent / "assets"


class DataDirError(FileNotFoundError):
    """The shared evaluation data folder is not set and cannot be guessed."""


def in_checkout() -> bool:
    """Whether this package runs from a source checkout (``core/`` beside ``pyproject.toml``)."""
    root = _REPO_ROOT
    return (root / "pyproject.toml").is_file() and (root / "core" / "paths.py").is_file()


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


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The shared evaluation data folder.

    ``override`` (a ``--data-dir`` option) wins, then ``$EMBEDSUITE_DATA``; inside a source
    checkout the default is ``../shared/data`` beside the repository. An installed wheel has
    no such default: it raises :class:`DataDirError` saying how to name the folder.
    """
    if override:
        return Path(override)
    env = os.environ.get("EMBEDSUITE_DATA")
    if env:
        return Path(env)
    if in_checkout():
        return _REPO_ROOT.parent / "shared" / "data"
    raise DataDirError(
        "expected the evaluation data folder (sst2/, tatoeba/, squad/, xquad/, movielens/), "
        "but none was given and embedsuite is installed outside a checkout, so there is no "
        "../shared/data default; pass --data-dir DIR or set EMBEDSUITE_DATA=DIR")
