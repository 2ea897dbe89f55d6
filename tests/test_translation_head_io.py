"""The translation head's estimator contract (BaseHead) and its saved folder (version 2 + v1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from embedsuite.errors import HeadFormatError, NotFittedError
from embedsuite.heads.base import write_head_folder
from embedsuite.heads.translation import TranslationRetriever
from embedsuite.testing import FakeEncoder

CANDS = ["the cat sleeps on the sofa", "it rains all week", "the train leaves at eight",
         "my phone battery is empty", "we love history books", "猫がソファで寝ています🐱。",
         "مرحبا Google", "le train part à huit heures"]
SRC = ["a cat sleeps", "rain all week", "train at eight", "phone is empty", "history books"]
WORDS = ["cat", "dog", "rain", "sun", "train", "book", "tea", "sea", "snow", "moon"]
MANY = [f"{a} {b} here" for a in WORDS for b in WORDS[:3]]  # 30: both sides can be centred
QUERIES = ["the train leaves at eight", "a cat on a sofa", "history", *MANY[:20]]


def _results(tr: TranslationRetriever) -> list[object]:
    return [tr.search(QUERIES[0], top_k=3), tr.search(QUERIES, top_k=4),
            tr.search(QUERIES, top_k=2, scoring="cosine")]


def _v1_folder(path: Path, tr: TranslationRetriever) -> Path:
    """A folder as embedsuite wrote it before head_version 2 (texts inside config.json)."""
    tensors = {"embeddings": tr.embeddings_}
    if tr.reference_ is not None:
        tensors["reference"] = tr.reference_
    config = {"params": {"scoring": tr.scoring, "k": tr.k, "role": tr.role,
                         "center": bool(tr.center), "shortlist": tr.shortlist,
                         "batch_size": tr.batch_size},
              "texts": tr.texts_, "n": len(tr.texts_)}
    return write_head_folder(path, "translation-index", config, tensors, tr.active_encoder)


@pytest.fixture(params=["plain", "reference"])
def fitted(request: pytest.FixtureRequest, fake_encoder: FakeEncoder) -> TranslationRetriever:
    tr = TranslationRetriever(fake_encoder, k=2, shortlist=8)
    return tr.index([*CANDS, *MANY], reference=SRC if request.param == "reference" else None)


# ---------------------------------------------------------------- the estimator contract
def test_init_only_stores_its_arguments(fake_encoder: FakeEncoder) -> None:
    tr = TranslationRetriever(fake_encoder, scoring="cosine", k=3)
    assert tr.get_params() == {"encoder": fake_encoder, "scoring": "cosine", "k": 3,
                               "role": "query", "center": True, "shortlist": 32,
                               "batch_size": 32, "block_bytes": 64 * 1024 * 1024}
    assert not [a for a in vars(tr) if a.endswith("_") or a.startswith("_")]
    assert not hasattr(TranslationRetriever, "encoder_")
    assert tr.set_params(k=5).k == 5
    with pytest.raises(ValueError, match="unknown parameter 'scorng'.*Did you mean 'scoring'"):
        tr.set_params(scorng="margin")


def test_sklearn_clone_is_unfitted_and_shares_the_encoder(fitted: TranslationRetriever,
                                                          fake_encoder: FakeEncoder) -> None:
    copy = clone(fitted)
    assert copy is not fitted and copy.encoder is fake_encoder
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "texts_") and len(copy) == 0
    with pytest.raises(NotFittedError):
        copy.search("a cat")
    assert copy.index(CANDS).search(CANDS[2], top_k=1)[0]["index"] == 2


def test_check_is_fitted_before_fit_after_fit_and_after_load(fake_encoder: FakeEncoder,
                                                             tmp_path: Path) -> None:
    tr = TranslationRetriever(fake_encoder)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(tr)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        tr.save(tmp_path / "x")
    assert not (tmp_path / "x").exists()
    check_is_fitted(tr.fit(CANDS))
    tr.save(tmp_path / "idx")
    check_is_fitted(TranslationRetriever.load(tmp_path / "idx", encoder=fake_encoder))


def test_index_fixes_the_encoder_mine_needs_no_fit(fake_encoder: FakeEncoder) -> None:
    tr = TranslationRetriever(fake_encoder).index(CANDS)
    assert tr.active_encoder is fake_encoder
    pairs = TranslationRetriever(fake_encoder, k=1).mine(["it rains"], ["it rains", "cat"],
                                                         threshold=None)
    assert pairs[0]["target_index"] == 0


# ---------------------------------------------------------------- the saved folder (v2)
def test_save_load_round_trip_gives_identical_results(fitted: TranslationRetriever,
                                                      fake_encoder: FakeEncoder,
                                                      tmp_path: Path) -> None:
    from embedsuite.heads import load_head

    folder = fitted.save(tmp_path / "idx")
    assert isinstance(folder, Path) and folder == tmp_path / "idx"
    names = {p.name for p in folder.iterdir()}
    want = {"config.json", "model.safetensors", "texts_bytes.npy", "texts_offsets.npy",
            "embeddings.npy"} | ({"reference.npy"} if fitted.reference_ is not None else set())
    assert names == want
    config = json.loads((folder / "config.json").read_text())
    assert config["head_version"] == 2 and "texts" not in config
    assert config["n"] == len(fitted.texts_) and config["dim"] == 32
    assert set(config["sidecars"]) == {n.removesuffix(".npy") for n in want if ".npy" in n}
    assert config["params"]["block_bytes"] == fitted.block_bytes
    back = TranslationRetriever.load(folder, encoder=fake_encoder)
    assert back.texts_ == fitted.texts_ and back.get_params() == fitted.get_params()
    np.testing.assert_array_equal(back.embeddings_, fitted.embeddings_)
    if fitted.reference_ is None:
        assert back.reference_ is None
    else:
        np.testing.assert_array_equal(back.reference_, fitted.reference_)
    assert _results(back) == _results(fitted)
    again = load_head(folder, encoder=fake_encoder)
    assert isinstance(again, TranslationRetriever) and _results(again) == _results(fitted)


def test_a_loaded_index_can_be_saved_over_its_own_folder(fitted: TranslationRetriever,
                                                         fake_encoder: FakeEncoder,
                                                         tmp_path: Path) -> None:
    back = TranslationRetriever.load(fitted.save(tmp_path / "idx"), encoder=fake_encoder)
    before = _results(back)
    back.save(tmp_path / "idx")  # its vectors are memory-mapped from that folder
    assert _results(back) == before
    assert _results(TranslationRetriever.load(tmp_path / "idx", encoder=fake_encoder)) == before


def test_load_does_not_revalidate_every_text(fitted: TranslationRetriever,
                                             fake_encoder: FakeEncoder, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import embedsuite.heads.translation.head as head_mod
    import embedsuite.heads.translation.saved as saved_mod

    folder = fitted.save(tmp_path / "idx")

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("texts were validated one by one on load")

    monkeypatch.setattr(saved_mod, "check_text", boom)
    monkeypatch.setattr(head_mod, "as_text_list", boom)
    assert TranslationRetriever.load(folder, encoder=fake_encoder).texts_ == fitted.texts_


@pytest.mark.parametrize("name", ["texts_bytes", "texts_offsets", "embeddings"])
def test_a_tampered_sidecar_is_refused(fitted: TranslationRetriever, fake_encoder: FakeEncoder,
                                       tmp_path: Path, name: str) -> None:
    folder = fitted.save(tmp_path / "idx")
    f = folder / f"{name}.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(HeadFormatError, match=f"{name}.npy does not match the digest"):
        TranslationRetriever.load(folder, encoder=fake_encoder)


def test_a_missing_sidecar_is_refused(fitted: TranslationRetriever, fake_encoder: FakeEncoder,
                                      tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "idx")
    (folder / "embeddings.npy").unlink()
    with pytest.raises(HeadFormatError, match="has no embeddings.npy"):
        TranslationRetriever.load(folder, encoder=fake_encoder)


def test_counts_that_do_not_fit_are_refused(fitted: TranslationRetriever,
                                            fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "idx")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["n"] += 1
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HeadFormatError, match=r"inconsistent .*expected \d+ texts, got \d+"):
        TranslationRetriever.load(folder, encoder=fake_encoder)


def test_a_newer_head_version_is_refused(fitted: TranslationRetriever,
                                         fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "idx")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["head_version"] = 3
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HeadFormatError, match="saved by a newer embedsuite"):
        TranslationRetriever.load(folder, encoder=fake_encoder)


# ---------------------------------------------------------------- version-1 folders
def test_a_v1_folder_still_loads_with_identical_results(fitted: TranslationRetriever,
                                                        fake_encoder: FakeEncoder,
                                                        tmp_path: Path) -> None:
    from embedsuite.heads import load_head

    folder = _v1_folder(tmp_path / "v1", fitted)
    config = json.loads((folder / "config.json").read_text())
    assert "head_version" not in config and "sidecars" not in config
    back = TranslationRetriever.load(folder, encoder=fake_encoder)
    assert back.texts_ == fitted.texts_ and back.get_params() == fitted.get_params()
    assert _results(back) == _results(fitted)
    assert _results(load_head(folder, encoder=fake_encoder)) == _results(fitted)
    # re-saving writes version 2
    v2 = back.save(tmp_path / "v2")
    assert json.loads((v2 / "config.json").read_text())["head_version"] == 2
    assert _results(TranslationRetriever.load(v2, encoder=fake_encoder)) == _results(fitted)


def test_v1_texts_are_still_checked(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    tr = TranslationRetriever(fake_encoder).index(CANDS)
    folder = _v1_folder(tmp_path / "v1", tr)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["texts"][1] = "   "  # not covered by any digest in version 1
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HeadFormatError, match=r"saved texts\[1\] is empty"):
        TranslationRetriever.load(folder, encoder=fake_encoder)
    del cfg["texts"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HeadFormatError, match="the saved translation index is inconsistent"):
        TranslationRetriever.load(folder, encoder=fake_encoder)
