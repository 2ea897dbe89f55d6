"""Load test: 50 simulated users for 60 s across the four head tabs of the app.

Starts ``embedsuite serve`` on a free localhost port, then each user (a thread with
its own ``gradio_client.Client``) loops over the tabs' API endpoints. Prints requests
served, errors, client-side p50/p95 per tab, and the server-side handler times the
app records (``/server_stats``).

    python benchmarks/load.py [--users 50] [--seconds 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# (tab, api_name, positional args) per request kind; each user cycles through them
SCENARIOS: list[tuple[str, str, tuple[Any, ...]]] = [
    ("sentiment", "/sentiment", ("What a wonderful, moving film.", "default (SST-2)")),
    ("translation", "/translation_search",
     ("Der Zug nach Berlin fährt um acht Uhr ab.",
      "The train to Berlin leaves at eight o'clock.\nMy grandmother grows tomatoes.\n"
      "The museum is closed on Mondays.\nHow much does this ticket cost?", 3, "margin")),
    ("recommendation", "/recommend", (["b001", "f008"], [], 5, 0.0)),
    ("qa", "/qa_answer", None),  # filled in by qa_args()
]


def qa_args(client: Any) -> tuple[Any, ...]:
    """Arguments of /qa_answer, matched to the endpoint's parameters by name."""
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = info["/qa_answer"]["parameters"]
    values = {"question": "Where does the train to Berlin leave from?",
              "context": "The night train to Berlin leaves from platform 4 at 22:10. "
                         "Tickets can be bought on board."}
    out = []
    for p in params:
        name = p["parameter_name"].lower()
        if "question" in name or name in ("q",):
            out.append(values["question"])
        elif "context" in name or "text" in name or name in ("c", "ctx"):
            out.append(values["context"])
        else:
            out.append(p.get("parameter_default"))
    return tuple(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_app(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "embedsuite.app", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the app exited during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not start in 600 s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--url", default=None, help="use a running app instead of starting one")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from gradio_client import Client

    proc = None
    url = args.url
    if url is None:
        port = _free_port()
        proc = start_app(port)
        url = f"http://127.0.0.1:{port}/"
    try:
        probe = Client(url, verbose=False)
        scenarios = [(t, a, qa_args(probe) if x is None else x) for t, a, x in SCENARIOS]
        for _tab, api, x in scenarios:  # warm every endpoint once (loads heads)
            probe.predict(*x, api_name=api)
        lat: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        samples: dict[str, str] = {}
        lock = threading.Lock()
        stop = time.monotonic() + args.seconds

        def user(k: int) -> None:
            client = Client(url, verbose=False)
            i = k
            while time.monotonic() < stop:
                tab, api, x = scenarios[i % len(scenarios)]
                i += 1
                t0 = time.perf_counter()
                try:
                    client.predict(*x, api_name=api)
                    with lock:
                        lat[tab].append(time.perf_counter() - t0)
                except Exception as exc:  # counted and reported, the run goes on
                    with lock:
                        errors[tab] += 1
                        samples.setdefault(tab, f"{type(exc).__name__}: {exc}"[:200])

        threads = [threading.Thread(target=user, args=(k,)) for k in range(args.users)]
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t_start
        server = probe.predict(api_name="/server_stats")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)

    per_tab = {}
    for tab, _, _ in scenarios:
        arr = np.asarray(lat[tab]) * 1000
        per_tab[tab] = {"served": len(arr), "errors": errors[tab],
                        "client_p50_ms": round(float(np.percentile(arr, 50)), 1) if len(arr)
                        else None,
                        "client_p95_ms": round(float(np.percentile(arr, 95)), 1) if len(arr)
                        else None}
    out = {"users": args.users, "seconds": round(wall, 1),
           "served": sum(v["served"] for v in per_tab.values()),
           "errors": sum(errors.values()), "per_tab": per_tab, "server_side": server,
           "error_samples": samples}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.users} users for {wall:.0f} s: {out['served']} requests served, "
          f"{out['errors']} errors")
    print(f"{'tab':<16}{'served':>8}{'errors':>8}{'p50 ms':>10}{'p95 ms':>10}  (client side)")
    for tab, v in per_tab.items():
        print(f"{tab:<16}{v['served']:>8}{v['errors']:>8}{v['client_p50_ms']!s:>10}"
              f"{v['client_p95_ms']!s:>10}")
    print("server-side handler times (ms):")
    for name, v in server.items():
        print(f"  {name:<28} n={v['count']:<6} p50={v['p50_ms']:<8} p95={v['p95_ms']}")
    for tab, msg in samples.items():
        print(f"  first error in {tab}: {msg}")


if __name__ == "__main__":
    main()
