"""Save and load of a large translation index: version-2 sidecars against version 1.

A synthetic index (default 1,000,000 candidates: random unit vectors of dim 384 and short
pseudo-random texts, some non-ASCII; no encoder is run, the fitted state is built with
``index_embeddings`` beside a :class:`embedsuite.testing.FakeEncoder`) is saved and loaded
in each layout. Every measurement runs in a fresh subprocess: wall time, and peak memory as
``ru_maxrss`` minus the resident size just before the operation (so building the state is
not counted). After a load, ``touch`` reads every candidate vector once (a memory-mapped
index pages them in there) and reports the time and the peak resident size then.

Layouts (``--layouts``):

* ``v2``: this version (head_version 2): texts, vectors and reference in ``.npy``
  sidecars, vectors memory-mapped on load, texts not re-validated.
* ``v2-weights``: the same but the vectors in ``model.safetensors`` (the alternative
  that was measured to choose where the vectors go).
* ``v1``: version 1 (every text in ``config.json``, vectors in ``model.safetensors``),
  saved as embedsuite wrote it before and loaded by this version (migration path).
* ``v1-head``: the same folder loaded by a replica of the version-1 loader (one folder
  read, every text validated, the vectors copied by ``astype``), i.e. what users had.

    python benchmarks/head_io_translation.py [--n 1000000] [--dim 384] [--json]
        [--layouts v2,v2-weights,v1,v1-head] [--repeat 1] [--tracemalloc] [--workdir DIR]

Figures are with a warm page cache (the folder was just written); disk reads on a cold
cache add the same bytes to every layout that reads the vectors whole.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

LAYOUTS = ("v2", "v2-weights", "v1", "v1-head")
VOCAB = ["the", "cat", "sleeps", "on", "sofa", "it", "rains", "all", "week", "train",
         "leaves", "at", "eight", "phone", "battery", "empty", "we", "love", "history",
         "books", "der", "Zug", "fährt", "um", "acht", "Uhr", "le", "chat", "dort", "café",
         "niño", "straße", "猫", "電車", "дождь", "مرحبا", "🐱", "hello", "world", "river"]
CHUNK = 8192  # rows generated at a time (keeps the build's own peak small)


# ---------------------------------------------------------------------------- the state
def text(i: int) -> str:
    """Candidate ``i``: 3 to 8 words, a pseudo-random but reproducible pick."""
    v = len(VOCAB)
    return " ".join(VOCAB[(i * (2 * j + 7919) + 31 * j * j + (i >> 7)) % v]
                    for j in range(3 + i % 6)) + f" {i}"


def vectors(n: int, dim: int, rows: int | None = None) -> np.ndarray:
    """The first ``rows`` (default all ``n``) random unit vectors, built chunk by chunk."""
    rng = np.random.default_rng(0)
    rows = n if rows is None else rows
    out = np.empty((rows, dim), np.float32)
    for s in range(0, rows, CHUNK):
        blk = rng.standard_normal((min(CHUNK, rows - s), dim), dtype=np.float32)
        blk /= np.linalg.norm(blk, axis=1, keepdims=True)
        out[s : s + len(blk)] = blk
    return out


def encoder(dim: int) -> Any:
    from embedsuite.testing import FakeEncoder

    return FakeEncoder(dim=dim, name="fake-bench")


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------------------- operations
def build(layout: str, n: int, dim: int) -> Any:
    """The fitted index (through ``index_embeddings``, as a batch job would build it)."""
    from embedsuite.heads.translation import TranslationRetriever
    from embedsuite.heads.translation.saved import pack_index

    class WeightsRetriever(TranslationRetriever):
        """Version 2 with the vectors in ``model.safetensors`` instead of sidecars."""

        def _state(self) -> Any:
            return pack_index(self.texts_, self.embeddings_, self.reference_, vectors="weights")

    cls = WeightsRetriever if layout == "v2-weights" else TranslationRetriever
    return cls(encoder(dim)).index_embeddings([text(i) for i in range(n)], vectors(n, dim))


def save(layout: str, tr: Any, folder: Path) -> None:
    if layout in ("v2", "v2-weights"):
        tr.save(folder)
        return
    from embedsuite.heads.base import write_head_folder

    # version 1, exactly as embedsuite saved it before head_version 2
    config = {"params": {"scoring": tr.scoring, "k": tr.k, "role": tr.role,
                         "center": bool(tr.center), "shortlist": tr.shortlist,
                         "batch_size": tr.batch_size},
              "texts": tr.texts_, "n": len(tr.texts_)}
    write_head_folder(folder, "translation-index", config, {"embeddings": tr.embeddings_},
                      tr.active_encoder)


def load_v1_head(folder: Path, enc: Any) -> Any:
    """A replica of the version-1 loader (``load_head_of_kind`` + ``_load`` before #21)."""
    from embedsuite.heads.base import check_encoder_match, read_head_folder
    from embedsuite.heads.translation import TranslationRetriever
    from embedsuite.validation import check_text

    config, tensors = read_head_folder(folder)
    check_encoder_match(config, enc, str(folder))
    texts, emb = config["texts"], tensors["embeddings"]
    for i, t in enumerate(texts):
        check_text(t, f"saved texts[{i}]")
    obj = TranslationRetriever(enc, **config["params"])
    obj._set_index(list(texts), emb.astype(np.float32), tensors.get("reference"))
    return obj


def load(layout: str, folder: Path, dim: int) -> Any:
    from embedsuite.heads.translation import TranslationRetriever

    enc = encoder(dim)
    if layout == "v1-head":
        return load_v1_head(folder, enc)
    return TranslationRetriever.load(folder, encoder=enc)


def mapped(arr: np.ndarray) -> bool:
    """Whether ``arr`` is a view of a memory-mapped file."""
    a: Any = arr
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = getattr(a, "base", None)
    return False


def check(tr: Any, n: int, dim: int) -> None:
    """The loaded index is the saved one (texts at a sample of rows, the first vectors)."""
    rows = min(n, CHUNK)
    sample = sorted({0, 1, n // 3, n // 2, n - 1})
    if len(tr.texts_) != n or [tr.texts_[i] for i in sample] != [text(i) for i in sample]:
        raise SystemExit("benchmark: the loaded texts differ from the saved ones")
    if not np.array_equal(np.asarray(tr.embeddings_[:rows]), vectors(n, dim, rows)):
        raise SystemExit("benchmark: the loaded vectors differ from the saved ones")


def child(op: str, layout: str, folder: Path, n: int, dim: int, trace: bool) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    import tracemalloc

    import embedsuite.heads.translation  # noqa: F401  (imports are not part of any figure)

    if op == "save":
        tr = build(layout, n, dim)
        before = rss_mib()
        base_peak = peak_mib()
        if trace:
            tracemalloc.start()
        t0 = time.perf_counter()
        save(layout, tr, folder)
        secs = time.perf_counter() - t0
        out = {"seconds": secs, "rss_before_mib": before,
               "peak_extra_mib": max(peak_mib() - before, 0.0),
               "build_peak_over_rss_mib": max(base_peak - before, 0.0)}
        if trace:
            out["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        out["folder_mib"] = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        out["config_json_mib"] = (folder / "config.json").stat().st_size / 2**20
        return out
    before = rss_mib()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    tr = load(layout, folder, dim)
    secs = time.perf_counter() - t0
    out = {"seconds": secs, "rss_before_mib": before,
           "peak_extra_mib": max(peak_mib() - before, 0.0)}
    if trace:
        out["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    t0 = time.perf_counter()
    total = 0.0
    emb = tr.embeddings_
    for s in range(0, len(emb), 65536):
        total += float(np.asarray(emb[s : s + 65536]).sum(dtype=np.float64))
    out["touch_seconds"] = time.perf_counter() - t0
    out["touch_peak_extra_mib"] = max(peak_mib() - before, 0.0)
    out["memory_mapped"] = mapped(emb)
    check(tr, n, dim)
    return out


# ---------------------------------------------------------------------------- the driver
def run_child(op: str, layout: str, folder: Path, n: int, dim: int, trace: bool,
              env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", op, "--layouts", layout, "--folder",
           str(folder), "--n", str(n), "--dim", str(dim), *(["--tracemalloc"] if trace else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{op} {layout} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the median over repeated runs (flags from the first run)."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        vals = [r[key] for r in runs]
        out[key] = first if isinstance(first, bool) else float(np.median(vals))
    out["runs"] = len(runs)
    return out


def table(results: list[dict[str, Any]]) -> str:
    head = ("| layout | save s | save peak MiB | folder MiB | config.json MiB | load s | "
            "load peak MiB | touch s | peak after touch MiB | speed-up of load vs v1 |")
    lines = [head, "|" + "---|" * 10]
    v1 = next((r["load"]["seconds"] for r in results if r["layout"] == "v1"), None)
    for r in results:
        s, ld = r["save"], r["load"]
        ratio = f"{v1 / ld['seconds']:.2f}x" if v1 else "-"
        lines.append(
            f"| {r['layout']} | {s['seconds']:.2f} | {s['peak_extra_mib']:.0f} | "
            f"{s['folder_mib']:.0f} | {s['config_json_mib']:.1f} | {ld['seconds']:.2f} | "
            f"{ld['peak_extra_mib']:.0f} | {ld['touch_seconds']:.2f} | "
            f"{ld['touch_peak_extra_mib']:.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="candidates (default 1,000,000)")
    ap.add_argument("--dim", type=int, default=384, help="vector size (default 384)")
    ap.add_argument("--layouts", default=",".join(LAYOUTS),
                    help=f"comma-separated, from {', '.join(LAYOUTS)}")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per figure (fresh processes); the table shows medians")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also report tracemalloc's peak (slows Python-heavy steps)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the folders go (temp)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    ap.add_argument("--child", choices=("save", "load"), help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    for lay in layouts:
        if lay not in LAYOUTS:
            ap.error(f"unknown layout {lay!r}; expected some of {', '.join(LAYOUTS)}")
    if args.child:
        print(json.dumps(child(args.child, layouts[0], args.folder, args.n, args.dim,
                               args.tracemalloc)))
        return 0
    work = Path(tempfile.mkdtemp(prefix="head-io-", dir=args.workdir))
    env = {**os.environ, "EMBEDSUITE_CACHE": str(work / "cache"), "EMBEDSUITE_PROGRESS": "0"}
    results = []
    try:
        for lay in layouts:
            saves, loads = [], []
            for _ in range(args.repeat):
                folder = work / lay
                if lay == "v1-head" and "v1" in layouts:
                    folder = work / "v1"  # the same bytes as v1's; only the loader differs
                else:
                    shutil.rmtree(folder, ignore_errors=True)
                    saves.append(run_child("save", lay, folder, args.n, args.dim,
                                           args.tracemalloc, env))
                loads.append(run_child("load", lay, folder, args.n, args.dim,
                                       args.tracemalloc, env))
            if not saves:
                saves = [next(r["save"] for r in results if r["layout"] == "v1")]
            saved, loaded = median(saves), median(loads)
            results.append({"layout": lay, "save": saved, "load": loaded})
            print(f"# {lay}: save {saved['seconds']:.2f} s, load {loaded['seconds']:.2f} s",
                  file=sys.stderr)
            if lay != "v1":
                shutil.rmtree(work / lay, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {"n": args.n, "dim": args.dim, "results": results}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"translation index, n={args.n:,}, dim={args.dim}, median of {args.repeat} "
              f"run(s); peak = ru_maxrss minus the resident size just before the operation")
        print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
