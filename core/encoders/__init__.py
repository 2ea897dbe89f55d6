"""The encoder layer: the ``Encoder`` protocol, the built-in encoders and their registry.

>>> from embedsuite.encoders import get_encoder
>>> enc = get_encoder("e5-small")            # the default, shared by every head
>>> enc.encode("hello", role="query").shape
(384,)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from embedsuite.encoders.base import ROLES, BaseEncoder, Encoder, Role, TokenEmbeddings
from embedsuite.encoders.e5 import E5SmallEncoder
from embedsuite.encoders.int8 import E5SmallInt8Encoder
from embedsuite.encoders.others import MiniLMEncoder, TfidfEncoder, USEEncoder
from embedsuite.encoders.st import SentenceTransformerEncoder
from embedsuite.registry import Registry

__all__ = [
    "DEFAULT_ENCODER",
    "ENCODERS",
    "ROLES",
    "BaseEncoder",
    "Encoder",
    "Role",
    "SentenceTransformerEncoder",
    "TokenEmbeddings",
    "get_encoder",
    "list_encoders",
]

DEFAULT_ENCODER = "e5-small"

ENCODERS: Registry[Callable[[], BaseEncoder]] = Registry("encoder")
ENCODERS.register("e5-small", E5SmallEncoder)
ENCODERS.register("e5-small-int8", E5SmallInt8Encoder)
ENCODERS.register("minilm-l6", MiniLMEncoder)
ENCODERS.register("use-m3", USEEncoder)
ENCODERS.register("tfidf", TfidfEncoder)

_INSTANCES: dict[str, BaseEncoder] = {}
_LOCK = threading.Lock()


def get_encoder(name: str | os.PathLike[str] = DEFAULT_ENCODER, *, shared: bool = True
                ) -> BaseEncoder:
    """Return the encoder registered as ``name``, or a local sentence-transformers folder.

    Args:
        name: A registered name (``e5-small``, ``e5-small-int8``, ``minilm-l6``, ``use-m3``,
            ``tfidf``) or the path of a sentence-transformers folder.
        shared: Return the one process-wide instance (loaded once, shared by every head).
            ``tfidf`` is never shared since each use fits it on its own corpus.

    Raises:
        UnknownNameError: Neither a registered name nor an existing folder
            (the message suggests close names).
    """
    key = str(name)
    if key not in ENCODERS and (os.sep in key or key.startswith(".")) and Path(key).is_dir():
        path = Path(key).resolve()
        key = str(path)
        factory: Callable[[], BaseEncoder] = lambda: SentenceTransformerEncoder(path)  # noqa: E731
    else:
        factory = ENCODERS.get(key)
    if not shared or key == "tfidf":
        return factory()
    with _LOCK:
        if key not in _INSTANCES:
            _INSTANCES[key] = factory()
        return _INSTANCES[key]


def list_encoders() -> list[dict[str, object]]:
    """``describe()`` of every registered encoder (without loading weights)."""
    return [get_encoder(n).describe() for n in ENCODERS.names()]
