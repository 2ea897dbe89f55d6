"""Scale-out: embed-corpus shards (local engine and Ray), manifest checks, heads on shards.

The Ray tests (``ray`` + ``integration`` markers) start one local Ray instance with
2 CPUs for the module. Their encoder is given BY NAME (workers load their own copy):
``tests.test_scale:slow_fake`` (the deterministic :class:`embedsuite.testing.FakeEncoder`
with a small sleep per batch, so that a worker can be killed while the job runs) for
the exactly-once checks on 3,000 texts, and the real ``e5-small`` on a few hundred
Tatoeba sentences for the equality with the single-process result.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from embedsuite.scale import embed_corpus
from embedsuite.shards import (
    ShardError,
    ids_from_shards,
    index_from_shards,
    iter_shards,
    load_embeddings,
    read_manifest,
    shard_name,
)
from embedsuite.testing import FakeEncoder

REPO = Path(__file__).resolve().parents[1]


class _SlowFake(FakeEncoder):
    """FakeEncoder that sleeps a little per batch (a job long enough to kill a worker)."""

    def _encode_batch(self, texts: list[str], role: str) -> np.ndarray:  # type: ignore[override]
        time.sleep(0.02)
        return super()._encode_batch(texts, role)  # type: ignore[arg-type]


def slow_fake() -> FakeEncoder:
    """Encoder factory the Ray workers load by name (``tests.test_scale:slow_fake``)."""
    return _SlowFake(dim=16, name="fake")


def _texts(n: int) -> list[str]:
    words = ["cat", "dog", "rain", "sun", "river", "town", "book", "song", "tree", "road",
             "sea", "night"]
    rng = np.random.default_rng(0)
    return [f"{i} " + " ".join(rng.choice(words, 5)) for i in range(n)]


def _write(path: Path, texts: list[str], ids: list[str] | None = None) -> Path:
    import pandas as pd

    df = pd.DataFrame({"text": texts, **({"key": ids} if ids is not None else {})})
    if path.suffix == ".parquet":
        df.to_parquet(path, row_group_size=700)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


# ---------------------------------------------------------------------------
# local engine: the shard format, resume, manifest checks (no Ray)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_local_engine_every_row_once_in_order(tmp_path: Path, fake_encoder: FakeEncoder,
                                              suffix: str) -> None:
    texts = _texts(1000)
    ids = [f"k{i}" for i in range(1000)]
    src = _write(tmp_path / f"in{suffix}", texts, ids)
    out = tmp_path / "out"
    r = embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=300,
                     id_column="key")
    assert (r["rows"], r["shards"], r["embedded"], r["skipped"]) == (1000, 4, 4, 0)
    man = read_manifest(out, encoder=fake_encoder)
    assert [s["name"] for s in man["shards"]] == [shard_name(i) for i in range(4)]
    assert [s["rows"] for s in man["shards"]] == [300, 300, 300, 100]
    assert man["dim"] == 32 and man["fingerprint"] == fake_encoder.fingerprint
    emb = load_embeddings(out)
    assert emb.ids == ids and isinstance(emb.vectors, np.memmap)
    ref = fake_encoder.encode(texts, role="passage", use_cache=False)
    np.testing.assert_allclose(emb.vectors, ref, atol=1e-6)
    # one shard at a time, same rows
    got = [v for _, v in iter_shards(out)]
    assert [len(v) for v in got] == [300, 300, 300, 100]
    np.testing.assert_allclose(np.concatenate(got), ref, atol=1e-6)


def test_rerun_skips_finished_shards_and_redoes_missing(tmp_path: Path,
                                                        fake_encoder: FakeEncoder) -> None:
    src = _write(tmp_path / "in.parquet", _texts(500))
    out = tmp_path / "out"
    embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=100)
    calls = fake_encoder.calls
    r = embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=100)
    assert (r["embedded"], r["skipped"]) == (0, 5) and fake_encoder.calls == calls
    (out / shard_name(2)).unlink()
    (out / shard_name(4)).write_bytes(b"not parquet")  # a corrupted shard is redone
    r = embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=100)
    assert (r["embedded"], r["skipped"]) == (2, 3)
    assert ids_from_shards(out) == [str(i) for i in range(500)]


def test_other_job_in_out_folder_is_refused(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    src = _write(tmp_path / "in.parquet", _texts(50))
    out = tmp_path / "out"
    embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=20)
    with pytest.raises(ShardError, match=r"another embed-corpus job \(differs in: shard_rows\)"):
        embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=10)
    r = embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=10,
                     overwrite=True)
    assert r["shards"] == 5 and len(list(out.glob("part-*.parquet"))) == 5


def test_input_errors_are_clear(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    src = _write(tmp_path / "in.csv", _texts(10))
    with pytest.raises(ValueError, match=r"has no text column 'body'; columns found: \['text'\]"):
        embed_corpus(src, encoder=fake_encoder, out=tmp_path / "o", engine="local",
                     column="body")
    with pytest.raises(ValueError, match=r"no id column 'uid'"):
        embed_corpus(src, encoder=fake_encoder, out=tmp_path / "o2", engine="local",
                     id_column="uid")
    bad = tmp_path / "in.txt"
    bad.write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"unknown input format '.txt'"):
        embed_corpus(bad, encoder=fake_encoder, out=tmp_path / "o3", engine="local")
    with pytest.raises(FileNotFoundError, match="not found"):
        embed_corpus(tmp_path / "nope.parquet", encoder=fake_encoder, out=tmp_path / "o4",
                     engine="local")
    empty = _write(tmp_path / "e.parquet", ["ok", " "])
    with pytest.raises(ValueError, match=r"row 1 of .* has no text in column 'text'"):
        embed_corpus(empty, encoder=fake_encoder, out=tmp_path / "o5", engine="local")
    with pytest.raises(TypeError, match="give the encoder by name"):
        embed_corpus(src, encoder=fake_encoder, out=tmp_path / "o6", engine="ray")


def test_manifest_validation_names_the_problem(tmp_path: Path, fake_encoder: FakeEncoder
                                               ) -> None:
    src = _write(tmp_path / "in.parquet", _texts(300))
    out = tmp_path / "out"
    embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=100)
    other = FakeEncoder(dim=32, name="other")
    with pytest.raises(ShardError, match=r"embedded with 'fake'.*not with the encoder given"):
        read_manifest(out, encoder=other)
    # corrupt one shard in place: the sha256 check names it
    p = out / shard_name(1)
    data = bytearray(p.read_bytes())
    data[200] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=r"part-000001.parquet is corrupted.*rerun `embedsuite "
                                         r"embed-corpus`"):
        list(iter_shards(out))
    p.unlink()
    with pytest.raises(ShardError, match=r"shard part-000001.parquet listed in .* is missing"):
        load_embeddings(out)
    (out / "manifest.json").unlink()
    with pytest.raises(ShardError, match=r"has no manifest.json \(it holds shards: the run did "
                                         r"not finish\)"):
        load_embeddings(out)
    with pytest.raises(ShardError, match="is not a folder"):
        read_manifest(tmp_path / "missing")


def test_load_embeddings_writes_the_matrix_once(tmp_path: Path, fake_encoder: FakeEncoder
                                                ) -> None:
    src = _write(tmp_path / "in.parquet", _texts(250))
    out = tmp_path / "out"
    embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=100,
                 keep_text=True)
    a = load_embeddings(out)
    mtime = (out / "embeddings.npy").stat().st_mtime_ns
    b = load_embeddings(out, mmap=False)
    assert (out / "embeddings.npy").stat().st_mtime_ns == mtime
    assert not isinstance(b.vectors, np.memmap)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert a.texts == _texts(250) == b.texts
    assert not list(out.glob(".*.tmp"))


def test_index_from_shards(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    texts = _texts(600)
    src = _write(tmp_path / "in.parquet", texts)
    out = tmp_path / "out"
    embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=128)
    ref = fake_encoder.encode(texts, role="passage", use_cache=False)
    exact = index_from_shards(out, encoder=fake_encoder)
    assert exact.kind_ == "exact" and len(exact) == 600
    _, i = exact.search(ref[:5], 1)
    assert list(i[:, 0]) == [0, 1, 2, 3, 4]
    ivf = index_from_shards(out, exact_threshold=100, storage="f16")
    assert ivf.kind_ == "ivf"
    _, i = ivf.search(ref[:20], 1)
    assert np.mean(i[:, 0] == np.arange(20)) >= 0.9


def test_cli_embed_corpus_and_index_build(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from embedsuite.app.cli import main

    src = _write(tmp_path / "in.csv", _texts(120), [f"d{i}" for i in range(120)])
    out, idx = tmp_path / "shards", tmp_path / "index"
    assert main(["embed-corpus", str(src), "--encoder", "embedsuite.testing:FakeEncoder", "--out",
                 str(out), "--id-column", "key", "--shard-rows", "50", "--engine", "local",
                 "--quiet"]) == 0
    assert "120 rows in 3 shards" in capsys.readouterr().out
    assert main(["index-build", str(out), "--out", str(idx), "--storage", "f16", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["n"], info["kind"], info["storage"]) == (120, "exact", "f16")
    import pyarrow.parquet as pq

    from embedsuite.index import VectorIndex

    assert len(VectorIndex.load(idx)) == 120
    assert pq.read_table(idx / "ids.parquet").column("id").to_pylist()[:2] == ["d0", "d1"]
    assert main(["embed-corpus", str(tmp_path / "x.txt"), "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err


def test_ray_is_optional(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys, embedsuite.app.cli, embedsuite.scale, embedsuite.shards, "
            "embedsuite.heads.translation, embedsuite.heads.recommend; "
            "embedsuite.app.cli.build_parser(); print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert done.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    src = _write(tmp_path / "in.parquet", _texts(5))
    with pytest.raises(ImportError, match=r"pip install 'embedsuite\[ray\]'"):
        embed_corpus(src, encoder="e5-small", out=tmp_path / "o", engine="ray")


# ---------------------------------------------------------------------------
# heads on shards: same results as today on small sets, a vector index on large ones
# ---------------------------------------------------------------------------
def _hits(results: list[list[dict[str, object]]]) -> list[list[object]]:
    return [[h["index"] for h in row] for row in results]


def test_translation_index_shards_matches_index(tmp_path: Path, fake_encoder: FakeEncoder
                                                ) -> None:
    texts = _texts(400)
    src = _write(tmp_path / "in.parquet", texts)
    out = tmp_path / "out"
    embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=150,
                 role="query", keep_text=True)
    from embedsuite.heads.translation import TranslationRetriever

    queries = [t.upper() for t in texts[:40]]  # same words, other case: itself is nearest
    direct = TranslationRetriever(fake_encoder).index(texts)
    sharded = TranslationRetriever(fake_encoder).index_shards(out)
    assert sharded.texts_ == texts and isinstance(sharded.embeddings_, np.ndarray)
    for scoring in ("margin", "cosine"):
        a = direct.search(queries, top_k=5, scoring=scoring)
        b = sharded.search(queries, top_k=5, scoring=scoring)
        assert _hits(a) == _hits(b)
        np.testing.assert_allclose([[h["score"] for h in r] for r in a],
                                   [[h["score"] for h in r] for r in b], atol=1e-5)
    # above the (lowered) threshold the candidates come from an IVF index
    sharded.use_vector_index(exact_threshold=100, nprobe=8)
    ivf = sharded.search(queries, top_k=5)
    assert [r[0]["index"] for r in ivf] == list(range(40))
    assert sharded._vindexes and sharded._vindexes[0][1].kind_ == "ivf"
    with pytest.raises(ValueError, match="3 texts but 400 rows"):
        TranslationRetriever(fake_encoder).index_shards(out, texts=["a", "b", "c"])
    with pytest.raises(ShardError, match="not with the encoder given"):
        TranslationRetriever(FakeEncoder(dim=32, name="other")).index_shards(out)


def test_recommender_fit_shards_matches_fit_and_index_path(tmp_path: Path,
                                                           fake_encoder: FakeEncoder) -> None:
    from embedsuite.heads.recommend import ContentRecommender

    texts = _texts(300)
    items = [{"id": f"m{i}", "text": t, "year": 2000 + i % 20} for i, t in enumerate(texts)]
    src = _write(tmp_path / "in.jsonl", texts, [f"m{i}" for i in range(300)])
    out = tmp_path / "out"
    embed_corpus(src, encoder=fake_encoder, out=out, engine="local", shard_rows=128,
                 id_column="key")
    direct = ContentRecommender(fake_encoder).fit(items)
    sharded = ContentRecommender(fake_encoder).fit_shards(out, items)
    assert sharded.item_ids_ == direct.item_ids_ and sharded.item("m7")["metadata"]["year"] == 2007
    wish = "cat dog river"
    assert direct.similar("m3", k=8) == sharded.similar("m3", k=8)
    assert direct.recommend_for_text(wish, k=8) == sharded.recommend_for_text(wish, k=8)
    assert direct.recommend(["m1", "m2"], k=5) == sharded.recommend(["m1", "m2"], k=5)
    # the index path (forced on a small catalogue): exact index -> the same items
    sharded.ann_min_items = 10
    got = sharded.similar("m3", k=8)
    assert [r["item_id"] for r in got] == [r["item_id"] for r in direct.similar("m3", k=8)]
    np.testing.assert_allclose([r["score"] for r in got],
                               [r["score"] for r in direct.similar("m3", k=8)], atol=1e-5)
    assert ([r["item_id"] for r in sharded.recommend_for_text(wish, k=8, exclude=["m0"])]
            == [r["item_id"] for r in direct.recommend_for_text(wish, k=8, exclude=["m0"])])
    assert "m3" not in [r["item_id"] for r in got]
    # IVF above a lowered exact threshold: still the right neighbours, mostly
    ivf = ContentRecommender(fake_encoder).fit_shards(out)
    ivf.ann_min_items, ivf.vector_index_options = 10, {"exact_threshold": 50, "nprobe": 8}
    a = {r["item_id"] for r in ivf.similar("m3", k=10)}
    b = {r["item_id"] for r in direct.similar("m3", k=10)}
    assert len(a & b) >= 8 and ivf.texts_[0] == "m0"  # no items: ids stand in for texts
    with pytest.raises(KeyError, match="shard ids are not in items"):
        ContentRecommender(fake_encoder).fit_shards(out, items[:100])


def test_recommender_fit_embeddings_validation(fake_encoder: FakeEncoder) -> None:
    from embedsuite.heads.recommend import ContentRecommender

    v = fake_encoder.encode(["a b", "c d", "e f"], role="passage")
    rec = ContentRecommender(fake_encoder).fit_embeddings(["x", "y", "z"], v)
    assert rec.n_items == 3 and rec.similar("x", k=1)[0]["item_id"] in ("y", "z")
    with pytest.raises(ValueError, match="one row per id"):
        ContentRecommender(fake_encoder).fit_embeddings(["x", "y"], v)
    with pytest.raises(ValueError, match="duplicate"):
        ContentRecommender(fake_encoder).fit_embeddings(["x", "y", "x"], v)
    with pytest.raises(ValueError, match="the encoder fake gives 32"):
        ContentRecommender(fake_encoder).fit_embeddings(["x", "y", "z"], v[:, :8])


# ---------------------------------------------------------------------------
# Ray: 2 workers, exactly once, equal to one process, a killed worker
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_local() -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install "
                                            "'embedsuite[ray]'")
    if ray.is_initialized():
        ray.shutdown()
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath,
                                       "EMBEDSUITE_CACHE": os.environ["EMBEDSUITE_CACHE"]}})
    yield ray
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.integration
def test_ray_two_workers_every_row_once_equal_to_one_process(ray_local: object,
                                                              tmp_path: Path) -> None:
    texts = _texts(3000)
    src = _write(tmp_path / "in.parquet", texts)
    out = tmp_path / "out"
    r = embed_corpus(src, encoder="tests.test_scale:slow_fake", out=out, shard_rows=250,
                     concurrency=2, batch_size=64)
    assert (r["rows"], r["shards"], r["embedded"]) == (3000, 12, 12)
    workers = list((out / ".workers").iterdir())
    assert len(workers) == 2  # two actors, each loaded the encoder once
    emb = load_embeddings(out)
    assert emb.ids == [str(i) for i in range(3000)]  # every row once, in order
    ref = slow_fake().encode(texts, role="passage", use_cache=False)
    np.testing.assert_allclose(emb.vectors, ref, atol=1e-5)
    r = embed_corpus(src, encoder="tests.test_scale:slow_fake", out=out, shard_rows=250)
    assert (r["embedded"], r["skipped"]) == (0, 12)  # rerun: nothing to do, no Ray job


@pytest.mark.ray
@pytest.mark.integration
def test_ray_worker_killed_mid_run_loses_and_duplicates_nothing(ray_local: object,
                                                                tmp_path: Path) -> None:
    texts = _texts(3000)
    src = _write(tmp_path / "in.parquet", texts)
    out = tmp_path / "out"
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["r"] = embed_corpus(src, encoder="tests.test_scale:slow_fake", out=out,
                                       shard_rows=100, concurrency=2, batch_size=16)
        except BaseException as exc:  # re-raised in the test thread
            result["error"] = exc

    job = threading.Thread(target=run)
    job.start()
    wdir = out / ".workers"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
            len(list(out.glob("part-*.parquet"))) < 2 or not wdir.is_dir()
            or not list(wdir.iterdir())):
        time.sleep(0.05)
    victims = sorted(wdir.iterdir())
    assert victims, "no worker started within 60 s"
    pid = int(victims[0].read_text())
    done_before = len(list(out.glob("part-*.parquet")))
    os.kill(pid, signal.SIGKILL)
    job.join(timeout=120)
    assert not job.is_alive()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    assert done_before < 30, "the job finished before the kill; nothing was tested"
    assert len(list(wdir.iterdir())) >= 3  # the killed actor was restarted
    emb = load_embeddings(out)
    assert emb.ids == [str(i) for i in range(3000)]
    assert len(read_manifest(out)["shards"]) == 30
    ref = slow_fake().encode(texts, role="passage", use_cache=False)
    np.testing.assert_allclose(emb.vectors, ref, atol=1e-5)
    assert not list(out.glob(".part-*"))  # no temporary file left behind


@pytest.mark.ray
@pytest.mark.integration
@pytest.mark.data
def test_ray_real_encoder_equals_single_process(ray_local: object, tmp_path: Path,
                                                data_dir: Path, e5: object) -> None:
    seen: dict[str, None] = {}
    for f in sorted((data_dir / "tatoeba").glob("tatoeba.*-eng.eng")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.setdefault(line.strip())
        if len(seen) >= 200:
            break
    texts = list(seen)[:200]
    src = _write(tmp_path / "in.jsonl", texts)
    out = tmp_path / "out"
    e5.encode("warm up", role="passage")  # type: ignore[attr-defined]  # builds the model once
    r = embed_corpus(src, encoder="e5-small", out=out, shard_rows=100, concurrency=2)
    assert r["rows"] == 200
    emb = load_embeddings(out, encoder=e5)
    ref = e5.encode(texts, role="passage", use_cache=False)  # type: ignore[attr-defined]
    assert emb.ids == [str(i) for i in range(200)]
    np.testing.assert_allclose(emb.vectors, ref, atol=1e-5)
    assert json.loads((out / "manifest.json").read_text())["encoder"] == "e5-small"


