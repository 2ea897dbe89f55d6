"""Encode throughput of e5-small (fp32) and e5-small-int8 by text length, batch size, threads.

Texts are real: SQuAD dev contexts (consecutive paragraphs of an article joined),
cut at a token boundary so that each text is exactly ``L`` tokens long with the
``passage: `` prompt and the special tokens (L = 10, 50, 200, 500). Each setting
encodes distinct texts without the embedding cache (``use_cache=False``) for at
least ``--seconds`` (and at least one batch); sentences/s = texts / wall time.

    python benchmarks/throughput.py [--json] [--plot benchmarks/throughput.png]

Prints a Markdown table, or one JSON object ``{"rows": [{"encoder", "tokens",
"batch_size", "threads", "per_s", "tokens_per_s"}, ...]}`` with ``--json``; writes a
plot (sentences/s by length and by batch size).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from embedsuite.encoders.e5 import E5SmallEncoder
from embedsuite.encoders.int8 import E5SmallInt8Encoder
from embedsuite.paths import data_dir

LENGTHS = (10, 50, 200, 500)
BATCHES = (1, 8, 32, 128)
THREADS = (1, 2)


def texts_of_length(enc: E5SmallInt8Encoder, n_tokens: int, count: int) -> list[str]:
    """``count`` distinct real texts of exactly ``n_tokens`` tokens (prompt and specials in)."""
    arts = json.loads((data_dir() / "squad" / "dev-v1.1-without-xquad.json").read_text())["data"]
    prompt = enc.prompts["passage"]
    p_len = len(enc.tokenizer.encode(prompt, add_special_tokens=False).ids)
    budget = n_tokens - 2 - p_len  # tokens of the text itself
    out: list[str] = []
    for art in arts:
        paras = [p["context"] for p in art["paragraphs"]]
        for start in range(len(paras)):
            text = " ".join(paras[start : start + 4])
            e = enc.tokenizer.encode(prompt + text, add_special_tokens=False)
            if len(e.ids) < p_len + budget + 2:
                continue
            # cut where the k-th token ends; re-tokenising the cut can merge or split
            # pieces at the end, so try a few k around the budget for an exact count
            for k in (budget, budget - 1, budget + 1, budget - 2, budget + 2):
                cut = text[: e.offsets[p_len + k - 1][1] - len(prompt)].strip()
                if cut and enc.count_tokens([cut], "passage")[0] == n_tokens:
                    if cut not in out:
                        out.append(cut)
                    break
            if len(out) >= count:
                return out
    raise SystemExit(f"only {len(out)} texts of {n_tokens} tokens found")


def measure(encode: Any, texts: list[str], batch: int, seconds: float) -> float:
    """Sentences/s over whole batches until ``seconds`` have passed."""
    encode(texts[: min(batch, 8)], batch)  # warm-up (allocations, kernels)
    done, t0 = 0, time.perf_counter()
    while True:
        chunk = [texts[(done + i) % len(texts)] for i in range(batch)]
        encode(chunk, batch)
        done += batch
        if time.perf_counter() - t0 >= seconds:
            break
    return done / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0, help="minimum time per setting")
    p.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    p.add_argument("--batches", default=",".join(map(str, BATCHES)))
    p.add_argument("--threads", default=",".join(map(str, THREADS)))
    p.add_argument("--plot", default=str(Path(__file__).with_name("throughput.png")))
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("EMBEDSUITE_PROGRESS", "0")
    import torch

    lengths = [int(x) for x in args.lengths.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    threads = [int(x) for x in args.threads.split(",")]
    fp32 = E5SmallEncoder()
    int8 = E5SmallInt8Encoder(fp32=fp32)
    pool = {n: texts_of_length(int8, n, max(batches) * 2) for n in lengths}
    rows: list[dict[str, Any]] = []
    for t in threads:
        torch.set_num_threads(t)
        fast = E5SmallInt8Encoder(fp32=fp32, threads=t)
        encoders = {
            "e5-small": lambda x, b: fp32.encode(x, "passage", batch_size=b, use_cache=False),
            "e5-small-int8": lambda x, b, f=fast: f.encode(x, "passage", batch_size=b,
                                                           use_cache=False),
        }
        for n in lengths:
            for b in batches:
                for name, fn in encoders.items():
                    per_s = measure(fn, pool[n], b, args.seconds)
                    rows.append({"encoder": name, "tokens": n, "batch_size": b, "threads": t,
                                 "per_s": round(per_s, 1), "tokens_per_s": round(per_s * n)})
                    if not args.json:
                        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.plot:
        plot(rows, Path(args.plot))
    if args.json:
        print(json.dumps({"rows": rows, "plot": args.plot}))
        return
    print(table(rows))


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per (tokens, batch, threads), fp32 and int8 side by side."""
    key = {(r["encoder"], r["tokens"], r["batch_size"], r["threads"]): r["per_s"] for r in rows}
    lines = ["| tokens | batch | threads | fp32 sent/s | int8 sent/s | int8 / fp32 |",
             "|---:|---:|---:|---:|---:|---:|"]
    for (name, n, b, t), v in key.items():
        if name != "e5-small":
            continue
        i8 = key.get(("e5-small-int8", n, b, t))
        ratio = f"{i8 / v:.2f}x" if i8 else ""
        lines.append(f"| {n} | {b} | {t} | {v:,.1f} | {i8 or 0:,.1f} | {ratio} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Sentences/s by text length (per batch size) and by batch size (per length)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4.5), squeeze=False)
    for ax, t in zip(axes[0], threads, strict=True):
        for name, style in (("e5-small", "--"), ("e5-small-int8", "-")):
            for b in sorted({r["batch_size"] for r in rows}):
                pts = sorted((r["tokens"], r["per_s"]) for r in rows if r["encoder"] == name
                             and r["threads"] == t and r["batch_size"] == b)
                if pts:
                    ax.plot(*zip(*pts, strict=True), style, marker="o",
                            label=f"{'int8' if 'int8' in name else 'fp32'} batch {b}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("text length (tokens)")
        ax.set_ylabel("sentences / s")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle("e5-small fp32 (sentence-transformers) vs e5-small-int8 (ONNX Runtime), CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
