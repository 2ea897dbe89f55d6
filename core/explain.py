"""Explanations that work across heads: word occlusion, token similarity maps, closest words.

- :func:`occlusion`: how much each word pushes a classifier's decision (the drop in the
  predicted class's probability when the word is removed).
- :func:`token_similarity`: a token-to-token cosine map between two texts (translation
  retrieval: query vs its best match).
- :func:`closest_words`: the words of a text whose token vectors lie closest to a given
  vector (recommendation: a candidate's words closest to the user profile).
- :func:`contextual_word`: one word's contextual vectors across sentences, their cosine
  matrix and each occurrence's nearest words ("bank" by a river vs at a counter).
"""

from __future__ import annotations

import bisect
import collections
import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedsuite.encoders.base import Encoder, Role, TokenEmbeddings
from embedsuite.validation import check_text

__all__ = ["ContextualWord", "Occurrence", "closest_words", "contextual_word", "occlusion",
           "occurrence_labels", "plot_contextual", "plot_token_map", "short_label", "stop_words",
           "token_similarity", "word_spans"]

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


@functools.cache
def _stop_lists() -> dict[str, frozenset[str]]:
    """Stop words per language: English from scikit-learn (318 words; stopwords-iso's
    English list also holds content words such as "world"), the other 57 languages from
    the ``stopwordsiso`` package (English only where it is missing)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    lists = {"en": frozenset(ENGLISH_STOP_WORDS)}
    try:
        import stopwordsiso
    except ImportError:  # pragma: no cover - a dependency; kept optional for products
        return lists
    for lang in sorted(stopwordsiso.langs()):
        if lang != "en":
            lists[lang] = frozenset(w.lower() for w in stopwordsiso.stopwords(lang))
    return lists


def stop_words(words: Sequence[str]) -> frozenset[str]:
    """The stop words of the language ``words`` are written in: of the lists of
    :func:`_stop_lists`, the one that holds the most of them (English on a tie, or when
    none holds any). A stop-word count is how language identifiers began (Grefenstette
    1995), and it needs no model."""
    lists = _stop_lists()
    lowered = [w.lower() for w in words]
    best, hits = "en", sum(w in lists["en"] for w in lowered)
    for lang, words_of in lists.items():
        n = sum(w in words_of for w in lowered)
        if n > hits:
            best, hits = lang, n
    return lists[best]


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the words and punctuation marks of ``text``.

    Scripts written without spaces (Chinese, Japanese, Thai) get one span per
    character, so that occlusion stays fine-grained there.
    """
    spans: list[tuple[int, int]] = []
    for m in _WORD.finditer(text):
        s, e = m.span()
        if e - s > 1 and any(_is_cjk(c) for c in text[s:e]):
            spans += [(i, i + 1) for i in range(s, e)]
        else:
            spans.append((s, e))
    return spans


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF
            or 0x0E00 <= o <= 0x0E7F or 0xF900 <= o <= 0xFAFF)


def occlusion(
    predict_proba: Callable[[list[str]], np.ndarray],
    classes: Sequence[str],
    text: str,
    target: str | None = None,
    *,
    max_words: int = 200,
) -> dict[str, Any]:
    """Word importance by occlusion: remove each word, see the target class's probability fall.

    Args:
        predict_proba: Texts -> ``(n, n_classes)`` probabilities.
        classes: Class names in ``predict_proba``'s column order.
        text: The text to explain.
        target: The class to explain (default: the predicted one).
        max_words: Texts with more words are refused (one forward pass per word).

    Returns:
        ``{"label", "score", "words": [{"word", "start", "end", "weight"}]}``; a positive
        weight means the word supports ``label`` (its removal lowers the probability).

    Raises:
        ValueError: Empty text, too many words, or an unknown target class.
    """
    check_text(text, "text")
    spans = word_spans(text)
    if len(spans) > max_words:
        raise ValueError(f"text has {len(spans)} words; occlusion explains at most {max_words} "
                         f"(one forward pass per word); explain a shorter excerpt")
    variants = [text] + [(text[:s] + text[e:]).strip() or "…" for s, e in spans]
    proba = np.asarray(predict_proba(variants), dtype=np.float64)
    cls = list(classes)
    k = int(np.argmax(proba[0])) if target is None else _index(cls, target)
    base = proba[0, k]
    words = [{"word": text[s:e], "start": s, "end": e,
              "weight": round(float(base - proba[i + 1, k]), 5)}
             for i, (s, e) in enumerate(spans)]
    return {"label": cls[k], "score": round(float(base), 5), "words": words}


