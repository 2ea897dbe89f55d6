"""Soak test: the mixed load through the REST routes for 20 minutes; does memory level off?

Starts ``embedsuite serve`` on a free localhost port and runs ``--users`` async clients
over the four heads (sentiment with a new text each time, translation, recommendation,
QA; the ``rest_mixed`` scenario of ``load.py``). Every minute it samples the server's
RSS, open files and threads (from ``/proc``) and the requests served. Prints the samples,
errors, and the RSS growth over the last half of the run, against the 5 % target.

    python benchmarks/soak.py [--minutes 20] [--users 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import REST_MIXED, _free_port, _start


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (MiB), open files and threads of process ``pid``, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    threads = next(int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("Threads"))
    return {"rss_mib": round(rss / 1024, 1), "open_files": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": threads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--sample-s", type=float, default=60)
    p.add_argument("--encoder", default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start([sys.executable, "-m", "embedsuite.app", "serve", "--port", str(port),
                   *(["--encoder", args.encoder] if args.encoder else [])], f"{url}/health")
    samples: list[dict[str, Any]] = []
    served = 0
    errors: dict[str, int] = {}
    first_error: dict[str, str] = {}

    async def run() -> None:
        nonlocal served
        limits = httpx.Limits(max_connections=args.users, max_keepalive_connections=args.users)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            t_start = time.monotonic()
            stop = t_start + args.minutes * 60

            async def user(k: int) -> None:
                nonlocal served
                rng = random.Random(time.time_ns() + k)
                i = k
                while time.monotonic() < stop:
                    kind, path, body = REST_MIXED[i % len(REST_MIXED)]
                    i += 1
                    try:
                        r = await client.post(path, json=body(rng))
                        if r.status_code == 200:
                            served += 1
                            continue
                        msg = f"HTTP {r.status_code}: {r.text[:150]}"
                    except Exception as exc:  # counted and reported, the run goes on
                        msg = f"{type(exc).__name__}: {exc}"
                    errors[kind] = errors.get(kind, 0) + 1
                    first_error.setdefault(kind, msg)

            async def sampler() -> None:
                last = 0
                while True:
                    now = time.monotonic()
                    row = {"minute": round((now - t_start) / 60, 2), **proc_stats(proc.pid),
                           "served_per_s": round((served - last) / args.sample_s, 1)
                           if samples else None}
                    last = served
                    samples.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    if now >= stop:
                        return
                    await asyncio.sleep(min(args.sample_s, max(0.0, stop - now)))

            await asyncio.gather(sampler(), *(user(k) for k in range(args.users)))

    try:
        asyncio.run(run())
        samples.append({"minute": "end", **proc_stats(proc.pid)})
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    timed = [s for s in samples if s["minute"] != "end"]
    half = [s for s in timed if s["minute"] >= args.minutes / 2]
    base = half[0]["rss_mib"] if half else timed[0]["rss_mib"]
    growth = (samples[-1]["rss_mib"] - base) / base * 100
    out = {"minutes": args.minutes, "users": args.users, "served": served,
           "errors": sum(errors.values()), "errors_by_route": errors,
           "first_error": first_error, "rss_start_mib": timed[0]["rss_mib"],
           "rss_end_mib": samples[-1]["rss_mib"],
           "rss_growth_last_half_pct": round(growth, 2), "target_pct": 5.0,
           "samples": samples}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.users} users for {args.minutes:g} min: {served} served, "
          f"{out['errors']} errors {errors or ''}")
    print(f"{'minute':>7}{'RSS MiB':>10}{'files':>7}{'threads':>9}{'req/s':>8}")
    for s in samples:
        print(f"{s['minute']!s:>7}{s['rss_mib']:>10}{s['open_files']:>7}{s['threads']:>9}"
              f"{s.get('served_per_s')!s:>8}")
    print(f"RSS growth over the last half: {growth:+.2f} % (target <= 5 %)")


if __name__ == "__main__":
    main()
