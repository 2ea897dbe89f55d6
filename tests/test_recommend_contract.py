"""The recommender on the shared head contract: scikit-learn clone/fitted checks, the
sidecar save layout (head_version 2), the version-1 migration and integrity checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.utils.validation import check_is_fitted

from embedsuite.errors import HeadFormatError
from embedsuite.heads import HEADS, load_head
from embedsuite.heads.base import write_head_folder
from embedsuite.heads.recommend import ContentRecommender
from embedsuite.testing import FakeEncoder
from tests.test_recommend import CATALOGUE

HIST = [("s1", 5.0, 30.0), ("c1", 1.0, 10.0), ("m2", 4.0, 20.0)]
ITEMS = [dict(it, year=2000 + i, tags=["a", "ü"]) for i, it in enumerate(CATALOGUE)]


def _hybrid(enc: FakeEncoder, **params: Any) -> ContentRecommender:
    rec = ContentRecommender(enc, cf_weight=0.6, trend_weight=1.0, trend_window=15.0,
                             **params).fit(ITEMS)
    users = [f"u{i % 5}" for i in range(30)]
    items = [CATALOGUE[(3 * i) % 10]["id"] for i in range(30)]
    return rec.fit_interactions(users, items, [float(1 + i % 5) for i in range(30)],
                                [float(i) for i in range(30)])


def _outputs(rec: ContentRecommender) -> list[Any]:
    return [rec.recommend(HIST, k=6), rec.recommend(HIST, k=5, mmr_lambda=0.4),
            rec.similar("s2", k=4), rec.recommend_for_text("space food detective", k=3),
            rec.score_history(HIST).tolist(), rec.item("c2")]


def save_v1(rec: ContentRecommender, path: Path, *, drop: tuple[str, ...] = ()) -> None:
    """Write ``rec`` as the version-1 ``save`` did: everything but tensors in config.json."""
    params = {k: v for k, v in rec.get_params().items() if k != "encoder" and k not in drop}
    tensors: dict[str, np.ndarray] = {"embeddings": rec.embeddings_}
    if rec.is_hybrid:
        arrays = {"cf_indptr": rec.cf_indptr_, "cf_indices": rec.cf_indices_,
                  "cf_data": rec.cf_data_, "cf_dense": rec.cf_dense_, "cf_items": rec.cf_items_,
                  "popularity": rec.popularity_, "event_times": rec.event_times_,
                  "event_items": rec.event_items_}
        tensors.update({k: v for k, v in arrays.items() if v is not None})
    config = {"params": params, "item_ids": rec.item_ids_, "texts": rec.texts_,
              "metadata": rec.metadata_, "n_interactions": rec.n_interactions_}
    write_head_folder(path, "recommender", config, tensors, rec.active_encoder)


def test_registered_once_and_init_only_stores(fake_encoder: FakeEncoder) -> None:
    assert HEADS.get("recommender") is ContentRecommender
    rec = ContentRecommender(fake_encoder, cf_weight=0.4)
    assert [a for a in vars(rec) if a.endswith("_")] == []
    assert not rec.is_hybrid
    assert rec.get_params(deep=True)["encoder"] is fake_encoder


def test_clone_is_unfitted_and_shares_the_encoder(fake_encoder: FakeEncoder) -> None:
    rec = ContentRecommender(fake_encoder, content_power=2.0, cf_model="knn").fit(CATALOGUE)
    copy = clone(rec)
    assert isinstance(copy, ContentRecommender) and copy is not rec
    assert copy.encoder is fake_encoder
    assert copy.get_params() == rec.get_params()
    assert [a for a in vars(copy) if a.endswith("_")] == []
    with pytest.raises(SkNotFittedError):
        check_is_fitted(copy)
    assert copy.fit(CATALOGUE).recommend(["s1"], k=3) == rec.recommend(["s1"], k=3)


def test_check_is_fitted_before_fit_after_fit_and_after_load(fake_encoder: FakeEncoder,
                                                             tmp_path: Path) -> None:
    rec = ContentRecommender(fake_encoder)
    with pytest.raises(SkNotFittedError):
        check_is_fitted(rec)
    rec.fit(CATALOGUE)
    check_is_fitted(rec)
    check_is_fitted(ContentRecommender.load(rec.save(tmp_path / "r"), fake_encoder))


@pytest.mark.parametrize("model", ["ease", "knn", None])
def test_round_trip_gives_identical_recommendations(fake_encoder: FakeEncoder, tmp_path: Path,
                                                    model: str | None) -> None:
    rec = (ContentRecommender(fake_encoder, rating_center=3.0).fit(ITEMS) if model is None
           else _hybrid(fake_encoder, cf_model=model))
    folder = rec.save(tmp_path / "rec")
    assert folder == tmp_path / "rec" and isinstance(folder, Path)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert cfg["head_version"] == 2 and cfg["n_items"] == len(CATALOGUE)
    assert "encoder" not in cfg["params"] and cfg["params"]["rating_center"] == (
        3.0 if model is None else "mean")
    back = ContentRecommender.load(folder, fake_encoder)
    assert back.cf_model_ == rec.cf_model_ and back.get_params() == rec.get_params()
    assert back.item_ids_ == rec.item_ids_ and back.texts_ == rec.texts_
    assert back.metadata_ == rec.metadata_ and back.metadata_[0]["tags"] == ["a", "ü"]
    np.testing.assert_array_equal(back.embeddings_, rec.embeddings_)
    assert _outputs(back) == _outputs(rec)
    assert _outputs(load_head(folder, fake_encoder)) == _outputs(rec)


def test_saving_a_loaded_head_over_its_own_folder(fake_encoder: FakeEncoder,
                                                  tmp_path: Path) -> None:
    rec = _hybrid(fake_encoder)
    back = ContentRecommender.load(rec.save(tmp_path / "rec"), fake_encoder)
    back.save(tmp_path / "rec")  # its embeddings are memory-mapped from that folder
    assert _outputs(ContentRecommender.load(tmp_path / "rec", fake_encoder)) == _outputs(rec)


@pytest.mark.parametrize("hybrid", [False, True])
def test_version_1_folder_still_loads(fake_encoder: FakeEncoder, tmp_path: Path,
                                      hybrid: bool) -> None:
    rec = _hybrid(fake_encoder) if hybrid else ContentRecommender(fake_encoder).fit(ITEMS)
    save_v1(rec, tmp_path / "v1")
    cfg = json.loads((tmp_path / "v1" / "config.json").read_text(encoding="utf-8"))
    assert "head_version" not in cfg and cfg["item_ids"][0] == "s1"
    back = ContentRecommender.load(tmp_path / "v1", fake_encoder)
    assert back.is_hybrid == hybrid and back.get_params() == rec.get_params()
    assert back.metadata_ == rec.metadata_ and back.n_interactions_ == rec.n_interactions_
    assert _outputs(back) == _outputs(rec)
    assert isinstance(load_head(tmp_path / "v1", fake_encoder), ContentRecommender)
    # re-saving upgrades the folder to the sidecar layout
    back.save(tmp_path / "v2")
    assert "item_ids" not in json.loads((tmp_path / "v2" / "config.json").read_text())
    assert _outputs(ContentRecommender.load(tmp_path / "v2", fake_encoder)) == _outputs(rec)


def test_version_1_folder_from_before_cf_offset(fake_encoder: FakeEncoder,
                                                tmp_path: Path) -> None:
    rec = _hybrid(fake_encoder, cf_offset=0.0)
    save_v1(rec, tmp_path / "old", drop=("cf_offset",))
    back = ContentRecommender.load(tmp_path / "old", fake_encoder)
    assert back.cf_offset == 0.0 and _outputs(back) == _outputs(rec)


def test_broken_version_1_config_is_a_format_error(fake_encoder: FakeEncoder,
                                                   tmp_path: Path) -> None:
    rec = ContentRecommender(fake_encoder).fit(CATALOGUE)
    save_v1(rec, tmp_path / "v1")
    cfg_path = tmp_path / "v1" / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    del cfg["texts"]
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(HeadFormatError, match=r"does not fit its config.json \(KeyError: "
                                              r"'texts'\); the file was edited or damaged"):
        ContentRecommender.load(tmp_path / "v1", fake_encoder)


@pytest.mark.parametrize("name", ["texts_bytes", "item_ids_offsets", "metadata_bytes",
                                  "embeddings"])
def test_tampered_sidecar_is_refused(fake_encoder: FakeEncoder, tmp_path: Path,
                                     name: str) -> None:
    folder = ContentRecommender(fake_encoder).fit(ITEMS).save(tmp_path / "rec")
    f = folder / f"{name}.npy"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01
    f.write_bytes(bytes(raw))
    with pytest.raises(HeadFormatError, match="does not match the digest"):
        ContentRecommender.load(folder, fake_encoder)
    f.unlink()
    with pytest.raises(HeadFormatError, match=f"has no {name}.npy"):
        ContentRecommender.load(folder, fake_encoder)


def test_sidecars_that_do_not_fit_together_are_refused(fake_encoder: FakeEncoder,
                                                       tmp_path: Path) -> None:
    folder = ContentRecommender(fake_encoder).fit(ITEMS).save(tmp_path / "rec")
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["n_items"] = 11
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(HeadFormatError, match="10 ids, 10 texts, 10 metadata entries, "
                                              "expected 11"):
        ContentRecommender.load(folder, fake_encoder)


def test_newer_head_version_is_refused(fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    folder = ContentRecommender(fake_encoder).fit(CATALOGUE).save(tmp_path / "rec")
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    cfg["head_version"] = 3
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(HeadFormatError, match="newer embedsuite"):
        ContentRecommender.load(folder, fake_encoder)


def test_metadata_that_is_not_json_names_the_item(fake_encoder: FakeEncoder,
                                                  tmp_path: Path) -> None:
    rec = ContentRecommender(fake_encoder).fit(
        [("a", "red apple", {"when": object()}), ("b", "green pear")])
    with pytest.raises(TypeError, match="the metadata of item 'a' cannot be saved as JSON"):
        rec.save(tmp_path / "rec")
