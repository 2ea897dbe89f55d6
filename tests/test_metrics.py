"""Pure metrics (embedsuite.metrics), checked against hand-computed values."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import embedsuite.metrics as metrics_module
from embedsuite.metrics import (
    dcg,
    exact_match_score,
    f1_score,
    hit_rate_at_k,
    metric_max_over_ground_truths,
    mining_scores,
    ndcg_at_k,
    normalize_answer,
    paired_bootstrap,
    recall_at_k,
    reciprocal_rank,
    squad_scores,
)


def test_metrics_is_infra_numpy_and_stdlib_only() -> None:
    tree = ast.parse(Path(metrics_module.__file__).read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots - set(sys.stdlib_module_names) == {"numpy"}


# -- SQuAD v1.1 (official evaluate-v1.1.py behaviour) ----------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("The Quick, Brown Fox!", "quick brown fox"),
    ("A theory of an apple", "theory of apple"),
    ("Theater and banana", "theater and banana"),  # articles only as whole words
    ("the-end", "theend"),  # punctuation goes first, so no article is left to remove
    ("  many   spaces\there ", "many spaces here"),
    ("«Paris»", "«paris»"),  # only ASCII punctuation is removed
    ("The", ""),
])
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_and_f1() -> None:
    assert exact_match_score("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert exact_match_score("Eiffel Tower", "Tower") == 0.0
    assert exact_match_score("the", "a") == 1.0  # both normalise to ""
    # pred [cat, sat], gold [cat, sat, down]: P = 1, R = 2/3
    assert f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # token counts are clipped: pred [cat, cat], gold [cat]: P = 1/2, R = 1
    assert f1_score("cat cat", "cat") == pytest.approx(2 / 3)
    assert f1_score("the", "a") == 0.0  # v1.1: no common token, even if both are empty
    assert f1_score("nothing", "else") == 0.0


def test_metric_max_over_ground_truths() -> None:
    # "paris" vs "paris france": P = 1, R = 1/2 -> F1 = 2/3
    assert metric_max_over_ground_truths(f1_score, "Paris", ["London", "Paris, France"]) \
        == pytest.approx(2 / 3)
    assert metric_max_over_ground_truths(exact_match_score, "Paris", ["London", "paris"]) == 1.0


def test_squad_scores() -> None:
    sc = squad_scores(["Paris", "blue sky"], [["paris", "Paris, France"], ["sky"]])
    # q1: EM 1, F1 1; q2: EM 0, F1 (P = 1/2, R = 1) = 2/3
    assert sc == pytest.approx({"exact_match": 0.5, "f1": 5 / 6})
    assert squad_scores([], []) == {"exact_match": 0.0, "f1": 0.0}
    with pytest.raises(ValueError, match="1 predictions for 2 questions"):
        squad_scores(["x"], [["x"], ["y"]])


# -- ranking ----------------------------------------------------------------------------------
def test_dcg_worked_example() -> None:
    # graded gains 3, 2, 3, 0, 1, 2: 3/1 + 2/1.585 + 3/2 + 0 + 1/2.585 + 2/2.807 = 6.861
    assert dcg([3, 2, 3, 0, 1, 2]) == pytest.approx(6.861, abs=1e-3)
    assert dcg([]) == 0.0


def test_ndcg_recall_hit_rate_worked_example() -> None:
    ranked, relevant = [3, 1, 7, 2], {1, 2, 9}
    # hits 0, 1, 0, 1: DCG = 1/log2(3) + 1/log2(5) = 1.0616; ideal (3 hits) = 1 + 0.6309 + 0.5
    assert ndcg_at_k(ranked, relevant, k=4) == pytest.approx(0.49819, abs=1e-5)
    # k = 2: hits 0, 1: 0.6309 / (1 + 0.6309)
    assert ndcg_at_k(ranked, relevant, k=2) == pytest.approx(0.38685, abs=1e-5)
    assert ndcg_at_k([1, 2], {1, 2}, k=10) == pytest.approx(1.0)
    assert ndcg_at_k(np.array([5, 6]), set(), k=10) == 0.0
    assert recall_at_k(ranked, relevant, k=4) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, relevant, k=2) == pytest.approx(1 / 3)
    assert hit_rate_at_k(ranked, relevant, k=1) == 0.0
    assert hit_rate_at_k(ranked, relevant, k=2) == 1.0


def test_reciprocal_rank() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.7])
    assert reciprocal_rank(scores, {2}) == pytest.approx(1 / 3)  # 0.9 and 0.7 above
    assert reciprocal_rank(scores, {1, 2}) == pytest.approx(1 / 3)  # the best relevant counts
    assert reciprocal_rank(scores, {0}) == 1.0
    # relevant items tied with the best one count against the ranking, others do not
    assert reciprocal_rank(np.array([0.5, 0.5, 0.9]), {0, 1}) == pytest.approx(1 / 3)
    assert reciprocal_rank(np.array([0.5, 0.5]), {0}) == 1.0
    # excluded items (-inf) never rank above
    assert reciprocal_rank(np.array([-math.inf, 0.2, 0.1]), {2}) == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="at least one relevant item"):
        reciprocal_rank(scores, set())


# -- mining and paired comparison --------------------------------------------------------------
def test_mining_scores() -> None:
    gold = {0: 0, 1: 1, 2: 2, 3: 3}
    pairs = [(0, 0, 2.0, 0.9), (1, 1, 1.5, 0.8), (2, 5, 1.2, 0.7), (3, 3, 0.9, 0.6)]
    # threshold 1.0 keeps 3 pairs, 2 correct: P = 2/3, R = 2/4, F1 = 4/7
    assert mining_scores(pairs, gold, 1.0) == pytest.approx(
        {"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7, "mined": 3.0})
    assert mining_scores(pairs, gold, None) == pytest.approx(
        {"precision": 0.75, "recall": 0.75, "f1": 0.75, "mined": 4.0})
    assert mining_scores(pairs, gold, 9.0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                               "mined": 0.0}


def test_paired_bootstrap_constant_difference() -> None:
    mean, lo, hi, users = paired_bootstrap({1: 0.5, 2: 0.7}, {1: 0.25, 2: 0.45, 3: 0.0},
                                           n_boot=200)
    assert (mean, lo, hi, users) == pytest.approx((0.25, 0.25, 0.25, 2))
