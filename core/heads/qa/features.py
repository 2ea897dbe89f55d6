"""Inputs of the QA span network besides the frozen token states: word-match features,
and the mapping of character answer spans onto tokens."""

from __future__ import annotations

import re
import unicodedata

import numpy as np

__all__ = ["DEFAULT_LAYERS", "N_MATCH_FEATURES", "char_span_to_tokens", "match_features"]

#: hidden states concatenated as token features (0 = embeddings, 12 = last of e5-small)
DEFAULT_LAYERS: tuple[int, ...] = (3, 6, 9, 12)
N_FLAGS = 3
#: flags, plus their densities within +-4 and +-12 tokens (how close a token is to matches)
N_MATCH_FEATURES = 3 * N_FLAGS
_NEAR = (4, 12)
_WORD = re.compile(r"\w+", re.UNICODE)


def _is_cjk(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def match_features(question: str, context: str, offsets: np.ndarray) -> np.ndarray:
    """Per context token: does it, or its word, occur in the question?

    Three flags per token (language-agnostic, computed on the original text):
    the token's word (a ``\\w+`` run around it) is a question word; the token's
    text (3+ characters, or any CJK character) occurs in the question; the
    token's text is a whole question word. Then the share of flagged tokens
    within 4 and within 12 tokens of each token (answers sit near matches).

    Args:
        question: The question.
        context: The text the offsets point into.
        offsets: ``(n, 2)`` character spans of the context tokens.

    Returns:
        ``(n, 9)`` float32 in [0, 1].
    """
    q = _fold(question)
    q_words = set(_WORD.findall(q))
    words = [(m.start(), m.end()) for m in _WORD.finditer(context)]
    out = np.zeros((len(offsets), N_MATCH_FEATURES), np.float32)
    flags = out[:, :N_FLAGS]
    wi = 0
    for i, (s, e) in enumerate(np.asarray(offsets).tolist()):
        piece = _fold(context[s:e]).strip()
        core = "".join(ch for ch in piece if ch.isalnum())
        while wi < len(words) and words[wi][1] <= s:
            wi += 1
        if wi < len(words) and words[wi][0] < e:
            w = _fold(context[words[wi][0] : words[wi][1]])
            if w in q_words and not (len(w) > 4 and all(_is_cjk(c) for c in w)):
                flags[i, 0] = 1.0
        if core and (len(core) >= 3 or any(_is_cjk(c) for c in core)) and core in q:
            flags[i, 1] = 1.0
        if core and core in q_words:
            flags[i, 2] = 1.0
    if len(out):
        csum = np.concatenate([np.zeros((1, N_FLAGS), np.float32), np.cumsum(flags, 0)])
        idx = np.arange(len(out))
        for k, r in enumerate(_NEAR, 1):
            lo, hi = np.maximum(idx - r, 0), np.minimum(idx + r + 1, len(out))
            out[:, k * N_FLAGS : (k + 1) * N_FLAGS] = (csum[hi] - csum[lo]) / (2 * r + 1)
    return out


def char_span_to_tokens(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """Token indices ``(i, j)`` covering the character span ``[start, end)``, or None."""
    if len(offsets) == 0 or end <= start:
        return None
    ends, starts = offsets[:, 1], offsets[:, 0]
    i = int(np.searchsorted(ends, start, side="right"))
    j = int(np.searchsorted(starts, end, side="left")) - 1
    if i >= len(offsets) or j < i:
        return None
    return i, j
