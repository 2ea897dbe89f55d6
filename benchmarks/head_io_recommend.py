"""Save and load of a 100,000-item recommender: the sidecar layout vs version 1, per process.

A synthetic catalogue (random unit vectors, dim 384, short random texts, ids and small
metadata; nothing is encoded: the vectors are given with ``fit_embeddings`` beside a
:class:`embedsuite.testing.FakeEncoder` of the same dim) is saved and loaded in three
layouts, each step in a fresh Python process:

- ``v1``: today's format before issue #21 (the baseline): ids, texts and metadata as JSON
  lists inside ``config.json``, embeddings in ``model.safetensors``. Written here by
  :func:`save_v1` exactly as the version-1 ``save`` did; loaded by the current code
  (through the version-1 migration).
- ``v2``: ``ContentRecommender.save``: ids, texts and metadata as packed UTF-8 ``.npy``
  sidecars, the embeddings an ``.npy`` sidecar (memory-mapped on load).
- ``v2-weights``: the same, but with the embeddings in ``model.safetensors`` (the
  alternative that was measured to choose where the embeddings go).

Per step: the median time over ``--repeats`` runs, the peak of memory allocated during the
step (``tracemalloc``, one extra run: numpy buffers included, memory maps not), and for
loads the growth of the process's peak RSS (``ru_maxrss``, fresh process, so it includes
pages of memory-mapped files that were touched). Every loaded head must give the same
recommendations.

    python benchmarks/head_io_recommend.py [--n 100000] [--dim 384] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

LAYOUTS = ("v1", "v2", "v2-weights")
_WORDS = ("space", "ship", "crime", "harbour", "recipe", "sauce", "robot", "moon", "village",
          "detective", "galaxy", "bread", "river", "forest", "dragon", "king", "love", "war",
          "école", "straße", "musique", "película", "город", "книга", "海", "山")


def synthetic_catalogue(n: int, dim: int, seed: int = 0
                        ) -> tuple[list[str], list[str], list[dict[str, Any]], np.ndarray]:
    """``(ids, texts, metadata, unit vectors)`` of a random catalogue (deterministic)."""
    rng = np.random.default_rng(seed)
    ids = [f"item{i:06d}" for i in range(n)]
    lengths = rng.integers(4, 13, n)
    words = rng.integers(0, len(_WORDS), int(lengths.sum()))
    texts, at = [], 0
    for i, m in enumerate(lengths):
        texts.append(f"Title {i}. " + " ".join(_WORDS[w] for w in words[at:at + m]))
        at += m
    kinds = ("book", "film", "course", "podcast", "game")
    metas = [{"title": f"Title {i}", "kind": kinds[i % 5], "year": 1950 + i % 75}
             for i in range(n)]
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return ids, texts, metas, emb


def build_head(n: int, dim: int) -> Any:
    """A fitted recommender over the synthetic catalogue (no encoder call)."""
    from embedsuite.heads.recommend import ContentRecommender
    from embedsuite.testing import FakeEncoder

    ids, texts, metas, emb = synthetic_catalogue(n, dim)
    return ContentRecommender(FakeEncoder(dim=dim)).fit_embeddings(ids, emb, texts, metas)


def save_v1(head: Any, path: Path) -> None:
    """Write ``head`` in the version-1 layout (what ``save`` wrote before issue #21)."""
    from embedsuite.heads.base import write_head_folder

    params = {k: v for k, v in head.get_params().items() if k != "encoder"}
    config = {"params": params, "item_ids": head.item_ids_, "texts": head.texts_,
              "metadata": head.metadata_, "n_interactions": head.n_interactions_}
    write_head_folder(path, "recommender", config, {"embeddings": head.embeddings_},
                      head.active_encoder)


def save_v2_weights(head: Any, path: Path) -> None:
    """Write ``head`` in the version-2 layout with the embeddings in ``model.safetensors``."""
    from embedsuite.heads.base import write_head_folder

    config, tensors, sidecars = head._state()
    tensors = {**tensors, "embeddings": sidecars.pop("embeddings")}
    full = {"head_version": head.head_version, "params": head._saved_params(), **config}
    write_head_folder(path, head.head_kind, full, tensors, head.active_encoder, sidecars)


def _rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            line = next(ln for ln in fh if ln.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(op: str, layout: str, folder: Path, n: int, dim: int, trace: bool) -> dict[str, Any]:
    """One timed step in this (fresh) process."""
    from embedsuite.heads.recommend import ContentRecommender
    from embedsuite.testing import FakeEncoder

    head = build_head(n, dim) if op == "save" else None
    enc = FakeEncoder(dim=dim)
    rss0 = _rss_mb()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    if op == "save":
        {"v1": save_v1, "v2": lambda h, p: h.save(p), "v2-weights": save_v2_weights}[layout](
            head, folder)
    else:
        head = ContentRecommender.load(folder, enc)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": seconds, "rss_before_mb": rss0,
                           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                           / 1024}
    if trace:
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    if op == "load" and head is not None:
        picks = head.recommend([(head.item_ids_[1], 5.0), (head.item_ids_[2], 1.0)], k=10)
        out["picks"] = [r["item_id"] for r in picks]
        out["head_version"] = json.loads((folder / "config.json").read_text()).get(
            "head_version", 1)
    return out


def run_child(op: str, layout: str, folder: Path, args: argparse.Namespace, trace: bool
              ) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", op, "--layout", layout, "--folder", str(folder),
           "--n", str(args.n), "--dim", str(args.dim)] + (["--trace"] if trace else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": os.environ.get(
                              "OMP_NUM_THREADS", "2")})
    if done.returncode != 0:
        raise SystemExit(f"{op} {layout} failed (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("@@"))
    return json.loads(line[2:])  # type: ignore[no-any-return]


def _sizes(folder: Path) -> dict[str, float]:
    files = {p.name: p.stat().st_size / 2**20 for p in folder.iterdir() if p.is_file()}
    return {"folder_mb": sum(files.values()), "config_mb": files.get("config.json", 0.0),
            "weights_mb": files.get("model.safetensors", 0.0),
            "sidecars_mb": sum(v for k, v in files.items() if k.endswith(".npy"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="catalogue items")
    p.add_argument("--dim", type=int, default=384, help="vector size")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per step (median)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", choices=("save", "load"), help=argparse.SUPPRESS)
    p.add_argument("--layout", choices=LAYOUTS, help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        res = child(args.child, args.layout, args.folder, args.n, args.dim, args.trace)
        print("@@" + json.dumps(res))
        return
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="head-io-") as tmp:
        for layout in LAYOUTS:
            folder = Path(tmp) / layout
            row: dict[str, Any] = {"layout": layout}
            for op in ("save", "load"):
                runs = [run_child(op, layout, folder, args, False) for _ in range(args.repeats)]
                traced = run_child(op, layout, folder, args, True)
                row[f"{op}_s"] = round(statistics.median(r["seconds"] for r in runs), 3)
                row[f"{op}_s_min"] = round(min(r["seconds"] for r in runs), 3)
                row[f"{op}_traced_peak_mb"] = round(traced["traced_peak_mb"], 1)
                if op == "load":
                    row["load_rss_growth_mb"] = round(statistics.median(
                        r["peak_rss_mb"] - r["rss_before_mb"] for r in runs), 1)
                    row["head_version"] = runs[0]["head_version"]
                    row["picks"] = runs[0]["picks"]
            row.update({k: round(v, 2) for k, v in _sizes(folder).items()})
            rows.append(row)
    same = all(r["picks"] == rows[0]["picks"] for r in rows)
    base = rows[0]
    for r in rows:
        r["save_vs_v1"] = round(r["save_s"] / base["save_s"], 2)
        r["load_vs_v1"] = round(r["load_s"] / base["load_s"], 2)
    result = {"n": args.n, "dim": args.dim, "repeats": args.repeats,
              "same_recommendations": same, "rows": [
                  {k: v for k, v in r.items() if k != "picks"} for r in rows]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.n:,} items, dim {args.dim}, median of {args.repeats} fresh processes; "
              f"same recommendations after load: {same}")
        print(f"{'layout':<11} {'save s':>7} {'x v1':>5} {'save MB*':>9} {'load s':>7} "
              f"{'x v1':>5} {'load MB*':>9} {'RSS+ MB':>8} {'config MB':>10} {'folder MB':>10}")
        for r in rows:
            print(f"{r['layout']:<11} {r['save_s']:>7.3f} {r['save_vs_v1']:>5.2f} "
                  f"{r['save_traced_peak_mb']:>9.1f} {r['load_s']:>7.3f} {r['load_vs_v1']:>5.2f} "
                  f"{r['load_traced_peak_mb']:>9.1f} {r['load_rss_growth_mb']:>8.1f} "
                  f"{r['config_mb']:>10.2f} {r['folder_mb']:>10.1f}")
        print("MB*: peak memory allocated during the step (tracemalloc); RSS+: growth of the "
              "loading process's peak RSS")
    if not same:
        raise SystemExit("the layouts loaded different recommenders")


if __name__ == "__main__":
    main()