def _index(classes: list[str], target: str) -> int:
    if target not in classes:
        raise ValueError(f"unknown class {target!r}; the classes are {classes}")
    return classes.index(target)


def token_similarity(encoder: Encoder, a: str, b: str, role: Role = "query"
                     ) -> tuple[TokenEmbeddings, TokenEmbeddings, np.ndarray]:
    """Cosine similarity of every token of ``a`` with every token of ``b`` (last layer)."""
    out = encoder.encode_tokens([check_text(a, "a"), check_text(b, "b")], role=role)
    if not isinstance(out, list):
        raise TypeError("encode_tokens(list) must return a list of TokenEmbeddings")
    ta, tb = out
    va = ta.vectors / np.maximum(np.linalg.norm(ta.vectors, axis=1, keepdims=True), 1e-12)
    vb = tb.vectors / np.maximum(np.linalg.norm(tb.vectors, axis=1, keepdims=True), 1e-12)
    return ta, tb, va @ vb.T


def plot_token_map(ta: TokenEmbeddings, tb: TokenEmbeddings, sim: np.ndarray,
                   title: str = "token similarity") -> Any:
    """A heat map of :func:`token_similarity` with the tokens as tick labels."""
    from embedsuite.plotting import new_figure

    la = [ta.text[s:e] for s, e in ta.offsets]
    lb = [tb.text[s:e] for s, e in tb.offsets]
    fig = new_figure(figsize=(max(4.0, 0.45 * len(lb) + 2), max(3.0, 0.35 * len(la) + 1.5)))
    ax = fig.subplots()
    im = ax.imshow(sim, cmap="magma", aspect="auto")
    ax.set_xticks(range(len(lb)), lb, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(la)), la, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


#: Token vectors of texts seen by :func:`closest_words` (the per-text work), by encoder,
#: role and text; a catalogue's items are read once, not at every request.
_WORD_MEMO: collections.OrderedDict[
    tuple[str, str, str], tuple[np.ndarray, list[tuple[int, tuple[int, int]]]]] = (
    collections.OrderedDict())
_WORD_MEMO_SIZE = 4096
_WORD_MEMO_LOCK = threading.Lock()


def _word_tokens(encoder: Encoder, text: str, role: Role
                 ) -> tuple[np.ndarray, list[tuple[int, tuple[int, int]]]]:
    """``text``'s unit token vectors and ``(token, word span)`` pairs: each token with
    every word of :func:`word_spans` it overlaps."""
    key = (str(encoder.fingerprint), str(role), text)
    with _WORD_MEMO_LOCK:
        hit = _WORD_MEMO.get(key)
        if hit is not None:
            _WORD_MEMO.move_to_end(key)
            return hit
    te = encoder.encode_tokens(check_text(text, "text"), role=role)
    if not isinstance(te, TokenEmbeddings):  # a str in gives one result
        raise TypeError("encode_tokens(str) must return one TokenEmbeddings")
    vecs = np.asarray(te.vectors, np.float32)
    toks = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    spans = word_spans(text)
    ends = [e for _, e in spans]
    pairs: list[tuple[int, tuple[int, int]]] = []
    for t, (ts, tend) in enumerate(np.asarray(te.offsets).reshape(-1, 2).tolist()):
        j = bisect.bisect_right(ends, ts)  # the first word ending after the token starts
        while j < len(spans) and spans[j][0] < tend:
            pairs.append((t, spans[j]))
            j += 1
    out = (toks, pairs)
    with _WORD_MEMO_LOCK:
        _WORD_MEMO[key] = out
        while len(_WORD_MEMO) > _WORD_MEMO_SIZE:
            _WORD_MEMO.popitem(last=False)
    return out


