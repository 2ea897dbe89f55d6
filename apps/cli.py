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


def default_serving_encoder() -> str:
    """The encoder ``serve`` uses by default, chosen by measurement.

    ``e5-small-int8`` (OpenVINO) encodes 3.1-3.5x faster than ``e5-small`` on this
    project's CPU (``benchmarks/encode.py``) and the shipped heads read it at a measured
    cost of -0.77 points SST-2 (sentiment) and -0.15 points XQuAD-en F1 (QA)
    (``benchmarks/int8_quality.py --only-shipped``), so it serves by default where its
    runtime (the ``fast`` extra) is installed; otherwise ``e5-small``.
    """
    import importlib.util

    return "e5-small-int8" if importlib.util.find_spec("openvino") else "e5-small"


def cmd_serve(args: argparse.Namespace) -> int:
    import threading

    import uvicorn

    from embedsuite.app.server import build_server, check_exposure, read_auth
    from embedsuite.app.ui import AppContext
    from embedsuite.encoders import get_encoder

    t0 = time.perf_counter()
    auth = read_auth(args.auth, args.auth_file)
    api_key = args.api_key or os.environ.get("EMBEDSUITE_API_KEY") or None
    check_exposure(args.host, auth=auth, api_key=api_key, insecure=args.insecure)
    encoder = args.encoder or default_serving_encoder()
    allowed = (tuple(n.strip() for n in args.encoders.split(",") if n.strip())
               if args.encoders else None)
    import torch

    cores = os.cpu_count() or 2
    window = args.batch_window_ms if args.batch_window_ms > 0 else None
    workers = max(1, args.workers)
    # with batching, one batcher thread runs every encoder pass while the handlers wait
    # for it; it gets all cores but one, which stays with the HTTP server and the
    # handlers (on 2 cores: 1 thread per pass served 138-200 sentiment requests/s under
    # 50 users against 91-110/s with 2, benchmarks/load.py). Without batching each of
    # ``workers`` handlers gets its share of the cores.
    per_pass = max(1, cores - 1) if window is not None else max(1, cores // workers)
    torch.set_num_threads(per_pass)
    os.environ.setdefault("EMBEDSUITE_THREADS", str(per_pass))  # e5-small-int8
    ctx = AppContext(encoder_name=encoder, allowed_encoders=allowed, batch_window_ms=window,
                     batch_max=max(1, args.batch_max),
                     results_dir=args.results_dir, max_encoders=args.max_encoders)
    get_encoder(encoder)  # an unknown name fails here, before the port opens
    app = build_server(ctx, workers=workers, max_queue=args.max_queue, auth=auth,
                       api_key=api_key, public_stats=args.public_stats)

    def warm_up() -> None:
        logger.info("loading the shared encoder %s (built on first use)...", encoder)
        try:
            ctx.encoder.encode("warm up", role="query")
        except Exception:
            logger.exception("the encoder %s failed to load", encoder)
            return
        ctx.ready.set()
        _out(f"embedsuite on http://{args.host}:{args.port} (encoder {encoder}; UI at /, REST "
             f"at /v1, docs at /docs); ready in {time.perf_counter() - t0:.1f} s. "
             f"Ctrl+C stops it.")

    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    # keep-alive above clients' pool idle times: a connection closed by the server just as
    # a client reuses it gives that client a read error (seen once in 4,000 requests at 5 s)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=5, timeout_keep_alive=30)
    try:
        uvicorn.Server(config).run()
    finally:
        ctx.close()
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

    s = sub.add_parser("serve", help="start the app: the Gradio UI and the REST API")
    s.add_argument("--encoder", default=None,
                   help="the shared encoder (default: e5-small-int8 where OpenVINO is "
                        "installed, else e5-small; see docs/serving.md)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7860)
    s.add_argument("--workers", type=int, default=4,
                   help="UI handlers run at once (they share batched encoder passes; 4 "
                        "measured better than 16 under 50 users, docs/serving.md)")
    s.add_argument("--max-queue", type=int, default=200,
                   help="UI requests that may wait; more are refused with a message")
    s.add_argument("--batch-window-ms", type=float, default=10.0,
                   help="micro-batching window of the shared encoder in ms (0: off)")
    s.add_argument("--batch-max", type=int, default=32,
                   help="most texts in one batched encoder pass")
    s.add_argument("--encoders", default=None,
                   help="comma-separated encoders a web request may load (Compare and Inside "
                        "tabs); default: the shared encoder's family")
    s.add_argument("--max-encoders", type=int, default=2,
                   help="extra encoders kept loaded at once (least recently used goes first)")
    s.add_argument("--results-dir", default="results",
                   help="the only folder the Compare tab reads results from")
    s.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                   help="a login for the UI (Gradio's login page)")
    s.add_argument("--auth-file", default=None,
                   help="a file of UI logins, one USER:PASSWORD per line")
    s.add_argument("--api-key", default=None,
                   help="bearer token the REST routes need (or set EMBEDSUITE_API_KEY)")
    s.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host with neither --auth nor --api-key")
    s.add_argument("--public-stats", action="store_true",
                   help="serve /server_stats to every client (default: this machine only)")
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
