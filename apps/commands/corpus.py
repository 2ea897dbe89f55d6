"""``embedsuite embed-corpus`` (Ray Data shards) and ``embedsuite index-build`` (an index
from shards). Ray is imported only when ``embed-corpus`` runs with the Ray engine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _embed_corpus(args: argparse.Namespace) -> int:
    from embedsuite.scale import embed_corpus

    r = embed_corpus(
        args.input, encoder=args.encoder, out=args.out, column=args.column,
        id_column=args.id_column, role=args.role, batch_size=args.batch_size,
        concurrency=args.concurrency, shard_rows=args.shard_rows, ray_address=args.ray_address,
        show_progress=not args.quiet, engine=args.engine, num_cpus=args.num_cpus,
        keep_text=args.keep_text, overwrite=args.overwrite)
    if args.json:
        _out(json.dumps(r, indent=1))
        return 0
    speed = f", {r['rows_per_s']:,.0f} rows/s" if r["rows_per_s"] else ""
    _out(f"{r['rows']:,} rows in {r['shards']} shards -> {r['out']} "
         f"({r['embedded']} embedded, {r['skipped']} already done; {r['seconds']:.1f} s{speed})")
    return 0


def _index_build(args: argparse.Namespace) -> int:
    from embedsuite.shards import ids_from_shards, index_from_shards, read_manifest, write_ids

    t0 = time.perf_counter()
    man = read_manifest(args.shards)
    kwargs: dict[str, Any] = {"storage": args.storage}
    if args.exact_threshold is not None:
        kwargs["exact_threshold"] = args.exact_threshold
    idx = index_from_shards(args.shards, **kwargs)
    idx.save(args.out)
    write_ids(Path(args.out) / "ids.parquet", ids_from_shards(args.shards))
    info = {"out": str(args.out), "n": len(idx), "dim": man["dim"], "kind": idx.kind_,
            "storage": args.storage, "encoder": man["encoder"],
            "memory_mb": round(idx.memory_bytes() / 2**20, 1),
            "seconds": round(time.perf_counter() - t0, 2)}
    if args.json:
        _out(json.dumps(info, indent=1))
    else:
        _out(f"{info['kind']} index of {info['n']:,} x {info['dim']} ({info['storage']}, "
             f"{info['memory_mb']} MB searched in RAM) from {info['encoder']} shards -> "
             f"{info['out']} in {info['seconds']} s; row ids in ids.parquet")
    return 0


def register(sub: Any) -> None:
    """Add ``embed-corpus`` and ``index-build``."""
    from embedsuite.encoders import DEFAULT_ENCODER

    s = sub.add_parser(
        "embed-corpus", help="embed a Parquet/JSONL/CSV column into Parquet shards (Ray)",
        description="Embed one text column with Ray Data (one encoder per worker) into "
                    "idempotent Parquet shards plus manifest.json; a rerun skips finished "
                    "shards. See docs/scale-out.md.")
    s.add_argument("input", help="a .parquet, .jsonl/.ndjson or .csv file")
    s.add_argument("--encoder", default=DEFAULT_ENCODER,
                   help="encoder name, model folder or package.module:factory")
    s.add_argument("--out", required=True, help="shards folder (shared by all nodes)")
    s.add_argument("--column", default="text", help="text column (default: text)")
    s.add_argument("--id-column", default=None, help="id column (default: row number)")
    s.add_argument("--role", choices=["query", "passage"], default="passage")
    s.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (e.g. auto, ray://head:10001); default: "
                        "start a local Ray instance")
    s.add_argument("--engine", choices=["ray", "local"], default="ray",
                   help="local: embed in this process without Ray")
    s.add_argument("--batch-size", type=int, default=64, help="encoder batch size")
    s.add_argument("--concurrency", type=int, default=2, help="Ray actors (encoder copies)")
    s.add_argument("--shard-rows", type=int, default=10_000, help="rows per shard")
    s.add_argument("--num-cpus", type=int, default=None,
                   help="CPUs of the local Ray instance (default: all)")
    s.add_argument("--keep-text", action="store_true", help="also store the texts")
    s.add_argument("--overwrite", action="store_true",
                   help="replace the shards of a different earlier job in --out")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_embed_corpus)

    s = sub.add_parser("index-build", help="build a vector index from embedding shards")
    s.add_argument("shards", help="the --out folder of embed-corpus")
    s.add_argument("--out", required=True, help="index folder (VectorIndex.load reads it)")
    s.add_argument("--storage", choices=["f32", "f16", "i8"], default="f32")
    s.add_argument("--exact-threshold", type=int, default=None,
                   help="exact search up to this many vectors (default 50,000), IVF above")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_index_build)
