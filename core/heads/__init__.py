"""Task heads on the shared encoder, importable into other products.

>>> from embedsuite.heads import SentimentClassifier, load_head

Each head lives in its own module and registers its kind(s) in :data:`HEADS`;
names are imported lazily so that importing one head never loads the others.
"""

from __future__ import annotations

import importlib
from typing import Any

from embedsuite.heads.base import (
    HEADS,
    BaseHead,
    check_fitted,
    discover_heads,
    load_head,
    read_head_folder,
    write_head_folder,
)

__all__ = [
    "HEADS",
    "BaseHead",
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
