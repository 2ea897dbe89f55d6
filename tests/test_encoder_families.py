"""Encoder families: a head trained on one member loads beside another member (with its
measured cost logged); across families, or across builds of one encoder, it is refused
with a message that says what to do."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedsuite.cache import EmbeddingCache
from embedsuite.encoders.families import FAMILIES, Family, family_of, pairing_cost
from embedsuite.errors import EncoderMismatchError
from embedsuite.heads import SentimentClassifier, load_head
from embedsuite.testing import FakeEncoder

TEXTS = ["good film", "great fun", "bad film", "dull mess"]
LABELS = ["pos", "pos", "neg", "neg"]


@pytest.fixture
def fakes() -> Iterator[None]:
    FAMILIES.register("fakes", Family(members=("fake-a", "fake-b"),
                                      costs={("fake-a", "fake-b"): "accuracy -0.1 points"}))
    yield
    FAMILIES.unregister("fakes")


def _enc(name: str, tmp: Path, dim: int = 32) -> FakeEncoder:
    return FakeEncoder(dim=dim, name=name, cache=EmbeddingCache(tmp / f"{name}-{dim}.sqlite"))


def test_the_e5_family() -> None:
    assert family_of("e5-small") == family_of("e5-small-int8") == "e5-small"
    assert family_of("minilm-l6") is None
    cost = pairing_cost("e5-small", "e5-small-int8")
    assert cost is not None and "XQuAD-en F1 -0.15 points" in cost
    assert pairing_cost("e5-small", "minilm-l6") is None


def test_a_head_loads_beside_another_member_with_its_cost_logged(
        fakes: None, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = _enc("fake-a", tmp_path), _enc("fake-b", tmp_path)
    folder = SentimentClassifier(a, kind="linear").fit(TEXTS, LABELS).save(tmp_path / "h")
    with caplog.at_level(logging.INFO, logger="embedsuite.heads.base"):
        head = load_head(folder, b)
    assert head.active_encoder is b
    assert "same encoder family; quality cost accuracy -0.1 points" in caplog.text
    assert len(head.predict(TEXTS)) == 4


def test_across_families_the_refusal_says_what_to_do(fakes: None, tmp_path: Path) -> None:
    folder = SentimentClassifier(_enc("fake-a", tmp_path), kind="linear").fit(
        TEXTS, LABELS).save(tmp_path / "h")
    with pytest.raises(EncoderMismatchError) as err:
        SentimentClassifier.load(folder, _enc("other", tmp_path))
    assert str(err.value) == (
        f"the sentiment head in {folder} was trained on encoder 'fake-a', which is another "
        f"model than 'other': a head can only read the vectors of the encoder it was trained "
        f"on (or of its family, such as e5-small and e5-small-int8). Load it beside 'fake-a' "
        f"(get_encoder('fake-a'), or --encoder fake-a), or train a new head on 'other'")
    assert "fingerprint" not in str(err.value)


def test_another_build_of_the_same_encoder_is_refused(tmp_path: Path) -> None:
    folder = SentimentClassifier(_enc("fake", tmp_path), kind="linear").fit(
        TEXTS, LABELS).save(tmp_path / "h")
    with pytest.raises(EncoderMismatchError, match="but on another build of it"):
        load_head(folder, _enc("fake", tmp_path, dim=16))


@pytest.mark.integration
def test_the_shipped_heads_work_on_the_int8_encoder() -> None:
    """`embedsuite serve --encoder e5-small-int8`: the tabs load the shipped heads on it."""
    pytest.importorskip("openvino", reason="the optional extra 'fast' is not installed")
    from embedsuite.encoders import get_encoder
    from embedsuite.heads import ExtractiveQA
    from embedsuite.heads.sentiment import load_default

    int8 = get_encoder("e5-small-int8")
    clf = load_default(int8)
    assert clf.active_encoder is int8
    assert clf.predict("A warm, funny and beautifully acted film.")["label"] == "positive"
    qa = ExtractiveQA.load_default(int8)
    r = qa.answer("When was the mill built?", "The Old Mill was built in 1921 by the Weber "
                  "family. It still grinds flour.")
    assert "1921" in r["answer"]
