"""The on-disk embedding cache: hits, misses, corruption recovery, sharing between processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from embedsuite.cache import EmbeddingCache, make_key
from embedsuite.testing import FakeEncoder


def test_roundtrip_and_info(tmp_cache: EmbeddingCache) -> None:
    k1, k2 = make_key("fp", "query", "a"), make_key("fp", "query", "b")
    arr = np.arange(4, dtype=np.float32)
    tmp_cache.put_many({k1: arr, k2: np.ones((2, 3), np.float16)}, "fp")
    got = tmp_cache.get_many([k1, k2, make_key("fp", "query", "missing")])
    assert set(got) == {k1, k2}
    np.testing.assert_array_equal(got[k1], arr)
    assert got[k2].shape == (2, 3) and got[k2].dtype == np.float16
    info = tmp_cache.info()
    assert info["entries"] == 2 and info["by_fingerprint"] == {"fp": 2}
    assert tmp_cache.clear() == 2 and tmp_cache.info()["entries"] == 0


def test_keys_separate_role_kind_and_fingerprint() -> None:
    keys = {make_key("fp", "query", "t"), make_key("fp", "passage", "t"),
            make_key("fp2", "query", "t"), make_key("fp", "query", "t", kind="tokens")}
    assert len(keys) == 4


def test_second_encode_is_served_from_cache(fake_encoder: FakeEncoder) -> None:
    texts = [f"sentence number {i}" for i in range(50)]
    first = fake_encoder.encode(texts)
    assert fake_encoder.calls == 50
    second = fake_encoder.encode(texts)
    assert fake_encoder.calls == 50  # nothing recomputed
    np.testing.assert_array_equal(first, second)
    fake_encoder.encode(texts, role="passage")
    assert fake_encoder.calls == 100  # the role is part of the key


def test_corrupt_row_is_detected_and_recomputed(fake_encoder: FakeEncoder,
                                                tmp_cache: EmbeddingCache) -> None:
    ref = fake_encoder.encode(["alpha beta", "gamma"])
    conn = sqlite3.connect(tmp_cache.path)
    conn.execute("UPDATE entries SET data = zeroblob(LENGTH(data))")  # flip every byte to 0
    conn.commit()
    conn.close()
    calls = fake_encoder.calls
    again = fake_encoder.encode(["alpha beta", "gamma"])
    assert fake_encoder.calls == calls + 2 and tmp_cache.corrupt == 2
    np.testing.assert_allclose(again, ref, rtol=1e-6)
    fake_encoder.encode(["alpha beta", "gamma"])
    assert fake_encoder.calls == calls + 2  # the recomputed rows were stored again


def test_truncated_row_is_detected(fake_encoder: FakeEncoder, tmp_cache: EmbeddingCache) -> None:
    fake_encoder.encode("alpha")
    conn = sqlite3.connect(tmp_cache.path)
    conn.execute("UPDATE entries SET data = substr(data, 1, 8)")
    conn.commit()
    conn.close()
    calls = fake_encoder.calls
    fake_encoder.encode("alpha")
    assert fake_encoder.calls == calls + 1


def test_unreadable_database_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a sqlite database" * 100)
    cache = EmbeddingCache(path)
    enc = FakeEncoder(cache=cache)
    vec = enc.encode("works again")
    assert vec.shape == (16,)
    assert any(p.name.startswith("c.sqlite.corrupt-") for p in tmp_path.iterdir())
    assert cache.info()["entries"] == 1


def test_two_processes_share_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    script = textwrap.dedent(f"""
        import sys
        from embedsuite.cache import EmbeddingCache
        from embedsuite.testing import FakeEncoder
        enc = FakeEncoder(cache=EmbeddingCache({str(path)!r}))
        for r in range(5):
            enc.encode([f"text {{i}} round {{r}}" for i in range(40)] + ["common"])
        print(enc.calls)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    cache = EmbeddingCache(path)
    assert cache.info()["entries"] == 5 * 40 + 1
    enc = FakeEncoder(cache=cache)
    enc.encode([f"text {i} round 3" for i in range(40)])
    assert enc.calls == 0  # written by the other processes, read here


@pytest.mark.parametrize("bad", [0, -1])
def test_batch_size_must_be_positive(fake_encoder: FakeEncoder, bad: int) -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        fake_encoder.encode(["a"], batch_size=bad)


def test_long_encode_is_cached_as_it_goes(fake_encoder: FakeEncoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.encoders import base

    monkeypatch.setattr(base, "_FLUSH_EVERY", 10)
    texts = [f"text {i}" for i in range(35)]
    calls = {"n": 0}
    real = fake_encoder._encode_batch

    def failing(batch, role):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # interrupted after 3 batches of 8
        return real(batch, role)

    monkeypatch.setattr(fake_encoder, "_encode_batch", failing)
    with pytest.raises(KeyboardInterrupt):
        fake_encoder.encode(texts, batch_size=8)
    # batches 1-2 (16 vectors >= 10) were flushed; batch 3 (8 < 10) was not yet
    assert fake_encoder.cache.info()["entries"] == 16
