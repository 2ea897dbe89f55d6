"""The saved-head folder format: round trip, tamper detection, encoder checks, no pickle."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from embedsuite.errors import EncoderMismatchError, HeadFormatError, NotFittedError
from embedsuite.heads.base import (
    check_encoder_match,
    check_fitted,
    read_head_folder,
    write_head_folder,
)
from embedsuite.testing import FakeEncoder


def _save(path: Path, enc: FakeEncoder) -> Path:
    return write_head_folder(path, "demo-kind", {"labels": ["neg", "pos"]},
                             {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, enc)


def test_round_trip(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    folder = _save(tmp_path / "head", fake_encoder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config, tensors = read_head_folder(folder)
    assert config["head"] == "demo-kind" and config["labels"] == ["neg", "pos"]
    assert config["encoder"] == {"name": "fake", "fingerprint": fake_encoder.fingerprint,
                                 "dim": 32}
    np.testing.assert_array_equal(tensors["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    _save(folder, fake_encoder)  # overwriting an existing folder works
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_tampered_weights_are_refused(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    folder = _save(tmp_path / "head", fake_encoder)
    w = folder / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(HeadFormatError, match="does not match the digest in config.json"):
        read_head_folder(folder)


def test_pickle_in_place_of_weights_is_refused_not_run(tmp_path: Path,
                                                       fake_encoder: FakeEncoder) -> None:
    folder = _save(tmp_path / "head", fake_encoder)
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (marker.write_text, ("ran",))

    (folder / "model.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(HeadFormatError):
        read_head_folder(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "config.json").unlink(), "has no config.json"),
        (lambda f: (f / "model.safetensors").unlink(), "has no model.safetensors"),
        (lambda f: (f / "config.json").write_text("{not json"), "is not valid JSON"),
        (lambda f: (f / "config.json").write_text("[1, 2]"), "has no 'head' entry"),
        (lambda f: (f / "config.json").write_text(json.dumps({"head": "x", "format_version": 99})),
         "has format_version 99, expected 1"),
    ],
)
def test_broken_folders_give_clear_errors(tmp_path: Path, fake_encoder: FakeEncoder,
                                          damage, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = _save(tmp_path / "head", fake_encoder)
    damage(folder)
    with pytest.raises(HeadFormatError, match=message):
        read_head_folder(folder)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(HeadFormatError, match="is not a folder"):
        read_head_folder(tmp_path / "nope")


def test_encoder_mismatch(tmp_path: Path, fake_encoder: FakeEncoder, tmp_cache) -> None:  # type: ignore[no-untyped-def]
    config, _ = read_head_folder(_save(tmp_path / "head", fake_encoder))
    check_encoder_match(config, fake_encoder, "the head")
    other = FakeEncoder(dim=32, name="other", cache=tmp_cache)
    with pytest.raises(EncoderMismatchError, match="was trained on encoder 'fake'"):
        check_encoder_match(config, other, "the head")


def test_check_fitted() -> None:
    class Est:
        coef_ = None

    with pytest.raises(NotFittedError, match="This Est instance is not fitted yet"):
        check_fitted(Est(), "coef_")
    e = Est()
    e.coef_ = 1  # type: ignore[assignment]
    check_fitted(e, ["coef_"])


def test_load_head_of_kind_refuses_other_kinds(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    from embedsuite.heads.base import load_head_of_kind

    class Demo:
        @classmethod
        def _load(cls, config, tensors, encoder, *, folder):  # type: ignore[no-untyped-def]
            return (config["labels"], tensors["w"].shape, encoder)

    folder = _save(tmp_path / "head", fake_encoder)
    labels, shape, enc = load_head_of_kind(Demo, folder, fake_encoder, "demo-kind", "demo head")
    assert labels == ["neg", "pos"] and shape == (2, 3) and enc is fake_encoder
    with pytest.raises(HeadFormatError, match="holds a 'demo-kind' head, not a QA head"):
        load_head_of_kind(Demo, folder, fake_encoder, "qa-span", "QA head")
