"""Throughput of the shipped sentiment head's ``predict``, against the plain encoder.

On ``--n`` short sentences no cache has seen (SST-2 test sentences with a per-run tag):

- ``encoder``: ``encode(texts, role="query", use_cache=False)``, the baseline;
- ``predict cold``: ``load_default().predict(texts)`` on new texts;
- ``predict cached``: the same texts again (probabilities kept in memory, LRU);
- the growth of the cache folder caused by the cold ``predict`` (sentence vectors only:
  prediction writes nothing to the token-feature store).

The cache folder is a fresh temporary one (the built model is linked in), so the figures
do not depend on earlier runs. Prints a table, or JSON with ``--json``.

    python benchmarks/sentiment_predict.py [--n 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()
               and "models" not in f.relative_to(folder).parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("EMBEDSUITE_PROGRESS", "0")
    from embedsuite.paths import cache_dir, data_dir

    models = cache_dir() / "models"
    tmp = Path(tempfile.mkdtemp(prefix="sentiment-predict-"))
    (tmp / "models").symlink_to(models, target_is_directory=True)
    os.environ["EMBEDSUITE_CACHE"] = str(tmp)

    from embedsuite.data.sst2 import read_sst2
    from embedsuite.heads.sentiment import load_default

    sentences, _ = read_sst2(data_dir() / "sst2" / "sentiment-test.tsv")
    tag = uuid.uuid4().hex[:6]
    texts = [f"{t} ({tag}{i})" for i, t in enumerate((sentences * 4)[: args.n])]
    probe = [f"{t} [{tag}]" for t in texts]  # the encoder baseline gets other new texts
    head = load_default()
    enc = head.active_encoder
    head.predict("warm up the model")
    enc.encode(["warm up the encoder"], use_cache=False)

    t0 = time.perf_counter()
    enc.encode(probe, role="query", use_cache=False)
    enc_s = time.perf_counter() - t0
    before = _size(tmp)
    t0 = time.perf_counter()
    cold = head.predict(texts)
    cold_s = time.perf_counter() - t0
    grown = _size(tmp) - before
    t0 = time.perf_counter()
    again = head.predict(texts)
    cached_s = time.perf_counter() - t0
    if again != cold:
        raise SystemExit("cached predictions differ from the first ones")
    res = {"n": args.n, "encoder_per_s": round(args.n / enc_s, 1),
           "predict_cold_per_s": round(args.n / cold_s, 1),
           "predict_cached_per_s": round(args.n / cached_s, 1),
           "cold_vs_encoder": round(enc_s / cold_s, 2),
           "cache_growth_bytes": grown, "cache_growth_per_text": round(grown / args.n, 1),
           "sentence_vector_bytes": enc.dim * 4, "threads": os.environ.get("OMP_NUM_THREADS")}
    if args.json:
        print(json.dumps(res))
        return
    print(f"{args.n} new short sentences (SST-2 test, tagged), one process")
    print(f"  plain encoder (encode, no cache)  {res['encoder_per_s']:>10.1f} /s")
    print(f"  predict, new texts                {res['predict_cold_per_s']:>10.1f} /s   "
          f"{res['cold_vs_encoder']:.2f}x the encoder")
    print(f"  predict, the same texts again     {res['predict_cached_per_s']:>10.1f} /s")
    print(f"  cache growth of the cold predict  {grown:,} bytes ({res['cache_growth_per_text']} "
          f"per text; a sentence vector is {res['sentence_vector_bytes']} bytes + key)")


if __name__ == "__main__":
    main()
