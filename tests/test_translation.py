"""Unit tests of the translation retrieval head, its evaluation task and its tab (fake encoder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedsuite.errors import EncoderMismatchError, HeadFormatError, NotFittedError
from embedsuite.heads.translation import (
    SCORINGS,
    TranslationRetriever,
    knn_search,
    margin_scores,
    mine_pairs,
)
from embedsuite.testing import FakeEncoder

CANDS = ["the cat sleeps on the sofa", "it rains all week", "the train leaves at eight",
         "my phone battery is empty", "we love history books"]
HIT_KEYS = {"text", "index", "score", "cosine", "margin"}
PAIR_KEYS = {"source", "target", "source_index", "target_index", "score", "cosine"}


def _unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------- neighbour search
@pytest.mark.parametrize(("n", "m", "k"), [(1, 2, 1), (7, 5, 4), (40, 9000, 6)])
def test_knn_search_matches_brute_force_in_small_blocks(n: int, m: int, k: int) -> None:
    rng = np.random.default_rng(n + m)
    q, x = _unit(rng, n), _unit(rng, m)
    s, i = knn_search(q, x, k, block_bytes=4096)
    full = q @ x.T
    ref = np.argsort(-full, axis=1)[:, : min(k, m)]
    assert s.shape == i.shape == (n, min(k, m))
    assert np.array_equal(i, ref)
    np.testing.assert_allclose(s, np.take_along_axis(full, ref, axis=1), rtol=1e-6)
    assert np.all(np.diff(s, axis=1) <= 0)


def test_knn_search_exclude_self() -> None:
    x = _unit(np.random.default_rng(1), 30)
    _s, i = knn_search(x, x, 3, exclude_self=True, block_bytes=4096)
    assert not np.any(i == np.arange(30)[:, None])
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    assert np.array_equal(i, np.argsort(-full, axis=1)[:, :3])


def test_knn_search_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="queries have dim 3 but keys have dim 4"):
        knn_search(np.zeros((2, 3)), np.zeros((2, 4)), 1)
    with pytest.raises(ValueError, match="must be a 2-D array"):
        knn_search(np.zeros(3), np.zeros((2, 3)), 1)


def test_margin_formula() -> None:
    cos = np.array([[0.9, 0.8]], np.float32)
    got = margin_scores(cos, np.array([0.8]), np.array([0.7, 0.9]))
    np.testing.assert_allclose(got, [[0.9 / 0.75, 0.8 / 0.85]], rtol=1e-6)


def test_margin_demotes_a_hub() -> None:
    # y0 is close to everything (a hub); y1 is x's true match at a slightly lower cosine
    cos = np.array([[0.80, 0.78]], np.float32)
    r_y = np.array([0.85, 0.60], np.float32)  # the hub's neighbourhood is dense
    m = margin_scores(cos, np.array([0.7]), r_y)
    assert np.argmax(cos) == 0 and np.argmax(m) == 1


# ---------------------------------------------------------------- mining (vectors)
def test_mine_pairs_recovers_a_shuffled_alignment_and_uses_each_once() -> None:
    rng = np.random.default_rng(0)
    src = _unit(rng, 60, 32)
    perm = rng.permutation(60)
    noisy = src[perm] + 0.15 * rng.standard_normal((60, 32)).astype(np.float32)
    tgt = np.vstack([noisy, _unit(rng, 30, 32)])  # 30 distractors
    tgt /= np.linalg.norm(tgt, axis=1, keepdims=True)
    pairs = mine_pairs(src, tgt, threshold=None)
    srcs = [p[0] for p in pairs]
    tgts = [p[1] for p in pairs]
    assert len(set(srcs)) == len(srcs) and len(set(tgts)) == len(tgts)
    gold = {int(perm[j]): j for j in range(60)}
    assert all(gold[s] == t for s, t, _, _ in pairs if s in gold)
    assert len(pairs) == 60
    scores = [p[2] for p in pairs]
    assert scores == sorted(scores, reverse=True)
    # a threshold only ever removes the lowest-scoring pairs
    cut = mine_pairs(src, tgt, threshold=float(np.median(scores)))
    assert [p[:2] for p in cut] == [p[:2] for p in pairs[: len(cut)]]
    assert all(p[2] >= np.median(scores) for p in cut)


def test_mine_pairs_empty_side() -> None:
    assert mine_pairs(np.zeros((0, 4), np.float32), np.ones((3, 4), np.float32)) == []


# ---------------------------------------------------------------- the head
def test_not_fitted(fake_encoder: FakeEncoder) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TranslationRetriever(fake_encoder).search("a cat")


def test_index_validation(fake_encoder: FakeEncoder) -> None:
    tr = TranslationRetriever(fake_encoder)
    with pytest.raises(ValueError, match="at least 2 sentences, got 1"):
        tr.index(["only one"])
    with pytest.raises(TypeError, match="got one str"):
        tr.index("a single string")
    with pytest.raises(ValueError, match=r"candidates\[1\] is empty"):
        tr.index(["fine", "  "])
    with pytest.raises(ValueError, match="scoring must be one of"):
        TranslationRetriever(fake_encoder, scoring="dot").index(CANDS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        TranslationRetriever(fake_encoder, k=0).index(CANDS)


def test_init_only_stores(fake_encoder: FakeEncoder) -> None:
    tr = TranslationRetriever(fake_encoder, scoring="cosine", k=3)
    assert tr.get_params()["scoring"] == "cosine" and tr.get_params()["k"] == 3
    assert not hasattr(tr, "texts_") and not hasattr(tr, "embeddings_") and len(tr) == 0


@pytest.mark.parametrize("scoring", SCORINGS)
def test_search_shapes_keys_and_order(fake_encoder: FakeEncoder, scoring: str) -> None:
    tr = TranslationRetriever(fake_encoder, scoring=scoring).index(CANDS)  # type: ignore[arg-type]
    one = tr.search("the cat sleeps on the sofa", top_k=3)
    assert isinstance(one, list) and len(one) == 3
    assert all(set(h) == HIT_KEYS for h in one)
    assert one[0]["text"] == CANDS[0] and one[0]["index"] == 0
    assert [h["score"] for h in one] == sorted((h["score"] for h in one), reverse=True)
    assert (one[0]["margin"] is None) == (scoring == "cosine")
    many = tr.search(["it rains all week", "the train leaves at eight"], top_k=100)
    assert len(many) == 2 and all(len(r) == len(CANDS) for r in many)
    assert many[0][0]["index"] == 1 and many[1][0]["index"] == 2
    json.dumps(many)  # JSON-ready


def test_search_top_k_validation_and_override(fake_encoder: FakeEncoder) -> None:
    tr = TranslationRetriever(fake_encoder).index(CANDS)
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        tr.search("x", top_k=0)
    hits = tr.search("we love history books", top_k=2, scoring="cosine")
    assert hits[0]["margin"] is None and hits[0]["score"] == hits[0]["cosine"]


def test_margin_with_reference_matches_dense_formula(fake_encoder: FakeEncoder) -> None:
    src = ["a cat sleeps", "rain all week", "train at eight", "phone is empty", "history books"]
    tr = TranslationRetriever(fake_encoder, k=2).index(CANDS, reference=src)
    hits = tr.search(src, top_k=len(CANDS))
    x = fake_encoder.encode(src)
    y = fake_encoder.encode(CANDS)
    cos = x @ y.T
    r_x = np.sort(cos, axis=1)[:, -2:].mean(axis=1)
    r_y = np.sort(cos.T, axis=1)[:, -2:].mean(axis=1)
    want = margin_scores(cos, r_x, r_y[None, :])
    for i, row in enumerate(hits):
        for h in row:
            assert h["margin"] == pytest.approx(float(want[i, h["index"]]), abs=1e-5)


def test_save_load_round_trip(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    from embedsuite.heads import load_head

    tr = TranslationRetriever(fake_encoder, k=2).index([*CANDS, "猫がソファで寝ています🐱。"])
    tr.save(tmp_path / "idx")
    assert not list((tmp_path / "idx").glob("*.pkl"))
    back = TranslationRetriever.load(tmp_path / "idx", encoder=fake_encoder)
    assert back.texts_ == tr.texts_ and back.k == 2
    np.testing.assert_array_equal(back.embeddings_, tr.embeddings_)
    q = "the train leaves at eight"
    assert back.search(q) == tr.search(q)
    assert isinstance(load_head(tmp_path / "idx", encoder=fake_encoder), TranslationRetriever)


def test_load_refuses_other_encoder_and_tampering(fake_encoder: FakeEncoder,
                                                  tmp_path: Path) -> None:
    TranslationRetriever(fake_encoder).index(CANDS).save(tmp_path / "idx")
    other = FakeEncoder(dim=32, name="other", cache=fake_encoder.cache)
    with pytest.raises(EncoderMismatchError, match="or train a new head on .other."):
        TranslationRetriever.load(tmp_path / "idx", encoder=other)
    with open(tmp_path / "idx" / "model.safetensors", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(HeadFormatError, match="does not match the digest"):
        TranslationRetriever.load(tmp_path / "idx", encoder=fake_encoder)


def test_save_before_index(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        TranslationRetriever(fake_encoder).save(tmp_path / "x")


def test_mine_api(fake_encoder: FakeEncoder) -> None:
    src = ["the cat sleeps", "it rains", "a totally unrelated line"]
    tgt = ["it rains", "the cat sleeps", "zebra quantum violin"]
    tr = TranslationRetriever(fake_encoder, k=1)
    pairs = tr.mine(src, tgt, threshold=None)
    assert all(set(p) == PAIR_KEYS for p in pairs)
    got = {(p["source_index"], p["target_index"]) for p in pairs}
    assert {(0, 1), (1, 0)} <= got
    assert len({p["source_index"] for p in pairs}) == len(pairs)
    with pytest.raises(ValueError, match="threshold must be a finite number, .auto. or None"):
        tr.mine(src, tgt, threshold=float("nan"))
    with pytest.raises(TypeError, match="src must be a list of str, got one str"):
        tr.mine("one", tgt)
    strict = tr.mine(src, tgt, threshold=10.0)
    assert strict == []


def test_similarity_matrices(fake_encoder: FakeEncoder) -> None:
    mats = TranslationRetriever(fake_encoder).similarity(CANDS[:3], CANDS)
    assert mats["cosine"].shape == mats["margin"].shape == (3, len(CANDS))


# ---------------------------------------------------------------- evaluation task
def _fake_tatoeba(root: Path) -> Path:
    folder = root / "tatoeba"
    folder.mkdir(parents=True)
    words = ["cat", "dog", "rain", "sun", "train", "book", "tea", "sea", "snow", "moon",
             "bread", "milk"]
    for li, lang in enumerate(["aaa", "bbb", "ccc", "ddd"]):
        rng = np.random.default_rng(li)
        src, eng = [], []
        for i in range(12):
            w = rng.permutation(words)[:4]
            eng.append(f"{lang} {i} " + " ".join(w))
            src.append(f"{lang} {i} " + " ".join(w) + " xx")  # a "translation"
        (folder / f"tatoeba.{lang}-eng.{lang}").write_text("\n".join(src) + "\n", "utf-8")
        (folder / f"tatoeba.{lang}-eng.eng").write_text("\n".join(eng) + "\n", "utf-8")
    return root


def test_task_records(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    from embedsuite.evaluation.harness import RECORD_KEYS, TaskContext, get_tasks

    task = get_tasks().get("translation")
    ctx = TaskContext(data_dir=_fake_tatoeba(tmp_path), options={"langs": ["aaa", "bbb"]},
                      show_progress=False)
    recs = task.run(fake_encoder, ctx)
    assert all(set(RECORD_KEYS) <= set(r) for r in recs)
    by = {(r["dataset"], r["metric"]): r["value"] for r in recs}
    for sc in ("cosine", "margin"):
        for metric in ("accuracy_mean", "accuracy_mean_eng2xxx", "f1_mean"):
            assert 0.0 <= by[(f"tatoeba/{sc}", metric)] <= 1.0
        for lang in ("aaa", "bbb"):
            assert (f"tatoeba/{sc}/{lang}", "accuracy") in by
    # the fake "translations" share all words but one: retrieval is near perfect
    assert by[("tatoeba/cosine", "accuracy_mean")] >= 0.9
    for metric in ("precision_mean", "recall_mean", "f1_mean"):
        assert 0.0 <= by[("tatoeba-mining/margin-centered", metric)] <= 1.0
    assert task.main_metric in by


def test_task_limit_and_unknown_language(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    from embedsuite.evaluation.harness import TaskContext, get_tasks

    task = get_tasks().get("translation")
    root = _fake_tatoeba(tmp_path)
    recs = task.run(fake_encoder, TaskContext(data_dir=root, limit=5, options={
        "langs": ["ccc"], "mining": False}, show_progress=False))
    assert {r["n"] for r in recs if r["dataset"].endswith("/ccc")} == {5}
    assert not any(r["dataset"].startswith("tatoeba-mining") for r in recs)
    with pytest.raises(ValueError, match="unknown Tatoeba language"):
        task.run(fake_encoder, TaskContext(data_dir=root, options={"langs": ["zzz"]}))


def test_mteb_f1_is_weighted_f1() -> None:
    from sklearn.metrics import f1_score

    from embedsuite.evaluation.tasks.translation import retrieval_scores

    rng = np.random.default_rng(3)
    x = _unit(rng, 20)
    y = x + 0.9 * _unit(rng, 20)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    got = retrieval_scores(x, y)
    pred = np.argmax(x @ y.T, axis=1)
    assert got["cosine"]["f1"] == pytest.approx(
        f1_score(np.arange(20), pred, average="weighted", zero_division=0))
    assert got["cosine"]["accuracy"] == pytest.approx(float(np.mean(pred == np.arange(20))))


def test_mining_candidates_gold_map() -> None:
    from embedsuite.evaluation.tasks.translation import mining_candidates
    from embedsuite.metrics import mining_scores

    src = [f"s{i}" for i in range(10)]
    eng = [f"e{i}" for i in range(10)]
    srcs, tgts, gold = mining_candidates(src, eng, ["d1", "d2", "s3"] + [f"x{i}" for i in
                                                                        range(9)],
                                         ["e1"] + [f"y{i}" for i in range(9)], seed=1)
    assert len(srcs) == len(tgts) == 15 and "s3" not in srcs[10:] and "e1" not in tgts[10:]
    assert all(tgts[gold[i]] == eng[i] for i in range(10))
    perfect = [(i, gold[i], 2.0, 0.9) for i in range(10)]
    assert mining_scores(perfect, gold, 1.0)["f1"] == 1.0
    half = mining_scores([*perfect[:5], (12, 0, 1.5, 0.8)], gold, 1.0)
    assert half["precision"] == pytest.approx(5 / 6) and half["recall"] == pytest.approx(0.5)


def test_markdown_table() -> None:
    from embedsuite.evaluation.tasks.translation import markdown_table

    recs = [{"encoder": "e", "task": "translation", "dataset": "tatoeba/margin/deu",
             "metric": "accuracy", "value": 0.5, "n": 10}]
    table = markdown_table(recs)
    assert "| deu | 10 |" in table and "0.500" in table and "mean (1)" in table


# ---------------------------------------------------------------- the tab
def test_demo_sets_are_aligned_and_varied() -> None:
    from embedsuite.app.tabs.translation import demo_sets

    sets = demo_sets()
    assert sets
    for demo in sets.values():
        sents = demo["sentences"]
        assert len(sents) >= 8
        sizes = {len(v) for v in sents.values()}
        assert len(sizes) == 1 and sizes.pop() >= 10
        joined = "".join(s for v in sents.values() for s in v)
        assert any(ord(c) > 0x1F000 for c in joined)  # emoji
        assert any("\u3040" <= c <= "\u30ff" for c in joined)  # kana
        assert any("\u0600" <= c <= "\u06ff" for c in joined)  # Arabic


def test_tab_search_and_errors(fake_encoder: FakeEncoder) -> None:
    from embedsuite.app.tabs.translation import ALL, demo_search_inputs, search_candidates

    q, c = demo_search_inputs("everyday", "jpn", ALL, 16)
    assert "Google" in q and "\n" in c
    rows = search_candidates(fake_encoder, "猫がソファで寝ています🐱。",
                             "猫がソファで寝ています🐱。\nIt rains 🌧️\nمرحبا Google", 2)
    assert len(rows) == 2 and rows[0][2] == "猫がソファで寝ています🐱。" and rows[0][1] == 1
    rows = search_candidates(fake_encoder, "it rains\nthe cat", "the cat\nit rains\nsun", 1)
    assert [(r[0], r[2]) for r in rows] == [("it rains", "it rains"), ("the cat", "the cat")]
    with pytest.raises(ValueError, match="No sentence given"):
        search_candidates(fake_encoder, "  ", "a\nb")
    with pytest.raises(ValueError, match="at least 2 candidate"):
        search_candidates(fake_encoder, "a", "b")
    with pytest.raises(ValueError, match="unknown demo set"):
        demo_search_inputs("nope", "deu", "eng")


def test_tab_mining_plot(fake_encoder: FakeEncoder) -> None:
    from embedsuite.app.tabs.translation import demo_mining_inputs, mine_texts

    s, t = demo_mining_inputs("everyday", "ara", "cmn")
    assert len(t.splitlines()) == len(s.splitlines()) - 2
    fig, rows = mine_texts(fake_encoder, s, t, None)
    assert fig is not None and rows
    assert len({r[4] for r in rows}) == len(rows) and len({r[5] for r in rows}) == len(rows)
    _, none = mine_texts(fake_encoder, s, t, 1e9)
    assert none == []


def test_tab_threshold_box_and_table(fake_encoder: FakeEncoder) -> None:
    """An empty threshold box is automatic (a number box showed it as 0 and sent 0); the
    table names the query once per group and has no score column repeating margin."""
    from embedsuite.app.tabs.translation import (
        TABLE_HEADERS,
        parse_threshold,
        search_candidates,
        search_table,
    )

    assert parse_threshold("") is None and parse_threshold(None) is None
    assert parse_threshold("  ") is None and parse_threshold("1,05") == 1.05
    assert parse_threshold(0.9) == 0.9
    with pytest.raises(ValueError, match="is not a number"):
        parse_threshold("high")
    rows = search_candidates(fake_encoder, "it rains\nthe cat", "the cat\nit rains\nsun", 2)
    table = search_table(rows)
    assert "score" not in TABLE_HEADERS and all(len(r) == len(TABLE_HEADERS) for r in table)
    assert [r[0] for r in table] == ["it rains", "", "the cat", ""]
    assert [r[2] for r in table] == [r[2] for r in rows]


def test_tab_is_registered() -> None:
    from embedsuite.app.blocks import build_demo

    demo = build_demo()
    names = {getattr(fn, "api_name", None) for fn in demo.fns.values()}
    assert {"translation_search", "translation_mine"} <= names


def test_margin_without_reference_uses_the_query_batch(fake_encoder: FakeEncoder) -> None:
    src = ["a cat sleeps", "rain all week", "train at eight", "phone is empty", "history books"]
    batch = TranslationRetriever(fake_encoder, k=2).index(CANDS).search(src, top_k=len(CANDS))
    ref = TranslationRetriever(fake_encoder, k=2).index(CANDS, reference=src).search(
        src, top_k=len(CANDS))
    assert [[h["index"] for h in r] for r in batch] == [[h["index"] for h in r] for r in ref]
    # a single query: the margin ranks exactly as the cosine does
    tr = TranslationRetriever(fake_encoder).index(CANDS)
    one = tr.search("the cat sleeps at eight", top_k=len(CANDS))
    cos = tr.search("the cat sleeps at eight", top_k=len(CANDS), scoring="cosine")
    assert [h["index"] for h in one] == [h["index"] for h in cos]


def test_center_removes_the_side_mean() -> None:
    from embedsuite.heads.translation import MIN_CENTER, center, maybe_center

    rng = np.random.default_rng(5)
    shift = np.full(16, 2.0, np.float32)  # a "language direction" shared by a side
    x = _unit(rng, 40) + shift
    c = center(x)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-5)
    assert abs(float((c @ (shift / np.linalg.norm(shift))).mean())) < 0.1
    small = x[: MIN_CENTER - 1]
    assert maybe_center(small, True) is not None
    np.testing.assert_array_equal(maybe_center(small, True), small)
    np.testing.assert_array_equal(maybe_center(x, False), x)


def test_center_param_round_trips(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    words = ["cat", "dog", "rain", "sun", "train", "book", "tea", "sea", "snow", "moon"]
    cands = [f"{a} {b} here" for a in words for b in words[:3]]  # 30 >= MIN_CENTER
    for flag in (True, False):
        tr = TranslationRetriever(fake_encoder, center=flag).index(cands)
        hits = tr.search(["cat dog here", "snow rain here"], top_k=1)
        assert hits[0][0]["text"] == "cat dog here" and hits[1][0]["text"] == "snow rain here"
        tr.save(tmp_path / f"c{flag}")
        back = TranslationRetriever.load(tmp_path / f"c{flag}", encoder=fake_encoder)
        assert back.center is flag
        assert back.search("rain sun here") == tr.search("rain sun here")


def test_single_query_is_scored_on_raw_vectors(fake_encoder: FakeEncoder) -> None:
    words = ["cat", "dog", "rain", "sun", "train", "book", "tea", "sea", "snow", "moon"]
    cands = [f"{a} {b} there" for a in words for b in words[:2]]  # 20 >= MIN_CENTER
    on = TranslationRetriever(fake_encoder, center=True).index(cands)
    off = TranslationRetriever(fake_encoder, center=False).index(cands)
    # one query cannot give its side's mean, so centering one side only is not done
    assert on.search("tea dog", top_k=4) == off.search("tea dog", top_k=4)


def test_auto_threshold_follows_centering(fake_encoder: FakeEncoder) -> None:
    from embedsuite.heads.translation import (
        DEFAULT_MINE_THRESHOLD,
        DEFAULT_MINE_THRESHOLD_RAW,
        MIN_CENTER,
    )

    tr = TranslationRetriever(fake_encoder)
    assert tr.auto_threshold(MIN_CENTER, MIN_CENTER) == DEFAULT_MINE_THRESHOLD
    assert tr.auto_threshold(MIN_CENTER - 1, 100) == DEFAULT_MINE_THRESHOLD_RAW
    assert TranslationRetriever(fake_encoder, center=False).auto_threshold(
        100, 100) == DEFAULT_MINE_THRESHOLD_RAW
    assert tr.auto_threshold(100, 100, "cosine") is None


def test_reference_survives_save_load(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    src = ["a cat sleeps", "rain all week", "train at eight", "phone is empty", "history"]
    tr = TranslationRetriever(fake_encoder, k=2).index(CANDS, reference=src)
    tr.save(tmp_path / "ref")
    back = TranslationRetriever.load(tmp_path / "ref", encoder=fake_encoder)
    assert back.reference_ is not None and back.reference_.shape == (5, 32)
    assert back.search("a cat sleeps", top_k=3) == tr.search("a cat sleeps", top_k=3)
