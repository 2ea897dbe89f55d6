"""VectorIndex: exact blockwise search, IVF, compact storage, save/load with memory maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedsuite.errors import HeadFormatError, NotFittedError
from embedsuite.index import VectorIndex


def _data(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(4, n // 50), d))
    x = centers[rng.integers(0, len(centers), n)] + 0.5 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _recall(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b, strict=True)]))


def test_exact_matches_brute_force_in_small_blocks() -> None:
    x = _data(1000)
    q = x[:20]
    idx = VectorIndex(block_size=97).build(x)
    s, i = idx.search(q, 5)
    ref = np.argsort(-(q @ x.T), axis=1)[:, :5]
    np.testing.assert_array_equal(i, ref)
    assert np.all(np.diff(s, axis=1) <= 1e-6) and idx.kind_ == "exact"
    s1, i1 = idx.search(q[0], 3)
    assert s1.shape == (3,) and i1[0] == 0
    assert idx.search(q, 5000)[1].shape == (20, 1000)  # k capped at the index size


@pytest.mark.parametrize("storage", ["f16", "i8"])
def test_compact_storage_keeps_recall(storage: str) -> None:
    x = _data(3000)
    q = _data(50, seed=1)
    idx = VectorIndex(storage=storage).build(x)
    _, exact = idx.search(q, 10, exact=True)
    s, got = idx.search(q, 10)
    assert _recall(got, exact) >= 0.95
    np.testing.assert_allclose(s, np.take_along_axis(q @ x.T, got, 1), rtol=1e-5)  # rescored
    assert idx.memory_bytes() < x.nbytes


@pytest.mark.parametrize("storage", ["f32", "i8"])
def test_ivf_above_threshold_save_and_mmap_load(tmp_path: Path, storage: str) -> None:
    x = _data(6000)
    q = _data(40, seed=2)
    idx = VectorIndex(exact_threshold=1000, storage=storage, nprobe=32).build(x)
    assert idx.kind_ == "ivf"
    _, exact = idx.search(q, 10, exact=True)
    _, got = idx.search(q, 10)
    assert _recall(got, exact) >= 0.9
    idx.save(tmp_path / "idx")
    back = VectorIndex.load(tmp_path / "idx")
    assert isinstance(back.vectors_, np.memmap) and back.kind_ == "ivf"
    np.testing.assert_array_equal(back.search(q, 10)[1], got)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="VectorIndex is empty"):
        VectorIndex().search(np.ones(4), 1)
    with pytest.raises(ValueError, match="storage must be one of"):
        VectorIndex(storage="f8").build(_data(10))
    with pytest.raises(ValueError, match="non-empty \\(n, dim\\) matrix"):
        VectorIndex().build(np.ones(5))
    bad = _data(10)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="contain NaN"):
        VectorIndex().build(bad)
    idx = VectorIndex().build(_data(10))
    with pytest.raises(ValueError, match="queries have 3 dims, the index has 32"):
        idx.search(np.ones(3), 1)
    with pytest.raises(HeadFormatError, match="is not a saved vector index"):
        VectorIndex.load(tmp_path)
