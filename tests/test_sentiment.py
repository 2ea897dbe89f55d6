"""Unit tests of the sentiment head, its tab handlers, CLI and evaluation task (fake encoder)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from embedsuite.encoders.token_store import TokenFeatureStore
from embedsuite.errors import (
    EncoderMismatchError,
    HeadFormatError,
    NotFittedError,
    TokenEmbeddingsUnavailableError,
)
from embedsuite.heads import SentimentClassifier, load_head
from embedsuite.heads.base import HEADS
from embedsuite.testing import FakeEncoder

POS = ["good great film", "great acting and a good story", "wonderful good movie",
       "lovely great fun", "a good and great time", "great wonderful lovely"]
NEG = ["bad awful film", "terrible bad acting", "awful boring movie", "bad dull plot",
       "boring awful bad", "terrible dull awful"]
TEXTS = POS + NEG
LABELS = ["positive"] * len(POS) + ["negative"] * len(NEG)


def _head(enc: FakeEncoder, tmp_path: Path, kind: str = "linear", **kw: object
          ) -> SentimentClassifier:
    return SentimentClassifier(enc, kind=kind, feature_cache=tmp_path / "feats", epochs=30,
                               **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["linear", "attention"])
def test_fit_predict_contract(fake_encoder: FakeEncoder, tmp_path: Path, kind: str) -> None:
    head = _head(fake_encoder, tmp_path, kind)
    assert head.fit(TEXTS, LABELS) is head
    one = head.predict("a good great film")
    assert set(one) == {"label", "score"}
    assert one["label"] == "positive"
    assert 0.5 <= one["score"] <= 1.0
    many = head.predict(["awful bad boring", "lovely wonderful"])
    assert [r["label"] for r in many] == ["negative", "positive"]
    proba = head.predict_proba(["awful bad", "great"])
    assert proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert head.predict_proba("great").shape == (2,)
    assert head.classes_ == ["negative", "positive"]
    assert head.score(TEXTS, LABELS) == 1.0
    json.dumps(many)  # JSON-ready


def test_multiclass_and_int_labels(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    texts = [*TEXTS, "the film is about a city", "a movie set in a city", "a city film story"]
    labels = [1] * 6 + [0] * 6 + [2] * 3
    head = _head(fake_encoder, tmp_path).fit(texts, labels)
    assert head.classes_ == ["0", "1", "2"]
    assert head.predict_proba(texts).shape == (15, 3)
    assert head.predict("a city")["label"] == "2"


def test_not_fitted(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    head = _head(fake_encoder, tmp_path)
    for call in (lambda: head.predict("x"), lambda: head.predict_proba(["x"]),
                 lambda: head.score(["x"], ["y"]), lambda: head.save(tmp_path / "h")):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


def test_fit_validation(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    head = _head(fake_encoder, tmp_path)
    with pytest.raises(ValueError, match="got 12 texts but 11 labels"):
        head.fit(TEXTS, LABELS[:-1])
    with pytest.raises(ValueError, match="at least two classes, got only"):
        head.fit(POS, ["positive"] * len(POS))
    with pytest.raises(TypeError, match=r"labels\[1\] must be a non-empty str or an int"):
        head.fit(["a", "b"], ["x", None])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        head.fit(["a", 3], ["x", "y"])
    with pytest.raises(TypeError, match="fit expects a list of texts"):
        head.fit("a text", ["x"])
    with pytest.raises(ValueError, match="kind must be one of"):
        SentimentClassifier(fake_encoder, kind="svm").fit(TEXTS, LABELS)


def test_attention_needs_token_embeddings(tmp_cache, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    enc = FakeEncoder(dim=16, cache=tmp_cache, token_embeddings=False)
    with pytest.raises(TokenEmbeddingsUnavailableError, match="use kind='linear'"):
        _head(enc, tmp_path, "attention").fit(TEXTS, LABELS)
    assert _head(enc, tmp_path, "linear").fit(TEXTS, LABELS).predict("great")["label"]


@pytest.mark.parametrize("kind", ["linear", "attention"])
def test_save_load_round_trip(fake_encoder: FakeEncoder, tmp_path: Path, kind: str) -> None:
    head = _head(fake_encoder, tmp_path, kind).fit(TEXTS, LABELS)
    folder = head.save(tmp_path / "head")
    config = json.loads((folder / "config.json").read_text())
    assert config["head"] == f"sentiment-{kind}"
    assert config["labels"] == ["negative", "positive"]
    assert config["encoder"]["fingerprint"] == fake_encoder.fingerprint
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.pkl"))
    for loaded in (SentimentClassifier.load(folder, fake_encoder), load_head(folder, fake_encoder)):
        assert isinstance(loaded, SentimentClassifier)
        assert loaded.kind == kind
        np.testing.assert_allclose(loaded.predict_proba(TEXTS), head.predict_proba(TEXTS),
                                   atol=1e-6)


def test_load_beside_other_encoder_is_refused(fake_encoder: FakeEncoder, tmp_cache,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    folder = _head(fake_encoder, tmp_path).fit(TEXTS, LABELS).save(tmp_path / "head")
    other = FakeEncoder(dim=32, name="other", cache=tmp_cache)
    with pytest.raises(EncoderMismatchError, match="or train a new head on .other."):
        SentimentClassifier.load(folder, other)


def test_load_damaged_folder(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    folder = _head(fake_encoder, tmp_path).fit(TEXTS, LABELS).save(tmp_path / "head")
    with open(folder / "model.safetensors", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(HeadFormatError, match="does not match the digest"):
        SentimentClassifier.load(folder, fake_encoder)
    with pytest.raises(HeadFormatError, match="is not a folder"):
        SentimentClassifier.load(tmp_path / "missing", fake_encoder)


def test_registered_kinds() -> None:
    assert HEADS.get("sentiment-linear") is SentimentClassifier
    assert HEADS.get("sentiment-attention") is SentimentClassifier


def test_sklearn_clone(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    from sklearn.base import clone

    head = _head(fake_encoder, tmp_path, C=3.0)
    copy = clone(head)
    assert copy.C == 3.0 and copy.encoder is fake_encoder
    assert not hasattr(copy, "classes_")


def test_few_shot_uses_centroids(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    head = _head(fake_encoder, tmp_path).fit(TEXTS, LABELS)
    assert head.centroids_ is not None and head.blend_ > 0
    plain = _head(fake_encoder, tmp_path, few_shot_max=0).fit(TEXTS, LABELS)
    assert plain.centroids_ is None
    assert plain.predict("lovely great")["label"] == "positive"


def test_feature_store_caches_and_serves_layer_subsets(fake_encoder: FakeEncoder,
                                                       tmp_path: Path) -> None:
    store = TokenFeatureStore(tmp_path / "feats", chunk_size=4)
    texts = ["good film", "bad film", "a long good story", "x", "more text here"]
    feats = store.features(fake_encoder, texts, [8, 12], "query", store_layers=[6, 8, 12])
    assert [f.shape for f in feats] == [(2, 64), (2, 64), (4, 64), (1, 64), (3, 64)]
    assert feats[0].dtype == np.float16
    calls = fake_encoder.calls
    again = TokenFeatureStore(tmp_path / "feats").features(fake_encoder, texts[::-1], [12], "query")
    assert fake_encoder.calls == calls  # served from disk, no new encoding
    np.testing.assert_array_equal(again[-1], feats[0][:, 32:])


# -- tab handlers -----------------------------------------------------------------


def _csv(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def test_parse_csv_errors(tmp_path: Path) -> None:
    from embedsuite.app.tabs.sentiment import parse_csv

    with pytest.raises(ValueError, match="No file uploaded"):
        parse_csv(None)
    with pytest.raises(ValueError, match="data.csv is empty"):
        parse_csv(_csv(tmp_path, ""))
    with pytest.raises(ValueError, match="needs the columns 'text' and 'label'"):
        parse_csv(_csv(tmp_path, "sentence,sentiment\ngood,pos\nbad,neg\n"))
    with pytest.raises(ValueError, match="only one class"):
        parse_csv(_csv(tmp_path, "text,label\ngood,pos\ngreat,pos\n"))
    with pytest.raises(ValueError, match="binary file, not a CSV"):
        parse_csv(_csv(tmp_path, b"PK\x03\x04\x00\x00binary", "x.csv"))
    with pytest.raises(ValueError, match="not UTF-8 text"):
        parse_csv(_csv(tmp_path, "text,label\ncaf\xe9,a\n".encode("latin-1")))
    with pytest.raises(ValueError, match="no row with both a text and a label"):
        parse_csv(_csv(tmp_path, "text,label\n,\n"))
    with pytest.raises(ValueError, match="at least 2 examples"):
        parse_csv(_csv(tmp_path, "text,label\ngood,pos\ngreat,pos\nbad,neg\n"))


def test_parse_csv_reads_quoted_rows(tmp_path: Path) -> None:
    from embedsuite.app.tabs.sentiment import parse_csv

    body = 'Label,Text\npos,"good, really good"\nneg,bad\nneg,\npos,great\nneg,awful\n'
    texts, labels, skipped = parse_csv(_csv(tmp_path, body))
    assert texts[0] == "good, really good"
    assert labels == ["pos", "neg", "pos", "neg"]
    assert skipped == 1


def test_train_from_csv_and_classify(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    from embedsuite.app.tabs.sentiment import classify, train_from_csv

    rows = "text,label\n" + "\n".join(f"{t},{y}" for t, y in zip(TEXTS, LABELS, strict=True))
    head, report, fig, zip_path = train_from_csv(fake_encoder, _csv(tmp_path, rows),
                                                 out_dir=tmp_path / "out")
    assert 0.0 <= report["held_out_accuracy"] <= 1.0
    assert report["n_train"] + report["n_held_out"] == len(TEXTS)
    assert np.array(report["confusion_matrix"]).sum() == report["n_held_out"]
    assert fig is not None
    with zipfile.ZipFile(zip_path) as zf:
        assert {"config.json", "model.safetensors"} <= set(zf.namelist())
    out, chart = classify(head, "great good fun\n\nawful bad")
    assert [r[1] for r in out] == ["positive", "negative"]
    assert chart is not None
    with pytest.raises(ValueError, match="No texts given"):
        classify(head, "  \n ")


def test_tab_builds() -> None:
    import gradio as gr

    import embedsuite.app.tabs.sentiment  # noqa: F401
    from embedsuite.app.ui import TABS, AppContext

    spec = TABS.get("sentiment")
    assert spec.order == 10
    with gr.Blocks() as demo, gr.Tab(spec.title):
        spec.build(AppContext())
    names = {d.api_name for d in demo.fns.values()}
    assert {"sentiment", "sentiment_train"} <= names


# -- evaluation task ------------------------------------------------------------


def test_task_records(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    from embedsuite.evaluation.harness import TaskContext, get_tasks

    data = tmp_path / "data" / "sst2"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(40):
        t, y = (POS[i % 6], 1) if i % 2 else (NEG[i % 6], 0)
        lines.append(f"{t} {rng.integers(100)} \t{y}")
    (data / "sentiment-train.tsv").write_text("\n".join(lines) + "\n")
    (data / "sentiment-test.tsv").write_text("\n".join(lines[:10]) + "\n")
    task = get_tasks().get("sentiment")
    ctx = TaskContext(data_dir=tmp_path / "data", work_dir=tmp_path / "work",
                      options={"shots": 2, "experiments": 2})
    recs = task.run(fake_encoder, ctx)
    got = {(r["dataset"], r["metric"]) for r in recs}
    assert ("sst2/sentiment-linear", "accuracy") in got
    assert ("sst2/sentiment-attention", "accuracy") in got
    assert ("sst2-2shot", "accuracy_mean") in got and ("sst2-2shot", "accuracy_std") in got
    assert all(0.0 <= r["value"] <= 1.0 for r in recs)
    assert task.main_metric in got


def test_the_cli_reader_has_no_app_limits_and_the_app_names_the_cli(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line reads any size (it used to inherit the app's 20,000-row limit and be
    told to use itself); the app refuses with the command that takes the file."""
    from embedsuite.app.tabs import sentiment as tab
    from embedsuite.data.tables import read_labelled

    n = tab.MAX_TRAIN_ROWS + 5
    body = "text,label\n" + "".join(f"review number {i},{'pos' if i % 2 else 'neg'}\n"
                                    for i in range(n))
    path = _csv(tmp_path, body)
    texts, labels = read_labelled(path)
    assert len(texts) == n and set(labels) == {"pos", "neg"}
    with pytest.raises(ValueError, match=r"the app takes at most 20,000\. .*command line: "
                                         r"embedsuite train-sentiment FILE\.csv OUT_DIR"):
        tab.parse_csv(path)


