"""Extractive question answering: :class:`ExtractiveQA`, a span head on frozen token states.

- :mod:`.features`: word-match features, character spans to tokens, default layers;
- :mod:`.network`: the trainable span network (:class:`SpanNet`) and its batching;
- :mod:`.training`: training pairs, the loop, checkpoints, calibration;
- :mod:`.head`: the estimator (windows, answers, saving) and :func:`train_qa`.
"""

from __future__ import annotations

from embedsuite.heads.qa.features import DEFAULT_LAYERS, char_span_to_tokens, match_features
from embedsuite.heads.qa.head import DEFAULT_HEAD_DIR, KIND, RESULT_KEYS, ExtractiveQA, train_qa
from embedsuite.heads.qa.network import SpanNet, best_spans, run_net

__all__ = [
    "DEFAULT_HEAD_DIR",
    "DEFAULT_LAYERS",
    "KIND",
    "RESULT_KEYS",
    "ExtractiveQA",
    "SpanNet",
    "best_spans",
    "char_span_to_tokens",
    "match_features",
    "run_net",
    "train_qa",
]
