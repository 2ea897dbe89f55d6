"""Encode throughput: plain sentence-transformers vs embedsuite's encoder, cold and warm.

Same model (the rebuilt e5-small folder), same 2,000 real sentences (the English
side of Tatoeba), one process. Prints a table, or one JSON object with ``--json``:
``{"st_fp32_per_s", "cold_per_s", "warm_per_s", "cold_ratio", "warm_ratio", "int8_per_s",
"int8_ratio", "int8_min_cos", "int8_mean_cos"}`` (ratios against plain sentence-transformers,
measured in the same run; ``int8`` is the ``e5-small-int8`` encoder, cold, with its cosine to
the sentence-transformers fp32 vectors of the same sentences, and ``int8_backend``;
``--int8-backends openvino,onnxruntime`` adds ``by_backend`` with a row per backend).

    python benchmarks/encode.py [--n 2000] [--batch-size 32] [--int8-backends B,...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.cache import EmbeddingCache
from embedsuite.encoders.e5 import PROMPTS, E5SmallEncoder
from embedsuite.encoders.int8 import E5SmallInt8Encoder, default_backend
from embedsuite.paths import data_dir


def tatoeba_english(n: int) -> list[str]:
    """The first ``n`` distinct English sentences of Tatoeba (files in name order)."""
    folder = data_dir() / "tatoeba"
    if not folder.is_dir():
        raise SystemExit(f"Tatoeba not found at {folder}; set EMBEDSUITE_DATA to the shared data")
    seen: dict[str, None] = {}
    for f in sorted(folder.glob("tatoeba.*-eng.eng")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.setdefault(line.strip(), None)
            if len(seen) >= n:
                return list(seen)
    return list(seen)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-int8", action="store_true", help="skip the e5-small-int8 encoder")
    p.add_argument("--int8-backends", default=None,
                   help="comma list of e5-small-int8 backends to time (openvino, onnxruntime); "
                        "the first gives int8_per_s / int8_ratio (default: the default backend)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("EMBEDSUITE_PROGRESS", "0")
    import torch
    from sentence_transformers import SentenceTransformer

    sents = tatoeba_english(args.n)
    enc = E5SmallEncoder()
    enc.encode("build the folder if needed", use_cache=False)

    st = SentenceTransformer(str(enc.path), device="cpu")
    st.encode(["warm up"] * 8)
    t0 = time.perf_counter()
    st.encode([PROMPTS["query"] + s for s in sents], batch_size=args.batch_size,
              normalize_embeddings=True, show_progress_bar=False)
    st_s = time.perf_counter() - t0
    ref = st.encode([PROMPTS["query"] + s for s in sents[:500]], batch_size=args.batch_size,
                    normalize_embeddings=True, show_progress_bar=False)

    with tempfile.TemporaryDirectory() as tmp:
        ours = E5SmallEncoder(folder=enc.path, cache=EmbeddingCache(Path(tmp) / "c.sqlite"))
        ours.encode("warm up", use_cache=False)
        t0 = time.perf_counter()
        ours.encode(sents, batch_size=args.batch_size)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours.encode(sents, batch_size=args.batch_size)
        warm_s = time.perf_counter() - t0
        int8: dict[str, Any] = {}
        backends = (args.int8_backends or default_backend()).split(",")
        for b in ([] if args.no_int8 else backends):
            fast = E5SmallInt8Encoder(fp32=ours, backend=b.strip(),
                                      cache=EmbeddingCache(Path(tmp) / f"i8-{b}.sqlite"))
            fast.encode("warm up", use_cache=False)
            t0 = time.perf_counter()
            v = fast.encode(sents, batch_size=args.batch_size)
            int8_s = time.perf_counter() - t0
            cos = np.sum(v[:500] * ref, axis=1)
            row = {"int8_per_s": round(len(sents) / int8_s, 1),
                   "int8_ratio": round(st_s / int8_s, 3),
                   "int8_min_cos": round(float(cos.min()), 4),
                   "int8_mean_cos": round(float(cos.mean()), 4)}
            if not int8:
                int8 = {**row, "int8_backend": fast.backend}
            if len(backends) > 1:
                int8.setdefault("by_backend", {})[fast.backend] = row

    n = len(sents)
    res = {
        "n": n, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "st_fp32_per_s": round(n / st_s, 1), "cold_per_s": round(n / cold_s, 1),
        "warm_per_s": round(n / warm_s, 1), "cold_ratio": round(st_s / cold_s, 3),
        "warm_ratio": round(st_s / warm_s, 1), **int8,
    }
    if args.json:
        print(json.dumps(res))
        return
    print(f"{n} Tatoeba English sentences, batch {args.batch_size}, {res['threads']} threads")
    print(f"  sentence-transformers fp32 : {res['st_fp32_per_s']:>10,.1f} sentences/s")
    print(f"  embedsuite cold            : {res['cold_per_s']:>10,.1f} sentences/s "
          f"({res['cold_ratio']}x)")
    print(f"  embedsuite warm (cache)    : {res['warm_per_s']:>10,.1f} sentences/s "
          f"({res['warm_ratio']}x)")
    rows = res.get("by_backend") or ({res["int8_backend"]: res} if int8 else {})
    for b, r in rows.items():
        print(f"  e5-small-int8 ({b:11s}): {r['int8_per_s']:>10,.1f} sentences/s "
              f"({r['int8_ratio']}x; cosine to fp32 min {r['int8_min_cos']}, "
              f"mean {r['int8_mean_cos']})")


if __name__ == "__main__":
    main()
