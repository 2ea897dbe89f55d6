""":class:`ContentRecommender`: the recommender head, delegating to the concept modules."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from embedsuite.encoders.base import Encoder
from embedsuite.heads.base import HEADS, BaseHead
from embedsuite.heads.recommend.blend import (
    because,
    blend_scores,
    hybrid_contributions,
    results,
)
from embedsuite.heads.recommend.catalogue import (
    as_item_id,
    indices_of,
    parse_items,
    precomputed_texts,
    precomputed_vectors,
    texts_for,
)
from embedsuite.heads.recommend.collaborative import (
    CFModel,
    cf_weights,
    fit_cf_model,
    read_interactions,
)
from embedsuite.heads.recommend.content import (
    ann_scores,
    block_dot,
    centred_vectors,
    content_contributions,
    content_scores,
    scale,
)
from embedsuite.heads.recommend.diversity import check_k, check_lambda, select
from embedsuite.heads.recommend.history import history_weights, parse_history, reference_time
from embedsuite.heads.recommend.params import check_params
from embedsuite.heads.recommend.persistence import (
    catalogue_sidecars,
    cf_tensors,
    migrate_v1,
    read_catalogue,
    read_cf_model,
    read_embeddings,
)
from embedsuite.heads.recommend.priors import event_log, popularity_prior, trend_prior
from embedsuite.validation import as_text_list

logger = logging.getLogger(__name__)

__all__ = ["KIND", "RESULT_KEYS", "ContentRecommender"]

KIND = "recommender"
RESULT_KEYS = ("item_id", "score", "because")


@HEADS.register(KIND)
class ContentRecommender(BaseHead):
    """Recommend catalogue items from their text, optionally blended with ratings.

    Args:
        encoder: The shared encoder (``None``: the default encoder, resolved at fit/load).
        mmr_lambda: Maximal marginal relevance trade-off, 1.0 = pure relevance,
            0.0 = pure diversity (after the best item).
        rating_center: How history values become signed weights: ``None`` uses
            them as given (+1 like, -1 dislike), ``"mean"`` subtracts the user's mean
            rating, a number subtracts that number (e.g. 3.0 on a 1-5 scale).
        recency_half_life: With timestamps, a history item's weight halves every
            this many timestamp units before the user's latest one (``None``: off).
        content_power: Sharpens item-item content similarity: ``max(cos, 0) ** p``
            (higher = only close neighbours count).
        cf_weight: Hybrid only: share of the collaborative score (0..1) in the blend.
        popularity_weight: Hybrid only: weight of the popularity prior.
        trend_weight: Hybrid only: weight of "trending" popularity, the ratings
            given in the ``trend_window`` before the history's latest timestamp
            (only interactions with timestamps count; 0 turns it off).
        trend_window: Hybrid only: the trending window in timestamp units
            (default two years of seconds).
        neighbors: Hybrid, ``knn`` only: collaborative neighbours kept per item.
        shrinkage: Hybrid, ``knn`` only: similarity shrinkage
            ``n_common / (n_common + shrinkage)``.
        cf_model: Hybrid only: ``"ease"`` (Steck 2019, a ridge regression of each
            item on the others over binary interactions; dense in the rated items, so
            used up to ``ease_max_items``) or ``"knn"`` (adjusted-cosine item-item).
        ease_lambda: EASE's L2 regularisation.
        ease_max_items: Above this many rated items the ``knn`` model is used.
        cf_offset: Added to each history weight in the collaborative part: an
            interaction is itself a sign of interest (with ratings centred at 3.0 on a
            0.5-5 scale, 2.0 makes ratings >= 1 count as interest, more for higher).
        block_size: Items scored per block (memory vs speed).
        batch_size: Encoder batch size.
    """

    kinds = (KIND,)
    what = "recommender"
    head_version = 2
    _fitted = ("item_ids_", "texts_", "metadata_", "embeddings_", "mean_", "item_vectors_",
               "index_")
    _migrations: ClassVar[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {
        1: migrate_v1}

    #: From this many items on, ``similar`` (content only) and ``recommend_for_text``
    #: take their candidates from a :class:`embedsuite.index.VectorIndex` (exact up to its
    #: ``exact_threshold``, IVF above) instead of scoring every item.
    ann_min_items: int = 100_000
    #: Options of that index (e.g. ``{"storage": "f16"}``); see docs/scale-out.md.
    vector_index_options: Mapping[str, Any] = {}

    # fitted state (set by fit / fit_embeddings / fit_shards / load, never by __init__)
    item_ids_: list[str]
    texts_: list[str]
    metadata_: list[dict[str, Any]]
    embeddings_: np.ndarray
    mean_: np.ndarray
    item_vectors_: np.ndarray
    index_: dict[str, int]
    # collaborative state (fit_interactions; None for a content-only head)
    cf_model_: str | None
    cf_indptr_: np.ndarray | None  # knn: sparse CSR over the catalogue
    cf_indices_: np.ndarray | None
    cf_data_: np.ndarray | None
    cf_dense_: np.ndarray | None  # ease: dense weights of the rated items cf_items_
    cf_items_: np.ndarray | None
    popularity_: np.ndarray | None
    event_times_: np.ndarray | None
    event_items_: np.ndarray | None
    n_interactions_: int

    def __init__(
        self,
        encoder: Encoder | None = None,
        *,
        mmr_lambda: float = 1.0,
        rating_center: float | str | None = "mean",
        recency_half_life: float | None = None,
        content_power: float = 3.0,
        cf_weight: float = 0.3,
        popularity_weight: float = 0.0,
        trend_weight: float = 0.3,
        trend_window: float = 2 * 365 * 86400.0,
        neighbors: int = 100,
        shrinkage: float = 10.0,
        cf_model: str = "ease",
        ease_lambda: float = 100.0,
        ease_max_items: int = 10_000,
        cf_offset: float = 2.0,
        block_size: int = 8192,
        batch_size: int = 32,
    ) -> None:
        self.encoder = encoder
        self.mmr_lambda = mmr_lambda
        self.rating_center = rating_center
        self.recency_half_life = recency_half_life
        self.content_power = content_power
        self.cf_weight = cf_weight
        self.popularity_weight = popularity_weight
        self.trend_weight = trend_weight
        self.trend_window = trend_window
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.cf_model = cf_model
        self.ease_lambda = ease_lambda
        self.ease_max_items = ease_max_items
        self.cf_offset = cf_offset
        self.block_size = block_size
        self.batch_size = batch_size

    def _check_params(self) -> None:
        check_params(self)

    # ------------------------------------------------------------------ fitting
    def fit(self, items: object, y: object = None) -> ContentRecommender:
        """Embed a catalogue (``passage`` role, cached).

        Args:
            items: Dicts with ``id`` and ``text`` (or ``title`` and ``description``;
                other keys and a ``metadata`` dict are kept as metadata), or
                ``(id, text)`` / ``(id, text, metadata)`` tuples. Ids are kept as str.
            y: Ignored (scikit-learn convention).

        Raises:
            TypeError, ValueError: Malformed items, duplicate ids, fewer than 2 items.
        """
        self._check_params()
        ids, texts, metas = parse_items(items)
        enc = self._resolve_encoder()
        emb = np.asarray(enc.encode(texts, role="passage", batch_size=self.batch_size),
                         dtype=np.float32)
        self._set_catalogue(ids, texts, metas, emb)
        self._clear_interactions()
        return self

    def fit_embeddings(self, ids: Sequence[object], embeddings: np.ndarray,
                       texts: Sequence[str] | None = None,
                       metadata: Sequence[Mapping[str, Any]] | None = None
                       ) -> ContentRecommender:
        """Use precomputed item vectors (``passage`` role, L2-normalised), e.g. from a
        batch job, instead of embedding the catalogue.

        Args:
            ids: Item ids (kept as str, unique), one per row of ``embeddings``.
            embeddings: ``(n_items, dim)`` float32 from this head's encoder (a memory
                map is kept as is, not copied).
            texts: Item texts (default: the ids).
            metadata: One dict per item (default: empty).

        Raises:
            ValueError: Lengths or dims that do not match, duplicate ids, < 2 items.
        """
        self._check_params()
        id_list, emb = precomputed_vectors(ids, embeddings)
        enc = self._resolve_encoder()
        dim = getattr(enc, "dim", None)
        if dim and emb.shape[1] != dim:
            raise ValueError(f"embeddings have {emb.shape[1]} dims, the encoder "
                             f"{enc.name} gives {dim}; embed the items with it")
        text_list, metas = precomputed_texts(id_list, texts, metadata)
        self._set_catalogue(id_list, text_list, metas, emb)
        self._clear_interactions()
        return self

    def fit_shards(self, folder: str | os.PathLike[str], items: object = None
                   ) -> ContentRecommender:
        """Fit on the item vectors of an ``embedsuite embed-corpus`` shards folder.

        Args:
            folder: Shards embedded with this head's encoder and ``--role passage``,
                whose ids (``--id-column``) are the item ids.
            items: Optional catalogue (as for :meth:`fit`) giving texts and metadata
                by id; every shard id must be in it. Without it the texts kept in the
                shards (``--keep-text``) or the ids are used.

        Raises:
            ShardError: Unfinished, corrupted or other-encoder shards (says how to fix).
            KeyError: A shard id missing from ``items``.
        """
        from embedsuite.shards import load_embeddings

        emb = load_embeddings(folder, encoder=self._resolve_encoder())
        if emb.manifest.get("role") != "passage":
            logger.warning("%s was embedded with role %r; items are compared as 'passage' "
                           "vectors (embed with --role passage)", folder,
                           emb.manifest.get("role"))
        texts: Sequence[str] = emb.texts if emb.texts is not None else emb.ids
        metas: list[dict[str, Any]] | None = None
        if items is not None:
            texts, metas = texts_for(emb.ids, items)
        return self.fit_embeddings(emb.ids, emb.vectors, texts, metas)

    def _set_catalogue(self, ids: list[str], texts: list[str], metas: list[dict[str, Any]],
                       emb: np.ndarray) -> None:
        self.item_ids_ = ids
        self.texts_ = texts
        self.metadata_ = metas
        self.embeddings_ = emb
        self.mean_, self.item_vectors_ = centred_vectors(emb)
        self.index_ = {iid: i for i, iid in enumerate(ids)}

    def _clear_interactions(self) -> None:
        self._set_cf(None)
        self.popularity_ = None
        self.event_times_ = None
        self.event_items_ = None
        self.n_interactions_ = 0

    def _set_cf(self, cf: CFModel | None) -> None:
        self.cf_model_ = None if cf is None else cf.model
        self.cf_indptr_ = None if cf is None else cf.indptr
        self.cf_indices_ = None if cf is None else cf.indices
        self.cf_data_ = None if cf is None else cf.data
        self.cf_dense_ = None if cf is None else cf.dense
        self.cf_items_ = None if cf is None else cf.items

    def _cf(self) -> CFModel | None:
        """The fitted collaborative model (``None``: content only)."""
        if not self.is_hybrid:
            return None
        return CFModel(str(self.cf_model_), len(self.item_ids_), self.cf_indptr_,
                       self.cf_indices_, self.cf_data_, self.cf_dense_, self.cf_items_)

    def fit_interactions(self, user: Sequence[object], item: Sequence[object],
                         rating: Sequence[float] | None = None,
                         timestamp: Sequence[float] | None = None) -> ContentRecommender:
        """Add collaborative evidence from ratings (turns the head into a hybrid).

        Builds a sparse item-item matrix: with ``cf_model="ease"`` the EASE weights
        (binary interactions, L2 ``ease_lambda``), else adjusted cosine between items'
        rating vectors (each rating minus its user's mean; all 1 when ``rating`` is
        None), shrunk by ``n_common / (n_common + shrinkage)``, each item keeping its
        ``neighbors`` strongest positive neighbours; plus a popularity prior
        ``log(1 + n_ratings)`` scaled to [0, 1]. Interactions with items outside the
        catalogue are ignored (counted in the log). With ``timestamp``, the
        (time, item) events are kept (sorted) for the trending prior.

        Raises:
            ValueError: Columns of different lengths, no usable interaction.
        """
        self._check_fitted()
        self._check_params()
        inter = read_interactions(user, item, rating, timestamp, self.index_, self.item_ids_)
        counts = inter.counts
        self._clear_interactions()
        self._set_cf(fit_cf_model(
            inter, len(self.item_ids_), cf_model=self.cf_model,
            ease_lambda=float(self.ease_lambda), ease_max_items=int(self.ease_max_items),
            neighbors=int(self.neighbors), shrinkage=float(self.shrinkage)))
        self.popularity_ = popularity_prior(counts)
        self.n_interactions_ = int(inter.keep.sum())
        if timestamp is not None:
            self.event_times_, self.event_items_ = event_log(timestamp, inter.keep,
                                                             inter.item_index)
        return self

    # ------------------------------------------------------------------ state
    @property
    def n_items(self) -> int:
        """Catalogue size."""
        self._check_fitted()
        return len(self.item_ids_)

    @property
    def is_hybrid(self) -> bool:
        """Whether interaction data was fitted."""
        return getattr(self, "cf_model_", None) is not None

    def item(self, item_id: object) -> dict[str, Any]:
        """``{"item_id", "text", "metadata"}`` of one catalogue item."""
        i = self._idx(item_id, "item_id")
        return {"item_id": self.item_ids_[i], "text": self.texts_[i],
                "metadata": dict(self.metadata_[i])}

    def _idx(self, item_id: object, where: str) -> int:
        self._check_fitted()
        iid = as_item_id(item_id, where)
        i = self.index_.get(iid)
        if i is None:
            raise KeyError(f"{where} {iid!r} is not in the catalogue ({len(self.item_ids_):,} "
                           f"items, e.g. {self.item_ids_[:3]}); fit a catalogue that holds it")
        return i

    def trend_scores(self, reference_time: float | None = None) -> np.ndarray | None:
        """"Trending" prior: ``log(1 + ratings in the window before reference_time)``
        scaled to [0, 1] (``None`` without timestamped interactions).

        Args:
            reference_time: End of the window (default: the latest interaction).
        """
        self._check_fitted()
        return trend_prior(self.event_times_, self.event_items_, len(self.item_ids_),
                           float(self.trend_window), reference_time)

    # ------------------------------------------------------------------ scoring
    def _weights(self, hist: Sequence[tuple[str, float, float | None]], center: object,
                 half_life: float | None) -> tuple[np.ndarray, np.ndarray]:
        return history_weights(hist, self.index_, self.item_ids_, center, half_life)

    @staticmethod
    def _ref_time(hist: Sequence[tuple[str, float, float | None]]) -> float | None:
        return reference_time(hist)

    @staticmethod
    def _scale(x: np.ndarray) -> float:
        return scale(x)

    def _content_scores(self, hist_idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        return content_scores(self.item_vectors_, hist_idx, w, float(self.content_power),
                              int(self.block_size))

    def _cf_weights(self, w: np.ndarray) -> np.ndarray:
        return cf_weights(w, float(self.cf_offset))

    def _cf_scores(self, hist_idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        cf = self._cf()
        if cf is None:
            raise ValueError("this recommender has no collaborative part; call "
                             "fit_interactions(users, items, ratings) first")
        return cf.scores(hist_idx, self._cf_weights(w))

    def score_history(self, history: object, *, rating_center: object = "default",
                      recency_half_life: object = "default") -> np.ndarray:
        """Score every catalogue item for one history (``(n_items,)`` float32; seen items
        are not removed).

        Content only: the weighted sum of sharpened centred-cosine similarities.
        Hybrid: ``(1 - cf_weight) * content / max|content| + cf_weight * cf / max|cf|
        + popularity_weight * popularity + trend_weight * trend`` (trend: see
        :meth:`trend_scores`, ending at the history's latest timestamp).
        """
        self._check_fitted()
        idx, w, ref_time = self._history_weights(history, rating_center, recency_half_life)
        return self._score(idx, w, ref_time)

    def _history_weights(self, history: object, rating_center: object,
                         recency_half_life: object) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Parse and weight a history: (item indices, weights, latest timestamp)."""
        self._check_params()
        hist = parse_history(history)
        if not hist:
            raise ValueError("history is empty; give at least one (item_id, rating) or use "
                             "recommend_for_text for a cold start")
        center = self.rating_center if rating_center == "default" else rating_center
        hl = self.recency_half_life if recency_half_life == "default" else recency_half_life
        idx, w = self._weights(hist, center, hl)  # type: ignore[arg-type]
        return idx, w, reference_time(hist)

    def _score(self, idx: np.ndarray, w: np.ndarray, ref_time: float | None = None
               ) -> np.ndarray:
        scores = self._content_scores(idx, w)
        if not self.is_hybrid:
            return scores
        trend = self.trend_scores(ref_time) if self.trend_weight else None
        return blend_scores(scores, self._cf_scores(idx, w), float(self.cf_weight),
                            self.popularity_, float(self.popularity_weight), trend,
                            float(self.trend_weight))

    def _because(self, picks: np.ndarray, idx: np.ndarray, w: np.ndarray, top: int = 3
                 ) -> list[list[str]]:
        if len(picks) == 0:
            return []
        contrib = content_contributions(self.item_vectors_, picks, idx, w,
                                        float(self.content_power))
        cf = self._cf()
        if cf is not None:
            contrib = hybrid_contributions(
                contrib, self._content_scores(idx, w), cf.block(idx, picks).T,
                self._cf_weights(w), self._cf_scores(idx, w), float(self.cf_weight))
        return because(contrib, idx, self.item_ids_, top)

    # ------------------------------------------------------------------ selection
    def _select(self, scores: np.ndarray, k: int, exclude: np.ndarray | None,
                mmr_lambda: float) -> np.ndarray:
        return select(scores, self.item_vectors_, k, exclude, mmr_lambda)

    def _check_k(self, k: object) -> int:
        return check_k(k)

    def _lambda(self, mmr_lambda: float | None) -> float:
        return check_lambda(self.mmr_lambda if mmr_lambda is None else mmr_lambda)

    def _exclude(self, exclude: Iterable[object] | None) -> list[int]:
        return indices_of(self.index_, exclude)

    def _use_ann(self) -> bool:
        return len(self.item_ids_) >= int(self.ann_min_items)

    def _ann_scores(self, attr: str, vec: np.ndarray, k: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_vindexes", {})
        return ann_scores(cache, attr, getattr(self, attr), vec, k, self.vector_index_options)

    # ------------------------------------------------------------------ public API
    def similar(self, item_id: object, k: int = 10, *, mmr_lambda: float | None = None,
                exclude: Iterable[object] | None = None) -> list[dict[str, Any]]:
        """Items most like ``item_id`` (itself excluded): ``[{"item_id", "score", "because"}]``.

        ``score`` is the centred cosine (content) or, for a hybrid, the blended
        similarity; ``because`` is ``[item_id]``.
        """
        i = self._idx(item_id, "item_id")
        k = self._check_k(k)
        lam = self._lambda(mmr_lambda)
        idx = np.asarray([i], np.int64)
        if self.is_hybrid:
            scores = self._score(idx, np.ones(1, np.float32))
        elif self._use_ann():
            scores = self._ann_scores("item_vectors_", self.item_vectors_[i],
                                      k + 1 + len(self._exclude(exclude)))
        else:
            scores = self.item_vectors_ @ self.item_vectors_[i]
        picks = self._select(scores, k, np.asarray([i, *self._exclude(exclude)]), lam)
        return results(self.item_ids_, scores, picks, [[self.item_ids_[i]] for _ in picks])

    def recommend(self, history: object, k: int = 10, *, mmr_lambda: float | None = None,
                  exclude: Iterable[object] | None = None, exclude_seen: bool = True,
                  rating_center: object = "default", recency_half_life: object = "default",
                  ) -> list[dict[str, Any]]:
        """Recommend for one user history.

        Args:
            history: Item ids (likes), ``(item_id, rating[, timestamp])`` tuples or dicts
                (see :func:`parse_history`). With ``rating_center=None`` values are
                signed weights (e.g. +1 liked, -1 disliked).
            k: How many items.
            mmr_lambda: Override the diversity trade-off (1 = relevance only).
            exclude: Further item ids never to recommend.
            exclude_seen: Drop the history's items (default True).
            rating_center: Override ``rating_center`` for this call.
            recency_half_life: Override ``recency_half_life`` for this call.

        Returns:
            ``[{"item_id", "score", "because"}]`` best first; ``because`` lists up to 3
            history items with the largest positive contribution to the pick.

        Raises:
            NotFittedError: Before :meth:`fit`.
            KeyError: A history item is not in the catalogue.
            ValueError: Empty history, bad ``k`` or ``mmr_lambda``.
        """
        self._check_fitted()
        k = self._check_k(k)
        lam = self._lambda(mmr_lambda)
        idx, w, ref_time = self._history_weights(history, rating_center, recency_half_life)
        scores = self._score(idx, w, ref_time)
        excl = list(idx) if exclude_seen else []
        excl += self._exclude(exclude)
        picks = self._select(scores, k, np.asarray(excl, np.int64), lam)
        return results(self.item_ids_, scores, picks, self._because(picks, idx, w))

    def recommend_for_text(self, query: str | Sequence[str], k: int = 10, *,
                           mmr_lambda: float | None = None,
                           exclude: Iterable[object] | None = None,
                           ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """Cold start from a free-text wish (any language the encoder knows).

        The wish is embedded with the ``query`` role and compared by cosine with the
        items' ``passage`` vectors; ``because`` is empty. A str gives one list of
        results, a list of str gives one list per wish.
        """
        self._check_fitted()
        k = self._check_k(k)
        lam = self._lambda(mmr_lambda)
        queries, single = as_text_list(query, "query")
        if not queries:  # an empty list of wishes: nothing to recommend for
            return []
        q = np.asarray(self.active_encoder.encode(queries, role="query",
                                                  batch_size=self.batch_size),
                       np.float32).reshape(len(queries), -1)
        excl = np.asarray(self._exclude(exclude), np.int64)
        out = []
        for row in q:
            scores = (self._ann_scores("embeddings_", row, k + len(excl)) if self._use_ann()
                      else block_dot(self.embeddings_, row, int(self.block_size)))
            picks = self._select(scores, k, excl, lam)
            out.append(results(self.item_ids_, scores, picks, [[] for _ in picks]))
        return out[0] if single else out

    def map_2d(self) -> np.ndarray:
        """2-D PCA coordinates of the catalogue (for plots): ``(n_items, 2)``."""
        self._check_fitted()
        x = self.item_vectors_
        if len(x) > 20000:
            rng = np.random.default_rng(0)
            sample = x[rng.choice(len(x), 20000, replace=False)]
        else:
            sample = x
        mu = sample.mean(axis=0)
        _, _, vt = np.linalg.svd(sample - mu, full_matrices=False)
        comps = vt[:2]
        sign = np.sign(comps[:, :1].sum(axis=1, keepdims=True) + 1e-12)
        return ((x - mu) @ (comps * sign).T).astype(np.float32)

    # ------------------------------------------------------------------ save/load
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Config (sizes), weights (collaborative part) and sidecars (the catalogue)."""
        config = {"n_items": len(self.item_ids_), "n_interactions": self.n_interactions_}
        tensors = cf_tensors(self._cf(), self.popularity_, self.event_times_,
                             self.event_items_)
        sidecars = catalogue_sidecars(self.item_ids_, self.texts_, self.metadata_,
                                      self.embeddings_)
        return config, tensors, sidecars

    def _restore(self, config: dict[str, Any], tensors: dict[str, np.ndarray],
                 sidecars: dict[str, np.ndarray]) -> None:
        ids, texts, metas = read_catalogue(config, sidecars)
        emb = read_embeddings(tensors, sidecars, len(ids))
        self._set_catalogue(ids, texts, metas, emb)
        self._clear_interactions()
        cf = read_cf_model(tensors, len(ids))
        if cf is not None:
            self._set_cf(cf)
            self.popularity_ = np.asarray(tensors["popularity"], np.float32)
            self.n_interactions_ = int(config.get("n_interactions", 0))
            if "event_times" in tensors:
                self.event_times_ = np.asarray(tensors["event_times"], np.float64)
                self.event_items_ = np.asarray(tensors["event_items"], np.int64)
