"""The sentiment (text classification) head: :class:`SentimentClassifier`.

- :mod:`.head`: the estimator (linear probe or attention pooling), saving, the shipped head;
- :mod:`.networks`: the attention-pooling network and its training loop (torch).

Token features come from the shared
:class:`~embedsuite.encoders.token_store.TokenFeatureStore`.
"""

from __future__ import annotations

from embedsuite.heads.sentiment.head import (
    DEFAULT_HEAD_DIR,
    KINDS,
    STORE_LAYERS,
    SentimentClassifier,
    load_default,
)

__all__ = ["DEFAULT_HEAD_DIR", "KINDS", "STORE_LAYERS", "SentimentClassifier", "load_default"]
