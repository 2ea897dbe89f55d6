"""Scale-out overhead: one process vs ``embed_corpus`` on a local Ray instance (2 workers).

Same encoder, same N distinct English Tatoeba sentences, embedding cache off
(``use_cache=False`` everywhere), in one run:

- ``single``: ``encoder.encode(texts)`` in this process (torch uses every core);
- ``single_1thread``: the same with ``torch.set_num_threads(1)`` (one core, the
  per-worker speed: 2 Ray workers can at best double it);
- ``local``: ``embed_corpus(engine="local")``, the same in this process plus reading the
  input and writing Parquet shards + manifest (the cost of the shard format);
- ``ray``: ``embed_corpus(engine="ray")`` with ``--workers`` actors of 1 CPU each on a
  local Ray instance started beforehand (``ray_init_s``, reported apart); ``ray_job_s``
  includes starting the actors and loading one encoder per actor.

Prints a table, or one JSON object with ``--json``: ``{"n", "encoder", "cores",
"workers", "shard_rows", "single_per_s", "single_1thread_per_s", "local_per_s",
"ray_per_s", "ray_ratio", "ray_init_s", "ray_job_s", "max_abs_diff", "load_avg"}``
(``ray_ratio`` = ray / single).

    python benchmarks/scale.py [--n 4000] [--workers 2] [--shard-rows 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.encode import tatoeba_english  # the same sentences as encode.py


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--encoder", default="e5-small")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--shard-rows", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("EMBEDSUITE_PROGRESS", "0")
    import numpy as np
    import pandas as pd
    import ray

    from embedsuite.encoders import get_encoder
    from embedsuite.scale import embed_corpus
    from embedsuite.shards import load_embeddings

    texts = tatoeba_english(args.n)
    enc = get_encoder(args.encoder)
    enc.encode(["warm up"] * 8, role="passage", use_cache=False)  # builds/loads the model
    res: dict[str, object] = {"n": len(texts), "encoder": args.encoder,
                              "cores": os.cpu_count(), "workers": args.workers,
                              "shard_rows": args.shard_rows}
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        src = Path(tmp) / "corpus.parquet"
        pd.DataFrame({"text": texts}).to_parquet(src)

        t0 = time.perf_counter()
        ref = enc.encode(texts, role="passage", batch_size=args.batch_size, use_cache=False,
                         show_progress=False)
        single = time.perf_counter() - t0

        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        enc.encode(texts, role="passage", batch_size=args.batch_size, use_cache=False,
                   show_progress=False)
        single1 = time.perf_counter() - t0
        torch.set_num_threads(threads)

        t0 = time.perf_counter()
        embed_corpus(src, encoder=enc, out=Path(tmp) / "local", engine="local",
                     shard_rows=args.shard_rows, batch_size=args.batch_size)
        local = time.perf_counter() - t0

        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        ray_init = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            embed_corpus(src, encoder=args.encoder, out=Path(tmp) / "ray", engine="ray",
                         concurrency=args.workers, shard_rows=args.shard_rows,
                         batch_size=args.batch_size)
            ray_job = time.perf_counter() - t0
        finally:
            ray.shutdown()
        got = load_embeddings(Path(tmp) / "ray", mmap=False).vectors
        res.update({
            "single_per_s": round(len(texts) / single, 1),
            "single_1thread_per_s": round(len(texts) / single1, 1),
            "local_per_s": round(len(texts) / local, 1),
            "ray_per_s": round(len(texts) / ray_job, 1),
            "ray_ratio": round(single / ray_job, 3),
            "ray_init_s": round(ray_init, 2), "ray_job_s": round(ray_job, 2),
            "single_s": round(single, 2), "local_s": round(local, 2),
            "max_abs_diff": float(np.abs(got - ref).max()),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
        })
    if args.json:
        print(json.dumps(res))
        return
    print(f"{res['n']} texts, {args.encoder}, {res['cores']} cores, load {res['load_avg']}")
    print(f"  one process      {res['single_per_s']:>8} texts/s  ({res['single_s']} s)")
    print(f"  one process, 1 thread {res['single_1thread_per_s']:>3} texts/s")
    print(f"  local shards     {res['local_per_s']:>8} texts/s  ({res['local_s']} s)")
    print(f"  Ray, {args.workers} workers   {res['ray_per_s']:>8} texts/s  ({res['ray_job_s']} s "
          f"+ {res['ray_init_s']} s ray.init)  ratio {res['ray_ratio']}x")
    print(f"  max |ray - one process| = {res['max_abs_diff']:.2e}")


if __name__ == "__main__":
    main()
