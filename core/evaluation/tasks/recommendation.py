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

Cold items, with enough users to tell models apart: in this split only ~45 users
have a naturally cold relevant item, too few to decide anything (a single hit moves
``ndcg@10_cold`` by 0.02). The same models, with the same settings, are therefore
also run on an *item cold-start* simulation (:func:`simulate_cold`): a seeded random
``cold_share`` (default 20 %) of the catalogue loses every training rating, as items
nobody has rated yet, for ``cold_seeds`` (default 5) draws; about 400 users per
draw then have a cold relevant item. Its records are in the datasets
``movielens-tmdb/simulated-cold`` (hybrid, baselines) and
``movielens-tmdb/simulated-cold/content-only``, pooled over the draws. For both the
natural and the simulated cold items the content head's records carry
``ndcg@10_cold_gain``: its ``ndcg@10_cold`` minus the best baseline's, over the same
users, with a paired bootstrap 95 % interval (``..._ci95_low``, ``..._ci95_high``;
users are resampled, each user's draws together).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.encoders.base import Encoder
from embedsuite.evaluation.harness import TASKS, TaskContext, make_record
from embedsuite.metrics import (
    hit_rate_at_k,
    ndcg_at_k,
    paired_bootstrap,
    recall_at_k,
    reciprocal_rank,
)
from embedsuite.plotting import MissingExtraError, new_figure

logger = logging.getLogger(__name__)

__all__ = ["RecommendationTask", "Split", "evaluate_scores", "load_movielens", "simulate_cold",
           "temporal_split"]

DATASET = "movielens-tmdb"  # the hybrid head and the baselines
CONTENT_DATASET = "movielens-tmdb/content-only"  # the content head (no ratings of others)
SIM_DATASET = "movielens-tmdb/simulated-cold"  # item cold-start simulation: hybrid, baselines
SIM_CONTENT_DATASET = "movielens-tmdb/simulated-cold/content-only"
COLD_SHARE = 0.2  # share of the catalogue made cold in the simulation
COLD_SEEDS = 5  # simulated draws
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


def simulate_cold(split: Split, n_items: int, share: float = COLD_SHARE, seed: int = 0) -> Split:
    """Item cold start on top of ``split``: a random ``share`` of the catalogue loses
    every training rating, as items nobody has rated yet.

    The chosen items leave ``train`` and every training history; held-out relevant
    sets are unchanged, so relevant items among the chosen ones become cold relevant
    items. Users left with an empty history are dropped.

    Raises:
        ValueError: ``share`` outside (0, 1).
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), the fraction of items made cold, got {share}")
    rng = np.random.default_rng(seed)
    drop = np.zeros(n_items, bool)
    drop[rng.choice(n_items, max(1, round(share * n_items)), replace=False)] = True
    history: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for u, (it, rt, ts) in split.history.items():
        keep = ~drop[it]
        if keep.any():
            history[u] = (it[keep], rt[keep], ts[keep])
    users = [u for u in split.users if u in history]
    return Split(train=split.train[~drop[split.train["item"]]], users=users, history=history,
                 relevant={u: split.relevant[u] for u in users},
                 cold=set(split.cold) | set(np.flatnonzero(drop).tolist()))


def evaluate_scores(split: Split, score_fn: Callable[[int], np.ndarray], n_items: int,
                    desc: str = "", show: bool | None = None,
                    cold_per_user: dict[int, float] | None = None
                    ) -> dict[str, tuple[float, int]]:
    """Run ``score_fn(user) -> scores over all items`` for every evaluated user.

    Args:
        cold_per_user: If given, filled with user -> NDCG@10 over that user's cold
            relevant items (users having one), for paired comparisons.

    Returns:
        metric -> (value, n users it is averaged over).
    """
    from embedsuite.encoders.base import progress

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
        sums["ndcg@10"] += ndcg_at_k(top, rel, K)
        sums["recall@10"] += recall_at_k(top, rel, K)
        sums["hit_rate@10"] += hit_rate_at_k(top, rel, K)
        sums["mrr"] += reciprocal_rank(s, rel)
        cold_rel = rel & split.cold
        if cold_rel:
            n_cold += 1
            v = ndcg_at_k(top, cold_rel, K)
            sums["ndcg@10_cold"] += v
            if cold_per_user is not None:
                cold_per_user[u] = v
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


def _model_label(record: Mapping[str, Any]) -> str:
    if record["encoder"].startswith("baseline:"):
        return str(record["encoder"])
    kind = "content" if record["dataset"] in (CONTENT_DATASET, SIM_CONTENT_DATASET) else "hybrid"
    return f"{record['encoder']} ({kind})"


def plot_records(records: list[dict[str, Any]], path: Path) -> None:
    """Bar chart per model: ndcg@10, and ndcg@10_cold on the natural and on the
    simulated cold items (``n``: users, or user x draw pairs when pooled)."""
    bars = (("ndcg@10", (DATASET, CONTENT_DATASET), "ndcg@10", ""),
            ("ndcg@10_cold", (DATASET, CONTENT_DATASET), "ndcg@10_cold (natural)", "users"),
            ("ndcg@10_cold", (SIM_DATASET, SIM_CONTENT_DATASET),
             "ndcg@10_cold (simulated cold items)", "(user, draw) pairs"))
    models = list(dict.fromkeys(_model_label(r) for r in records))
    vals: dict[tuple[str, int], float] = {}
    users: dict[int, int] = {}
    for r in records:
        for j, (metric, datasets, _, _) in enumerate(bars):
            if r["metric"] == metric and r["dataset"] in datasets:
                vals[(_model_label(r), j)] = r["value"]
                if metric.endswith("cold"):
                    users[j] = max(users.get(j, 0), int(r["n"]))
    shown = [j for j in range(len(bars)) if any((m, j) in vals for m in models)]
    fig = new_figure(figsize=(9, 4.2))
    ax = fig.subplots()
    x = np.arange(len(models))
    width = 0.8 / max(len(shown), 1)
    for k, j in enumerate(shown):
        _, _, title, unit = bars[j]
        label = title + (f", {users[j]} {unit}" if users.get(j) else "")
        ax.bar(x + (k - (len(shown) - 1) / 2) * width, [vals.get((m, j), 0.0) for m in models],
               width, label=label)
    ax.set_xticks(x, models, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("NDCG@10")
    ax.set_title("MovieLens x TMDB, temporal 80/20 split per user", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


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
        from embedsuite.heads.recommend import ContentRecommender

        share, n_draws = self._cold_options(ctx)
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
        x = _tfidf(texts)

        # ---- every model's free settings, chosen on validation
        def content_make(split: Split) -> Callable[..., Callable[[int], np.ndarray]]:
            def make(**params: Any) -> Callable[[int], np.ndarray]:
                head.set_params(**params)
                return lambda u: head.score_history(_history(split, u, ids))
            return make

        cbest, _ = _best(val, list(self.content_grid), content_make(val), n, "content", show)
        hbest = self._tune_hybrid(ContentRecommender(encoder, **cbest).fit_embeddings(
            ids, head.embeddings_, texts), val, ids, show)

        def knn_make(split: Split) -> Callable[..., Callable[[int], np.ndarray]]:
            co = _cooccurrence(split.train, n)

            def make(k: int, shrink: float) -> Callable[[int], np.ndarray]:
                sim = _item_knn(co, n, k, shrink)

                def f(u: int) -> np.ndarray:
                    return np.asarray(sim[split.history[u][0]].sum(axis=0)).ravel()
                return f
            return make

        def tfidf_make(split: Split) -> Callable[..., Callable[[int], np.ndarray]]:
            def make(center: object) -> Callable[[int], np.ndarray]:
                def f(u: int) -> np.ndarray:
                    it, rt, _ = split.history[u]
                    prof = np.asarray(x[it].T @ _weights(rt, center)).ravel()
                    return np.asarray(x @ prof).ravel()
                return f
            return make

        kbest, _ = _best(val, list(self.knn_grid), knn_make(val), n, "item-knn", show)
        tbest, _ = _best(val, list(self.tfidf_grid), tfidf_make(val), n, "tfidf", show)
        logger.info("recommendation settings: content %s, hybrid %s, item-knn %s, tfidf %s",
                    cbest, hbest, kbest, tbest)

        def models(split: Split) -> dict[str, Callable[[int], np.ndarray]]:
            """The five models with their chosen settings, trained on ``split.train``."""
            tr = split.train
            hyb = ContentRecommender(encoder, **cbest, **hbest).fit_embeddings(
                ids, head.embeddings_, texts)
            hyb.fit_interactions(tr["user"].tolist(), [ids[i] for i in tr["item"]],
                                 tr["rating"].tolist(), tr["timestamp"].tolist())
            pop = _popularity(tr, n)
            return {"content": content_make(split)(**cbest),
                    "hybrid": lambda u: hyb.score_history(_history(split, u, ids)),
                    "baseline:popularity": lambda u: pop,
                    "baseline:item-knn": knn_make(split)(**kbest),
                    "baseline:tfidf-content": tfidf_make(split)(**tbest)}

        # ---- the test hold-out (natural cold items), then the item cold-start draws
        records: list[dict[str, Any]] = []
        natural = self._evaluate(models(test), test, 0, "", n, show)
        records += self._records(encoder.name, natural, DATASET, CONTENT_DATASET)
        if n_draws > 0:
            per_draw: dict[str, list[dict[str, tuple[float, int]]]] = {}
            cold: dict[str, dict[Any, float]] = {}
            for d in range(n_draws):
                split = simulate_cold(test, n, share, ctx.seed + d)
                logger.info("recommendation: simulated cold start, draw %d: %.0f %% of items "
                            "cold, %d users with a cold relevant item", d, 100 * share,
                            sum(1 for u in split.users if split.relevant[u] & split.cold))
                for name, (res, c) in self._evaluate(models(split), split, d, f" (draw {d})",
                                                     n, show).items():
                    per_draw.setdefault(name, []).append(res)
                    cold.setdefault(name, {}).update(c)
            pooled = {name: (_pool(rs), cold[name]) for name, rs in per_draw.items()}
            records += self._records(encoder.name, pooled, SIM_DATASET, SIM_CONTENT_DATASET)
        if ctx.work_dir is not None:
            ctx.work_dir.mkdir(parents=True, exist_ok=True)
            try:
                plot_records(records, ctx.work_dir / f"recommendation_{encoder.name}.png")
            except MissingExtraError as exc:  # the records matter more than their plot
                logger.warning("no recommendation plot: %s", exc)
            (ctx.work_dir / f"recommendation_settings_{encoder.name}.json").write_text(json.dumps(
                {"content": cbest, "hybrid": hbest, "item-knn": kbest, "tfidf": tbest,
                 "cold_share": share, "cold_seeds": n_draws}, indent=1, default=str))
        return records

    def _cold_options(self, ctx: TaskContext) -> tuple[float, int]:
        """``cold_share`` (0..1, exclusive) and ``cold_seeds`` (>= 0), checked."""
        raw_share = ctx.option(self.name, "cold_share", COLD_SHARE)
        raw_seeds = ctx.option(self.name, "cold_seeds", COLD_SEEDS)
        try:
            share = float(raw_share)
            if not 0.0 < share < 1.0:
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"option recommendation.cold_share must be a fraction in (0, 1) "
                             f"(the share of items made cold), got {raw_share!r}; e.g. "
                             f"--option recommendation.cold_share=0.2") from None
        try:
            seeds = int(raw_seeds)
            if seeds < 0 or isinstance(raw_seeds, float):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"option recommendation.cold_seeds must be an int >= 0 (simulated "
                             f"draws; 0 turns the simulation off), got {raw_seeds!r}; e.g. "
                             f"--option recommendation.cold_seeds=5") from None
        return share, seeds

    def _tune_hybrid(self, hv: Any, val: Split, ids: Sequence[str], show: bool | None
                     ) -> dict[str, Any]:
        """The hybrid blend with the best validation ndcg@10 (components computed once)."""
        n = len(ids)
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
        return hbest

    @staticmethod
    def _evaluate(models: Mapping[str, Callable[[int], np.ndarray]], split: Split, draw: int,
                  label: str, n: int, show: bool | None
                  ) -> dict[str, tuple[dict[str, tuple[float, int]], dict[Any, float]]]:
        """Model -> (metrics, (user, draw) -> NDCG@10 over the user's cold items)."""
        out = {}
        for name, fn in models.items():
            cold: dict[int, float] = {}
            res = evaluate_scores(split, fn, n, name + label, show, cold_per_user=cold)
            out[name] = (res, {(u, draw): v for u, v in cold.items()})
        return out

    @staticmethod
    def _records(encoder: str, results: Mapping[str, tuple[dict[str, tuple[float, int]],
                                                          dict[Any, float]]],
                 dataset: str, content_dataset: str) -> list[dict[str, Any]]:
        """Records of every model, plus the content head's cold gain over the best baseline."""
        out = []
        for name, (res, _) in results.items():
            model = encoder if name in ("content", "hybrid") else name
            ds = content_dataset if name == "content" else dataset
            for m in METRICS:
                v, cnt = res[m]
                out.append(make_record(model, RecommendationTask.name, ds, m, v, cnt))
        base = {k: v for k, v in results.items() if k.startswith("baseline:")}
        content = results.get("content")
        if base and content is not None and content[1]:
            best = max(base, key=lambda k: base[k][0]["ndcg@10_cold"][0])
            gain, lo, hi, users = paired_bootstrap(content[1], base[best][1])
            logger.info("recommendation %s: content ndcg@10_cold - %s = %.4f [%.4f, %.4f] over "
                        "%d users", dataset, best, gain, lo, hi, users)
            for m, v in (("ndcg@10_cold_gain", gain), ("ndcg@10_cold_gain_ci95_low", lo),
                         ("ndcg@10_cold_gain_ci95_high", hi)):
                out.append(make_record(encoder, RecommendationTask.name, content_dataset, m, v,
                                       users))
        return out


def _pool(draws: Sequence[Mapping[str, tuple[float, int]]]) -> dict[str, tuple[float, int]]:
    """Metrics pooled over draws: each a mean weighted by its user count (``coverage``:
    the mean over draws, ``n`` the catalogue)."""
    out = {}
    for m in draws[0]:
        vals = np.array([d[m][0] for d in draws])
        cnts = np.array([d[m][1] for d in draws], float)
        if m == "coverage":
            out[m] = (float(vals.mean()), int(cnts[0]))
        else:
            out[m] = (float((vals * cnts).sum() / max(cnts.sum(), 1.0)), int(cnts.sum()))
    return out


TASKS.register("recommendation", RecommendationTask())
