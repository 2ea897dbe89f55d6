"""Integration tests: the recommender on the real e5-small and the MovieLens data."""

from __future__ import annotations

import numpy as np
import pytest

from embedsuite.heads.recommend import ContentRecommender

pytestmark = pytest.mark.integration

# the demo catalogue's science-fiction group (books, films, a course, a podcast, games)
SCIFI = {"b001", "b002", "b003", "b004", "b005", "b006", "b007", "b008", "b029", "b030",
         "f001", "f002", "f003", "f004", "f005", "f006", "f007", "f008", "f009", "c009",
         "c010", "p001", "p002", "g001", "g005", "g007"}
KIDS_SPACE = {"b006", "f004"}  # the two "funny space adventure for kids" items


@pytest.fixture(scope="module")
def demo_head(e5):  # type: ignore[no-untyped-def]
    from embedsuite.data.catalogue import demo_catalogue

    return ContentRecommender(e5, rating_center=None).fit(demo_catalogue())


def test_wish_finds_kids_space_adventure_in_two_languages(demo_head):
    for wish in ("a funny space adventure for kids",
                 "ein lustiges Weltraumabenteuer für Kinder"):
        top = [r["item_id"] for r in demo_head.recommend_for_text(wish, k=5)]
        assert KIDS_SPACE & set(top), (wish, top)
        assert sum(t in SCIFI for t in top) >= 3, (wish, top)


def test_liked_scifi_gives_scifi_and_dislikes_push_away(demo_head):
    liked = [("b001", 1.0), ("f008", 1.0), ("b007", 1.0)]
    res = demo_head.recommend(liked, k=6)
    ids = [r["item_id"] for r in res]
    assert sum(i in SCIFI for i in ids) >= 5, ids
    assert all(set(r["because"]) <= {"b001", "f008", "b007"} and r["because"] for r in res)
    # disliking the cooking course lowers cooking items
    base = demo_head.score_history([("c012", 1.0), ("b001", 1.0)], rating_center=None)
    push = demo_head.score_history([("c012", -1.0), ("b001", 1.0)], rating_center=None)
    cook = [demo_head.index_[i] for i in ("c013", "c014", "p004")]
    assert (push[cook] < base[cook]).all()


def test_diversity_spreads_picks(demo_head):
    def kinds(lam: float) -> set[str]:
        res = demo_head.recommend_for_text("a space adventure", k=8, mmr_lambda=lam)
        return {demo_head.item(r["item_id"])["metadata"]["kind"] for r in res}

    assert len(kinds(0.3)) >= len(kinds(1.0))
    sims = []
    for lam in (1.0, 0.3):
        ids = [r["item_id"] for r in demo_head.similar("f001", k=6, mmr_lambda=lam)]
        v = demo_head.item_vectors_[[demo_head.index_[i] for i in ids]]
        sims.append(float((v @ v.T)[np.triu_indices(len(ids), 1)].mean()))
    assert sims[1] < sims[0]


@pytest.mark.data
def test_movielens_join_and_split(data_dir):
    from embedsuite.evaluation.tasks.recommendation import (
        _popularity,
        evaluate_scores,
        load_movielens,
        temporal_split,
    )

    ids, texts, ratings = load_movielens(data_dir / "movielens")
    assert 3400 <= len(ids) <= 3700 and len(ids) == len(texts)
    assert len(np.unique(ratings["user"])) == 610
    assert all("Genres:" in t or len(t) > 20 for t in texts[:50])
    split = temporal_split(ratings, len(ids))
    n_train = sum(len(h[0]) for h in split.history.values())
    assert 0.75 < n_train / len(ratings) < 0.85
    assert len(split.users) > 500
    for u in split.users[:50]:  # held-out items are never in the user's training history
        assert not split.relevant[u] & set(split.history[u][0].tolist())
    pop = _popularity(split.train, len(ids))
    rng = np.random.default_rng(0)
    res_pop = evaluate_scores(split, lambda u: pop, len(ids))
    res_rand = evaluate_scores(split, lambda u: rng.random(len(ids)), len(ids))
    assert res_pop["ndcg@10"][0] > 3 * res_rand["ndcg@10"][0]
    assert res_pop["ndcg@10_cold"][0] == 0.0  # cold items have no popularity


@pytest.mark.data
def test_hybrid_on_a_movielens_sample_beats_popularity(e5, data_dir):
    """200 most-rated movies: the hybrid head ranks held-out likes above popularity."""
    from embedsuite.evaluation.tasks.recommendation import (
        _popularity,
        evaluate_scores,
        load_movielens,
        temporal_split,
    )

    ids, texts, ratings = load_movielens(data_dir / "movielens")
    keep = np.argsort(-np.bincount(ratings["item"], minlength=len(ids)))[:200]
    remap = -np.ones(len(ids), np.int64)
    remap[keep] = np.arange(len(keep))
    r = ratings[remap[ratings["item"]] >= 0].copy()
    r["item"] = remap[r["item"]]
    sub_ids = [ids[i] for i in keep]
    split = temporal_split(r, len(keep))
    head = ContentRecommender(e5, rating_center=3.0, cf_weight=0.5, popularity_weight=0.3)
    head.fit([(i, texts[j]) for i, j in zip(sub_ids, keep, strict=True)])
    tr = split.train
    head.fit_interactions(tr["user"].tolist(), [sub_ids[i] for i in tr["item"]],
                          tr["rating"].tolist(), tr["timestamp"].tolist())

    def hybrid(u: int) -> np.ndarray:
        it, rt, ts = split.history[u]
        return head.score_history([(sub_ids[i], float(x), float(t))
                                   for i, x, t in zip(it, rt, ts, strict=True)])

    pop = _popularity(tr, len(keep))
    h = evaluate_scores(split, hybrid, len(keep))["ndcg@10"][0]
    p = evaluate_scores(split, lambda u: pop, len(keep))["ndcg@10"][0]
    assert h > p, (h, p)


@pytest.mark.data
def test_simulated_cold_start_gives_enough_users_to_compare(data_dir):
    """The natural split has too few users with a cold relevant item to tell models
    apart; each simulated draw (20 % of items made cold) has several hundred."""
    from embedsuite.evaluation.tasks.recommendation import (
        load_movielens,
        simulate_cold,
        temporal_split,
    )

    ids, _, ratings = load_movielens(data_dir / "movielens")
    split = temporal_split(ratings, len(ids))

    def cold_users(s) -> int:  # type: ignore[no-untyped-def]
        return sum(1 for u in s.users if s.relevant[u] & s.cold)

    assert cold_users(split) < 100
    for seed in (0, 1):
        sim = simulate_cold(split, len(ids), 0.2, seed)
        assert cold_users(sim) > 300
        assert len(sim.cold - split.cold) > 0.15 * len(ids)
        assert len(sim.users) > 0.95 * len(split.users)
