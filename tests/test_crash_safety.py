"""Writers killed with SIGKILL mid-save: the old or the new version always loads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedsuite.cache import EmbeddingCache, make_key
from embedsuite.heads.base import read_head_folder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

HEAD_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from embedsuite.heads.base import write_head_folder
    path = sys.argv[1]
    i = 0
    while True:
        i += 1
        w = np.full((256, 384), float(i), np.float32)   # ~400 KB per save
        write_head_folder(path, "crash-test", {"version": i}, {"w": w}, None)
        print(i, flush=True)
""")

CACHE_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from embedsuite.cache import EmbeddingCache, make_key
    cache = EmbeddingCache(sys.argv[1])
    i = 0
    while True:
        i += 1
        cache.put_many({make_key("fp", "query", f"t{i}-{j}"): np.full(384, i, np.float32)
                        for j in range(50)}, "fp")
        print(i, flush=True)
""")


def _kill_randomly(script: str, arg: Path, rounds: int, seed: int,
                   check: Callable[[Path], None]) -> None:
    """Start the writer, let it save at least once, SIGKILL it at a random moment, check."""
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        proc = subprocess.Popen([sys.executable, "-c", script, str(arg)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one complete save happened
        time.sleep(float(rng.uniform(0.0, 0.25)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        check(arg)


def test_head_folder_survives_sigkill(tmp_path: Path) -> None:
    folder = tmp_path / "head"
    versions: list[int] = []

    def check(p: Path) -> None:
        config, tensors = read_head_folder(p)
        v = config["version"]
        assert np.all(tensors["w"] == float(v))  # weights belong to the config's version
        versions.append(v)

    _kill_randomly(HEAD_WRITER, folder, rounds=12, seed=1, check=check)
    assert len(versions) == 12 and min(versions) >= 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "head"]
    assert all(n.endswith(".tmp") for n in leftovers), leftovers  # only unfinished temp dirs


def test_cache_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    counts: list[int] = []

    def check(p: Path) -> None:
        cache = EmbeddingCache(p)
        info = cache.info()
        n = int(info["entries"])  # type: ignore[call-overload]
        assert n % 50 == 0  # batches are committed whole or not at all
        got = cache.get_many([make_key("fp", "query", f"t1-{j}") for j in range(50)])
        assert len(got) == 50 and cache.corrupt == 0
        assert all(np.all(v == 1.0) for v in got.values())
        counts.append(n)
        cache.close()

    _kill_randomly(CACHE_WRITER, path, rounds=8, seed=2, check=check)
    assert len(counts) == 8 and counts == sorted(counts)
