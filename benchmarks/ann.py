"""ANN search at scale: build time, memory, latency and recall@10 of VectorIndex.

Vectors: real e5-small embeddings of the sentences in the shared data (Tatoeba both
sides, SST-2, SQuAD and XQuAD contexts split into sentences, TMDB overviews), padded
to ``--n`` with small random perturbations of them (noise sigma 0.02 before
re-normalising) — the padding is stated in the output. Queries are real sentences
held out of the index. Recall@10 is measured against exact float32 search.

    python benchmarks/ann.py --json [--n 1000000] [--real 200000] [--queries 1000]

Prints one JSON object ``{"n", "dim", "build_s", "p50_ms", "p99_ms", "recall_at_10",
"memory_mb", "exact_p50_ms", ...}`` plus the compact-storage variants.
"""

from __future__ import annotations

import argparse
import json
import re
import time

import numpy as np

from embedsuite.encoders import get_encoder
from embedsuite.index import VectorIndex
from embedsuite.paths import data_dir


def real_sentences(limit: int) -> list[str]:
    """Distinct sentences from the shared data, in a fixed order."""
    d = data_dir()
    seen: dict[str, None] = {}

    def add(s: str) -> None:
        s = s.strip()
        if 8 <= len(s) <= 400:
            seen.setdefault(s, None)

    for f in sorted((d / "tatoeba").glob("tatoeba.*")):
        for line in f.read_text(encoding="utf-8").splitlines():
            add(line)
    for line in (d / "sst2" / "sentiment-test.tsv").read_text().splitlines():
        add(line.split("\t")[0])
    for f in [d / "squad" / "dev-v1.1-without-xquad.json", *sorted((d / "xquad").glob("*.json"))]:
        for art in json.loads(f.read_text(encoding="utf-8"))["data"]:
            for p in art["paragraphs"]:
                for s in re.split(r"(?<=[.!?。！？])\s*", p["context"]):
                    add(s)
    import csv

    with open(d / "movielens" / "tmdb_5000_movies.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            add(row.get("overview") or "")
    out = list(seen)
    rng = np.random.default_rng(0)
    rng.shuffle(out)
    return out[:limit]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--real", type=int, default=200_000, help="real sentences to embed (cached)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--encoder", default="e5-small")
    p.add_argument("--storages", default="f32,f16,i8")
    p.add_argument("--target-recall", type=float, default=0.95)
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default: the index's)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    enc = get_encoder(args.encoder)
    sents = real_sentences(args.real + args.queries)
    queries_txt, corpus_txt = sents[: args.queries], sents[args.queries :]
    t0 = time.perf_counter()
    base = enc.encode(corpus_txt, role="query", batch_size=64, show_progress=not args.json)
    q = enc.encode(queries_txt, role="query", batch_size=64, show_progress=False)
    embed_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    parts = [base]
    while sum(len(x) for x in parts) < args.n:
        need = min(len(base), args.n - sum(len(x) for x in parts))
        noisy = base[rng.choice(len(base), need, replace=False)] + rng.normal(
            0, 0.02, (need, base.shape[1])).astype(np.float32)
        parts.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    x = np.concatenate(parts)[: args.n].astype(np.float32)

    ref = VectorIndex(exact_threshold=args.n + 1).build(x)
    lat = []
    for i in range(min(200, len(q))):
        t = time.perf_counter()
        ref.search(q[i], 10)
        lat.append(time.perf_counter() - t)
    exact_p50 = float(np.median(lat) * 1000)
    _, truth = ref.search(q, 10)

    results = {}
    for storage in args.storages.split(","):
        t = time.perf_counter()
        idx = VectorIndex(exact_threshold=50_000, storage=storage, nlist=args.nlist).build(x)
        build_s = time.perf_counter() - t
        sweep = []
        for nprobe in ([None] if idx.ivf_ is None else [8, 16, 32, 48, 64, 96, 128, 256]):
            if nprobe is not None:
                idx.ivf_.nprobe = nprobe
            lat = []
            for i in range(len(q)):
                t = time.perf_counter()
                idx.search(q[i], 10)
                lat.append(time.perf_counter() - t)
            _, got = idx.search(q, 10)
            recall = float(np.mean([len(set(a) & set(b)) / 10
                                    for a, b in zip(got, truth, strict=True)]))
            sweep.append({"nprobe": nprobe, "p50_ms": round(float(np.median(lat) * 1000), 3),
                          "p99_ms": round(float(np.percentile(lat, 99) * 1000), 3),
                          "recall_at_10": round(recall, 4)})
            if recall >= args.target_recall:
                break  # the smallest nprobe that reaches the target
        best = sweep[-1]
        results[storage] = {"build_s": round(build_s, 1), **best,
                            "nlist": None if idx.ivf_ is None else int(idx.ivf_.nlist),
                            "memory_mb": round(idx.memory_bytes() / 1e6, 1),
                            "kind": idx.kind_, "sweep": sweep}
    head = results[args.storages.split(",")[0]]
    out = {"n": len(x), "dim": int(x.shape[1]), **{k: head[k] for k in (
        "build_s", "p50_ms", "p99_ms", "recall_at_10", "memory_mb")},
        "exact_p50_ms": round(exact_p50, 3), "encoder": enc.name, "real_vectors": len(base),
        "padded_vectors": int(len(x) - len(base)), "queries": len(q),
        "embed_s": round(embed_s, 1), "float32_mb": round(x.nbytes / 1e6, 1),
        "storages": results}
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
