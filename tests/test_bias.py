"""Association tests (WEAT/SEAT) and the counterfactual check, on constructed inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from embedsuite.bias import (
    counterfactual_sentiment,
    effect_size,
    load_counterfactual,
    load_tests,
    permutation_p_value,
    run_bias_tests,
)
from embedsuite.testing import FakeEncoder


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_effect_size_sign_and_size() -> None:
    rng = np.random.default_rng(0)
    a_dir, b_dir = np.eye(8)[0], np.eye(8)[1]
    A = _unit(a_dir + 0.1 * rng.standard_normal((6, 8)))
    B = _unit(b_dir + 0.1 * rng.standard_normal((6, 8)))
    X = _unit(a_dir + 0.3 * rng.standard_normal((6, 8)))  # X leans to A
    Y = _unit(b_dir + 0.3 * rng.standard_normal((6, 8)))  # Y leans to B
    assert effect_size(X, Y, A, B) > 1.5
    assert effect_size(Y, X, A, B) < -1.5
    assert effect_size(X, Y, A, B) <= 2.0 + 1e-9  # d is bounded by 2 for n -> inf-ish sets


def test_exact_p_value_counts_partitions() -> None:
    # X holds the 3 largest scores: only the observed partition reaches the statistic
    s = np.array([5.0, 4.0, 3.0, 0.0, -1.0, -2.0])
    p, used, exact = permutation_p_value(s, 3)
    assert exact and used == math.comb(6, 3) and p == pytest.approx(1 / 20)
    p_rev, _, _ = permutation_p_value(s[::-1].copy(), 3)
    assert p_rev == pytest.approx(1.0)


def test_monte_carlo_p_value_is_never_zero() -> None:
    s = np.concatenate([np.full(40, 1.0), np.full(40, -1.0)])
    p, used, exact = permutation_p_value(s, 40, n_permutations=2000, exact_limit=10)
    assert not exact and used == 2000 and 0 < p <= 1 / 2001 + 1e-12


def test_word_lists_in_several_languages() -> None:
    tests = load_tests()
    langs = {t.language for t in tests}
    assert {"en", "de", "fr"} <= langs and len(langs) >= 3
    for t in tests:
        assert len(t.X) == len(t.Y) and len(t.A) == len(t.B)
        assert not set(t.X) & set(t.Y)
    seat = [t for t in tests if t.kind == "seat"]
    assert seat and all("{" not in x for t in seat for x in t.X)
    with pytest.raises(ValueError, match=r"no bias word lists for language\(s\) \['xx'\]"):
        load_tests(["xx"])


def test_run_bias_tests_records(fake_encoder: FakeEncoder) -> None:
    res = run_bias_tests(fake_encoder, load_tests(["en"], kinds=("weat",)), n_permutations=500)
    assert len(res) == 3
    rec = res[0].as_record()
    assert set(rec) == {"test", "language", "effect_size", "p_value", "n_targets", "n_attributes"}
    assert rec["n_targets"] == 16 and 0 < rec["p_value"] <= 1
    json.dumps(rec)


def test_counterfactual_gaps() -> None:
    def predict(texts: list[str]) -> np.ndarray:  # a model that likes "Alice" more
        return np.array([0.9 if "Alice" in t else 0.5 for t in texts])

    out = counterfactual_sentiment(predict, ["{} came.", "I saw {}."],
                                   {"a": ["Alice", "Ann"], "b": ["Bob", "Ben"]})
    assert out == [{"group_a": "a", "group_b": "b", "mean_gap": 0.2, "worst_gap": 0.2,
                    "worst_template": "{} came.", "n": 2}]
    templates, families = load_counterfactual("en")
    assert len(templates) >= 8 and len(families) >= 3
    for groups in families.values():
        assert len(groups) >= 2 and all(len(t) >= 1 for t in groups.values())


def test_cli_bias_json(capsys, monkeypatch, tmp_cache) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.app.cli import main
    from embedsuite.encoders import ENCODERS

    ENCODERS.register("fake-bias", lambda: FakeEncoder(name="fake-bias", cache=tmp_cache))
    try:
        assert main(["bias", "--encoder", "fake-bias", "--langs", "en", "--permutations",
                     "200", "--json"]) == 0
    finally:
        ENCODERS.unregister("fake-bias")
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 6 and {r["language"] for r in recs} == {"en"}


def test_plot_names_tests_as_people_read_them() -> None:
    pytest.importorskip("matplotlib")
    from embedsuite.bias import BiasResult, plot_effect_sizes, readable_test_name

    assert (readable_test_name("weat:career_family__male_female_names", "en")
            == "career vs family / male vs female names (WEAT, en)")
    fig = plot_effect_sizes({"enc": [
        BiasResult("seat:instruments_weapons__pleasant_unpleasant", "de", 0.8, 0.01, 8, 8, 100,
                   True)]})
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["instruments vs weapons / pleasant vs unpleasant (SEAT, de)"]
