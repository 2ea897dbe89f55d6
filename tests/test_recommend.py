"""Unit tests of the recommendation head, its tab handlers and its evaluation helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedsuite.errors import HeadFormatError, NotFittedError
from embedsuite.heads import load_head
from embedsuite.heads.recommend import ContentRecommender, parse_history

_GROUP = {"s": "space stars galaxy alien planet rocket orbit",
          "c": "cooking kitchen recipe food meal dish taste",
          "m": "detective crime murder clue police secret case"}
CATALOGUE = [
    {"id": "s1", "title": "Voyage", "description": _GROUP["s"] + " ship"},
    {"id": "s2", "title": "Fleet", "description": _GROUP["s"] + " battle"},
    {"id": "s3", "title": "Moonbase", "description": _GROUP["s"] + " moon"},
    {"id": "s4", "title": "Robots", "description": _GROUP["s"] + " robot"},
    {"id": "c1", "title": "Pasta", "description": _GROUP["c"] + " sauce"},
    {"id": "c2", "title": "Bread", "description": _GROUP["c"] + " flour"},
    {"id": "c3", "title": "Soup", "description": _GROUP["c"] + " vegetables"},
    {"id": "m1", "title": "Village", "description": _GROUP["m"] + " village"},
    {"id": "m2", "title": "Harbour", "description": _GROUP["m"] + " harbour"},
    {"id": "m3", "title": "Alibi", "description": _GROUP["m"] + " bank"},
]
SPACE = {"s1", "s2", "s3", "s4"}
COOK = {"c1", "c2", "c3"}
CRIME = {"m1", "m2", "m3"}


@pytest.fixture
def head(fake_encoder):
    return ContentRecommender(fake_encoder, rating_center=None, content_power=1.0).fit(
        CATALOGUE)


def test_not_fitted(fake_encoder):
    rec = ContentRecommender(fake_encoder)
    for call in (lambda: rec.similar("s1"), lambda: rec.recommend(["s1"]),
                 lambda: rec.recommend_for_text("space"), lambda: rec.save("x"),
                 lambda: rec.fit_interactions(["u"], ["s1"], [5.0])):
        with pytest.raises(NotFittedError):
            call()


def test_init_only_stores(fake_encoder):
    rec = ContentRecommender(fake_encoder, mmr_lambda=5.0)  # validated at fit, not here
    assert rec.mmr_lambda == 5.0
    with pytest.raises(ValueError, match=r"mmr_lambda must be in \[0, 1\]"):
        rec.fit(CATALOGUE)


def test_fit_embeds_once_with_passage_role(fake_encoder, head):
    assert head.n_items == len(CATALOGUE)
    assert head.embeddings_.shape == (len(CATALOGUE), 32)
    calls = fake_encoder.calls
    ContentRecommender(fake_encoder).fit(CATALOGUE)
    assert fake_encoder.calls == calls  # cached
    assert head.item("s1")["text"] == "Voyage. " + _GROUP["s"] + " ship"
    assert head.item("s1")["metadata"]["title"] == "Voyage"


def test_fit_validation(fake_encoder):
    rec = ContentRecommender(fake_encoder)
    with pytest.raises(ValueError, match="duplicate item id 's1'"):
        rec.fit([("s1", "a"), ("s1", "b")])
    with pytest.raises(ValueError, match="at least 2 items"):
        rec.fit([("s1", "a")])
    with pytest.raises(TypeError, match="items must be a list"):
        rec.fit("not a list")
    with pytest.raises(ValueError, match="has no text"):
        rec.fit([{"id": "a"}, {"id": "b", "text": "x"}])
    with pytest.raises(TypeError, match="has no 'id' key"):
        rec.fit([{"text": "a"}, {"id": "b", "text": "x"}])


def test_similar_keys_and_neighbours(head):
    res = head.similar("s1", k=3)
    assert [set(r) for r in res] == [{"item_id", "score", "because"}] * 3
    assert {r["item_id"] for r in res} <= SPACE - {"s1"}
    assert all(r["because"] == ["s1"] for r in res)
    scores = [r["score"] for r in res]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(KeyError, match="'zz' is not in the catalogue"):
        head.similar("zz")
    with pytest.raises(ValueError, match="k must be a positive int"):
        head.similar("s1", k=0)


def test_recommend_pulls_likes_pushes_dislikes_and_explains(head):
    res = head.recommend([("s1", 1.0), ("c1", -1.0)], k=3)
    ids = [r["item_id"] for r in res]
    assert set(ids) <= SPACE - {"s1"}
    assert all(r["because"] == ["s1"] for r in res)  # the disliked item never explains a pick
    full = head.score_history([("s1", 1.0), ("c1", -1.0)])
    # dislikes lower the cooking items compared with a like-only history
    like_only = head.score_history([("s1", 1.0)])
    for c in COOK - {"c1"}:
        assert full[head.index_[c]] < like_only[head.index_[c]]


def test_recommend_excludes_seen_and_caps_k(head):
    hist = ["s1", "s2", "s3"]
    res = head.recommend(hist, k=100)
    ids = [r["item_id"] for r in res]
    assert not set(ids) & set(hist)
    assert len(ids) == len(CATALOGUE) - 3
    assert len(head.recommend(hist, k=2, exclude_seen=False)) == 2
    assert "s4" not in [r["item_id"] for r in head.recommend(hist, k=5, exclude=["s4"])]


def test_because_names_history_items(head):
    res = head.recommend([("s1", 1.0), ("m1", 1.0)], k=4)
    for r in res:
        assert r["because"], r
        assert set(r["because"]) <= {"s1", "m1"}
        group = SPACE if r["item_id"] in SPACE else CRIME if r["item_id"] in CRIME else None
        if group is not None:
            assert r["because"][0] in group


def test_rating_centering_and_recency(fake_encoder):
    rec = ContentRecommender(fake_encoder, rating_center="mean", content_power=1.0).fit(
        CATALOGUE)
    # liked space (5), disliked crime (1): centred weights +2 / -2
    res = rec.recommend([("s1", 5.0), ("m1", 1.0)], k=3)
    assert {r["item_id"] for r in res} <= SPACE
    # equal ratings still count as likes instead of vanishing
    res = rec.recommend([("c1", 4.0), ("c2", 4.0)], k=1)
    assert res[0]["item_id"] == "c3"
    # recency: the older like fades away
    hist = [("s1", 1.0, 0.0), ("c1", 1.0, 1000.0)]
    res = rec.recommend(hist, k=1, rating_center=None, recency_half_life=10.0)
    assert res[0]["item_id"] in COOK
    res = rec.recommend([("s1", 1.0, 1000.0), ("c1", 1.0, 0.0)], k=1, rating_center=None,
                        recency_half_life=10.0)
    assert res[0]["item_id"] in SPACE


def test_parse_history_forms_and_errors():
    h = parse_history(["a", ("b", 2), ("c", 3.5, 10), {"item_id": "d", "rating": -1},
                       {"id": 5, "weight": 2, "timestamp": 7}])
    assert h == [("a", 1.0, None), ("b", 2.0, None), ("c", 3.5, 10.0), ("d", -1.0, None),
                 ("5", 2.0, 7.0)]
    with pytest.raises(TypeError, match="history must be a list"):
        parse_history("abc")
    with pytest.raises(ValueError, match="must be finite"):
        parse_history([("a", float("nan"))])
    with pytest.raises(TypeError, match=r"history\[0\] must be an item id"):
        parse_history([("a", 1, 2, 3)])


def test_recommend_errors(head):
    with pytest.raises(ValueError, match="history is empty"):
        head.recommend([])
    with pytest.raises(KeyError, match=r"history item\(s\) \['nope'\] are not in the catalogue"):
        head.recommend(["nope"])
    with pytest.raises(ValueError, match="mmr_lambda must be in"):
        head.recommend(["s1"], mmr_lambda=1.5)


def test_mmr_diversity(head):
    rel = [r["item_id"] for r in head.recommend_for_text("space stars alien galaxy", k=4,
                                                         mmr_lambda=1.0)]
    div = [r["item_id"] for r in head.recommend_for_text("space stars alien galaxy", k=4,
                                                         mmr_lambda=0.0)]
    assert set(rel) <= SPACE
    assert rel[0] == div[0]  # the best item first in both
    groups = lambda ids: {("s" if i in SPACE else "c" if i in COOK else "m") for i in ids}  # noqa: E731
    assert len(groups(div)) >= 3 > len(groups(rel))


def test_recommend_for_text_single_and_list(head):
    one = head.recommend_for_text("cooking kitchen recipe food", k=2)
    assert isinstance(one, list) and one[0]["item_id"] in COOK and one[0]["because"] == []
    many = head.recommend_for_text(["kitchen recipe meal dish", "detective murder police clue"],
                                   k=1)
    assert len(many) == 2
    assert many[0][0]["item_id"] in COOK and many[1][0]["item_id"] in CRIME
    with pytest.raises(ValueError, match="empty or whitespace"):
        head.recommend_for_text("  ")


def test_hybrid_uses_interactions_and_keeps_cold_items(fake_encoder):
    rec = ContentRecommender(fake_encoder, content_power=1.0, cf_weight=0.9,
                             popularity_weight=0.0, shrinkage=0.0).fit(CATALOGUE)
    # users who like s1 also like c1 (collaborative evidence unrelated to text)
    users, items, ratings = [], [], []
    for u in range(6):
        users += [f"u{u}", f"u{u}", f"u{u}"]
        items += ["s1", "c1", "m3"]
        ratings += [5.0, 5.0, 1.0]
    rec.fit_interactions(users, items, ratings, list(range(len(users))))
    assert rec.is_hybrid
    top = rec.recommend([("s1", 5.0), ("m2", 2.0)], k=1)[0]
    assert top["item_id"] == "c1"
    assert "s1" in top["because"]
    # cold items (nobody rated them) are still recommended through their text
    res = rec.recommend([("s2", 5.0), ("m2", 1.0)], k=6)
    assert {"s3", "s4"} & {r["item_id"] for r in res}
    with pytest.raises(ValueError, match="equal length"):
        rec.fit_interactions(["a"], ["s1", "s2"], [1.0])
    with pytest.raises(ValueError, match="none of the 1 interactions"):
        rec.fit_interactions(["a"], ["zz"], [1.0])


def test_save_load_round_trip(fake_encoder, tmp_path: Path):
    rec = ContentRecommender(fake_encoder, cf_weight=0.6).fit(CATALOGUE)
    rec.fit_interactions(["a", "a", "b", "b"], ["s1", "s2", "s1", "s3"], [5, 4, 5, 2])
    assert rec.save(tmp_path / "rec") == tmp_path / "rec"
    assert (tmp_path / "rec" / "model.safetensors").is_file()
    cfg = json.loads((tmp_path / "rec" / "config.json").read_text())
    assert cfg["head"] == "recommender" and cfg["head_version"] == 2
    # the catalogue lives in digest-checked sidecars, not in config.json
    assert "item_ids" not in cfg and "texts" not in cfg and "metadata" not in cfg
    assert {"item_ids_bytes", "texts_bytes", "metadata_bytes"} <= set(cfg["sidecars"])
    assert (tmp_path / "rec" / "item_ids_bytes.npy").is_file()
    back = ContentRecommender.load(tmp_path / "rec", encoder=fake_encoder)
    assert back.get_params() == rec.get_params()
    assert back.is_hybrid and back.item_ids_ == rec.item_ids_
    np.testing.assert_array_equal(back.embeddings_, rec.embeddings_)
    hist = [("s1", 5.0), ("c1", 1.0)]
    assert back.recommend(hist, k=4) == rec.recommend(hist, k=4)
    again = load_head(tmp_path / "rec", encoder=fake_encoder)
    assert isinstance(again, ContentRecommender)
    # content-only head round trip
    plain = ContentRecommender(fake_encoder).fit(CATALOGUE)
    plain.save(tmp_path / "plain")
    assert not ContentRecommender.load(tmp_path / "plain", fake_encoder).is_hybrid
    with pytest.raises(HeadFormatError):
        ContentRecommender.load(tmp_path / "missing", fake_encoder)


def test_large_catalogue_blockwise(fake_encoder):
    """100,000 items: scoring is block-wise and the CF matrix sparse (no n x n array)."""
    rng = np.random.default_rng(0)
    n = 100_000
    rec = ContentRecommender(fake_encoder, block_size=16384, neighbors=20, cf_model="knn")
    emb = rng.standard_normal((n, 32)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = [f"i{i}" for i in range(n)]
    rec._set_catalogue(ids, ["t"] * n, [{}] * n, emb)
    rec._clear_interactions()
    users = rng.integers(0, 2000, 60_000)
    items = rng.integers(0, 5000, 60_000)  # only part of the catalogue is rated
    rec.fit_interactions(users.tolist(), [ids[i] for i in items], rng.integers(1, 6, 60_000)
                         .astype(float).tolist())
    assert rec.cf_data_ is not None and len(rec.cf_data_) <= 5000 * 20
    res = rec.recommend([("i1", 5.0), ("i2", 1.0), ("i70000", 4.0)], k=10, mmr_lambda=0.7)
    assert len(res) == 10 and len({r["item_id"] for r in res}) == 10
    assert rec.map_2d().shape == (n, 2)
    # EASE over more rated items than ease_max_items falls back to the sparse model
    rec.set_params(cf_model="ease", ease_max_items=1000)
    rec.fit_interactions(users.tolist(), [ids[i] for i in items], rng.integers(1, 6, 60_000)
                         .astype(float).tolist())
    assert rec.cf_model_ == "knn" and rec.cf_dense_ is None and rec.cf_data_ is not None


def _co_watched(fake_encoder, **params):
    """12 items; users who watch item a also watch item b (pairs 0-1, 2-3, ...)."""
    rec = ContentRecommender(fake_encoder, **params).fit(
        [(f"m{i}", f"movie number {i}") for i in range(12)])
    users, items, ratings = [], [], []
    for u in range(60):
        a = (u % 6) * 2
        for it in (a, a + 1, (a + 5) % 12):
            users.append(f"u{u}")
            items.append(f"m{it}")
            ratings.append(4.0 + (u % 2))
    return rec.fit_interactions(users, items, ratings)


def test_ease_collaborative_part(fake_encoder):
    rec = _co_watched(fake_encoder, cf_weight=1.0, trend_weight=0.0)
    assert rec.cf_model_ == "ease" and rec.cf_items_ is not None and rec.cf_dense_ is not None
    m = len(rec.cf_items_)
    assert rec.cf_dense_.shape == (m, m) and np.allclose(np.diag(rec.cf_dense_), 0.0)
    # the item always watched with m0 is the top pick for a history of m0
    top = rec.recommend([("m0", 5.0)], k=1, rating_center=3.0)[0]
    assert top["item_id"] == "m1" and top["because"] == ["m0"]


def test_ease_and_knn_save_load_round_trip(fake_encoder, tmp_path):
    for model in ("ease", "knn"):
        rec = _co_watched(fake_encoder, cf_model=model)
        rec.save(tmp_path / model)
        back = ContentRecommender.load(tmp_path / model, fake_encoder)
        assert back.cf_model_ == model and back.get_params() == rec.get_params()
        hist = [("m0", 5.0), ("m4", 2.0)]
        assert back.recommend(hist, k=5) == rec.recommend(hist, k=5)


def test_params_and_set_params(fake_encoder):
    rec = ContentRecommender(fake_encoder)
    assert rec.set_params(cf_weight=0.2) is rec and rec.cf_weight == 0.2
    with pytest.raises(ValueError, match="unknown parameter 'foo'"):
        rec.set_params(foo=1)
    # set_params only stores (scikit-learn); the values are checked at fit and use time
    rec.set_params(rating_center="median")
    with pytest.raises(ValueError, match="rating_center must be None, 'mean' or a number"):
        rec.fit(CATALOGUE)
    with pytest.raises(ValueError, match=r"cf_model must be one of \('ease', 'knn'\), got 'svd'"):
        ContentRecommender(fake_encoder).set_params(cf_model="svd").fit(CATALOGUE)
    fitted = ContentRecommender(fake_encoder).fit(CATALOGUE).set_params(rating_center="median")
    with pytest.raises(ValueError, match="rating_center must be None, 'mean' or a number"):
        fitted.recommend(["s1"])


# ----------------------------------------------------------------- tab handlers
def test_demo_catalogue_and_csv_reader(tmp_path: Path):
    from embedsuite.app.tabs.recommend import read_catalogue_csv
    from embedsuite.data.catalogue import demo_catalogue

    items = demo_catalogue()
    assert len(items) >= 100
    assert all(it["title"] and it["description"] for it in items)
    kinds = {it["kind"] for it in items}
    assert {"book", "film", "course"} <= kinds
    p = tmp_path / "c.csv"
    p.write_text("id,title,description,year\n1,A,first,2001\n2,B,second,2002\n")
    got = read_catalogue_csv(p)
    assert got[0] == {"id": "1", "title": "A", "description": "first", "year": "2001"}
    p.write_text("id,name\n1,A\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['title', 'description'\]"):
        read_catalogue_csv(p)
    p.write_text("id,title,description\n1,A,x\n1,B,y\n")
    with pytest.raises(ValueError, match="duplicate id '1'"):
        read_catalogue_csv(p)
    with pytest.raises(ValueError, match="not UTF-8"):
        read_catalogue_csv(b"id,title,description\n1,\xff\xfe,x\n2,b,c\n")


def test_tab_handlers(fake_encoder):
    from embedsuite.app.tabs.recommend import (
        RESULT_HEADERS,
        catalogue_points,
        fit_catalogue,
        recommend_from_picks,
        recommend_from_text,
        similar_to,
    )

    head = fit_catalogue(fake_encoder, [dict(it, kind="x") for it in CATALOGUE])
    rows, picks = recommend_from_picks(head, ["s1"], ["c1"], k=3, diversity=0.0)
    assert len(rows) == 3 and len(rows[0]) == len(RESULT_HEADERS)
    assert set(picks) <= SPACE
    assert rows[0][5] == "Voyage"  # because, as titles
    with pytest.raises(ValueError, match="Pick at least one liked item"):
        recommend_from_picks(head, [], None)
    with pytest.raises(ValueError, match="both liked and disliked"):
        recommend_from_picks(head, ["s1"], ["s1"])
    rows, picks = recommend_from_text(head, "detective crime police clue", k=2, diversity=0.5)
    assert picks[0] in CRIME
    with pytest.raises(ValueError, match="Type a wish first"):
        recommend_from_text(head, " ")
    rows, picks = similar_to(head, "c1", k=2)
    assert set(picks) <= COOK
    pts = catalogue_points(head, picks, ["c1"], ["s1"])
    assert len(pts) == head.n_items and {"picked", "liked", "disliked"} <= set(pts["group"])


def test_catalogue_points_colour_the_picks_likes_and_dislikes(fake_encoder):
    from embedsuite.app.tabs.recommend import (
        MAP_GROUPS,
        catalogue_points,
        fit_catalogue,
        similar_to,
    )

    head = fit_catalogue(fake_encoder, [dict(it, kind="x") for it in CATALOGUE])
    _, picks = similar_to(head, "c1", k=2)
    df = catalogue_points(head, picks, ["c1"], ["s1"])
    assert list(df.columns) == ["x", "y", "title", "kind", "group"]
    assert len(df) == head.n_items and set(df["group"]) <= set(MAP_GROUPS)
    titles = {head.item_ids_[i]: str(head.metadata_[i]["title"]) for i in range(head.n_items)}
    by_title = dict(zip(df["title"], df["group"], strict=True))
    assert by_title[titles["c1"]] == "liked" and by_title[titles["s1"]] == "disliked"
    assert [by_title[titles[p]] for p in picks] == ["picked"] * len(picks)
    assert (df["group"] == "other").sum() == head.n_items - 2 - len(picks)
    # the highlighted items come last, so they are drawn on top of the others
    assert list(df["group"])[: head.n_items - 2 - len(picks)] == ["other"] * (
        head.n_items - 2 - len(picks))
    assert list(df["group"])[-len(picks):] == ["picked"] * len(picks)
    xy = head.map_2d()
    assert np.allclose(sorted(df["x"]), sorted(np.round(xy[:, 0], 4)))
    assert set(catalogue_points(head, [], "c1")["group"]) == {"other", "liked"}


def test_app_builds_with_tab():
    from embedsuite.app.blocks import build_demo
    from embedsuite.app.ui import TABS

    build_demo()
    assert "recommend" in TABS.names()


# ------------------------------------------------------------- evaluation helpers
def test_temporal_split_and_metrics():
    from embedsuite.evaluation.tasks.recommendation import evaluate_scores, temporal_split

    dt = np.dtype([("user", np.int64), ("item", np.int64), ("rating", np.float32),
                   ("timestamp", np.int64)])
    rows = [(1, i, 5.0 if i in (3, 4) else 3.0, 10 * i) for i in range(5)]
    rows += [(2, i, 4.0, 100 - i) for i in range(5)]  # user 2 rated in reverse time
    split = temporal_split(np.array(rows, dtype=dt), n_items=6)
    assert split.relevant == {1: {4}, 2: {0}}
    assert list(split.history[1][0]) == [0, 1, 2, 3]
    assert split.cold == {5}  # item 5 nobody rated; items 0 and 4 are rated in training
    perfect = evaluate_scores(split, lambda u: np.eye(6)[4 if u == 1 else 0], 6)
    assert perfect["ndcg@10"][0] == pytest.approx(1.0)
    assert perfect["mrr"][0] == pytest.approx(1.0)
    assert perfect["hit_rate@10"] == (1.0, 2)
    worst = evaluate_scores(split, lambda u: -np.eye(6)[4 if u == 1 else 0], 6)
    assert worst["mrr"][0] < 1.0 and worst["ndcg@10"][0] < 1.0


def test_trend_prior_and_its_round_trip(fake_encoder, tmp_path: Path):
    rec = ContentRecommender(fake_encoder, cf_weight=0.5, popularity_weight=0.0,
                             trend_weight=5.0, trend_window=10.0).fit(CATALOGUE)
    # m3 was popular long ago, c3 recently
    users = [f"u{i}" for i in range(8)]
    rec.fit_interactions(users, ["m3"] * 4 + ["c3"] * 4, [4.0] * 8,
                         [0, 1, 2, 3, 100, 101, 102, 103])
    recent = rec.trend_scores(103.0)
    old = rec.trend_scores(5.0)
    assert recent is not None and old is not None
    assert recent[rec.index_["c3"]] == 1.0 and recent[rec.index_["m3"]] == 0.0
    assert old[rec.index_["m3"]] == 1.0 and old[rec.index_["c3"]] == 0.0
    assert rec.recommend([("s1", 5.0, 103.0)], k=1)[0]["item_id"] == "c3"
    assert rec.recommend([("s1", 5.0, 5.0)], k=1)[0]["item_id"] == "m3"
    rec.save(tmp_path / "t")
    back = ContentRecommender.load(tmp_path / "t", fake_encoder)
    np.testing.assert_array_equal(back.trend_scores(103.0), recent)


# ------------------------------------------------- cold items with enough users
def _ratings(rows):
    dt = np.dtype([("user", np.int64), ("item", np.int64), ("rating", np.float32),
                   ("timestamp", np.int64)])
    return np.array(rows, dtype=dt)


def _random_split(n_users=60, n_items=40, seed=0):
    from embedsuite.evaluation.tasks.recommendation import temporal_split

    rng = np.random.default_rng(seed)
    rows = [(u, int(i), float(rng.integers(1, 6)), int(rng.integers(0, 10**6)))
            for u in range(n_users) for i in rng.choice(n_items, 12, replace=False)]
    return temporal_split(_ratings(rows), n_items)


def test_simulate_cold_removes_chosen_items_from_training_only():
    from embedsuite.evaluation.tasks.recommendation import simulate_cold

    split = _random_split()
    sim = simulate_cold(split, 40, share=0.25, seed=3)
    # 25 % of 40 items are chosen (some may have been cold already)
    assert sim.cold >= split.cold and len(sim.cold) >= 10
    assert len(sim.cold) <= len(split.cold) + 10
    made_cold = np.array(sorted(sim.cold))
    assert not np.isin(sim.train["item"], made_cold).any()
    assert len(sim.train) == int((~np.isin(split.train["item"], made_cold)).sum())
    for u in sim.users:
        assert not np.isin(sim.history[u][0], made_cold).any()
        assert sim.relevant[u] == split.relevant[u]  # held-out relevant items unchanged
    assert set(sim.users) <= set(split.users)
    again = simulate_cold(split, 40, share=0.25, seed=3)
    assert again.cold == sim.cold
    assert simulate_cold(split, 40, share=0.25, seed=4).cold != sim.cold
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\), the fraction of items "
                                         r"made cold, got 1.5"):
        simulate_cold(split, 40, share=1.5)


def test_evaluate_scores_reports_cold_ndcg_per_user():
    from embedsuite.evaluation.tasks.recommendation import evaluate_scores, simulate_cold

    sim = simulate_cold(_random_split(), 40, share=0.3, seed=0)
    rng = np.random.default_rng(1)
    per: dict[int, float] = {}
    res = evaluate_scores(sim, lambda u: rng.random(40), 40, cold_per_user=per)
    assert per and res["ndcg@10_cold"][1] == len(per)
    assert res["ndcg@10_cold"][0] == pytest.approx(np.mean(list(per.values())))
    assert all(u in sim.users and sim.relevant[u] & sim.cold for u in per)


def test_paired_bootstrap_contract():
    from embedsuite.metrics import paired_bootstrap

    a = {1: 0.5, 2: 0.2, 3: 0.0, 4: 1.0}
    b = {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.0, 9: 1.0}  # user 9 is not in a: left out
    mean, lo, hi, users = paired_bootstrap(a, b, n_boot=2000)
    assert users == 4
    assert mean == pytest.approx(np.mean([0.4, 0.0, -0.3, 1.0]))
    assert lo <= mean <= hi and lo < hi
    assert paired_bootstrap({1: 0.3, 2: 0.3}, {1: 0.1, 2: 0.1})[:3] == pytest.approx(
        (0.2, 0.2, 0.2))
    # (user, draw) keys: one user's draws are resampled together, each draw counts once
    mean, _, _, users = paired_bootstrap({(1, 0): 1.0, (1, 1): 1.0, (2, 0): 0.0},
                                         {(1, 0): 0.0, (1, 1): 0.0, (2, 0): 0.0})
    assert users == 2 and mean == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="got none in common"):
        paired_bootstrap({1: 0.0}, {2: 0.0})


def _toy_movielens(root: Path, n_items: int = 30, n_users: int = 40) -> None:
    """A MovieLens + TMDB folder in the real files' formats, with two taste groups."""
    rng = np.random.default_rng(0)
    small = root / "movielens" / "ml-latest-small"
    small.mkdir(parents=True)
    words = (_GROUP["s"], _GROUP["c"])
    with open(root / "movielens" / "tmdb_5000_movies.csv", "w", encoding="utf-8") as fh:
        fh.write("id,title,overview,genres,keywords,tagline\n")
        for i in range(n_items):
            g = json.dumps([{"id": 1, "name": "Drama"}]).replace('"', '""')
            fh.write(f'{500 + i},Movie {i},"{words[i % 2]} story {i}","{g}","[]",tagline\n')
    (small / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{i + 1},Movie {i} ({1990 + i}),Drama\n" for i in range(n_items)), encoding="utf-8")
    (small / "links.csv").write_text("movieId,imdbId,tmdbId\n" + "".join(
        f"{i + 1},{100 + i},{500 + i}\n" for i in range(n_items)), encoding="utf-8")
    lines = ["userId,movieId,rating,timestamp\n"]
    for u in range(1, n_users + 1):
        for i in rng.choice(n_items, 10, replace=False):
            liked = (i % 2) == (u % 2)
            lines.append(f"{u},{i + 1},{5.0 if liked else 2.0},{int(rng.integers(0, 10**6))}\n")
    (small / "ratings.csv").write_text("".join(lines), encoding="utf-8")


def test_recommendation_task_records_natural_and_simulated_cold(fake_encoder, tmp_path: Path):
    from embedsuite.evaluation.harness import RECORD_KEYS, TaskContext
    from embedsuite.evaluation.tasks.recommendation import (
        CONTENT_DATASET,
        DATASET,
        METRICS,
        SIM_CONTENT_DATASET,
        SIM_DATASET,
        RecommendationTask,
    )

    _toy_movielens(tmp_path)
    task = RecommendationTask()
    ctx = TaskContext(data_dir=tmp_path, work_dir=tmp_path / "work", show_progress=False,
                      options={"recommendation.cold_seeds": "2"})
    records = task.run(fake_encoder, ctx)
    assert all(tuple(r) == RECORD_KEYS for r in records)
    got = {(r["encoder"], r["dataset"], r["metric"]) for r in records}
    for ds, content_ds in ((DATASET, CONTENT_DATASET), (SIM_DATASET, SIM_CONTENT_DATASET)):
        for m in METRICS:
            assert (fake_encoder.name, content_ds, m) in got
            assert (fake_encoder.name, ds, m) in got
            for base in ("baseline:popularity", "baseline:item-knn", "baseline:tfidf-content"):
                assert (base, ds, m) in got
    gains = {(r["dataset"], r["metric"]): r for r in records if "gain" in r["metric"]}
    assert {m for _, m in gains} == {"ndcg@10_cold_gain", "ndcg@10_cold_gain_ci95_low",
                                     "ndcg@10_cold_gain_ci95_high"}
    for ds in {d for d, _ in gains}:
        lo, g, hi = (gains[(ds, f"ndcg@10_cold_gain{s}")]["value"]
                     for s in ("_ci95_low", "", "_ci95_high"))
        assert lo <= g <= hi
    # the simulated cold figures pool both draws: more (user, draw) pairs than users
    sim_cold = next(r for r in records if r["dataset"] == SIM_CONTENT_DATASET
                    and r["metric"] == "ndcg@10_cold")
    users = next(r for r in records if r["dataset"] == SIM_CONTENT_DATASET
                 and r["metric"] == "ndcg@10")["n"]
    assert sim_cold["n"] > 0 and users > 40 - 1  # two draws of up to 40 users
    pop_cold = next(r for r in records if r["dataset"] == SIM_DATASET
                    and r["encoder"] == "baseline:popularity" and r["metric"] == "ndcg@10_cold")
    assert pop_cold["value"] == 0.0  # nobody rated a cold item: no popularity
    assert (tmp_path / "work" / f"recommendation_{fake_encoder.name}.png").stat().st_size > 0
    settings = json.loads((tmp_path / "work" /
                           f"recommendation_settings_{fake_encoder.name}.json").read_text())
    assert settings["cold_share"] == 0.2 and settings["cold_seeds"] == 2
    off = task.run(fake_encoder, TaskContext(data_dir=tmp_path, show_progress=False,
                                             options={"cold_seeds": 0}))
    assert not any(r["dataset"].startswith(SIM_DATASET) for r in off)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("cold_share", "1.2", r"cold_share must be a fraction in \(0, 1\) \(the share of items "
                          r"made cold\), got '1.2'"),
    ("cold_seeds", "-1", r"cold_seeds must be an int >= 0 \(simulated draws; 0 turns the "
                         r"simulation off\), got '-1'"),
    ("cold_seeds", "five", r"cold_seeds must be an int >= 0"),
])
def test_recommendation_task_rejects_bad_cold_options(fake_encoder, tmp_path: Path, key, value,
                                                      message):
    from embedsuite.evaluation.harness import TaskContext
    from embedsuite.evaluation.tasks.recommendation import RecommendationTask

    ctx = TaskContext(data_dir=tmp_path, options={f"recommendation.{key}": value})
    with pytest.raises(ValueError, match=message):
        RecommendationTask().run(fake_encoder, ctx)


def test_because_names_only_the_items_that_carried_a_pick() -> None:
    from embedsuite.heads.recommend.blend import because

    contrib = np.array([[0.9, 0.1, 0.5],    # one strong, one at 56 %: two named
                        [0.2, 0.8, 0.05],   # one item carries it
                        [-0.1, 0.0, -0.3]])  # nothing positive: nothing named
    got = because(contrib, np.array([10, 11, 12]), [f"i{k}" for k in range(13)])
    assert got == [["i10", "i12"], ["i11"], []]