def closest_words(encoder: Encoder, text: str, vector: np.ndarray, *, role: Role = "passage",
                  top: int = 5) -> list[dict[str, Any]]:
    """The words of ``text`` whose token vectors are closest (cosine) to ``vector``.

    Sub-word tokens are merged back into the words of :func:`word_spans`; a word's
    score is the best of its tokens. Repeats, punctuation, words of one or two letters
    and the stop words of the text's language (:func:`stop_words`) are skipped. A
    text's token vectors are computed once per encoder and role (an LRU of the last
    4,096 texts), so only the comparison runs per call.
    """
    toks, pairs = _word_tokens(encoder, text, role)
    if len(toks) == 0:
        return []
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.shape[0] != toks.shape[1]:
        raise ValueError(f"vector has {v.shape[0]} dims, the encoder's tokens have "
                         f"{toks.shape[1]}; use a vector from the same encoder")
    sims = (toks @ _unit(v)).tolist()
    best: dict[tuple[int, int], float] = {}
    for t, span in pairs:
        best[span] = max(best.get(span, -1.0), sims[t])
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    stops = stop_words([text[s:e] for s, e in word_spans(text)])
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for (s, e), sc in ranked:
        word = text[s:e]
        key = word.lower()
        # skip punctuation, repeats and 1-2 letter function words (CJK characters stay)
        if key in seen or key in stops or not any(ch.isalnum() for ch in word) or (
                len(word) < 3 and not any(_is_cjk(ch) for ch in word)):
            continue
        seen.add(key)
        out.append({"word": word, "start": s, "end": e, "score": round(sc, 4)})
    return out[:top]


# --- contextual embeddings: one word, several sentences ---------------------------------

@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a word in a sentence and its contextual vector.

    Attributes:
        sentence: Index of the sentence (0-based) in the list given.
        text: The sentence.
        start: Where the word starts in ``text``.
        end: Where it ends.
        vector: Unit mean of the word's token vectors (sub-word tokens merged).
    """

    sentence: int
    text: str
    start: int
    end: int
    vector: np.ndarray


@dataclass(frozen=True)
class ContextualWord:
    """:func:`contextual_word`'s answer: the occurrences, their cosine matrix, and the
    nearest words of each (``[(word, sentence index, cosine), ...]``, best first)."""

    word: str
    occurrences: list[Occurrence]
    similarity: np.ndarray
    nearest: list[list[tuple[str, int, float]]]
    centred: bool = False


def _word_pattern(word: str) -> re.Pattern[str]:
    """``word`` anywhere as a whole word (any case); inside CJK text without boundaries."""
    body = re.escape(word)
    if any(_is_cjk(c) for c in word):
        return re.compile(body, re.IGNORECASE)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / max(float(np.linalg.norm(v)), 1e-12), np.float32)


def _span_vector(te: TokenEmbeddings, start: int, end: int, shift: np.ndarray | None = None
                 ) -> np.ndarray | None:
    """Unit mean of the token vectors of ``te`` overlapping ``[start, end)`` (minus
    ``shift`` before the norm)."""
    offs = np.asarray(te.offsets).reshape(-1, 2)
    hit = (offs[:, 0] < end) & (offs[:, 1] > start) & (offs[:, 1] > offs[:, 0])
    if not hit.any():
        return None
    v = np.asarray(te.vectors, np.float32)[hit].mean(axis=0)
    return _unit(v if shift is None else v - shift)


def short_label(text: str, width: int = 28) -> str:
    """``text`` cut to ``width`` characters with an ellipsis (plot and table labels)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def contextual_word(encoder: Encoder, word: str, sentences: Sequence[str], *,
                    role: Role = "query", top: int = 5, centre: bool = False
                    ) -> ContextualWord:
    """The contextual vectors of ``word`` in each sentence, how alike they are, and what
    each is closest to.

    Each occurrence (case-insensitive, whole word) takes the mean of its token vectors
    (sub-word tokens merged back into the word). Its nearest words are the other words
    of all the sentences (each word's tokens merged the same way), skipping ``word``
    itself wherever it occurs (the matrix compares those), punctuation, words of one or
    two letters and stop words; a word found in several sentences counts once, at its
    best.

    With ``centre``, the mean token vector of all the sentences is taken off every vector
    before the cosine: the token vectors of an encoder share one large direction (they
    are anisotropic, cosines of 0.8-0.95 between any two words), and removing it lets
    the differences between contexts show.

    Raises:
        ValueError: An empty word, fewer than two sentences, or a sentence without the
            word (the message names it and says how to fix it).
    """
    word = check_text(word, "word").strip()
    texts = [check_text(s, f"sentence {i + 1}").strip() for i, s in enumerate(sentences)]
    if len(texts) < 2:
        raise ValueError(f"{len(texts)} sentence given; compare the word in at least two "
                         f"sentences (one per line).")
    pat = _word_pattern(word)
    for i, t in enumerate(texts, 1):
        if not pat.search(t):
            raise ValueError(
                f"Sentence {i} ({short_label(t, 60)!r}) does not contain the word {word!r}. "
                f"Every sentence should use it (any upper/lower case, as a whole word); "
                f"add it to that sentence or remove the line.")
    out = encoder.encode_tokens(texts, role=role)
    if not isinstance(out, list):
        raise TypeError("encode_tokens(list) must return a list of TokenEmbeddings")
    shift = (np.concatenate([np.asarray(te.vectors, np.float32) for te in out]).mean(axis=0)
             if centre else None)
    occs: list[Occurrence] = []
    words: list[tuple[str, int, np.ndarray]] = []
    for i, (t, te) in enumerate(zip(texts, out, strict=True)):
        found = False
        for m in pat.finditer(t):
            v = _span_vector(te, m.start(), m.end(), shift)
            if v is not None:
                occs.append(Occurrence(i, t, m.start(), m.end(), v))
                found = True
        if not found:
            raise ValueError(f"Sentence {i + 1} ({short_label(t, 60)!r}) was cut at the "
                             f"encoder's length limit before the word {word!r}; shorten it.")
        stops = stop_words([t[s:e] for s, e in word_spans(t)])
        for s, e in word_spans(t):
            w = t[s:e]
            if (pat.fullmatch(w) or w.lower() in stops or not any(c.isalnum() for c in w)
                    or (len(w) < 3 and not any(_is_cjk(c) for c in w))):
                continue
            v = _span_vector(te, s, e, shift)
            if v is not None:
                words.append((w, i, v))
    mat = np.stack([o.vector for o in occs])
    sim = np.clip(mat @ mat.T, -1.0, 1.0)
    nearest: list[list[tuple[str, int, float]]] = []
    if words:
        wmat = np.stack([v for _, _, v in words])
        for o in occs:
            scores = wmat @ o.vector
            best: dict[str, tuple[str, int, float]] = {}
            for j in np.argsort(-scores).tolist():
                w, i, _ = words[j]
                if w.lower() not in best:
                    best[w.lower()] = (w, i, round(float(scores[j]), 4))
                if len(best) >= top:
                    break
            nearest.append(list(best.values()))
    else:
        nearest = [[] for _ in occs]
    return ContextualWord(word, occs, sim, nearest, centre)


