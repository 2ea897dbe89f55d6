"""The translation retrieval head: :class:`TranslationRetriever`.

Two scores are available:

* ``"cosine"``: the cosine of the two sentence vectors.
* ``"margin"`` (default): the ratio margin of Artetxe & Schwenk (2019),
  ``cos(x, y) / ((r_x + r_y) / 2)``, where ``r_x`` is the mean cosine of ``x``
  to its ``k`` nearest candidates and ``r_y`` the mean cosine of ``y`` to its
  ``k`` nearest sentences on the query side (``k = 4``). It discounts "hub"
  sentences that are close to everything, which plain cosine ranks too high.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal, overload

import numpy as np

from embedsuite.encoders.base import Encoder, Role, check_role
from embedsuite.heads.base import HEADS, BaseHead
from embedsuite.heads.translation.mining import (
    DEFAULT_MINE_THRESHOLD,
    DEFAULT_MINE_THRESHOLD_RAW,
    mine_pairs,
)
from embedsuite.heads.translation.saved import (
    HEAD_VERSION,
    migrate_v1,
    pack_index,
    unpack_index,
)
from embedsuite.heads.translation.scoring import (
    DEFAULT_BLOCK_BYTES,
    MIN_CENTER,
    Scoring,
    as_matrix,
    center,
    check_scoring,
    knn_mean,
    knn_search,
    margin_scores,
)
from embedsuite.validation import as_text_list

logger = logging.getLogger(__name__)

__all__ = ["TranslationRetriever"]

_KIND = "translation-index"


@HEADS.register(_KIND)
class TranslationRetriever(BaseHead):
    """Find translations among candidate sentences; mine parallel sentences.

    >>> tr = TranslationRetriever().index(["The cat sleeps.", "Il pleut.", "Es ist kalt."])
    >>> tr.search("Le chat dort.", top_k=1)[0]["text"]  # doctest: +SKIP
    'The cat sleeps.'

    Args:
        encoder: The shared encoder (``None``: the default encoder, resolved on first use).
        scoring: ``"margin"`` (default) or ``"cosine"``.
        k: Neighbourhood size of the margin (4, as in Artetxe & Schwenk 2019).
        role: The encoder role used on BOTH sides (``"query"``, measured best for
            e5-small on Tatoeba; see docs/translation.md).
        center: Remove each side's mean vector before scoring (:func:`center`)
            when both sides have one: the candidates' (at least :data:`MIN_CENTER`)
            and the query side's, from ``reference`` or from the queries of a call
            (at least :data:`MIN_CENTER` of them). Single queries are scored on the
            raw vectors (centering one side only was measured to hurt). Measured on
            Tatoeba: +1.5 points of margin accuracy (docs/translation.md).
        shortlist: With the margin, how many cosine neighbours of a query are
            re-scored (at least ``top_k``); the margin winner is almost always among them.
        batch_size: Encoding batch size.
        block_bytes: Memory bound of one similarity block in the neighbour searches.

    Fitted attributes (set by :meth:`index` / :meth:`fit` or :meth:`load`): ``texts_``,
    ``embeddings_`` (raw candidate vectors) and ``reference_`` (``None`` without one).
    """

    kinds: ClassVar[tuple[str, ...]] = (_KIND,)
    what: ClassVar[str] = "translation index"
    _fitted: ClassVar[tuple[str, ...]] = ("texts_", "embeddings_")
    head_version: ClassVar[int] = HEAD_VERSION
    _migrations: ClassVar[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {
        1: migrate_v1}

    texts_: list[str]
    embeddings_: np.ndarray
    reference_: np.ndarray | None

    def __init__(
        self,
        encoder: Encoder | None = None,
        *,
        scoring: Scoring = "margin",
        k: int = 4,
        role: Role = "query",
        center: bool = True,
        shortlist: int = 32,
        batch_size: int = 32,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
    ) -> None:
        self.encoder = encoder
        self.scoring = scoring
        self.k = k
        self.role = role
        self.center = center
        self.shortlist = shortlist
        self.batch_size = batch_size
        self.block_bytes = block_bytes

    # -- helpers ------------------------------------------------------------
    def _fitted_index(self) -> tuple[list[str], np.ndarray]:
        """``(texts, raw candidate vectors)``; NotFittedError before :meth:`index`."""
        self._check_fitted()
        return self.texts_, self.embeddings_

    def _space(self, centered: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Candidates, reference and ``r_y`` memo in raw or centred form (built lazily)."""
        texts, emb = self._fitted_index()
        key = "centered" if centered else "raw"
        if key not in self._spaces:
            ref = self.reference_
            if centered:
                cand = center(emb)
                ref = None if ref is None else center(ref)
            else:
                cand = emb
            self._spaces[key] = (cand, ref, np.full(len(texts), np.nan, np.float32))
        return self._spaces[key]

    def _query_mean(self, q: np.ndarray) -> np.ndarray | None:
        """The query side's mean for centering, or None when it cannot be estimated."""
        if not self.center or len(self) < MIN_CENTER:
            return None
        if self.reference_ is not None:
            return self.reference_.mean(axis=0) if len(self.reference_) >= MIN_CENTER else None
        return q.mean(axis=0) if len(q) >= MIN_CENTER else None

    def _check_params(self) -> None:
        check_scoring(self.scoring)
        check_role(self.role)
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be an int >= 1 (neighbours in the margin), got {self.k!r}")
        if not isinstance(self.shortlist, int) or self.shortlist < 1:
            raise ValueError(f"shortlist must be an int >= 1, got {self.shortlist!r}")

    def _encode(self, texts: list[str], show_progress: bool | None = None) -> np.ndarray:
        """forward: the only place that touches the encoder."""
        if not texts:
            return np.zeros((0, self.active_encoder.dim), np.float32)
        return np.asarray(self.active_encoder.encode(
            texts, role=self.role, batch_size=self.batch_size, show_progress=show_progress),
            np.float32)

    # -- building -----------------------------------------------------------
    def index(
        self,
        candidates: Sequence[str],
        reference: Sequence[str] | None = None,
        *,
        show_progress: bool | None = None,
    ) -> TranslationRetriever:
        """Embed the candidate sentences (any languages) and keep them for :meth:`search`.

        Args:
            candidates: The sentences to search in (at least 2).
            reference: Optional sentences from the QUERY side (e.g. the whole source
                corpus), the candidates' margin neighbourhood as in Artetxe &
                Schwenk. Without it, the queries of each :meth:`search` call are
                used: a batch of many queries gets the full margin, while a single
                query ranks exactly as under cosine (its margin values are still
                given). Measured on Tatoeba (docs/translation.md): using the
                candidates' own neighbours instead LOWERS accuracy, so it is not offered.
            show_progress: Progress bars.

        Returns:
            self
        """
        self._check_params()
        if isinstance(candidates, str):
            raise TypeError("candidates must be a list of str (at least 2 sentences), got one "
                            "str; wrap it in a list or split it into lines")
        items, _ = as_text_list(candidates, "candidates")
        if len(items) < 2:
            raise ValueError(f"candidates must hold at least 2 sentences, got {len(items)}; "
                             f"a translation search needs something to choose from")
        ref_items: list[str] | None = None
        if reference is not None:
            if isinstance(reference, str):
                raise TypeError("reference must be a list of str, got one str")
            ref_items, _ = as_text_list(reference, "reference")
        self._resolve_encoder()  # fixed for this fit (the given one, else the default)
        emb = self._encode(items, show_progress)
        ref = None if ref_items is None else self._encode(ref_items, show_progress)
        return self._set_index(items, emb, ref)

    def index_embeddings(
        self, texts: Sequence[str], embeddings: np.ndarray, reference: np.ndarray | None = None
    ) -> TranslationRetriever:
        """Use precomputed L2-normalised candidate vectors (e.g. from a large batch job)."""
        self._check_params()
        items, _ = as_text_list(list(texts), "texts")
        emb = as_matrix(embeddings, "embeddings")
        if emb.shape[0] != len(items):
            raise ValueError(f"{len(items)} texts but {emb.shape[0]} embedding rows; "
                             f"give one row per text")
        if len(items) < 2:
            raise ValueError(f"candidates must hold at least 2 sentences, got {len(items)}")
        ref = None if reference is None else as_matrix(reference, "reference")
        if ref is not None and ref.shape[1] != emb.shape[1]:
            raise ValueError(f"reference has dim {ref.shape[1]}, embeddings {emb.shape[1]}")
        return self._set_index(items, emb, ref)

    def _set_index(self, items: list[str], emb: np.ndarray, ref: np.ndarray | None
                   ) -> TranslationRetriever:
        self.texts_ = items
        self.embeddings_ = np.ascontiguousarray(emb, np.float32)
        self.reference_ = None if ref is None else np.ascontiguousarray(ref, np.float32)
        # per space ("raw" / "centered"): candidate matrix, reference matrix, r_y memo
        self._spaces: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}
        self._vindexes: list[tuple[np.ndarray, Any]] = []
        logger.info("indexed %d candidates (reference: %s)", len(items),
                    "none" if ref is None else f"{ref.shape[0]} sentences")
        return self

    fit = index  # sklearn-style alias: ``fit(candidates)`` returns self

    # -- large candidate sets: shards and a vector index (docs/scale-out.md) ----------
    def index_shards(
        self,
        folder: str | os.PathLike[str],
        texts: Sequence[str] | None = None,
        reference: np.ndarray | None = None,
    ) -> TranslationRetriever:
        """Use the candidate vectors of an ``embedsuite embed-corpus`` shards folder.

        The vectors stay on disk (memory-mapped ``embeddings.npy`` beside the shards,
        see :func:`embedsuite.shards.load_embeddings`); above the vector index's exact
        threshold the candidate search runs on a :class:`embedsuite.index.VectorIndex`
        (see :meth:`use_vector_index`).

        Args:
            folder: The shards folder (embedded with this retriever's encoder; best
                with ``--role query``, the role this head encodes with).
            texts: The candidate sentences in row order (default: the texts kept in
                the shards with ``--keep-text``, else the row ids).
            reference: Optional query-side vectors for the margin (see :meth:`index`).

        Raises:
            ShardError: Unfinished, corrupted or other-encoder shards (says how to fix).
            ValueError: ``texts`` has another length than the shards.
        """
        from embedsuite.shards import load_embeddings

        emb = load_embeddings(folder, encoder=self._resolve_encoder())
        if emb.manifest.get("role") != self.role:
            logger.warning("%s was embedded with role %r but this retriever encodes queries "
                           "with role %r; embed with --role %s for comparable scores", folder,
                           emb.manifest.get("role"), self.role, self.role)
        if texts is None:
            texts = emb.texts if emb.texts is not None else emb.ids
        elif len(texts) != len(emb):
            raise ValueError(f"{len(texts)} texts but {len(emb)} rows in {folder}; give one "
                             f"text per row, in row order")
        return self.index_embeddings(texts, emb.vectors, reference)

    def use_vector_index(self, **options: Any) -> TranslationRetriever:
        """Options of the :class:`embedsuite.index.VectorIndex` used for candidate search.

        Up to ``exact_threshold`` candidates (default 50,000) the exact blockwise search
        is kept (identical results); above it an IVF index is built once per candidate
        space on the first search and reused. E.g. ``use_vector_index(storage="f16")``.
        """
        self._vindex_options = dict(options)
        self._vindexes = []
        return self

    def _candidate_knn(self, q: np.ndarray, emb: np.ndarray, k: int,
                       show_progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` candidates of each query: exact below the index threshold, else IVF."""
        from embedsuite.index import VectorIndex

        opts = dict(getattr(self, "_vindex_options", {}))
        threshold = int(opts.get("exact_threshold", VectorIndex().exact_threshold))
        if len(emb) <= threshold:
            return knn_search(q, emb, k, block_bytes=self.block_bytes,
                              show_progress=show_progress)
        live = [space[0] for space in self._spaces.values()]
        kept = [(m, ix) for m, ix in getattr(self, "_vindexes", [])
                if any(m is x for x in live)]
        found = next((ix for m, ix in kept if m is emb), None)
        if found is None:
            logger.info("building a vector index over %d candidates", len(emb))
            found = VectorIndex(**opts).build(emb)
            kept.append((emb, found))
        self._vindexes = kept
        s, i = found.search(q, k)
        bad = np.flatnonzero((i < 0).any(axis=1))
        if bad.size:  # an IVF probe found fewer than k: those queries search exactly
            s[bad], i[bad] = knn_search(q[bad], emb, k, block_bytes=self.block_bytes)
        return s.astype(np.float32), i.astype(np.int64)

    def __len__(self) -> int:
        texts = getattr(self, "texts_", None)
        return 0 if texts is None else len(texts)

    # -- margin pieces --------------------------------------------------------
    def _candidate_r(self, ids: np.ndarray, batch: np.ndarray, centered: bool,
                     show_progress: bool | None = None) -> np.ndarray:
        """Source-side neighbourhood means ``r_y`` of candidates ``ids``.

        With a ``reference`` given at :meth:`index` time they are computed against
        it once and memoised; otherwise against the queries of this call (``batch``).
        """
        cand, ref, memo = self._space(centered)
        ids = np.asarray(ids, np.int64)
        flat = np.unique(ids)
        if ref is None:
            r = knn_mean(cand[flat], batch, self.k, block_bytes=self.block_bytes,
                         show_progress=show_progress)
            return r[np.searchsorted(flat, ids)]
        missing = flat[np.isnan(memo[flat])]
        if missing.size:
            memo[missing] = knn_mean(cand[missing], ref, self.k, block_bytes=self.block_bytes,
                                     show_progress=show_progress)
        return memo[ids]

    # -- searching ------------------------------------------------------------
    @overload
    def search(self, queries: str, top_k: int = ..., *,  # type: ignore[overload-overlap]
               scoring: Scoring | None = ..., show_progress: bool | None = ...
               ) -> list[dict[str, Any]]: ...
    @overload
    def search(self, queries: Sequence[str], top_k: int = ..., *,
               scoring: Scoring | None = ..., show_progress: bool | None = ...
               ) -> list[list[dict[str, Any]]]: ...

    def search(
        self,
        queries: str | Sequence[str],
        top_k: int = 5,
        *,
        scoring: Scoring | None = None,
        show_progress: bool | None = None,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """Rank the indexed candidates as translations of each query.

        Under the margin, the ``shortlist`` best candidates by cosine are re-scored;
        the candidates' source-side neighbourhood comes from the index's
        ``reference`` or, without one, from the queries of this call (so a batch of
        source sentences searched together gets the full Artetxe & Schwenk margin).

        Args:
            queries: One sentence or a list of sentences (any language).
            top_k: How many candidates to return per query (capped at the index size).
            scoring: Override the head's scoring (``"margin"`` or ``"cosine"``).
            show_progress: Progress bars.

        Returns:
            For a str, a list of ``{"text", "index", "score", "cosine", "margin"}``
            best first (``score`` is the chosen scoring's value; ``cosine`` is that
            of the scored vectors, i.e. after centering when it applies; ``margin``
            is ``None`` under cosine scoring); for a list, one such list per query.

        Raises:
            NotFittedError: :meth:`index` was not called.
        """
        self._check_fitted()
        items, single = as_text_list(queries, "queries")
        if not items:  # an empty list of queries: nothing to rank
            return []
        q = self._encode(items, show_progress)
        scores = self.search_embeddings(q, top_k, scoring=scoring, show_progress=show_progress)
        return scores[0] if single else scores

    def search_embeddings(
        self,
        query_vectors: np.ndarray,
        top_k: int = 5,
        *,
        scoring: Scoring | None = None,
        show_progress: bool | None = None,
    ) -> list[list[dict[str, Any]]]:
        """:meth:`search` for precomputed query vectors ``(n, dim)``."""
        texts, raw = self._fitted_index()
        sc = check_scoring(self.scoring if scoring is None else scoring)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        q = as_matrix(query_vectors, "query_vectors")
        if q.shape[1] != raw.shape[1]:
            raise ValueError(f"query vectors have dim {q.shape[1]}, the index {raw.shape[1]}")
        q_mean = self._query_mean(q)
        centered = q_mean is not None
        if centered:
            q = center(q, q_mean)
        emb, _, _ = self._space(centered)
        n_cand = len(texts)
        kk = min(top_k, n_cand)
        if sc == "cosine":
            cs, ci = self._candidate_knn(q, emb, kk, show_progress)
            return [[self._hit(texts, int(j), float(s), float(s), None)
                     for s, j in zip(cr, ir, strict=True)]
                    for cr, ir in zip(cs, ci, strict=True)]
        wide = min(n_cand, max(kk, self.shortlist, self.k))
        cs, ci = self._candidate_knn(q, emb, wide, show_progress)
        r_x = cs[:, : min(self.k, cs.shape[1])].mean(axis=1)
        r_y = self._candidate_r(ci, q, centered, show_progress)
        ms = margin_scores(cs, r_x, r_y)
        out = []
        for row_m, row_c, row_i in zip(ms, cs, ci, strict=True):
            order = np.argsort(-row_m, kind="stable")[:kk]
            out.append([self._hit(texts, int(row_i[o]), float(row_m[o]), float(row_c[o]),
                                  float(row_m[o])) for o in order])
        return out

    @staticmethod
    def _hit(texts: list[str], j: int, score: float, cos: float, margin: float | None
             ) -> dict[str, Any]:
        return {"text": texts[j], "index": j, "score": round(score, 6),
                "cosine": round(cos, 6), "margin": None if margin is None else round(margin, 6)}

    def auto_threshold(self, n_src: int, n_tgt: int, scoring: Scoring | None = None
                       ) -> float | None:
        """The threshold ``mine(threshold="auto")`` uses for sides of these sizes."""
        sc = check_scoring(self.scoring if scoring is None else scoring)
        if sc == "cosine":
            return None
        both = bool(self.center) and min(n_src, n_tgt) >= MIN_CENTER
        return DEFAULT_MINE_THRESHOLD if both else DEFAULT_MINE_THRESHOLD_RAW

    def _pair_space(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both sides centred when ``center`` and both have :data:`MIN_CENTER` rows, else raw."""
        both = bool(self.center) and min(len(a), len(b)) >= MIN_CENTER
        return (center(a), center(b)) if both else (a, b)

    # -- mining -----------------------------------------------------------------
    def mine(
        self,
        src: Sequence[str],
        tgt: Sequence[str],
        threshold: float | Literal["auto"] | None = "auto",
        *,
        scoring: Scoring | None = None,
        show_progress: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Find the translation pairs between two unaligned lists (LASER "max" strategy).

        Needs no :meth:`index`; each sentence is used at most once.

        Args:
            src: Sentences of one side (any language).
            tgt: Sentences of the other side.
            threshold: Minimum score of a kept pair (``None``: keep all). ``"auto"``:
                under the margin :data:`DEFAULT_MINE_THRESHOLD` when both sides are
                centred (both have :data:`MIN_CENTER` sentences or more), else
                :data:`DEFAULT_MINE_THRESHOLD_RAW` (both calibrated for e5-small on
                Tatoeba); under cosine no threshold (pick your own: e5 cosines of
                unrelated sentences sit around 0.75).
            scoring: Override the head's scoring.
            show_progress: Progress bars.

        Returns:
            ``{"source", "target", "source_index", "target_index", "score", "cosine"}``
            dicts, best score first.
        """
        self._check_params()
        sc = check_scoring(self.scoring if scoring is None else scoring)
        if threshold is not None and threshold != "auto" and (
                isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                or not math.isfinite(threshold)):
            raise ValueError(f"threshold must be a finite number, 'auto' or None, got "
                             f"{threshold!r}")
        for name, side in (("src", src), ("tgt", tgt)):
            if isinstance(side, str):
                raise TypeError(f"{name} must be a list of str, got one str; split it into lines")
        s_items, _ = as_text_list(src, "src")
        t_items, _ = as_text_list(tgt, "tgt")
        if not s_items or not t_items:
            raise ValueError(f"both sides need at least one sentence, got {len(s_items)} "
                             f"source and {len(t_items)} target sentences")
        a, b = self._pair_space(self._encode(s_items, show_progress),
                                self._encode(t_items, show_progress))
        th = self.auto_threshold(len(a), len(b), sc) if threshold == "auto" else threshold
        pairs = mine_pairs(a, b, k=self.k, threshold=th, scoring=sc,
                           block_bytes=self.block_bytes, show_progress=show_progress)
        return [{"source": s_items[i], "target": t_items[j], "source_index": i,
                 "target_index": j, "score": round(s, 6), "cosine": round(c, 6)}
                for i, j, s, c in pairs]

    def similarity(self, src: Sequence[str], tgt: Sequence[str]) -> dict[str, np.ndarray]:
        """Full cosine and margin matrices of two SMALL lists (for plots); ``(n, m)`` each."""
        self._check_params()
        s_items, _ = as_text_list(list(src), "src")
        t_items, _ = as_text_list(list(tgt), "tgt")
        a, b = self._pair_space(self._encode(s_items), self._encode(t_items))
        cos = a @ b.T
        kk = self.k
        r_a = np.sort(cos, axis=1)[:, ::-1][:, : min(kk, cos.shape[1])].mean(axis=1)
        r_b = np.sort(cos.T, axis=1)[:, ::-1][:, : min(kk, cos.shape[0])].mean(axis=1)
        return {"cosine": cos.astype(np.float32), "margin": margin_scores(cos, r_a, r_b[None, :])}

    # -- persistence (the layout: embedsuite.heads.translation.saved) --------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Texts, vectors and reference as sidecars; ``config.json`` keeps only counts."""
        texts, emb = self._fitted_index()
        return pack_index(texts, emb, self.reference_)

    def _restore(self, config: dict[str, Any], tensors: dict[str, np.ndarray],
                 sidecars: dict[str, np.ndarray]) -> None:
        """The fitted index from a saved folder (vectors memory-mapped, texts not re-checked)."""
        self._check_params()
        texts, emb, ref = unpack_index(config, tensors, sidecars)
        self._set_index(texts, emb, ref)
