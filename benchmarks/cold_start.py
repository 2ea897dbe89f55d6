"""Cold start of a product that imports embedsuite: each step in a fresh Python process.

Steps (each run ``--repeats`` times in a new interpreter, median reported):

- ``python``: the bare interpreter (the baseline every other row is measured against);
- ``import torch``: the heaviest dependency, for scale;
- ``import embedsuite.heads``: what a product pays to import the library;
- ``first sentiment``: import, ``load_default()``, first ``predict`` of the shipped head;
- ``first QA answer``: import, ``ExtractiveQA.load_default()``, first ``answer``.

Timed inside the child from its first statement (``in_process_s``) and from outside, process
start to exit (``wall_s``), with the child's peak RSS (``ru_maxrss``) and which heavy modules
it imported. The model cache is warmed by one untimed run first, so the figures are those of a
product restarting on a machine where e5-small is already built (``--cold-cache`` times the
first-ever run instead, with an empty ``EMBEDSUITE_CACHE``: the rebuild of e5-small).
Targets (issue #20): import <= 1 s, first sentiment prediction <= 5 s with a warm cache.

    python benchmarks/cold_start.py [--repeats 3] [--json] [--cold-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

_PRELUDE = "import time as _t; _t0 = _t.perf_counter()\n"
_REPORT = """
import json as _j, resource as _r, sys as _s
_heavy = [m for m in ("torch", "transformers", "sentence_transformers", "gradio", "matplotlib",
                      "ray", "pandas", "faiss") if m in _s.modules]
print("@@" + _j.dumps({"in_process_s": _t.perf_counter() - _t0,
                       "peak_rss_mb": _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024,
                       "modules": _heavy}))
"""

STEPS: dict[str, str] = {
    "python": "pass",
    "import torch": "import torch",
    "import embedsuite.heads": "import embedsuite.heads",
    "first sentiment": (
        "from embedsuite.heads.sentiment import load_default\n"
        "r = load_default().predict('A gripping, beautifully acted film.')\n"
        "assert r['label'] == 'positive', r"),
    "first QA answer": (
        "from embedsuite.heads import ExtractiveQA\n"
        "r = ExtractiveQA.load_default().answer('When was the mill built?', "
        "'The Old Mill was built in 1921 by the Weber family. It stands on the river.')\n"
        "assert r['answer'], r"),
}
TARGETS = {"import embedsuite.heads": 1.0, "first sentiment": 5.0}


def run_step(code: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its timings, peak RSS and heavy modules."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PRELUDE + code + _REPORT], env=env, check=False,
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"step failed (exit {done.returncode}):\n{code}\n{done.stderr[-2000:]}")
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("@@"))
    return {**json.loads(line[2:]), "wall_s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--cold-cache", action="store_true",
                   help="time the first run with an empty EMBEDSUITE_CACHE (model rebuild)")
    args = p.parse_args()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.cold_cache:
            env["EMBEDSUITE_CACHE"] = tmp
        else:  # warm the model cache (a first run may rebuild e5-small)
            run_step(STEPS["first sentiment"], env)
        for name, code in STEPS.items():
            runs = []
            for _ in range(1 if args.cold_cache else args.repeats):
                runs.append(run_step(code, env))
                if args.cold_cache and name.startswith("first"):
                    env["EMBEDSUITE_CACHE"] = tempfile.mkdtemp(dir=tmp)
            rows.append({
                "step": name,
                "in_process_s": round(statistics.median(r["in_process_s"] for r in runs), 3),
                "wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
                "modules": runs[0]["modules"],
                "target_s": TARGETS.get(name),
            })
    base = rows[0]["wall_s"]
    for r in rows:
        r["wall_vs_python"] = round(r["wall_s"] / base, 1)
        r["meets_target"] = (None if r["target_s"] is None
                             else bool(r["in_process_s"] <= r["target_s"]))
    if args.json:
        print(json.dumps({"repeats": args.repeats, "cold_cache": args.cold_cache, "rows": rows},
                         indent=2))
        return
    print(f"{'step':<24} {'in-process s':>12} {'wall s':>8} {'x python':>9} {'peak RSS MB':>12}"
          f"  target  heavy modules imported")
    for r in rows:
        tgt = "" if r["target_s"] is None else (
            f"<= {r['target_s']:g} " + ("ok" if r["meets_target"] else "MISSED"))
        print(f"{r['step']:<24} {r['in_process_s']:>12.3f} {r['wall_s']:>8.3f} "
              f"{r['wall_vs_python']:>9.1f} {r['peak_rss_mb']:>12.1f}  {tgt:<8} "
              f"{', '.join(r['modules']) or '-'}")


if __name__ == "__main__":
    main()
