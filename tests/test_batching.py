"""The micro-batcher in front of the shared encoder, and cooperative cancellation."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedsuite.cache import EmbeddingCache
from embedsuite.cancel import CancelToken, OperationCancelledError, cancel_scope
from embedsuite.encoders.base import TokenEmbeddings
from embedsuite.encoders.batching import BatchingEncoder, MicroBatcher
from embedsuite.testing import FakeEncoder

TEXTS = [f"sentence number {i} about topic {i % 7}" for i in range(40)]


def _fake(tmp_path: Path, name: str) -> FakeEncoder:
    return FakeEncoder(dim=16, cache=EmbeddingCache(tmp_path / f"{name}.sqlite"))


def _concurrently(fn: Any, args: list[Any], workers: int = 20) -> list[Any]:
    start = threading.Barrier(workers)

    def call(a: Any) -> Any:
        start.wait()
        return fn(a)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(call, args))


def test_concurrent_encodes_are_merged_and_equal_unbatched(tmp_path: Path) -> None:
    batched = BatchingEncoder(_fake(tmp_path, "a"), window_ms=20)
    direct = _fake(tmp_path, "b")
    got = _concurrently(lambda t: batched.encode(t, role="query"), TEXTS[:20])
    for text, vec in zip(TEXTS[:20], got, strict=True):
        assert vec.shape == (16,)
        np.testing.assert_array_equal(vec, direct.encode(text, role="query"))
    assert max(batched.batcher.batch_sizes) > 1, "no two requests shared a pass"
    assert sum(batched.batcher.batch_sizes) == 20


def test_lists_roles_and_attributes_pass_through(tmp_path: Path) -> None:
    inner = _fake(tmp_path, "a")
    enc = BatchingEncoder(inner)
    out = enc.encode(TEXTS[:3], role="passage")
    assert out.shape == (3, 16)
    np.testing.assert_array_equal(out, _fake(tmp_path, "b").encode(TEXTS[:3], role="passage"))
    assert enc.fingerprint == inner.fingerprint and enc.dim == 16 and enc.name == inner.name
    # a request of max_batch texts or more goes straight to the encoder
    enc.encode(TEXTS * 2, role="query")
    assert sum(enc.batcher.batch_sizes) == 3
    with pytest.raises(ValueError, match="empty"):
        enc.encode(["fine", "  "])
    with pytest.raises(ValueError, match="role"):
        enc.encode("fine", role="question")  # type: ignore[arg-type]


def test_token_calls_are_merged_and_equal_unbatched(tmp_path: Path) -> None:
    batched = BatchingEncoder(_fake(tmp_path, "a"), window_ms=20)
    direct = _fake(tmp_path, "b")
    got = _concurrently(lambda t: batched.encode_tokens(t, role="passage", pair="why?",
                                                        layers=[-1, 6]), TEXTS[:12], 12)
    for text, emb in zip(TEXTS[:12], got, strict=True):
        assert isinstance(emb, TokenEmbeddings)
        want = direct.encode_tokens(text, role="passage", pair="why?", layers=[-1, 6])
        assert isinstance(want, TokenEmbeddings)
        np.testing.assert_array_equal(emb.vectors, want.vectors)
        np.testing.assert_array_equal(emb.offsets, want.offsets)
        assert emb.pair_vectors is not None and want.pair_vectors is not None
        np.testing.assert_array_equal(emb.pair_vectors, want.pair_vectors)
    assert max(batched.batcher.batch_sizes) > 1


def test_calls_with_other_settings_are_not_merged(tmp_path: Path) -> None:
    seen: list[tuple[Any, int]] = []

    def run(key: Any, texts: list[str], pairs: list[str] | None) -> list[Any]:
        seen.append((key, len(texts)))
        return [(key, t) for t in texts]

    mb = MicroBatcher(run, window_ms=30)
    keys = ["a", "b"] * 6
    got = _concurrently(lambda i: mb.submit(keys[i], [f"t{i}"]), list(range(12)), 12)
    assert [g[0][0] for g in got] == keys
    assert all(len({k for k, _ in seen if k == key}) == 1 for key in "ab")
    assert sum(n for _, n in seen) == 12


def test_a_failing_job_does_not_fail_its_batch_mates() -> None:
    def run(key: Any, texts: list[str], pairs: list[str] | None) -> list[str]:
        if "bad" in texts:
            raise ValueError("bad text")
        time.sleep(0.01)
        return [t.upper() for t in texts]

    mb = MicroBatcher(run, window_ms=30)

    def one(t: str) -> str:
        try:
            return str(mb.submit("k", [t])[0])
        except ValueError as exc:
            return f"error: {exc}"

    got = _concurrently(one, ["x", "bad", "y", "z"], 4)
    assert got == ["X", "error: bad text", "Y", "Z"]


def test_a_cancelled_waiter_returns_at_once_and_its_job_is_dropped() -> None:
    ran: list[list[str]] = []
    release = threading.Event()

    def run(key: Any, texts: list[str], pairs: list[str] | None) -> list[str]:
        ran.append(texts)
        release.wait(5)
        return texts

    mb = MicroBatcher(run, window_ms=0)
    blocker = threading.Thread(target=mb.submit, args=("k", ["first"]))
    blocker.start()
    time.sleep(0.1)  # "first" is running; the next job waits behind it
    token = CancelToken()
    t0 = time.monotonic()
    with cancel_scope(token):
        threading.Timer(0.1, token.cancel, args=("timed out",)).start()
        with pytest.raises(OperationCancelledError, match="timed out"):
            mb.submit("k", ["second"])
    assert time.monotonic() - t0 < 1.0
    release.set()
    blocker.join(5)
    time.sleep(0.1)
    assert ran == [["first"]], "the cancelled job still ran"


class _CountingEncoder(FakeEncoder):
    """Cancels its token after the first batch."""

    def __init__(self, token: CancelToken, cache: EmbeddingCache) -> None:
        super().__init__(dim=8, cache=cache)
        self.token = token
        self.batches = 0

    def _encode_batch(self, texts: list[str], role: Any) -> np.ndarray:
        self.batches += 1
        self.token.cancel("stop")
        return super()._encode_batch(texts, role)


def test_a_cancelled_encode_stops_within_one_batch(tmp_path: Path) -> None:
    token = CancelToken()
    enc = _CountingEncoder(token, EmbeddingCache(tmp_path / "c.sqlite"))
    with cancel_scope(token), pytest.raises(OperationCancelledError, match="stop"):
        enc.encode([f"text {i}" for i in range(500)], batch_size=10)
    assert enc.batches == 1


def test_bad_window_and_batch_are_refused() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        MicroBatcher(lambda k, t, p: t, window_ms=-1)
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda k, t, p: t, max_batch=0)


@pytest.mark.parametrize("name", ["e5-small-int8", "e5-small"])
def test_real_encoder_answers_do_not_depend_on_batch_mates(name: str, tmp_path: Path) -> None:
    """Sentiment of one text through a batched pass with 15 others equals its answer alone.

    int8 (static scales) gives identical vectors; fp32 differs only by float rounding of
    the padded matmuls (within 1e-5), so labels agree.
    """
    if name == "e5-small-int8":
        pytest.importorskip("openvino", reason="the optional extra 'fast' is not installed")
    from embedsuite.encoders import get_encoder

    shared = get_encoder(name)
    nonce = uuid.uuid4().hex[:8]  # texts no cache has seen
    texts = [f"The {w} film {nonce} was {a} from start to end." for w, a in zip(
        ["new", "old", "long", "short"] * 4,
        ["wonderful", "awful", "dull", "moving", "fine", "bad", "great", "boring"] * 2,
        strict=True)]
    alone = [shared.encode(t, role="query", use_cache=False) for t in texts]
    batched = BatchingEncoder(shared, window_ms=50)
    together = _concurrently(lambda t: batched.encode(t, role="query"), texts, len(texts))
    assert max(batched.batcher.batch_sizes) > 1
    for a, b in zip(alone, together, strict=True):
        if name == "e5-small-int8":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_batcher_called_from_another_batchers_pass_runs_inline() -> None:
    inner_threads: list[str] = []

    def inner_run(key: Any, texts: list[str], pairs: list[str] | None) -> list[str]:
        inner_threads.append(threading.current_thread().name)
        return [t.upper() for t in texts]

    inner = MicroBatcher(inner_run, window_ms=50)

    def outer_run(key: Any, texts: list[str], pairs: list[str] | None) -> list[str]:
        return list(inner.submit("k", texts))

    outer = MicroBatcher(outer_run, window_ms=5)
    t0 = time.monotonic()
    assert outer.submit("k", ["a", "b"]) == ["A", "B"]
    assert time.monotonic() - t0 < 0.045, "the nested call waited for a window"
    assert inner_threads == ["encoder-batcher"] and inner._worker is None
