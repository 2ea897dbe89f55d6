"""Integration tests of the sentiment head on the real e5-small encoder.

The shipped head (core/assets/sentiment-default) was trained on English SST-2 only;
the German, French, Spanish and Chinese cases check zero-shot cross-lingual transfer
through the multilingual encoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedsuite.heads.sentiment import DEFAULT_HEAD_DIR, SentimentClassifier, load_default

pytestmark = pytest.mark.integration

CLEAR = {
    "en": ("This movie is wonderful, I loved every minute of it.",
           "This movie is terrible, a boring waste of time."),
    "de": ("Dieser Film ist wunderbar, ich habe jede Minute genossen.",
           "Dieser Film ist furchtbar, eine langweilige Zeitverschwendung."),
    "fr": ("Ce film est magnifique, j'ai adoré chaque minute.",
           "Ce film est nul, une perte de temps ennuyeuse."),
    "es": ("Esta película es maravillosa, me encantó cada minuto.",
           "Esta película es horrible, una aburrida pérdida de tiempo."),
    "zh": ("这部电影太精彩了，我喜欢每一分钟。",
           "这部电影太糟糕了，无聊又浪费时间。"),
}


@pytest.fixture(scope="module")
def default_head(e5):  # type: ignore[no-untyped-def]
    if not (DEFAULT_HEAD_DIR / "config.json").is_file():
        pytest.fail(f"the shipped sentiment head is missing from {DEFAULT_HEAD_DIR}")
    return load_default(e5)


def test_default_head_is_small_and_provenanced() -> None:
    size = sum(p.stat().st_size for p in DEFAULT_HEAD_DIR.iterdir())
    assert size < 8_000_000
    assert (DEFAULT_HEAD_DIR / "TRAINING.json").is_file()


@pytest.mark.parametrize("lang", list(CLEAR))
def test_default_head_zero_shot_languages(default_head: SentimentClassifier, lang: str) -> None:
    pos, neg = CLEAR[lang]
    out = default_head.predict([pos, neg])
    assert [r["label"] for r in out] == ["positive", "negative"], out
    proba = default_head.predict_proba([pos, neg])
    k = default_head.classes_.index("positive")
    assert proba[0, k] > proba[1, k]


@pytest.mark.data
def test_default_head_on_sst2_test_sample(default_head: SentimentClassifier,
                                          data_dir: Path) -> None:
    from embedsuite.data.sst2 import read_sst2

    x, y = read_sst2(data_dir / "sst2" / "sentiment-test.tsv", limit=120, seed=1)
    assert default_head.score(x, y) >= 0.8


@pytest.mark.data
def test_linear_eight_shot_beats_chance(e5, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.data.sst2 import read_sst2
    from embedsuite.evaluation.tasks.sentiment import sample_k_shot

    tx, ty = read_sst2(data_dir / "sst2" / "sentiment-train.tsv", limit=3000, seed=0,
                       unique=True)
    idx = sample_k_shot(ty, 8, seed=0)
    head = SentimentClassifier(e5, kind="linear").fit([tx[i] for i in idx],
                                                      [ty[i] for i in idx])
    x, y = read_sst2(data_dir / "sst2" / "sentiment-test.tsv", limit=120, seed=2)
    assert head.score(x, y) >= 0.65
    assert np.isclose(head.predict_proba(x).sum(1), 1.0, atol=1e-5).all()


def test_tab_classify_with_shipped_head(default_head: SentimentClassifier) -> None:
    from embedsuite.app.tabs.sentiment import EXAMPLES, classify

    rows, fig = classify(default_head, "\n".join(EXAMPLES))
    assert len(rows) == len(EXAMPLES) and fig is not None
    assert rows[0][1] == "positive" and rows[1][1] == "negative"


def test_one_pass_prediction_equals_the_two_pass_one(default_head: SentimentClassifier,
                                                     e5) -> None:  # type: ignore[no-untyped-def]
    """The sentence vector from the token pass is the encoder's own: the probabilities are
    those of encode() + encode_tokens() run separately."""
    import numpy as np

    from embedsuite.heads.sentiment.networks import net_proba

    texts = ["An unexpectedly tender film (one pass).", "Flat, loud and far too long (one pass).",
             "Ein kleines Meisterwerk (one pass)."]
    got = default_head.predict_proba(texts)
    sent = e5.encode(texts, role="query", use_cache=False)
    toks = e5.encode_tokens(texts, role="query", layers=default_head.layer_ids())
    want = net_proba(default_head.tokens_net_, [t.vectors.astype(np.float16) for t in toks], sent)
    z = np.log(want.astype(np.float64)) / default_head.calibration_temperature_  # calibrated
    want = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), atol=1e-5)
