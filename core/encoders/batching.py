"""Dynamic batching in front of a shared encoder: concurrent requests run as one pass.

A server answers many small requests at once, each with one or a few texts. Run
one by one they cost one small forward pass each; gathered for a few milliseconds
they share one batched pass, which on a CPU costs little more than the largest
of them (text-embeddings-inference batches the same way).

:class:`BatchingEncoder` wraps any :class:`~embedsuite.encoders.base.Encoder` and
is one itself, so heads use it unchanged. ``encode`` and ``encode_tokens`` calls
with the same settings (role, layers, pair role) that arrive within
``window_ms`` of the first are merged, up to ``max_batch`` texts. The window only
applies in a busy spell (the previous batch ended less than a window before the
request came): after a quiet spell a lone request runs at once, and under load the
next batch also gathers while the current one runs.

A text's answer does not depend on its batch mates: the cache answers texts seen
before, and each new text's vector comes from its own row of the pass (attention
masks hide the padding; the int8 encoder's static scales are per model, not per
batch). ``tests/test_batching.py`` checks this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, cast

import numpy as np

from embedsuite.cancel import current_token
from embedsuite.encoders.base import Encoder, Role, TokenEmbeddings, check_role
from embedsuite.validation import as_pair_list, as_text_list

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_WINDOW_MS", "BatchingEncoder", "MicroBatcher"]

#: How long the first request of a batch waits for others in a busy spell (milliseconds).
#: One short text takes about 8-10 ms through the encoder on this project's 2-core
#: machine; under 50 users 10 ms served the most requests with the lowest p95 of the
#: windows measured (2-25 ms, docs/serving.md).
DEFAULT_WINDOW_MS = 10.0
#: Most texts in one merged pass (larger single requests bypass the batcher); 32 kept
#: the p95 lower than 64 under load (docs/serving.md).
DEFAULT_MAX_BATCH = 32

Runner = Callable[[Hashable, list[str], list[str] | None], list[Any]]

#: ``active`` is set in the batchers' worker threads
_WORKER = threading.local()


class _Job:
    __slots__ = ("future", "key", "pairs", "submitted", "texts")

    def __init__(self, key: Hashable, texts: list[str], pairs: list[str] | None) -> None:
        self.key = key
        self.texts = texts
        self.pairs = pairs
        self.submitted = time.monotonic()
        self.future: Future[list[Any]] = Future()


class MicroBatcher:
    """Gathers jobs with equal keys for ``window_ms`` and runs them as one call.

    Args:
        run: ``run(key, texts, pairs)`` returns one result per text.
        window_ms: Longest wait of the first job of a batch for others.
        max_batch: Most texts merged into one call.
    """

    def __init__(self, run: Runner, window_ms: float = DEFAULT_WINDOW_MS,
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run = run
        self.window_ms = float(window_ms)
        self.max_batch = int(max_batch)
        self._pending: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._last_end = float("-inf")  # when the last batch finished
        #: sizes (texts) of the merged calls run so far, for tests and benchmarks
        self.batch_sizes: deque[int] = deque(maxlen=10_000)

    def submit_future(self, key: Hashable, texts: list[str], pairs: list[str] | None = None
                      ) -> Future[list[Any]]:
        """Queue ``texts`` (with ``pairs``) for the next batch of ``key``; a future of the
        per-text results. Cancelling the future before its batch starts drops the job
        (an async caller awaits it with ``asyncio.wrap_future``)."""
        job = _Job(key, texts, pairs)
        with self._cond:
            self._pending.append(job)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name="encoder-batcher",
                                                daemon=True)
                self._worker.start()
            self._cond.notify()
        return job.future

    def submit(self, key: Hashable, texts: list[str], pairs: list[str] | None = None
               ) -> list[Any]:
        """Run ``texts`` (with ``pairs``) in the next batch of ``key``; block for the result.

        Raises:
            OperationCancelledError: The caller's cancel token was set while waiting.
        """
        if getattr(_WORKER, "active", False):
            # called from a batcher's own pass (e.g. the sentiment head's batcher calling
            # the encoder): that call is a batch already, another window would only wait
            return list(self.run(key, texts, pairs))
        future = self.submit_future(key, texts, pairs)
        token = current_token()
        while True:
            try:
                return future.result(timeout=0.05)
            except FutureTimeout:
                if token is not None and token.cancelled:
                    future.cancel()  # dropped if its batch has not started
                    token.check()

    # -- worker -----------------------------------------------------------
    def _take(self) -> list[_Job]:
        """Wait for a batch: the oldest job plus later ones with its key."""
        with self._cond:
            while not self._pending:
                self._cond.wait()
            first = self._pending[0]
            # after a quiet spell a lone request runs at once; in a busy spell (the last
            # batch ended less than a window before it came) it waits for the others
            window = self.window_ms / 1000.0
            busy = first.submitted - self._last_end < window
            deadline = first.submitted + (window if busy else 0.0)
            while True:
                n = sum(len(j.texts) for j in self._pending if j.key == first.key)
                left = deadline - time.monotonic()
                if n >= self.max_batch or left <= 0:
                    break
                self._cond.wait(left)
            jobs: list[_Job] = []
            rest: deque[_Job] = deque()
            n = 0
            for j in self._pending:
                if j.key == first.key and (not jobs or n + len(j.texts) <= self.max_batch):
                    jobs.append(j)
                    n += len(j.texts)
                else:
                    rest.append(j)
            self._pending = rest
            # a cancelled future is dropped here; the others are marked running
            return [j for j in jobs if j.future.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        _WORKER.active = True
        while True:
            jobs = self._take()
            if jobs:
                self._run_jobs(jobs)
            self._last_end = time.monotonic()

    def _run_jobs(self, jobs: list[_Job]) -> None:
        if len(jobs) == 1:
            self._run_one(jobs[0])
            return
        texts = [t for j in jobs for t in j.texts]
        pairs = None if jobs[0].pairs is None else [p for j in jobs for p in (j.pairs or [])]
        try:
            out = self.run(jobs[0].key, texts, pairs)
            self.batch_sizes.append(len(texts))
        except Exception:  # one bad job must not fail its batch mates: run each alone
            for j in jobs:
                self._run_one(j)
            return
        pos = 0
        for j in jobs:
            j.future.set_result(list(out[pos:pos + len(j.texts)]))
            pos += len(j.texts)

    def _run_one(self, job: _Job) -> None:
        try:
            job.future.set_result(list(self.run(job.key, job.texts, job.pairs)))
            self.batch_sizes.append(len(job.texts))
        except Exception as exc:
            job.future.set_exception(exc)


class BatchingEncoder:
    """An :class:`~embedsuite.encoders.base.Encoder` whose small calls share batched passes.

    Every attribute other than ``encode`` / ``encode_tokens`` is the wrapped encoder's
    (``name``, ``fingerprint``, ``cache``, ...), so a head cannot tell them apart. Calls
    with ``max_batch`` texts or more, or without the cache, go straight through.

    Args:
        encoder: The shared encoder.
        window_ms: See :data:`DEFAULT_WINDOW_MS`.
        max_batch: See :data:`DEFAULT_MAX_BATCH`.
    """

    def __init__(self, encoder: Encoder, window_ms: float = DEFAULT_WINDOW_MS,
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.encoder = encoder
        self.batcher = MicroBatcher(self._run, window_ms=window_ms, max_batch=max_batch)

    def __getattr__(self, name: str) -> Any:
        if name in ("encoder", "batcher"):  # not set yet (unpickling, copy)
            raise AttributeError(name)
        return getattr(self.encoder, name)

    def __repr__(self) -> str:
        return f"BatchingEncoder({self.encoder!r}, window_ms={self.batcher.window_ms:g})"

    def _run(self, key: Hashable, texts: list[str], pairs: list[str] | None) -> list[Any]:
        kind, role, *rest = cast(tuple[Any, ...], key)
        if kind == "encode":
            return list(self.encoder.encode(texts, role=role, show_progress=False))
        pair_role, layers, _with_pairs = rest
        got = self.encoder.encode_tokens(texts, role=role, pair=pairs, pair_role=pair_role,
                                         layers=None if layers is None else list(layers),
                                         show_progress=False)
        return list(cast(list[TokenEmbeddings], got))

    def encode(self, texts: str | Sequence[str], role: Role = "query", *,
               batch_size: int = 32, show_progress: bool | None = None,
               use_cache: bool = True) -> np.ndarray:
        """As the wrapped encoder's ``encode``; small cached calls are batched."""
        role = check_role(role)
        items, single = as_text_list(texts)
        if not items or not use_cache or len(items) >= self.batcher.max_batch:
            return self.encoder.encode(texts, role=role, batch_size=batch_size,
                                       show_progress=show_progress, use_cache=use_cache)
        rows = self.batcher.submit(("encode", role), items)
        out = np.stack(rows).astype(np.float32, copy=False)
        return out[0] if single else out

    def encode_tokens(self, texts: str | Sequence[str], role: Role = "passage", *,
                      pair: str | Sequence[str] | None = None, pair_role: Role = "query",
                      layers: Sequence[int] | None = None, batch_size: int = 16,
                      show_progress: bool | None = None,
                      ) -> TokenEmbeddings | list[TokenEmbeddings]:
        """As the wrapped encoder's ``encode_tokens``; small calls are batched."""
        role, pair_role = check_role(role), check_role(pair_role)
        items, single = as_text_list(texts)
        if not items or len(items) >= self.batcher.max_batch:
            return self.encoder.encode_tokens(texts, role=role, pair=pair, pair_role=pair_role,
                                              layers=layers, batch_size=batch_size,
                                              show_progress=show_progress)
        pairs = None if pair is None else as_pair_list(pair, len(items))
        key = ("tokens", role, pair_role,
               None if layers is None else tuple(int(i) for i in layers), pairs is not None)
        rows = self.batcher.submit(key, items, pairs)
        return rows[0] if single else rows

    def prepare(self, texts: Sequence[str]) -> None:
        """As the wrapped encoder's ``prepare``."""
        self.encoder.prepare(texts)
