"""Task heads on the shared encoder, importable into other products.

>>> from embedsuite.heads import SentimentClassifier, load_head

Each head lives in its own module and registers its kind(s) in :data:`HEADS`;
names are imported lazily so that importing one head never loads the others.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from embedsuite.heads.base import (
    HEADS,
    check_fitted,
    load_head,
    read_head_folder,
    write_head_folder,
)

__all__ = [
    "HEADS",
    "ContentRecommender",
    "ExtractiveQA",
    "SentimentClassifier",
    "TranslationRetriever",
    "check_fitted",
    "discover_heads",
    "load_head",
    "read_head_folder",
    "write_head_folder",
]

_LAZY = {
    "SentimentClassifier": "embedsuite.heads.sentiment",
    "TranslationRetriever": "embedsuite.heads.translation",
    "ContentRecommender": "embedsuite.heads.recommend",
    "ExtractiveQA": "embedsuite.heads.qa",
}


def discover_heads() -> list[str]:
    """Import every head module of this package so that all kinds are registered."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return HEADS.names()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