def test_attention_predict_writes_no_token_features_and_remembers(
        fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    """Prediction reads each new text once, keeps its probabilities in memory (bounded LRU),
    and leaves the token-feature store as training left it."""
    from embedsuite.heads.sentiment import head as mod

    head = _head(fake_encoder, tmp_path, "attention").fit(TEXTS, LABELS)
    store = tmp_path / "feats"
    files = sorted(p.name for p in store.rglob("*"))
    new = ["a great fun film", "a dull awful plot", "an excellent movie"]
    calls = fake_encoder.token_calls
    first = head.predict_proba(new)
    assert fake_encoder.token_calls == calls + 3
    np.testing.assert_array_equal(head.predict_proba(new[::-1]), first[::-1])
    assert fake_encoder.token_calls == calls + 3  # served from memory
    assert sorted(p.name for p in store.rglob("*")) == files
    head.fit(TEXTS, LABELS)  # a new fit forgets what the old net said
    head.predict_proba(new)
    assert fake_encoder.token_calls > calls + 3
    mod.PREDICT_MEMO, old = 2, mod.PREDICT_MEMO
    try:
        head.predict_proba(new)
        assert len(head._memo()) == 2
    finally:
        mod.PREDICT_MEMO = old


@pytest.mark.parametrize("kind", ["linear", "attention"])
def test_calibrate_softens_an_overconfident_head_and_keeps_labels(
        fake_encoder: FakeEncoder, tmp_path: Path, kind: str) -> None:
    from embedsuite.metrics import expected_calibration_error

    head = _head(fake_encoder, tmp_path, kind, few_shot_max=0, C=1000.0).fit(TEXTS, LABELS)
    held = ["good film", "bad film", "great boring", "dull lovely", "awful", "lovely"]
    held_y = ["positive", "negative", "positive", "negative", "negative", "positive"]
    before = head.predict_proba(held)
    assert head.calibration_temperature_ == 1.0
    assert head.calibrate(held, held_y) is head
    after = head.predict_proba(held)
    # the same labels, probabilities that still sum to one
    np.testing.assert_array_equal(before.argmax(1), after.argmax(1))
    np.testing.assert_allclose(after.sum(1), 1.0, atol=1e-5)
    y = np.array([head.classes_.index(v) for v in held_y])

    def nll(p: np.ndarray) -> float:
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)).mean())

    assert nll(after) <= nll(before) + 1e-6
    assert expected_calibration_error(after, y) >= 0.0
    # saved and loaded with the head
    head.save(tmp_path / "cal")
    back = SentimentClassifier.load(tmp_path / "cal", fake_encoder)
    assert back.calibration_temperature_ == pytest.approx(head.calibration_temperature_)
    np.testing.assert_allclose(back.predict_proba(held), after, atol=1e-5)


