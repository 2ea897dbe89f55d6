"""The shared token-feature store: resumable chunks, layer order, the precision in the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedsuite.encoders.token_store import TokenFeatureStore
from embedsuite.testing import FakeEncoder

TEXTS = [f"text number {i} with a few words" for i in range(10)]


def _direct(enc: FakeEncoder, texts: list[str], layers: list[int], role: str = "passage"
            ) -> list[np.ndarray]:
    embs = enc.encode_tokens(texts, role=role, layers=layers)  # type: ignore[arg-type]
    assert isinstance(embs, list)
    return [e.vectors.astype(np.float16) for e in embs]


def test_features_equal_direct_encoding_with_offsets(tmp_path: Path,
                                                     fake_encoder: FakeEncoder) -> None:
    store = TokenFeatureStore(tmp_path, chunk_size=4)
    got = store.features_with_offsets(fake_encoder, TEXTS, [1, 2], "passage")
    want = fake_encoder.encode_tokens(TEXTS, role="passage", layers=[1, 2])
    assert isinstance(want, list)
    for (vec, off), e in zip(got, want, strict=True):
        assert vec.dtype == np.float16 and vec.shape == (len(e), 2 * fake_encoder.dim)
        np.testing.assert_array_equal(vec, e.vectors.astype(np.float16))
        np.testing.assert_array_equal(off, e.offsets)


@pytest.mark.parametrize("asked", [[12, 6, 8, 10], [10, 6], [8], [6, 8, 10, 12]])
def test_any_layer_order_is_served_from_a_superset(tmp_path: Path, fake_encoder: FakeEncoder,
                                                   asked: list[int]) -> None:
    """Stored as 6-8-10-12; every other order or subset gets its own columns (the old store
    returned the stored order whenever the widths matched)."""
    store = TokenFeatureStore(tmp_path)
    store.features(fake_encoder, TEXTS, [6, 8, 10, 12], "query")
    calls = fake_encoder.token_calls
    got = store.features(fake_encoder, TEXTS, asked, "query")
    assert fake_encoder.token_calls == calls  # served from disk, nothing encoded
    for a, b in zip(got, _direct(fake_encoder, TEXTS, asked, "query"), strict=True):
        np.testing.assert_array_equal(a, b)
    again = TokenFeatureStore(tmp_path).lookup(fake_encoder, TEXTS[:3], asked, "query")
    for a, b in zip(again, _direct(fake_encoder, TEXTS[:3], asked, "query"), strict=True):
        assert a is not None
        np.testing.assert_array_equal(a, b)


def test_roles_and_precision_are_separate_keys(tmp_path: Path, fake_encoder: FakeEncoder
                                               ) -> None:
    store = TokenFeatureStore(tmp_path / "store")
    store.features(fake_encoder, TEXTS[:2], [1], "query")
    assert store.lookup(fake_encoder, TEXTS[:2], [1], "passage") == [None, None]
    assert store.lookup(fake_encoder, TEXTS[:2], [1], "query", bf16=True) == [None, None]
    (enc_dir,) = (tmp_path / "store").iterdir()  # the fingerprint, made filename-safe
    names = sorted(p.name for p in enc_dir.iterdir())
    assert names == ["query-L1-fp32"]


def test_an_interrupted_build_resumes(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    store = TokenFeatureStore(tmp_path, chunk_size=4)
    first = store.features_with_offsets(fake_encoder, TEXTS, [1, 2], "passage")
    folder = next(next(tmp_path.iterdir()).iterdir())
    assert len(list(folder.glob("chunk-*.json"))) == 3
    (folder / "chunk-00001.json").unlink()  # as if killed before the chunk was complete
    calls = fake_encoder.token_calls
    again = TokenFeatureStore(tmp_path, chunk_size=4).features_with_offsets(
        fake_encoder, TEXTS, [1, 2], "passage")
    assert fake_encoder.token_calls == calls + 4  # only the lost chunk's four texts
    for (a, oa), (b, ob) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(oa, ob)
