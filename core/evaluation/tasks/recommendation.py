"""Task ``recommendation``: top-10 movie recommendation on MovieLens joined to TMDB text.

Data: ``movielens/ml-latest-small`` (GroupLens, Harper & Konstan 2015) joined to
``movielens/tmdb_5000_movies.csv`` through ``links.csv`` (``tmdbId`` = TMDB ``id``).
The catalogue is every MovieLens movie whose TMDB entry has an overview; its text
is ``title. tagline overview Genres: ... Keywords: ...``. Ratings of movies
without TMDB text are dropped before anything else (they could not be
recommended by a text model and would otherwise count as unreachable relevant
items for every model alike).

Protocol: per user, the last 20 % of their ratings by timestamp (at least 1)
are held out, the rest is training. Relevant = held-out items rated >= 4.0.
Every catalogue item the user did not rate in training is ranked. Metrics over
users with at least one relevant item: ``ndcg@10``, ``recall@10``,
``hit_rate@10``, ``mrr`` (reciprocal rank of the first relevant item),
``coverage`` (share of the catalogue in anyone's top 10); ``ndcg@10_cold``
counts only cold relevant items (nobody rated them in training), over users
having one.

Models, all in the same run: the content head (``ContentRecommender`` on the
encoder, no ratings used beyond the user's own history), the hybrid head (plus
``fit_interactions`` on the training ratings), and baselines with their own
``encoder`` names: ``baseline:popularity``, ``baseline:item-knn`` (cosine on
binary user vectors, top-k neighbours, shrinkage) and ``baseline:tfidf-content``
(TF-IDF profile of the history). Every model's free settings are chosen on a
validation split carved from the training data the same way (last 20 % of each
user's training ratings); the test hold-out is only used for the final figures.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from core.encoders.base import Encoder
from core.evaluation.harness import TASKS, TaskContext, make_record

logger = logging.getLogger(__name__)

__all__ = ["RecommendationTask", "Split", "evaluate_scores", "load_movielens", "temporal_split"]

DATASET = "movielens-tmdb"  # the hybrid head and the baselines
CONTENT_DATASET = "movielens-tmdb/content-only"  # the content head (no ratings of others)
K = 10
RELEVANT = 4.0
HOLDOUT = 0.2
METRICS = ("ndcg@10", "recall@10", "hit_rate@10", "mrr", "coverage", "ndcg@10_cold")


def _names(cell: str) -> list[str]:
    try:
        return [d["name"] for d in json.loads(cell or "[]")]
    except (ValueError, TypeError, KeyError):
        return []


def movie_text(title: str, tagline: str, overview: str, genres: Sequence[str],
               keywords: Sequence[str]) -> str:
    """The item text used for a movie (kept stable: it keys the embedding cache)."""
    parts = [title + "."]
    if tagline.strip():
        parts.append(tagline.strip())
    parts.append(overview.strip())
    if genres:
        parts.append("Genres: " + ", ".join(genres) + ".")
    if keywords:
        parts.append("Keywords: " + ", ".join(keywords[:20]) + ".")
    return " ".join(parts)


def load_movielens(root: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Catalogue ids, texts and the ratings restricted to it.

    Args:
        root: The ``movielens`` folder (holding ``ml-latest-small/`` and the TMDB csv).

    Returns:
        ``(item_ids, texts, ratings)`` where ``ratings`` is a structured array with
        fields ``user``, ``item`` (index into ``item_ids``), ``rating``, ``timestamp``.
    """
    csv.field_size_limit(1 << 27)
    small = root / "ml-latest-small"
    tmdb: dict[str, dict[str, str]] = {}
    with open(root / "tmdb_5000_movies.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if (r.get("overview") or "").strip():
                tmdb[r["id"]] = r
    with open(small / "links.csv", encoding="utf-8", newline="") as fh:
        links = {r["movieId"]: r["tmdbId"] for r in csv.DictReader(fh)}
    ids: list[str] = []
    texts: list[str] = []
    with open(small / "movies.csv", encoding="utf-8", newline="") as fh:
        for m in csv.DictReader(fh):
            t = links.get(m["movieId"])
            if t and t in tmdb:
                r = tmdb[t]
                ids.append(m["movieId"])
                texts.append(movie_text(m["title"], r["tagline"], r["overview"],
                                        _names(r["genres"]), _names(r["keywords"])))
    pos = {m: i for i, m in enumerate(ids)}
    rows = []
    with open(small / "ratings.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            i = pos.get(r["movieId"])
            if i is not None:
                rows.append((int(r["userId"]), i, float(r["rating"]), int(r["timestamp"])))
    dt = np.dtype([("user", np.int64), ("item", np.int64), ("rating", np.float32),
                   ("timestamp", np.int64)])
    return ids, texts, np.array(rows, dtype=dt)


@dataclass
class Split:
    """Per-user training histories and held-out relevant items.

    Attributes:
        train: Structured ratings used for training (all users).
        users: Evaluated users (at least one relevant held-out item).
        history: user -> (item indices, ratings, timestamps) of training ratings.
        relevant: user -> set of held-out item indices rated >= 4.0.
        cold: item indices nobody rated in ``train``.
    """

    train: np.ndarray
    users: list[int]
    history: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    relevant: dict[int, set[int]]
    cold: set[int] = field(default_factory=set)


def temporal_split(ratings: np.ndarray, n_items: int, holdout: float = HOLDOUT,
                   limit: int | None = None) -> Split:
    """Hold out each user's last ``holdout`` share of ratings by time (at least 1).

    Users with fewer than 2 ratings are kept for training only. ``limit`` keeps the
    first ``limit`` evaluated users (by id), for quick runs.
    """
    order = np.lexsort((ratings["item"], ratings["timestamp"], ratings["user"]))
    r = ratings[order]
    starts = np.flatnonzero(np.r_[True, r["user"][1:] != r["user"][:-1]])
    ends = np.r_[starts[1:], len(r)]
    train_mask = np.ones(len(r), bool)
    held: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for a, b in zip(starts, ends, strict=True):
        n = b - a
        if n < 2:
            continue
        n_test = max(1, math.floor(holdout * n + 0.5))
        train_mask[b - n_test:b] = False
        held[int(r["user"][a])] = (r["item"][b - n_test:b], r["rating"][b - n_test:b])
    train = r[train_mask]
    rated = np.zeros(n_items, bool)
    rated[train["item"]] = True
    cold = set(np.flatnonzero(~rated).tolist())
    history: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    ts = np.flatnonzero(np.r_[True, train["user"][1:] != train["user"][:-1]])
    te = np.r_[ts[1:], len(train)]
    for a, b in zip(ts, te, strict=True):
        history[int(train["user"][a])] = (train["item"][a:b], train["rating"][a:b],
                                          train["timestamp"][a:b])
    relevant: dict[int, set[int]] = {}
    for u, (items, rt) in held.items():
        rel = {int(i) for i, x in zip(items, rt, strict=True) if x >= RELEVANT}
        if rel and u in history:
            relevant[u] = rel
    users = sorted(relevant)
    if limit is not None:
        users = users[:limit]
    return Split(train=train, users=users, history=history, relevant=relevant, cold=cold)


def _dcg(hits: np.ndarray) -> float:
    return float((hits / np.log2(np.arange(2, len(hits) + 2))).sum())


def evaluate_scores(split: Split, score_fn: Callable[[int], np.ndarray], n_items: int,
                    desc: str = "", show: bool | None = None) -> dict[str, tuple[float, int]]:
    """Run ``score_fn(user) -> scores over all items`` for every evaluated user.

    Returns:
        metric -> (value, n users it is averaged over).
    """
    from core.encoders.base import progress

    sums = dict.fromkeys(METRICS, 0.0)
    n_cold = 0
    recommended = np.zeros(n_items, bool)
    bar = progress(len(split.users), f"recommendation {desc}", show, threshold=50)
    for u in split.users:
        s = np.asarray(score_fn(u), np.float64).copy()
        s[split.history[u][0]] = -np.inf
        rel = split.relevant[u]
        kk = min(K, int(np.isfinite(s).sum()))
        top = np.argpartition(-s, kk - 1)[:kk] if kk else np.zeros(0, np.int64)
        top = top[np.argsort(-s[top], kind="stable")]
        recommended[top] = True
        hits = np.array([int(t) in rel for t in top], float).reshape(-1)
        ideal = _dcg(np.ones(min(len(rel), K)))
        sums["ndcg@10"] += _dcg(hits) / ideal
        sums["recall@10"] += hits.sum() / len(rel)
        sums["hit_rate@10"] += float(hits.any())
        rel_idx = np.fromiter(rel, np.int64)
        # rank of the best relevant item (1-based); ties counted pessimistically
        best = s[rel_idx].max()
        sums["mrr"] += 1.0 / (1 + int((s > best).sum()) + int((s[rel_idx] == best).sum()) - 1)
        cold_rel = rel & split.cold
        if cold_rel:
            n_cold += 1
            ch = np.array([int(t) in cold_rel for t in top], float).reshape(-1)
            sums["ndcg@10_cold"] += _dcg(ch) / _dcg(np.ones(min(len(cold_rel), K)))
        bar.update(1)
    bar.close()
    n = max(len(split.users), 1)
    out = {m: (sums[m] / n, len(split.users)) for m in ("ndcg@10", "recall@10", "hit_rate@10",
                                                        "mrr")}
    out["coverage"] = (float(recommended.mean()), n_items)
    out["ndcg@10_cold"] = (sums["ndcg@10_cold"] / max(n_cold, 1), n_cold)
    return out


# --------------------------------------------------------------------- models
def _weights(ratings: np.ndarray, center: object) -> np.ndarray:
    w = ratings.astype(np.float64)
    if center == "mean":
        c = w - w.mean()
        return c if np.abs(c).max() > 1e-9 else np.ones_like(w)
    if center is None:
        return w
    return w - float(center)  # type: ignore[arg-type]


def _history(split: Split, user: int, ids: Sequence[str]) -> list[tuple[str, float, float]]:
    """A user's training history as ``(item id, rating, timestamp)``."""
    it, rt, ts = split.history[user]
    return [(ids[i], float(r), float(t)) for i, r, t in zip(it, rt, ts, strict=True)]


def _popularity(train: np.ndarray, n_items: int) -> np.ndarray:
    return np.bincount(train["item"], minlength=n_items).astype(np.float64)


def _cooccurrence(train: np.ndarray, n_items: int) -> np.ndarray:
    """Dense item x item co-rating counts (the evaluation catalogue is small)."""
    from scipy import sparse

    users = np.unique(train["user"], return_inverse=True)[1]
    x = sparse.csr_matrix((np.ones(len(train)), (users, train["item"])),
                          shape=(int(users.max()) + 1, n_items))
    x.data[:] = 1.0
    return np.asarray((x.T @ x).toarray(), dtype=np.float32)


def _item_knn(co: np.ndarray, n_items: int, k: int, shrink: float) -> Any:
    """Top-k cosine item-item matrix on binary user vectors (sparse), from co-counts."""
    from scipy import sparse

    cnt = np.diag(co).copy()
    sim = co / np.maximum(np.sqrt(np.outer(cnt, cnt)), 1e-12)
    if shrink:
        sim *= co / (co + shrink)
    np.fill_diagonal(sim, 0.0)
    if k < n_items:
        drop = np.argpartition(-sim, k, axis=1)[:, k:]
        np.put_along_axis(sim, drop, 0.0, axis=1)
    return sparse.csr_matrix(sim)


def _tfidf(texts: Sequence[str]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english").fit_transform(
        texts)


def _best(split: Split, grid: list[dict[str, Any]], make: Callable[..., Callable[[int], Any]],
          n_items: int, name: str, show: bool | None) -> tuple[dict[str, Any], float]:
    """Pick the grid point with the best validation ndcg@10."""
    best, best_v = grid[0], -1.0
    for g in grid:
        v = evaluate_scores(split, make(**g), n_items, f"{name} (val)", show)["ndcg@10"][0]
        logger.info("recommendation validation %s %s: ndcg@10 %.4f", name, g, v)
        if v > best_v:
            best, best_v = g, v
    return best, best_v


def plot_records(records: list[dict[str, Any]], path: Path) -> None:
    """Bar chart of ndcg@10 and ndcg@10_cold per model (written next to the results)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = []
    for r in records:
        label = r["encoder"] + (" (content)" if r["dataset"] == CONTENT_DATASET else
                                "" if r["encoder"].startswith("baseline:") else " (hybrid)")
        if label not in models:
            models.append(label)
    vals = {(m, k): 0.0 for m in models for k in ("ndcg@10", "ndcg@10_cold")}
    for r in records:
        label = r["encoder"] + (" (content)" if r["dataset"] == CONTENT_DATASET else
                                "" if r["encoder"].startswith("baseline:") else " (hybrid)")
        if r["metric"] in ("ndcg@10", "ndcg@10_cold"):
            vals[(label, r["metric"])] = r["value"]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(models))
    for j, metric in enumerate(("ndcg@10", "ndcg@10_cold")):
        ax.bar(x + (j - 0.5) * 0.38, [vals[(m, metric)] for m in models], 0.38, label=metric)
    ax.set_xticks(x, models, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("NDCG@10")
    ax.set_title("MovieLens x TMDB, temporal 80/20 split per user", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class RecommendationTask:
    """MovieLens x TMDB top-10 recommendation (content, hybrid, and baselines)."""

    name = "recommendation"
    description = ("Top-10 movie recommendation on MovieLens latest-small joined to TMDB "
                   "overviews; temporal 80/20 split per user; content and hybrid heads vs "
                   "popularity, item-kNN and TF-IDF baselines")
    needs_token_embeddings = False
    main_metric = (DATASET, "ndcg@10")

    content_grid: tuple[dict[str, Any], ...] = tuple(
        {"rating_center": c, "content_power": p}
        for c, p in product(("mean", 3.0, None), (1.0, 3.0, 6.0)))
    hybrid_grid: tuple[dict[str, Any], ...] = tuple(
        {"cf_weight": a, "popularity_weight": g, "trend_weight": h}
        for a, g, h in product((0.3, 0.5, 0.7, 0.9), (0.0, 0.3), (0.0, 0.3, 1.0)))
    knn_grid: tuple[dict[str, Any], ...] = tuple(
        {"k": k, "shrink": s} for k, s in product((50, 100, 200, 400), (10.0, 50.0, 100.0)))
    tfidf_grid: tuple[dict[str, Any], ...] = ({"center": "mean"}, {"center": 3.0},
                                              {"center": None})

    def run(self, encoder: Encoder, ctx: TaskContext) -> list[dict[str, Any]]:
        from core.heads.recommend import ContentRecommender

        root = ctx.require("movielens", "ml-latest-small", "ratings.csv").parents[1]
        ctx.require("movielens", "tmdb_5000_movies.csv")
        ids, texts, ratings = load_movielens(root)
        n = len(ids)
        test = temporal_split(ratings, n, limit=ctx.limit)
        val = temporal_split(test.train, n, limit=ctx.limit)
        show = ctx.show_progress
        logger.info("recommendation: %d items, %d ratings, %d test users, %d validation users",
                    n, len(ratings), len(test.users), len(val.users))
        prepare = getattr(encoder, "prepare", None)
        if callable(prepare):
            prepare(texts)
        catalogue = list(zip(ids, texts, strict=True))
        head = ContentRecommender(encoder).fit(catalogue)
        records: list[dict[str, Any]] = []

        def emit(model: str, res: dict[str, tuple[float, int]], dataset: str = DATASET
                 ) -> None:
            for m in METRICS:
                v, cnt = res[m]
                records.append(make_record(model, self.name, dataset, m, v, cnt))

        # ---- content head: tune rating centring and sharpness on validation
        def content_make(split: Split) -> Callable[..., Callable[[int], np.ndarray]]:
            def make(**params: Any) -> Callable[[int], np.ndarray]:
                head.set_params(**params)
                return lambda u: head.score_history(_history(split, u, ids))
            return make

        cbest, _ = _best(val, list(self.content_grid), content_make(val), n, "content", show)
        emit(encoder.name, evaluate_scores(test, content_make(test)(**cbest), n, "content",
                                           show), CONTENT_DATASET)

        # ---- hybrid head: same content settings, tune the blend on validation
        hv = ContentRecommender(encoder, **cbest).fit(catalogue)
        tr = val.train
        hv.fit_interactions(tr["user"].tolist(), [ids[i] for i in tr["item"]],
                            tr["rating"].tolist(), tr["timestamp"].tolist())
        comps: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        pop_v = hv.popularity_
        if pop_v is None:
            raise RuntimeError("fit_interactions left no popularity prior")

        def hybrid_val(**g: Any) -> Callable[[int], np.ndarray]:
            def f(u: int) -> np.ndarray:
                if u not in comps:
                    hist = _history(val, u, ids)
                    idx, w = hv._weights(hist, hv.rating_center, None)
                    trend = hv.trend_scores(hv._ref_time(hist))
                    comps[u] = (hv._content_scores(idx, w), hv._cf_scores(idx, w),
                                np.zeros(n, np.float32) if trend is None else trend)
                c, cf, trend = comps[u]
                a = g["cf_weight"]
                return ((1 - a) * c / hv._scale(c) + a * cf / hv._scale(cf)
                        + g["popularity_weight"] * pop_v + g["trend_weight"] * trend)
            return f

        hbest, _ = _best(val, list(self.hybrid_grid), hybrid_val, n, "hybrid", show)
        hyb = ContentRecommender(encoder, **cbest, **hbest).fit(catalogue)
        tr = test.train
        hyb.fit_interactions(tr["user"].tolist(), [ids[i] for i in tr["item"]],
                             tr["rating"].tolist(), tr["timestamp"].tolist())
        emit(encoder.name, evaluate_scores(
            test, lambda u: hyb.score_history(_history(test, u, ids)), n, "hybrid", show))
        logger.info("recommendation: content %s, hybrid %s", cbest, hbest)

        # ---- baselines
        pop = _popularity(test.train, n)
        emit("baseline:popularity", evaluate_scores(test, lambda u: pop, n, "popularity", show))

        def knn_make(split: Split) -> Callable[..., Callable[[int], np.ndarray]]:
            co = _cooccurrence(split.train, n)

            def make(k: int, shrink: float) -> Callable[[int], np.ndarray]:
                sim = _item_knn(co, n, k, shrink)

                def f(u: int) -> np.ndarray:
                    return np.asarray(sim[split.history[u][0]].sum(axis=0)).ravel()
                return f
            return make

        kbest, _ = _best(val, list(self.knn_grid), knn_make(val), n, "item-knn", show)
        emit("baseline:item-knn", evaluate_scores(test, knn_make(test)(**kbest), n,
                                                  "item-knn", show))

        x = _tfidf(texts)

        def tfidf_make(split: Split) -> Callable[..., Callable[[int], np.ndarray]]:
            def make(center: object) -> Callable[[int], np.ndarray]:
                def f(u: int) -> np.ndarray:
                    it, rt, _ = split.history[u]
                    prof = np.asarray(x[it].T @ _weights(rt, center)).ravel()
                    return np.asarray(x @ prof).ravel()
                return f
            return make

        tbest, _ = _best(val, list(self.tfidf_grid), tfidf_make(val), n, "tfidf", show)
        emit("baseline:tfidf-content", evaluate_scores(test, tfidf_make(test)(**tbest), n,
                                                       "tfidf", show))
        logger.info("recommendation baselines: item-knn %s, tfidf %s", kbest, tbest)
        if ctx.work_dir is not None:
            ctx.work_dir.mkdir(parents=True, exist_ok=True)
            plot_records(records, ctx.work_dir / f"recommendation_{encoder.name}.png")
            (ctx.work_dir / f"recommendation_settings_{encoder.name}.json").write_text(json.dumps(
                {"content": cbest, "hybrid": hbest, "item-knn": kbest, "tfidf": tbest},
                indent=1, default=str))
        return records


TASKS.register("recommendation", RecommendationTask())