def test_calibrate_validation(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        _head(fake_encoder, tmp_path).calibrate(["good"], ["positive"])
    head = _head(fake_encoder, tmp_path).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="held-out"):
        head.calibrate([], [])
    with pytest.raises(ValueError, match="not trained on"):
        head.calibrate(["good"], ["neutral"])


def test_expected_calibration_error() -> None:
    from embedsuite.metrics import expected_calibration_error

    # always 90 % sure and right 9 times in 10: calibrated
    p = np.array([[0.1, 0.9]] * 10)
    y = np.array([1] * 9 + [0])
    assert expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-9)
    # always 90 % sure and right half the time: 0.4 off
    y2 = np.array([1] * 5 + [0] * 5)
    assert expected_calibration_error(p, y2) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="expected"):
        expected_calibration_error(p, y[:3])


def test_attention_fit_reads_each_text_once(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    """The token pass of an attention fit fills the sentence cache too, so the sentence
    vectors need no second pass."""
    calls, token_calls = fake_encoder.calls, fake_encoder.token_calls
    _head(fake_encoder, tmp_path, "attention").fit(TEXTS, LABELS)
    assert fake_encoder.token_calls == token_calls + len(set(TEXTS))
    assert fake_encoder.calls == calls  # no sentence pass


def test_fake_token_pass_sentence_equals_encode(fake_encoder: FakeEncoder) -> None:
    """The fake encoder keeps the real ones' contract: the token pass's sentence vector is
    encode()'s."""
    emb = fake_encoder.encode_tokens(["a good film"], role="query")[0]
    assert emb.sentence is not None
    np.testing.assert_allclose(emb.sentence, fake_encoder.encode("a good film", role="query"),
                               atol=1e-6)
