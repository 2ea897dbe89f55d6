"""The contract all four heads share through ``BaseHead``: parameters from the signature,
``clone`` sharing the encoder, no fitted state before ``fit``, ``check_is_fitted``, and a
save/load round trip that answers exactly as before."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.utils.validation import check_is_fitted

from embedsuite.heads import BaseHead, load_head
from embedsuite.testing import FakeEncoder

CTX = "Anna lives in Lyon. Boris lives in Osaka. Chen lives in Quito."


def _sentiment(enc: FakeEncoder, tmp: Path) -> tuple[Any, Callable[[Any], Any]]:
    from embedsuite.heads import SentimentClassifier

    head = SentimentClassifier(enc, kind="attention", epochs=2, feature_cache=tmp / "f")
    texts = ["good film", "great fun", "bad film", "dull mess"] * 3
    return head.fit(texts, ["pos", "pos", "neg", "neg"] * 3), \
        lambda h: h.predict(["a good and great film", "a dull bad mess"])


def _translation(enc: FakeEncoder, tmp: Path) -> tuple[Any, Callable[[Any], Any]]:
    from embedsuite.heads import TranslationRetriever

    head = TranslationRetriever(enc).fit(["the red house", "a small dog", "green tea"])
    return head, lambda h: h.search(["a red house", "tea, green"], top_k=2)


def _recommend(enc: FakeEncoder, tmp: Path) -> tuple[Any, Callable[[Any], Any]]:
    from embedsuite.heads import ContentRecommender

    items = [{"id": str(i), "title": t} for i, t in enumerate(
        ["space opera", "cooking show", "space documentary", "baking contest"])]
    head = ContentRecommender(enc).fit(items)
    return head, lambda h: h.recommend_for_text("films about space", k=2)


def _qa(enc: FakeEncoder, tmp: Path) -> tuple[Any, Callable[[Any], Any]]:
    from embedsuite.heads import ExtractiveQA

    head = ExtractiveQA(enc, d_model=16).fit(
        ["Where does Anna live?", "Where does Boris live?"], [CTX, CTX],
        [("Lyon", CTX.index("Lyon")), ("Osaka", CTX.index("Osaka"))], epochs=1)
    return head, lambda h: h.answer("Where does Chen live?", CTX, top_k=2)


HEADS = {"sentiment": _sentiment, "translation": _translation, "recommend": _recommend,
         "qa": _qa}


@pytest.mark.parametrize("name", list(HEADS))
def test_the_shared_contract(name: str, fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    head, call = HEADS[name](fake_encoder, tmp_path)
    cls = type(head)
    assert isinstance(head, BaseHead)
    # parameters are the signature, nothing more
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert list(head.get_params()) == names
    # a fresh instance holds no fitted state and says so
    fresh = cls(fake_encoder)
    assert not [a for a in vars(fresh) if a.endswith("_") and not a.startswith("_")]
    with pytest.raises(SkNotFittedError):
        check_is_fitted(fresh)
    check_is_fitted(head)
    # clone: unfitted, same parameters, the very same encoder object
    twin = clone(head)
    assert twin.encoder is fake_encoder and twin is not head
    assert twin.get_params() == head.get_params()
    with pytest.raises(SkNotFittedError):
        check_is_fitted(twin)
    with pytest.raises(ValueError, match="Did you mean"):
        head.set_params(**{names[1] + "x": 1})
    # save / load: a folder, the same answers, through both doors
    folder = head.save(tmp_path / name)
    assert isinstance(folder, Path) and (folder / "config.json").is_file()
    for back in (cls.load(folder, fake_encoder), load_head(folder, fake_encoder)):
        assert type(back) is cls
        check_is_fitted(back)
        assert back.active_encoder is fake_encoder
        assert call(back) == call(head)