def _window(text: str, start: int, end: int, width: int) -> str:
    """About ``width`` characters of ``text`` around ``text[start:end]``, with ellipses."""
    if len(text) <= width:
        return text
    left = max(0, start - max(0, width - (end - start)) // 3)
    right = min(len(text), max(end, left + width))
    left = max(0, min(left, right - width))
    while 0 < left < start and text[left - 1].isalnum():  # start at a word
        left += 1
    while end < right < len(text) and text[right].isalnum():  # end at a word
        right -= 1
    return (("…" if left > 0 else "") + text[left:right].strip()
            + ("…" if right < len(text) else ""))


def occurrence_labels(result: ContextualWord, width: int = 28) -> list[str]:
    """``S2: …the river bank was…`` per occurrence: the sentence around the word (cut to
    about ``width`` characters), ``#2`` for a second occurrence in one sentence."""
    labels, seen = [], collections.Counter[int]()
    for o in result.occurrences:
        seen[o.sentence] += 1
        n = seen[o.sentence]
        labels.append(f"S{o.sentence + 1}{f' #{n}' if n > 1 else ''}: "
                      f"{_window(o.text, o.start, o.end, width)}")
    return labels


def plot_contextual(result: ContextualWord, title: str | None = None) -> Any:
    """Heat map of the occurrences' cosine similarities, on one fixed scale (0 to 1; a
    negative cosine, possible once centred, takes the colour of 0)."""
    from embedsuite.plotting import new_figure

    labels = occurrence_labels(result)
    n = len(labels)
    fig = new_figure(figsize=(max(5.0, 0.7 * n + 4.5), max(3.5, 0.5 * n + 2.0)))
    ax = fig.subplots()
    im = ax.imshow(result.similarity, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(n), [f"S{o.sentence + 1}" for o in result.occurrences], fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                v = float(result.similarity[i, j])
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if v > 0.55 else "white")
    fig.colorbar(im, ax=ax, fraction=0.04, extend="min",
                 label="cosine (centred)" if result.centred else "cosine")
    ax.set_title(title or f"{result.word!r} in each sentence: cosine of its contextual vectors"
                          f"{' (shared direction removed)' if result.centred else ''}",
                 fontsize=9)
    fig.tight_layout()
    return fig
