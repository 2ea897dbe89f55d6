"""Load test: 50 concurrent users against the app's REST routes and its Gradio events,
each against a reference measured in the same run with the same client.

Starts ``embedsuite serve`` (and two echo servers, ``echo_servers.py``) on free localhost
ports, then runs these scenarios, ``--seconds`` each, in ``--rounds`` turns (so that a
slow spell of the shared machine hits references and app alike):

- ``rest_echo``: a bare FastAPI route that reverses the text (async httpx clients:
  one per user by default, ``--rest-client pooled`` for one shared pool);
- ``rest_sentiment``: ``POST /v1/sentiment``, one new short text per request;
- ``gradio_echo``: a Gradio event that reverses the text (``gradio_client``, a thread
  and a client per user);
- ``gradio_sentiment``: the app's ``/sentiment`` event, one new short text per request;
- ``gradio_mixed`` / ``rest_mixed``: the four heads in turn (sentiment with a new text,
  translation, recommendation, QA), through each protocol.

Every sentiment text is new to the server (a random name in a template), so every one
needs an encoder pass. Prints requests/s, errors, client p50/p95, the ratios the
targets are stated in, and the server-side handler times (``/server_stats``).

    python benchmarks/load.py [--users 50] [--seconds 30] [--rounds 3] [--encoder NAME]
                              [--rest-client per-user|pooled] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

_SYL = ["ka", "lo", "mi", "ra", "ben", "tor", "vi", "sa", "del", "no", "ur", "fi", "gan", "pe"]
_ADJ = ["wonderful", "dull", "moving", "awful", "clever", "tedious", "charming", "messy",
        "gripping", "forgettable", "warm", "cold", "funny", "bleak", "brilliant", "lazy"]
_NOUN = ["film", "story", "cast", "script", "ending", "soundtrack", "pacing", "dialogue"]


def new_text(rng: random.Random) -> str:
    """A short review sentence no cache has seen (a random made-up name in it)."""
    name = "".join(rng.choice(_SYL) for _ in range(3)).capitalize()
    return (f"{name}'s new {rng.choice(_NOUN)} is {rng.choice(_ADJ)}, and the "
            f"{rng.choice(_NOUN)} feels {rng.choice(_ADJ)}.")


TRANSLATION = ("Der Zug nach Berlin fährt um acht Uhr ab.",
               ["The train to Berlin leaves at eight o'clock.", "My grandmother grows tomatoes.",
                "The museum is closed on Mondays.", "How much does this ticket cost?"])
QA = ("Where does the train to Berlin leave from?",
      "The night train to Berlin leaves from platform 4 at 22:10. Tickets can be bought on "
      "board.")
LIKED = ["b001", "f008"]
#: how the REST users connect (``run_rest``)
CLIENTS = ("per-user", "pooled")


# -- servers ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(cmd: list[str], health: str, timeout_s: float = 600) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{' '.join(cmd[:4])} exited during start-up")
        try:
            with urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"{health} did not answer in {timeout_s:g} s")


# -- clients ------------------------------------------------------------------
class Tally:
    """Latencies and errors per request kind."""

    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: dict[str, str] = {}
        self.lock = threading.Lock()
        self.wall = 0.0

    def ok(self, kind: str, dt: float) -> None:
        with self.lock:
            self.lat[kind].append(dt)

    def fail(self, kind: str, msg: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            self.samples.setdefault(kind, msg[:200])

    @contextlib.contextmanager
    def measure(self, kind: str) -> Iterator[None]:
        """Time the body as one request of ``kind``; an exception counts as an error and
        the run goes on."""
        t0 = time.perf_counter()
        try:
            yield
        except Exception as exc:  # counted and reported, the run goes on
            self.fail(kind, f"{type(exc).__name__}: {exc}")
        else:
            self.ok(kind, time.perf_counter() - t0)

    def summary(self) -> dict[str, Any]:
        allv = np.asarray([x for v in self.lat.values() for x in v]) * 1000
        served = int(allv.size)
        out: dict[str, Any] = {
            "served": served, "errors": int(sum(self.errors.values())),
            "seconds": round(self.wall, 1),
            "per_s": round(served / self.wall, 1) if self.wall else 0.0,
            "p50_ms": round(float(np.percentile(allv, 50)), 1) if served else None,
            "p95_ms": round(float(np.percentile(allv, 95)), 1) if served else None,
        }
        if len(self.lat) > 1:
            out["per_kind"] = {k: {"served": len(v), "p50_ms": round(
                float(np.percentile(np.asarray(v) * 1000, 50)), 1)} for k, v in self.lat.items()}
        if self.samples:
            out["error_samples"] = self.samples
        return out


def _turns(k: int, requests: Sequence[tuple[str, str, Callable[[random.Random], Any]]],
           stop: float) -> Iterator[tuple[str, str, Any]]:
    """User ``k``'s requests, taking ``requests`` in turn from the ``k``-th: ``(kind, path or
    API name, payload)`` until the clock passes ``stop``."""
    rng = random.Random(time.time_ns() + k)
    i = k
    while time.monotonic() < stop:
        kind, target, make = requests[i % len(requests)]
        i += 1
        yield kind, target, make(rng)


def run_rest(base: str, requests: list[tuple[str, str, Callable[[random.Random], Any]]],
             users: int, seconds: float, headers: dict[str, str] | None = None,
             tally: Tally | None = None, client: str = "per-user") -> Tally:
    """``users`` async users cycling through ``requests`` (kind, path, body(rng)), in one
    process. ``client="per-user"``: each user has its own ``httpx.AsyncClient`` (one
    connection), as separate users would; ``"pooled"``: all share one client with
    ``users`` connections (the protocol of issue #23's figures). httpx's pool re-checks
    every connection whenever it hands one out (encode/httpx#3215), so the pooled client
    spends several times the CPU per request and serves its users unevenly: against the
    echo route alone it gives a p95 of 0.45-0.65 s on this machine. Adds to ``tally``
    when one is given."""
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {CLIENTS}, got {client!r}")
    import httpx

    tally = tally if tally is not None else Tally()

    async def main() -> None:
        if client == "pooled":
            limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
            shared = httpx.AsyncClient(base_url=base, timeout=60, limits=limits,
                                       headers=headers)
            clients = [shared] * users
        else:
            clients = [httpx.AsyncClient(base_url=base, timeout=60, headers=headers)
                       for _ in range(users)]
        stop = time.monotonic() + seconds

        async def user(k: int) -> None:
            for kind, path, body in _turns(k, requests, stop):
                with tally.measure(kind):
                    r = await clients[k].post(path, json=body)
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text}")

        try:
            t0 = time.perf_counter()
            await asyncio.gather(*(user(k) for k in range(users)))
            tally.wall += time.perf_counter() - t0
        finally:
            for c in dict.fromkeys(clients):
                await c.aclose()

    asyncio.run(main())
    return tally


GradioRequests = list[tuple[str, str, Callable[[random.Random], tuple[Any, ...]]]]


def run_gradio(url: str, requests: GradioRequests, users: int, seconds: float,
               tally: Tally | None = None) -> Tally:
    """``users`` threads, each with its own ``gradio_client.Client``, cycling ``requests``.
    Adds to ``tally`` when one is given."""
    from gradio_client import Client

    tally = tally if tally is not None else Tally()
    clients = [Client(url, verbose=False) for _ in range(users)]
    stop = time.monotonic() + seconds

    def user(k: int) -> None:
        for kind, api, args in _turns(k, requests, stop):
            with tally.measure(kind):
                clients[k].predict(*args, api_name=api)

    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally.wall += time.perf_counter() - t0
    return tally


REST_SENTIMENT = [("sentiment", "/v1/sentiment", lambda r: {"texts": new_text(r)})]
REST_MIXED = [
    ("sentiment", "/v1/sentiment", lambda r: {"texts": new_text(r)}),
    ("translation", "/v1/translation/search",
     lambda r: {"queries": TRANSLATION[0], "candidates": TRANSLATION[1], "top_k": 3}),
    ("recommendation", "/v1/recommend", lambda r: {"liked": LIKED, "k": 5}),
    ("qa", "/v1/qa", lambda r: {"question": QA[0], "context": QA[1], "top_k": 3}),
]
GRADIO_SENTIMENT = [("sentiment", "/sentiment", lambda r: (new_text(r), "default (SST-2)"))]
GRADIO_MIXED = [
    ("sentiment", "/sentiment", lambda r: (new_text(r), "default (SST-2)")),
    ("translation", "/translation_search",
     lambda r: (TRANSLATION[0], "\n".join(TRANSLATION[1]), 3, "margin")),
    ("recommendation", "/recommend", lambda r: (LIKED, [], 5, 0.0)),
    ("qa", "/qa_answer", lambda r: (QA[1], QA[0], 3, 0.5)),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30, help="per scenario, all rounds")
    p.add_argument("--rounds", type=int, default=3,
                   help="the scenarios take turns this many times")
    p.add_argument("--encoder", default=None, help="the app's --encoder (default: serve's)")
    p.add_argument("--serve-args", default="", help="more arguments for embedsuite serve")
    p.add_argument("--only", default="rest_echo,rest_sentiment,gradio_echo,gradio_sentiment,"
                                      "gradio_mixed,rest_mixed")
    p.add_argument("--rest-client", choices=CLIENTS, default="per-user",
                   help="REST users' connections: one client each, or one shared pool")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    from gradio_client import Client

    app_port, rest_port, gr_port = _free_port(), _free_port(), _free_port()
    serve = [sys.executable, "-m", "embedsuite.app", "serve", "--port", str(app_port),
             *(["--encoder", args.encoder] if args.encoder else []), *args.serve_args.split()]
    app_url = f"http://127.0.0.1:{app_port}"
    procs = [_start(serve, f"{app_url}/health")]
    out: dict[str, Any] = {"users": args.users, "seconds_each": args.seconds,
                           "rest_client": args.rest_client}
    rc = args.rest_client
    try:
        procs.append(_start([sys.executable, "benchmarks/echo_servers.py", "rest", "--port",
                             str(rest_port)], f"http://127.0.0.1:{rest_port}/health"))
        procs.append(_start([sys.executable, "benchmarks/echo_servers.py", "gradio", "--port",
                             str(gr_port)], f"http://127.0.0.1:{gr_port}/"))
        probe = Client(app_url, verbose=False)
        warm_rng = random.Random(0)
        for _, api, a in GRADIO_MIXED:  # load every head once
            probe.predict(*a(warm_rng), api_name=api)
        echo_rest = [("echo", "/echo", lambda r: {"text": new_text(r)})]
        echo_gr = [("echo", "/echo", lambda r: (new_text(r),))]
        tallies = {name: Tally() for name in only}
        per = args.seconds / args.rounds
        runs: dict[str, Callable[[Tally], Tally]] = {
            "rest_echo": lambda t: run_rest(f"http://127.0.0.1:{rest_port}", echo_rest,
                                            args.users, per, tally=t, client=rc),
            "rest_sentiment": lambda t: run_rest(app_url, REST_SENTIMENT, args.users, per,
                                                 tally=t, client=rc),
            "gradio_echo": lambda t: run_gradio(f"http://127.0.0.1:{gr_port}/", echo_gr,
                                                args.users, per, tally=t),
            "gradio_sentiment": lambda t: run_gradio(app_url + "/", GRADIO_SENTIMENT,
                                                     args.users, per, tally=t),
            "gradio_mixed": lambda t: run_gradio(app_url + "/", GRADIO_MIXED, args.users, per,
                                                 tally=t),
            "rest_mixed": lambda t: run_rest(app_url, REST_MIXED, args.users, per, tally=t,
                                           client=rc),
        }
        # the scenarios take turns (``--rounds``), so a slow spell of the machine hits the
        # references and the app alike and the ratios stay comparable
        for r in range(args.rounds):
            for name in only:
                runs[name](tallies[name])
                s = tallies[name].summary()
                print(f"round {r + 1}: {name}: {s['per_s']} requests/s so far, "
                      f"{s['errors']} errors", file=sys.stderr)
        for name in only:
            out[name] = tallies[name].summary()
        with urllib.request.urlopen(f"{app_url}/server_stats", timeout=10) as r:
            out["server_side"] = json.loads(r.read())
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def ratio(a: str, b: str) -> float | None:
        if a in out and b in out and out[b]["per_s"]:
            return round(out[a]["per_s"] / out[b]["per_s"], 3)
        return None

    out["ratios"] = {"rest_sentiment/rest_echo": ratio("rest_sentiment", "rest_echo"),
                     "gradio_sentiment/gradio_echo": ratio("gradio_sentiment", "gradio_echo"),
                     "rest_mixed/gradio_mixed": ratio("rest_mixed", "gradio_mixed")}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.users} users, {args.seconds:g} s per scenario, REST client "
          f"{args.rest_client}")
    print(f"{'scenario':<18}{'req/s':>8}{'errors':>8}{'p50 ms':>10}{'p95 ms':>10}")
    for name in only:
        v = out[name]
        print(f"{name:<18}{v['per_s']:>8}{v['errors']:>8}{v['p50_ms']!s:>10}{v['p95_ms']!s:>10}")
    for k, v in out["ratios"].items():
        print(f"ratio {k}: {v}")
    print("server-side handler times (ms):")
    for name, v in out["server_side"].items():
        print(f"  {name:<28} n={v['count']:<7g} p50={v['p50_ms']:<8} p95={v['p95_ms']}")


if __name__ == "__main__":
    main()
