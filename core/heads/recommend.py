"""Content recommendation on the shared encoder, with an optional collaborative (hybrid) part.

>>> rec = ContentRecommender().fit([{"id": "b1", "title": "Dune", "description": "..."}, ...])
>>> rec.similar("b1", k=5)
>>> rec.recommend([("b1", 5.0), ("f7", 1.0)], k=10)          # liked b1, disliked f7
>>> rec.recommend_for_text("a funny space adventure for kids", k=5)
>>> rec.fit_interactions(users, items, ratings, timestamps)   # hybrid: add item-item CF

Items are embedded once with the ``passage`` role (cached by the encoder); wishes
are embedded with the ``query`` role. Item-to-item similarity uses the item
vectors centred on the catalogue mean and re-normalised (this spreads e5's
narrow cosine band). A history is turned into signed weights (ratings centred,
optionally decayed by age); every candidate's score is the weighted sum of a
sharpened similarity to each history item, so disliked items push away and the
history items with the largest contributions are returned as ``because``.

With interaction data, a sparse top-``neighbors`` item-item matrix (adjusted
cosine on user-mean-centred ratings, shrunk by the number of co-raters) is
blended with the content scores and a popularity prior; items nobody rated keep
their content score, so they stay reachable. Everything is computed block-wise:
no ``n x n`` dense matrix is ever built, so catalogues of 100,000 items work.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from embedsuite.encoders.base import Encoder
from embedsuite.heads.base import (
    HEADS,
    check_fitted,
    load_head_of_kind,
    write_head_folder,
)
from embedsuite.validation import as_text_list, check_text

logger = logging.getLogger(__name__)

__all__ = ["ContentRecommender", "parse_history"]

KIND = "recommender"
CF_MODELS = ("ease", "knn")
RESULT_KEYS = ("item_id", "score", "because")


def _as_id(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
        raise TypeError(f"{where} must be a str or int item id, got {type(value).__name__} "
                        f"({value!r:.60})")
    s = str(value).strip()
    if not s:
        raise ValueError(f"{where} is an empty item id; every item needs a non-empty id")
    return s


def _finite(value: object, where: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{where} must be a number, got {type(value).__name__} ({value!r:.60})"
                        ) from None
    if not math.isfinite(v):
        raise ValueError(f"{where} must be finite, got {v}")
    return v


def parse_history(history: object) -> list[tuple[str, float, float | None]]:
    """Normalise a user history into ``(item_id, value, timestamp or None)`` triples.

    Accepted entries: an item id (value 1.0, a like), ``(item_id, value)``,
    ``(item_id, value, timestamp)``, or a mapping with ``item_id`` (or ``id``),
    ``rating`` (or ``weight``) and optional ``timestamp``.

    Raises:
        TypeError: ``history`` is not a list, or an entry has the wrong shape.
        ValueError: An empty id or a non-finite value.
    """
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Iterable):
        raise TypeError(
            f"history must be a list of item ids or (item_id, rating[, timestamp]) tuples, got "
            f"{type(history).__name__}; e.g. [('b1', 5.0), ('f7', 1.0)]")
    out: list[tuple[str, float, float | None]] = []
    for i, entry in enumerate(history):
        where = f"history[{i}]"
        ts: object = None
        if isinstance(entry, Mapping):
            iid = entry.get("item_id", entry.get("id"))
            if iid is None:
                raise TypeError(f"{where} has no 'item_id' key; expected "
                                f"{{'item_id': ..., 'rating': ...}}")
            val: object = entry.get("rating", entry.get("weight", 1.0))
            ts = entry.get("timestamp")
        elif isinstance(entry, (str, int, np.integer)) and not isinstance(entry, bool):
            iid, val = entry, 1.0
        elif isinstance(entry, Sequence) and 1 <= len(entry) <= 3:
            iid = entry[0]
            val = entry[1] if len(entry) > 1 else 1.0
            ts = entry[2] if len(entry) > 2 else None
        else:
            raise TypeError(f"{where} must be an item id, (item_id, rating), "
                            f"(item_id, rating, timestamp) or a dict, got {entry!r:.60}")
        out.append((_as_id(iid, f"{where} item id"), _finite(val, f"{where} rating"),
                    None if ts is None else _finite(ts, f"{where} timestamp")))
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


@HEADS.register(KIND)
class ContentRecommender:
    """Recommend catalogue items from their text, optionally blended with ratings.

    Args:
        encoder: The shared encoder (``None``: the default encoder, resolved lazily).
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

    # ------------------------------------------------------------------ setup
    def _encoder(self) -> Encoder:
        if self.encoder is None:
            from embedsuite.encoders import DEFAULT_ENCODER, get_encoder

            self.encoder = get_encoder(DEFAULT_ENCODER)
        return self.encoder

    def _check_params(self) -> None:
        if not 0.0 <= float(self.mmr_lambda) <= 1.0:
            raise ValueError(f"mmr_lambda must be in [0, 1] (1 = pure relevance, 0 = pure "
                             f"diversity), got {self.mmr_lambda}")
        rc = self.rating_center
        if not (rc is None or rc == "mean" or (isinstance(rc, (int, float))
                                                and not isinstance(rc, bool))):
            raise ValueError(f"rating_center must be None, 'mean' or a number, got {rc!r}")
        if self.recency_half_life is not None and not float(self.recency_half_life) > 0:
            raise ValueError(f"recency_half_life must be > 0 or None, got "
                             f"{self.recency_half_life}")
        if not float(self.content_power) > 0:
            raise ValueError(f"content_power must be > 0, got {self.content_power}")
        if not 0.0 <= float(self.cf_weight) <= 1.0:
            raise ValueError(f"cf_weight must be in [0, 1], got {self.cf_weight}")
        if not float(self.popularity_weight) >= 0:
            raise ValueError(f"popularity_weight must be >= 0, got {self.popularity_weight}")
        if not float(self.trend_weight) >= 0:
            raise ValueError(f"trend_weight must be >= 0, got {self.trend_weight}")
        if not float(self.trend_window) > 0:
            raise ValueError(f"trend_window must be > 0, got {self.trend_window}")
        if int(self.neighbors) < 1:
            raise ValueError(f"neighbors must be >= 1, got {self.neighbors}")
        if not float(self.shrinkage) >= 0:
            raise ValueError(f"shrinkage must be >= 0, got {self.shrinkage}")
        if self.cf_model not in CF_MODELS:
            raise ValueError(f"cf_model must be one of {CF_MODELS}, got {self.cf_model!r}")
        if not float(self.ease_lambda) > 0:
            raise ValueError(f"ease_lambda must be > 0, got {self.ease_lambda}")
        if int(self.ease_max_items) < 1:
            raise ValueError(f"ease_max_items must be >= 1, got {self.ease_max_items}")
        if not math.isfinite(float(self.cf_offset)):
            raise ValueError(f"cf_offset must be a finite number, got {self.cf_offset}")
        if int(self.block_size) < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")

    @staticmethod
    def _parse_items(items: object) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise TypeError(
                f"items must be a list of dicts ({{'id', 'title', 'description'}} or "
                f"{{'id', 'text'}}) or of (id, text) pairs, got {type(items).__name__}")
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        for i, it in enumerate(items):
            where = f"items[{i}]"
            meta: dict[str, Any] = {}
            if isinstance(it, Mapping):
                if "id" not in it:
                    raise TypeError(f"{where} has no 'id' key; each item needs an id")
                iid = _as_id(it["id"], f"{where}['id']")
                if it.get("text") is not None:
                    text = check_text(it["text"], f"{where}['text']")
                else:
                    title = str(it.get("title") or "").strip()
                    desc = str(it.get("description") or "").strip()
                    if not title and not desc:
                        raise ValueError(f"{where} (id {iid!r}) has no text: give 'text' or "
                                         f"'title' and/or 'description'")
                    text = (f"{title}. {desc}" if title and desc and not title.endswith(
                        (".", "!", "?")) else f"{title} {desc}").strip()
                    meta["title"] = title
                extra = it.get("metadata")
                if isinstance(extra, Mapping):
                    meta.update(extra)
                meta.update({k: v for k, v in it.items()
                             if k not in ("id", "text", "metadata") and k not in meta})
            elif isinstance(it, Sequence) and not isinstance(it, str) and len(it) in (2, 3):
                iid = _as_id(it[0], f"{where} id")
                text = check_text(it[1], f"{where} text")
                if len(it) == 3 and isinstance(it[2], Mapping):
                    meta.update(it[2])
            else:
                raise TypeError(f"{where} must be a dict or an (id, text) pair, got {it!r:.60}")
            ids.append(iid)
            texts.append(text)
            metas.append(meta)
        if not ids:
            raise ValueError("items is empty; a catalogue needs at least 2 items")
        if len(ids) < 2:
            raise ValueError("a catalogue needs at least 2 items to recommend from, got 1")
        seen: set[str] = set()
        for iid in ids:
            if iid in seen:
                raise ValueError(f"duplicate item id {iid!r} in items; ids must be unique")
            seen.add(iid)
        return ids, texts, metas

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
        ids, texts, metas = self._parse_items(items)
        enc = self._encoder()
        emb = np.asarray(enc.encode(texts, role="passage", batch_size=self.batch_size),
                         dtype=np.float32)
        self._set_catalogue(ids, texts, metas, emb)
        self._clear_interactions()
        return self

    # ------------------------------------- precomputed vectors, large catalogues
    #: From this many items on, ``similar`` (content only) and ``recommend_for_text``
    #: take their candidates from a :class:`embedsuite.index.VectorIndex` (exact up to its
    #: ``exact_threshold``, IVF above) instead of scoring every item.
    ann_min_items: int = 100_000
    #: Options of that index (e.g. ``{"storage": "f16"}``); see docs/scale-out.md.
    vector_index_options: Mapping[str, Any] = {}

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
        id_list = [_as_id(x, f"ids[{j}]") for j, x in enumerate(ids)]
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(id_list):
            raise ValueError(f"embeddings must be ({len(id_list)}, dim), one row per id, got "
                             f"shape {emb.shape}")
        if len(id_list) < 2:
            raise ValueError(f"a catalogue needs at least 2 items, got {len(id_list)}")
        if len(set(id_list)) != len(id_list):
            raise ValueError("ids must be unique; the catalogue has duplicate ids")
        dim = getattr(self._encoder(), "dim", None)
        if dim and emb.shape[1] != dim:
            raise ValueError(f"embeddings have {emb.shape[1]} dims, the encoder "
                             f"{self._encoder().name} gives {dim}; embed the items with it")
        text_list = list(id_list) if texts is None else [check_text(t, f"texts[{j}]")
                                                          for j, t in enumerate(texts)]
        metas = [{} for _ in id_list] if metadata is None else [dict(m) for m in metadata]
        if len(text_list) != len(id_list) or len(metas) != len(id_list):
            raise ValueError(f"texts and metadata need one entry per id ({len(id_list)})")
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

        emb = load_embeddings(folder, encoder=self._encoder())
        if emb.manifest.get("role") != "passage":
            logger.warning("%s was embedded with role %r; items are compared as 'passage' "
                           "vectors (embed with --role passage)", folder,
                           emb.manifest.get("role"))
        texts: Sequence[str] = emb.texts if emb.texts is not None else emb.ids
        metas = None
        if items is not None:
            ids, item_texts, item_metas = self._parse_items(items)
            where = {iid: j for j, iid in enumerate(ids)}
            missing = [x for x in emb.ids if x not in where]
            if missing:
                raise KeyError(f"{len(missing)} shard ids are not in items (e.g. "
                               f"{missing[:3]}); give every item of the shards")
            texts = [item_texts[where[x]] for x in emb.ids]
            metas = [item_metas[where[x]] for x in emb.ids]
        return self.fit_embeddings(emb.ids, emb.vectors, texts, metas)

    def _use_ann(self) -> bool:
        return len(self.item_ids_) >= int(self.ann_min_items)

    def _ann_scores(self, attr: str, vec: np.ndarray, k: int) -> np.ndarray:
        """Scores of the index's candidates for ``vec`` (``-inf`` for every other item),
        enough of them for :meth:`_select` (its MMR pool is ``max(50, 10 k)``)."""
        from embedsuite.index import VectorIndex

        mat = getattr(self, attr)
        cache = self.__dict__.setdefault("_vindexes", {})
        hit = cache.get(attr)
        if hit is None or hit[0] is not mat:
            logger.info("building a vector index over %d items", len(mat))
            hit = (mat, VectorIndex(**dict(self.vector_index_options)).build(mat))
            cache[attr] = hit
        s, i = hit[1].search(np.asarray(vec, np.float32), min(len(mat), max(50, 10 * k) + k))
        scores = np.full(len(mat), -np.inf, np.float32)
        ok = i >= 0
        scores[i[ok]] = s[ok]
        return scores

    def _set_catalogue(self, ids: list[str], texts: list[str], metas: list[dict[str, Any]],
                       emb: np.ndarray) -> None:
        self.item_ids_ = ids
        self.texts_ = texts
        self.metadata_ = metas
        self.embeddings_ = emb
        self.mean_ = emb.mean(axis=0).astype(np.float32)
        self.item_vectors_ = _unit(emb - self.mean_)
        self.index_ = {iid: i for i, iid in enumerate(ids)}

    def _clear_interactions(self) -> None:
        self.cf_model_: str | None = None
        # knn: sparse CSR over the catalogue; ease: dense weights of the rated items
        self.cf_indptr_: np.ndarray | None = None
        self.cf_indices_: np.ndarray | None = None
        self.cf_data_: np.ndarray | None = None
        self.cf_dense_: np.ndarray | None = None
        self.cf_items_: np.ndarray | None = None
        self.popularity_: np.ndarray | None = None
        self.event_times_: np.ndarray | None = None
        self.event_items_: np.ndarray | None = None
        self.n_interactions_ = 0

    @property
    def n_items(self) -> int:
        """Catalogue size."""
        check_fitted(self, "item_ids_")
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
        check_fitted(self, "item_ids_")
        iid = _as_id(item_id, where)
        i = self.index_.get(iid)
        if i is None:
            raise KeyError(f"{where} {iid!r} is not in the catalogue ({len(self.item_ids_):,} "
                           f"items, e.g. {self.item_ids_[:3]}); fit a catalogue that holds it")
        return i

    # ----------------------------------------------------------- interactions
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
        from scipy import sparse

        check_fitted(self, "item_ids_")
        self._check_params()
        n = len(user)
        cols = {"item": item, "rating": rating, "timestamp": timestamp}
        for name, col in cols.items():
            if col is not None and len(col) != n:
                raise ValueError(f"user has {n} entries but {name} has {len(col)}; the "
                                 f"interaction columns must be of equal length")
        if n == 0:
            raise ValueError("no interactions given; pass equal-length user, item, rating lists")
        iidx = np.fromiter((self.index_.get(str(x).strip(), -1) for x in item), np.int64, n)
        keep = iidx >= 0
        if not keep.any():
            raise ValueError(f"none of the {n:,} interactions is with a catalogue item; check "
                             f"that item ids match the catalogue ids (e.g. {self.item_ids_[:3]})")
        if (~keep).sum():
            logger.info("fit_interactions: ignored %d interactions with unknown items",
                        int((~keep).sum()))
        users = [str(u) for u, k in zip(user, keep, strict=True) if k]
        uniq, uidx = np.unique(np.asarray(users), return_inverse=True)
        vals = (np.ones(int(keep.sum()), np.float64) if rating is None
                else np.asarray(rating, dtype=np.float64)[keep])
        if not np.isfinite(vals).all():
            raise ValueError("rating holds non-finite values")
        if timestamp is not None and not np.isfinite(np.asarray(timestamp, np.float64)).all():
            raise ValueError("timestamp holds non-finite values")
        n_items = len(self.item_ids_)
        x = sparse.coo_matrix((vals, (uidx, iidx[keep])), shape=(len(uniq), n_items)).tocsr()
        x.sum_duplicates()
        ones = x.copy()
        ones.data[:] = 1.0
        cnt_u = np.asarray(ones.sum(axis=1)).ravel()
        mean_u = np.asarray(x.sum(axis=1)).ravel() / np.maximum(cnt_u, 1)
        xc = x.copy()
        if rating is not None:
            xc.data = xc.data - np.repeat(mean_u, np.diff(xc.indptr))
            # a user whose ratings are all equal still says "seen"; keep a small signal
            xc.data[np.abs(xc.data) < 1e-9] = 1e-3
        counts = np.asarray(ones.sum(axis=0)).ravel()
        rated = np.flatnonzero(counts > 0)
        use_ease = self.cf_model == "ease" and len(rated) <= int(self.ease_max_items)
        if self.cf_model == "ease" and not use_ease:
            logger.warning("fit_interactions: %d rated items > ease_max_items=%d; using the "
                           "item-kNN model instead of EASE (raise ease_max_items if memory "
                           "allows an %d x %d matrix)", len(rated), int(self.ease_max_items),
                           len(rated), len(rated))
        self._clear_interactions()
        if use_ease:
            self.cf_model_ = "ease"
            self.cf_dense_ = self._ease_matrix(ones[:, rated])
            self.cf_items_ = rated.astype(np.int64)
        else:
            self.cf_model_ = "knn"
            s = self._knn_matrix(xc, ones, rated, n_items)
            self.cf_indptr_ = s.indptr.astype(np.int64)
            self.cf_indices_ = s.indices.astype(np.int64)
            self.cf_data_ = s.data.astype(np.float32)
        self.popularity_ = (np.log1p(counts) / max(np.log1p(counts.max()), 1e-12)
                            ).astype(np.float32)
        self.n_interactions_ = int(keep.sum())
        if timestamp is not None:
            t = np.asarray(timestamp, np.float64)[keep]
            order = np.argsort(t, kind="stable")
            self.event_times_ = t[order]
            self.event_items_ = iidx[keep][order].astype(np.int64)
        else:
            self.event_times_ = self.event_items_ = None
        return self

    def _ease_matrix(self, x: Any) -> np.ndarray:
        """EASE (Steck 2019) on binary interactions ``x`` (users x rated items).

        ``B = -P / diag(P)`` with ``P = (X'X + lambda I)^-1`` and a zero diagonal, kept
        dense: keeping only each row's largest weights lost NDCG on MovieLens
        validation (0.1475 dense, 0.1464 with 400 per row, 0.1401 with 100).
        """
        m = x.shape[1]
        g = np.asarray((x.T @ x).toarray(), np.float64)
        g[np.diag_indices(m)] += float(self.ease_lambda)
        p = np.linalg.inv(g)
        b = -p / np.diag(p)[None, :]
        b[np.diag_indices(m)] = 0.0
        return b.astype(np.float32)

    def _knn_matrix(self, xc: Any, ones: Any, rated: np.ndarray, n_items: int) -> Any:
        """Top-``neighbors`` shrunk adjusted-cosine item-item matrix, as sparse CSR."""
        from scipy import sparse

        xr = xc[:, rated].tocsc()
        br = ones[:, rated].tocsc()
        norms = np.sqrt(np.asarray(xr.multiply(xr).sum(axis=0)).ravel())
        m = len(rated)
        k = min(int(self.neighbors), max(m - 1, 1))
        step = max(1, min(m, int(5e6 // max(m, 1))))  # ~40 MB per dense block
        rows, cols_, data = [], [], []
        xrt, brt = xr.T.tocsr(), br.T.tocsr()
        for a in range(0, m, step):
            b = min(m, a + step)
            dot = (xrt[a:b] @ xr).toarray()
            common = (brt[a:b] @ br).toarray()
            sim = dot / np.maximum(np.outer(norms[a:b], norms), 1e-12)
            sim *= common / (common + float(self.shrinkage)) if self.shrinkage else 1.0
            sim[np.arange(b - a), np.arange(a, b)] = 0.0
            if k < m:
                top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            else:
                top = np.tile(np.arange(m), (b - a, 1))
            sv = np.take_along_axis(sim, top, axis=1)
            ok = sv > 0
            r = np.repeat(np.arange(a, b), k if k < m else m).reshape(b - a, -1)
            rows.append(rated[r[ok]])
            cols_.append(rated[top[ok]])
            data.append(sv[ok].astype(np.float32))
        return sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows),
                                                         np.concatenate(cols_))),
                                 shape=(n_items, n_items), dtype=np.float32)

    def trend_scores(self, reference_time: float | None = None) -> np.ndarray | None:
        """"Trending" prior: ``log(1 + ratings in the window before reference_time)``
        scaled to [0, 1] (``None`` without timestamped interactions).

        Args:
            reference_time: End of the window (default: the latest interaction).
        """
        if self.event_times_ is None or self.event_items_ is None or not len(self.event_times_):
            return None
        t_end = float(self.event_times_[-1] if reference_time is None else reference_time)
        a = int(np.searchsorted(self.event_times_, t_end - float(self.trend_window)))
        b = int(np.searchsorted(self.event_times_, t_end, side="right"))
        cnt = np.bincount(self.event_items_[a:b], minlength=len(self.item_ids_))
        top = np.log1p(cnt.max()) if b > a else 1.0
        return (np.log1p(cnt) / max(float(top), 1e-12)).astype(np.float32)

    def _cf_matrix(self) -> Any:
        from scipy import sparse

        n = len(self.item_ids_)
        return sparse.csr_matrix((self.cf_data_, self.cf_indices_, self.cf_indptr_),
                                 shape=(n, n))

    # ------------------------------------------------------------- scoring
    def _weights(self, hist: Sequence[tuple[str, float, float | None]], center: object,
                 half_life: float | None) -> tuple[np.ndarray, np.ndarray]:
        idx, vals, ts = [], [], []
        unknown = []
        for iid, v, t in hist:
            i = self.index_.get(iid)
            if i is None:
                unknown.append(iid)
                continue
            idx.append(i)
            vals.append(v)
            ts.append(t)
        if unknown:
            raise KeyError(f"history item(s) {unknown[:5]} are not in the catalogue "
                           f"({len(self.item_ids_):,} items, e.g. {self.item_ids_[:3]})")
        w = np.asarray(vals, np.float64)
        if center == "mean":
            c = w - w.mean()
            w = c if np.abs(c).max() > 1e-9 else np.sign(w) + (w == 0)
        elif center is not None:
            w = w - float(center)  # type: ignore[arg-type]
        if half_life is not None:
            known = [t for t in ts if t is not None]
            if known:
                latest = max(known)
                age = np.array([0.0 if t is None else latest - t for t in ts])
                w = w * np.power(0.5, age / float(half_life))
        # merge repeated items (sum of weights)
        ii = np.asarray(idx, np.int64)
        uniq, inv = np.unique(ii, return_inverse=True)
        ww = np.zeros(len(uniq))
        np.add.at(ww, inv, w)
        return uniq, ww.astype(np.float32)

    def _content_scores(self, hist_idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        v = self.item_vectors_
        h = v[hist_idx]
        n = v.shape[0]
        out = np.empty(n, np.float32)
        p = float(self.content_power)
        bs = int(self.block_size)
        for a in range(0, n, bs):
            s = v[a:a + bs] @ h.T
            np.maximum(s, 0.0, out=s)
            if p != 1.0:
                np.power(s, p, out=s)
            out[a:a + bs] = s @ w
        return out

    def _cf_weights(self, w: np.ndarray) -> np.ndarray:
        """History weights of the collaborative part: ``w + cf_offset`` (an interaction
        is itself a sign of interest; only clearly disliked items count against)."""
        return (w + float(self.cf_offset)).astype(np.float32)

    def _cf_pos(self) -> np.ndarray:
        """Catalogue index -> row of the dense EASE matrix (-1: nobody rated the item)."""
        pos = np.full(len(self.item_ids_), -1, np.int64)
        if self.cf_items_ is not None:
            pos[self.cf_items_] = np.arange(len(self.cf_items_))
        return pos

    def _cf_block(self, hist_idx: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """Dense collaborative weights from the history items (rows) to ``cols``
        (default: every catalogue item)."""
        n = len(self.item_ids_)
        if self.cf_dense_ is None:
            m = self._cf_matrix()[hist_idx]
            return (m if cols is None else m[:, cols]).toarray()
        pos = self._cf_pos()
        rows = pos[hist_idx]
        target = np.arange(n) if cols is None else np.asarray(cols, np.int64)
        tpos = pos[target]
        out = np.zeros((len(hist_idx), len(target)), np.float32)
        ri, ci = np.flatnonzero(rows >= 0), np.flatnonzero(tpos >= 0)
        out[np.ix_(ri, ci)] = self.cf_dense_[np.ix_(rows[ri], tpos[ci])]
        return out

    def _cf_scores(self, hist_idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        cw = self._cf_weights(w)
        if self.cf_dense_ is not None and self.cf_items_ is not None:
            out = np.zeros(len(self.item_ids_), np.float32)
            rows = self._cf_pos()[hist_idx]
            ok = rows >= 0
            out[self.cf_items_] = cw[ok] @ self.cf_dense_[rows[ok]]
            return out
        s = self._cf_matrix()[hist_idx]
        return np.asarray(s.T @ cw, dtype=np.float32).ravel()

    @staticmethod
    def _scale(x: np.ndarray) -> float:
        m = float(np.abs(x).max()) if x.size else 0.0
        return m if m > 1e-12 else 1.0

    def score_history(self, history: object, *, rating_center: object = "default",
                      recency_half_life: object = "default") -> np.ndarray:
        """Relevance of every catalogue item for one history (seen items not removed).

        Content only: the weighted sum of sharpened centred-cosine similarities.
        Hybrid: ``(1 - cf_weight) * content / max|content| + cf_weight * cf / max|cf|
        + popularity_weight * popularity + trend_weight * trend`` (trend: see
        :meth:`trend_scores`, ending at the history's latest timestamp).
        """
        check_fitted(self, "item_ids_")
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
        return idx, w, self._ref_time(hist)

    @staticmethod
    def _ref_time(hist: Sequence[tuple[str, float, float | None]]) -> float | None:
        times = [t for _, _, t in hist if t is not None]
        return max(times) if times else None

    def _score(self, idx: np.ndarray, w: np.ndarray, ref_time: float | None = None
               ) -> np.ndarray:
        content = self._content_scores(idx, w)
        if not self.is_hybrid:
            return content
        a = float(self.cf_weight)
        cf = self._cf_scores(idx, w)
        total = (1 - a) * content / self._scale(content) + a * cf / self._scale(cf)
        if self.popularity_weight and self.popularity_ is not None:
            total = total + float(self.popularity_weight) * self.popularity_
        if self.trend_weight:
            trend = self.trend_scores(ref_time)
            if trend is not None:
                total = total + float(self.trend_weight) * trend
        return total.astype(np.float32)

    def _because(self, picks: np.ndarray, idx: np.ndarray, w: np.ndarray, top: int = 3
                 ) -> list[list[str]]:
        if len(picks) == 0:
            return []
        s = self.item_vectors_[picks] @ self.item_vectors_[idx].T
        contrib = np.power(np.maximum(s, 0.0), float(self.content_power)) * w[None, :]
        if self.is_hybrid:
            cs = self._content_scores(idx, w)
            cf_rows = self._cf_block(idx, picks).T  # (picks, hist)
            cf_all = self._cf_scores(idx, w)
            a = float(self.cf_weight)
            contrib = ((1 - a) * contrib / self._scale(cs)
                       + a * cf_rows * self._cf_weights(w)[None, :] / self._scale(cf_all))
        out = []
        for row in contrib:
            order = np.argsort(-row, kind="stable")[:top]
            out.append([self.item_ids_[int(idx[j])] for j in order if row[j] > 0])
        return out

    # ----------------------------------------------------------------- MMR
    def _select(self, scores: np.ndarray, k: int, exclude: np.ndarray | None,
                mmr_lambda: float) -> np.ndarray:
        s = scores.astype(np.float64).copy()
        if exclude is not None and len(exclude):
            s[exclude] = -np.inf
        avail = int(np.isfinite(s).sum())
        k = min(k, avail)
        if k <= 0:
            return np.zeros(0, np.int64)
        if mmr_lambda >= 1.0:
            top = np.argpartition(-s, k - 1)[:k]
            return top[np.argsort(-s[top], kind="stable")]
        c = min(avail, max(50, 10 * k))
        cand = np.argpartition(-s, c - 1)[:c]
        cand = cand[np.argsort(-s[cand], kind="stable")]
        rel = s[cand]
        lo, hi = rel.min(), rel.max()
        rel = (rel - lo) / (hi - lo) if hi > lo else np.ones_like(rel)
        vecs = self.item_vectors_[cand]
        chosen = [0]
        max_sim = np.maximum(vecs @ vecs[0], 0.0).astype(np.float64)
        taken = np.zeros(c, bool)
        taken[0] = True
        while len(chosen) < k:
            val = mmr_lambda * rel - (1 - mmr_lambda) * max_sim
            val[taken] = -np.inf
            j = int(np.argmax(val))
            chosen.append(j)
            taken[j] = True
            max_sim = np.maximum(max_sim, vecs @ vecs[j])
        return cand[np.asarray(chosen)]

    def _check_k(self, k: object) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        return int(k)

    def _lambda(self, mmr_lambda: float | None) -> float:
        lam = float(self.mmr_lambda if mmr_lambda is None else mmr_lambda)
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"mmr_lambda must be in [0, 1] (1 = pure relevance, 0 = pure "
                             f"diversity), got {lam}")
        return lam

    def _exclude(self, exclude: Iterable[object] | None) -> list[int]:
        if exclude is None:
            return []
        if isinstance(exclude, (str, int)):
            exclude = [exclude]
        return [self.index_[str(e)] for e in exclude if str(e) in self.index_]

    # ------------------------------------------------------------ public API
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
        return [{"item_id": self.item_ids_[int(j)], "score": float(scores[j]),
                 "because": [self.item_ids_[i]]} for j in picks]

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
        check_fitted(self, "item_ids_")
        k = self._check_k(k)
        lam = self._lambda(mmr_lambda)
        idx, w, ref_time = self._history_weights(history, rating_center, recency_half_life)
        scores = self._score(idx, w, ref_time)
        excl = list(idx) if exclude_seen else []
        excl += self._exclude(exclude)
        picks = self._select(scores, k, np.asarray(excl, np.int64), lam)
        why = self._because(picks, idx, w)
        return [{"item_id": self.item_ids_[int(j)], "score": float(scores[j]), "because": b}
                for j, b in zip(picks, why, strict=True)]

    def recommend_for_text(self, query: str | Sequence[str], k: int = 10, *,
                           mmr_lambda: float | None = None,
                           exclude: Iterable[object] | None = None,
                           ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """Cold start from a free-text wish (any language the encoder knows).

        The wish is embedded with the ``query`` role and compared by cosine with the
        items' ``passage`` vectors; ``because`` is empty. A str gives one list of
        results, a list of str gives one list per wish.
        """
        check_fitted(self, "item_ids_")
        k = self._check_k(k)
        lam = self._lambda(mmr_lambda)
        queries, single = as_text_list(query, "query")
        if not queries:  # an empty list of wishes: nothing to recommend for
            return []
        q = np.asarray(self._encoder().encode(queries, role="query", batch_size=self.batch_size),
                       np.float32).reshape(len(queries), -1)
        excl = np.asarray(self._exclude(exclude), np.int64)
        out = []
        for row in q:
            scores = (self._ann_scores("embeddings_", row, k + len(excl)) if self._use_ann()
                      else self._block_dot(self.embeddings_, row))
            picks = self._select(scores, k, excl, lam)
            out.append([{"item_id": self.item_ids_[int(j)], "score": float(scores[j]),
                         "because": []} for j in picks])
        return out[0] if single else out

    def _block_dot(self, mat: np.ndarray, vec: np.ndarray) -> np.ndarray:
        out = np.empty(mat.shape[0], np.float32)
        bs = int(self.block_size)
        for a in range(0, mat.shape[0], bs):
            out[a:a + bs] = mat[a:a + bs] @ vec
        return out

    def map_2d(self) -> np.ndarray:
        """2-D PCA coordinates of the catalogue (for plots): ``(n_items, 2)``."""
        check_fitted(self, "item_ids_")
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

    # ------------------------------------------------------------ save/load
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters except the encoder (JSON-ready)."""
        return {k: getattr(self, k) for k in (
            "mmr_lambda", "rating_center", "recency_half_life", "content_power", "cf_weight",
            "popularity_weight", "trend_weight", "trend_window", "neighbors", "shrinkage",
            "cf_model", "ease_lambda", "ease_max_items", "cf_offset", "block_size",
            "batch_size")}

    def set_params(self, **params: Any) -> ContentRecommender:
        """Set constructor parameters (scikit-learn style); fitted state is kept.

        Raises:
            ValueError: An unknown parameter name.
        """
        known = self.get_params()
        for key, value in params.items():
            if key not in known:
                raise ValueError(f"unknown parameter {key!r} for ContentRecommender; "
                                 f"known: {sorted(known)}")
            setattr(self, key, value)
        self._check_params()
        return self

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``config.json`` (params, ids, texts, metadata) + ``model.safetensors``."""
        check_fitted(self, "item_ids_")
        tensors: dict[str, np.ndarray] = {"embeddings": self.embeddings_}
        if self.is_hybrid:
            arrays = {"cf_indptr": self.cf_indptr_, "cf_indices": self.cf_indices_,
                      "cf_data": self.cf_data_, "cf_dense": self.cf_dense_,
                      "cf_items": self.cf_items_, "popularity": self.popularity_}
            tensors.update({k: v for k, v in arrays.items() if v is not None})
            if self.event_times_ is not None and self.event_items_ is not None:
                tensors["event_times"] = self.event_times_
                tensors["event_items"] = self.event_items_
        config = {"params": self.get_params(), "item_ids": self.item_ids_,
                  "texts": self.texts_, "metadata": self.metadata_,
                  "n_interactions": self.n_interactions_}
        write_head_folder(path, KIND, config, tensors, self.encoder)

    @classmethod
    def _load(cls, config: Mapping[str, Any], tensors: Mapping[str, np.ndarray],
              encoder: Encoder | None) -> ContentRecommender:
        # heads saved before cf_offset existed scored the CF part with the plain weights
        head = cls(encoder, **{"cf_offset": 0.0, **config["params"]})
        head._set_catalogue(list(config["item_ids"]), list(config["texts"]),
                            [dict(m) for m in config["metadata"]],
                            np.asarray(tensors["embeddings"], np.float32))
        head._clear_interactions()
        if "popularity" in tensors:
            if "cf_dense" in tensors:
                head.cf_model_ = "ease"
                head.cf_dense_ = np.asarray(tensors["cf_dense"], np.float32)
                head.cf_items_ = np.asarray(tensors["cf_items"], np.int64)
            else:
                head.cf_model_ = "knn"
                head.cf_indptr_ = np.asarray(tensors["cf_indptr"], np.int64)
                head.cf_indices_ = np.asarray(tensors["cf_indices"], np.int64)
                head.cf_data_ = np.asarray(tensors["cf_data"], np.float32)
            head.popularity_ = np.asarray(tensors["popularity"], np.float32)
            head.n_interactions_ = int(config.get("n_interactions", 0))
            if "event_times" in tensors:
                head.event_times_ = np.asarray(tensors["event_times"], np.float64)
                head.event_items_ = np.asarray(tensors["event_items"], np.int64)
        return head

    @classmethod
    def load(cls, path: str | os.PathLike[str], encoder: Encoder | None = None
             ) -> ContentRecommender:
        """Load a saved recommender (refuses one saved beside another encoder)."""
        return load_head_of_kind(cls, path, encoder, KIND, "recommender")
