"""The ``embedsuite`` command line (thin: parses arguments, calls the library)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import pkgutil
import sys
import time
from pathlib import Path
from typing import Any

from embedsuite.errors import EmbedsuiteError

logger = logging.getLogger("embedsuite")

__all__ = ["build_parser", "main"]


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def cmd_encoders(args: argparse.Namespace) -> int:
    from embedsuite.encoders import ENCODERS, get_encoder

    rows = [get_encoder(n).describe() for n in ENCODERS.names()]
    if args.json:
        _out(json.dumps(rows, indent=2))
        return 0
    w = max([4, *(len(str(r["name"])) for r in rows)])
    _out(f"{'name':<{w}} {'dim':>4}  {'tokens':<6}  {'built':<5}  {'languages':<28}  source")
    for r in rows:
        dim = r["dim"] if r["dim"] else "fit"
        _out(f"{r['name']!s:<{w}} {dim!s:>4}  {'yes' if r['token_embeddings'] else 'no':<6}  "
             f"{'yes' if r['built'] else 'no':<5}  {str(r['languages'])[:28]:<28}  {r['source']}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from embedsuite.atomic import atomic_write_bytes
    from embedsuite.encoders import get_encoder

    src = Path(args.input)
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found; expected a UTF-8 text file, one text per line")
    try:
        lines = [ln.rstrip("\r\n") for ln in src.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError:
        raise ValueError(f"{src} is not UTF-8 text; expected one text per line") from None
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise ValueError(f"{src} has no non-empty line; expected one text per line")
    enc = get_encoder(args.encoder)
    if args.encoder == "tfidf":
        enc.prepare(lines)
    vecs = enc.encode(lines, role=args.role, batch_size=args.batch_size,
                      show_progress=not args.quiet)
    import io

    buf = io.BytesIO()
    np.save(buf, vecs, allow_pickle=False)
    atomic_write_bytes(args.output, buf.getvalue())
    logger.info("wrote %s: %d x %d float32", args.output, *vecs.shape)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from embedsuite.app.blocks import build_demo
    from embedsuite.app.ui import MAX_UPLOAD_BYTES
    from embedsuite.encoders import get_encoder

    t0 = time.perf_counter()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("binding to %s: the app will be reachable from other machines; it has "
                       "no authentication", args.host)
    import torch

    # ``workers`` handlers run at once (one shared pool, see build_demo); each gets an
    # equal share of the cores so that they do not oversubscribe the CPU
    workers = max(1, args.workers)
    per_worker = max(1, (os.cpu_count() or 2) // workers)
    torch.set_num_threads(per_worker)
    os.environ.setdefault("EMBEDSUITE_THREADS", str(per_worker))  # e5-small-int8 (ONNX)
    enc = get_encoder(args.encoder)
    logger.info("loading the shared encoder %s (built on first use)...", enc.name)
    enc.encode("warm up", role="query")
    demo = build_demo(args.encoder, workers=workers)
    # max_size bounds the waiting line: beyond it a request is refused at once with a
    # clear "queue is full" message instead of waiting minutes
    demo.queue(max_size=args.max_queue)
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True,
                max_file_size=MAX_UPLOAD_BYTES, show_error=False, quiet=True)
    _out(f"embedsuite app on http://{args.host}:{args.port} (encoder {enc.name}); "
         f"ready in {time.perf_counter() - t0:.1f} s. Ctrl+C stops it.")
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        demo.close()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from embedsuite.evaluation import run_evaluation

    options: dict[str, Any] = {}
    if args.langs:
        options["langs"] = [s.strip() for s in args.langs.split(",") if s.strip()]
    for item in args.option or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option expects KEY=VALUE (e.g. qa.head=shipped), got {item!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = [v.strip() for v in raw.split(",")] if "," in raw else raw
        options[key.strip()] = value
    t0 = time.perf_counter()
    records = run_evaluation(
        [s.strip() for s in args.encoders.split(",") if s.strip()],
        [s.strip() for s in args.tasks.split(",") if s.strip()],
        args.out, data_dir=args.data_dir, limit=args.limit, protocol=args.protocol,
        seed=args.seed, options=options, resume=not args.no_resume,
    )
    _out((Path(args.out) / "results.md").read_text())
    _out(f"{len(records)} records in {time.perf_counter() - t0:.1f} s -> {args.out}/results.json")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from embedsuite.cache import default_cache

    cache = default_cache()
    if args.action == "info":
        _out(json.dumps(cache.info(), indent=2))
    else:
        n = cache.clear()
        _out(f"removed {n} cached embeddings from {cache.path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (extensions from ``apps/commands``)."""
    from embedsuite.encoders import DEFAULT_ENCODER

    p = argparse.ArgumentParser(prog="embedsuite", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("encoders", help="list the encoders")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_encoders)

    s = sub.add_parser("encode", help="embed a text file (one text per line) into a .npy")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--encoder", default=DEFAULT_ENCODER)
    s.add_argument("--role", choices=["query", "passage"], default="query")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_encode)

    s = sub.add_parser("serve", help="start the Gradio app")
    s.add_argument("--encoder", default=DEFAULT_ENCODER)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7860)
    s.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="model calls run at once across all tabs (default: CPU cores)")
    s.add_argument("--max-queue", type=int, default=200,
                   help="requests that may wait; more are refused with a message")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("evaluate", help="run evaluation tasks for encoders")
    s.add_argument("--encoders", default=DEFAULT_ENCODER, help="comma-separated names or folders")
    s.add_argument("--tasks", default="all", help="comma-separated task names, or 'all'")
    s.add_argument("--data-dir", default=None,
                   help="evaluation data folder (default $EMBEDSUITE_DATA, or ../shared/data in "
                        "a checkout)")
    s.add_argument("--limit", type=int, default=None, help="cap examples per dataset")
    s.add_argument("--protocol", choices=["default", "mteb"], default="default")
    s.add_argument("--langs", default=None,
                   help="comma-separated languages for every task that reads them (translation: "
                        "deu,fra,...; qa: en,de,...); per task: --option translation.langs=...")
    s.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a task option, repeatable; KEY may name its task, e.g. "
                        "qa.head=shipped, qa.langs=en,de, sentiment.kinds=linear")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-resume", action="store_true", help="recompute finished parts")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("cache", help="inspect or clear the embedding cache")
    s.add_argument("action", choices=["info", "clear"])
    s.set_defaults(func=cmd_cache)

    import embedsuite.app.commands as ext

    for mod in pkgutil.iter_modules(ext.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{ext.__name__}.{mod.name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``embedsuite`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "sentence_transformers", "urllib3", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (EmbedsuiteError, ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        sys.stderr.write(f"embedsuite: error: {msg}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
