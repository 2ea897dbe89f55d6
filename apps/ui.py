"""Helpers shared by the tabs: the app context, tab registry, and the UI error edge."""

from __future__ import annotations

import collections
import contextvars
import functools
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast, overload

import numpy as np

from embedsuite.cancel import CancelToken, OperationCancelledError, cancel_scope
from embedsuite.encoders import DEFAULT_ENCODER, get_encoder
from embedsuite.encoders.base import BaseEncoder
from embedsuite.errors import EmbedsuiteError
from embedsuite.registry import Registry

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["TABS", "AppContext", "RequestTimeoutError", "TabSpec", "register_tab",
           "request_timeout", "reveal", "server_stats", "ui_errors"]

#: Limits applied to user input in the app (issue: resource limits); the request time
#: limit is :func:`request_timeout` (``EMBEDSUITE_REQUEST_TIMEOUT``).
#: Each can be raised (or lowered) with the environment variable of the same name
#: prefixed ``EMBEDSUITE_`` (e.g. ``EMBEDSUITE_MAX_BATCH=1000``), read when the app starts.


def _env_limit(name: str, default: int) -> int:
    """A positive int limit from ``EMBEDSUITE_<name>``, else ``default`` (bad values logged)."""
    raw = os.environ.get(f"EMBEDSUITE_{name}", "").strip().replace("_", "")
    if not raw:
        return default
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    logger.warning("EMBEDSUITE_%s=%r is not a positive whole number; using %d", name, raw,
                   default)
    return default


MAX_TEXT_CHARS = _env_limit("MAX_TEXT_CHARS", 20_000)
MAX_BATCH = _env_limit("MAX_BATCH", 256)
MAX_UPLOAD_BYTES = _env_limit("MAX_UPLOAD_BYTES", 20 * 1024 * 1024)


def _nbytes(obj: Any, depth: int = 0) -> int:
    """A rough size of a cached resource: the arrays it holds (heads, indexes, lists)."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if depth > 3:
        return 0
    if isinstance(obj, dict):
        return sum(_nbytes(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v, depth + 1) for v in obj[:1000])
    if hasattr(obj, "__dict__"):
        return sum(_nbytes(v, depth + 1) for v in vars(obj).values())
    return 0


_MISSING = object()

#: Resources never evicted: the shipped heads every request uses.
PINNED_RESOURCES = ("sentiment:default", "sentiment:batcher", "qa-head", "recommend:demo")


@dataclass
class AppContext:
    """Shared state of one app: the encoder (loaded once, used by every tab) and caches.

    Attributes:
        encoder_name: The shared encoder's registry name or folder.
        allowed_encoders: The encoders a web request may load (the Compare and Inside
            tabs); the shared encoder is always allowed. ``None``: the shared encoder and
            the other member of its family.
        max_encoders: Most extra encoders kept loaded at once (least recently used
            goes first).
        max_resources: Most cached resources (uploaded catalogues, custom heads, bias
            results); the shipped heads (:data:`PINNED_RESOURCES`) do not count.
        max_resource_bytes: Memory budget of those resources (their arrays).
        batch_window_ms: Micro-batching window of the shared encoder (``None``: off),
            see :mod:`embedsuite.encoders.batching`.
        batch_max: Most texts in one batched pass.
        results_dir: The only folder the Compare tab reads results from.
        resources: A per-app store tabs may use for loaded heads, indexes, ...
    """

    encoder_name: str = DEFAULT_ENCODER
    allowed_encoders: tuple[str, ...] | None = None
    max_encoders: int = 2
    max_resources: int = 32
    max_resource_bytes: int = 2 * 1024**3
    batch_window_ms: float | None = None
    batch_max: int = 32
    results_dir: str | os.PathLike[str] = "results"
    resources: collections.OrderedDict[str, Any] = field(
        default_factory=collections.OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _batched: Any = field(default=None, repr=False)
    _creating: dict[tuple[int, str], threading.Lock] = field(default_factory=dict,
                                                             repr=False)
    _extra: collections.OrderedDict[str, BaseEncoder] = field(
        default_factory=collections.OrderedDict, repr=False)
    ready: threading.Event = field(default_factory=threading.Event, repr=False)
    _session_dirs: dict[str, list[Path]] = field(default_factory=dict, repr=False)
    _tmp_root: Path | None = field(default=None, repr=False)

    @property
    def encoder(self) -> BaseEncoder:
        """The shared encoder (one instance per process), behind the micro-batcher if on."""
        enc = get_encoder(self.encoder_name)
        if self.batch_window_ms is None:
            return enc
        batched = self._batched  # every request reads this: no lock once it exists
        if batched is None or batched.encoder is not enc:
            from embedsuite.encoders.batching import BatchingEncoder

            with self._lock:
                if self._batched is None or self._batched.encoder is not enc:
                    self._batched = BatchingEncoder(enc, window_ms=self.batch_window_ms,
                                                    max_batch=self.batch_max)
                batched = self._batched
        return cast(BaseEncoder, batched)

    def allowed(self) -> list[str]:
        """The encoder names a request may ask for, the shared one first."""
        from embedsuite.encoders.families import FAMILIES, family_of

        fam = family_of(self.encoder_name)
        names = (list(self.allowed_encoders) if self.allowed_encoders is not None
                 else list(FAMILIES.get(fam).members) if fam else [])
        return list(dict.fromkeys([self.encoder_name, *names]))

    def encoder_for(self, name: str) -> BaseEncoder:
        """The encoder ``name`` if the server allows it; extra encoders are kept in an LRU.

        Raises:
            ValueError: ``name`` is not in the server's allow-list.
        """
        if name == self.encoder_name:
            return self.encoder
        allowed = self.allowed()
        if name not in allowed:
            raise ValueError(f"This server does not offer the encoder {name!r}; it offers "
                             f"{', '.join(allowed)}. (The server's --encoders option sets "
                             f"the list.)")

        def trim() -> None:
            while len(self._extra) > max(0, self.max_encoders):
                old, _ = self._extra.popitem(last=False)
                logger.info("encoder %s unloaded (least recently used; max_encoders=%d)",
                            old, self.max_encoders)

        return cast(BaseEncoder, self._create_once(
            self._extra, name, lambda: get_encoder(name, shared=False), trim))

    def _create_once(self, store: collections.OrderedDict[str, Any], key: str,
                     make: Callable[[], Any], evict: Callable[[], None]) -> Any:
        """``store[key]`` (refreshed as most recently used), else ``make()`` once (other
        callers of the key wait for it), stored, then ``evict()``. ``make`` (loading a
        head or an encoder: seconds) runs under its key's lock only, so it does not hold
        up requests for what already exists."""

        def find() -> Any:
            if key in store:
                store.move_to_end(key)
                return store[key]
            return _MISSING

        with self._lock:
            hit = find()
            if hit is not _MISSING:
                return hit
            creating = self._creating.setdefault((id(store), key), threading.Lock())
        with creating:
            with self._lock:
                hit = find()  # made by another thread meanwhile
                if hit is not _MISSING:
                    return hit
            value = make()
            with self._lock:
                store[key] = value
                self._creating.pop((id(store), key), None)
                evict()
            return value

    def session_dir(self, session: str | None, prefix: str = "work-") -> Path:
        """A new temporary folder owned by a browser session, removed when the session
        ends (:meth:`end_session`, called by the page's unload event) or the app closes."""
        with self._lock:
            if self._tmp_root is None:
                self._tmp_root = Path(tempfile.mkdtemp(prefix="embedsuite-app-"))
            d = Path(tempfile.mkdtemp(prefix=prefix, dir=self._tmp_root))
            self._session_dirs.setdefault(session or "", []).append(d)
            return d

    def end_session(self, session: str | None) -> int:
        """Remove the temporary folders of ``session``; return how many were removed."""
        with self._lock:
            dirs = self._session_dirs.pop(session or "", [])
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        if dirs:
            logger.info("session ended: %d temporary folder(s) removed", len(dirs))
        return len(dirs)

    def close(self) -> None:
        """Remove every temporary folder (the server is stopping)."""
        with self._lock:
            self._session_dirs.clear()
            root, self._tmp_root = self._tmp_root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    def resource(self, key: str, factory: Callable[[], Any]) -> Any:
        """Return ``resources[key]``, creating it once with ``factory`` (thread-safe).

        Resources other than the shipped heads form an LRU bounded by
        :attr:`max_resources` and :attr:`max_resource_bytes`.
        """
        return self._create_once(self.resources, key, factory,
                                 lambda: self._evict(keep=key))

    def _evict(self, keep: str) -> None:
        loose = [k for k in self.resources if k not in PINNED_RESOURCES]
        sizes = {k: _nbytes(self.resources[k]) for k in loose}
        total = sum(sizes.values())
        count = len(loose)
        for k in list(loose):
            if count <= self.max_resources and total <= self.max_resource_bytes:
                break
            if k == keep:
                continue
            del self.resources[k]
            count -= 1
            total -= sizes[k]
            logger.info("resource %s evicted (least recently used)", k)


@dataclass(frozen=True)
class TabSpec:
    """A tab: its title, its position, and a builder called inside ``gr.Tab``."""

    title: str
    order: int
    build: Callable[[AppContext], None]


TABS: Registry[TabSpec] = Registry("tab")


def register_tab(name: str, title: str, order: int) -> Callable[[Callable[[AppContext], None]],
                                                                Callable[[AppContext], None]]:
    """Decorator registering ``build(ctx)`` as a tab of the app."""

    def deco(fn: Callable[[AppContext], None]) -> Callable[[AppContext], None]:
        TABS.register(name, TabSpec(title=title, order=order, build=fn))
        return fn

    return deco


_STATS: dict[str, collections.deque[float]] = collections.defaultdict(
    lambda: collections.deque(maxlen=20_000))
_STATS_LOCK = threading.Lock()


def record_time(name: str, seconds: float) -> None:
    """Record one run of handler ``name`` for :func:`server_stats` (UI and REST alike)."""
    with _STATS_LOCK:
        _STATS[name].append(seconds)


#: The exceptions that are a user's input error (a message, never a traceback).
INPUT_ERRORS: tuple[type[Exception], ...] = (EmbedsuiteError, ValueError, TypeError, KeyError,
                                             FileNotFoundError)


def error_message(exc: BaseException) -> str:
    """``exc``'s message for the user (a ``KeyError``'s without the quotes repr adds)."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def server_stats() -> dict[str, dict[str, float]]:
    """Server-side handler times: count, p50 and p95 in milliseconds per handler."""
    with _STATS_LOCK:
        snap = {k: list(v) for k, v in _STATS.items()}
    out = {}
    for name, times in sorted(snap.items()):
        arr = np.asarray(times) * 1000
        out[name] = {"count": len(arr), "p50_ms": round(float(np.percentile(arr, 50)), 2),
                     "p95_ms": round(float(np.percentile(arr, 95)), 2)}
    return out


#: Environment variables holding the request time limits, in seconds (0 turns a limit off).
TIMEOUT_ENV = "EMBEDSUITE_REQUEST_TIMEOUT"
LONG_TIMEOUT_ENV = "EMBEDSUITE_LONG_REQUEST_TIMEOUT"
#: Default limit of one request (classify, search, answer, ...).
DEFAULT_REQUEST_TIMEOUT_S = 60.0
#: Default limit of the requests that train or embed a whole upload (``ui_errors(long=True)``).
DEFAULT_LONG_REQUEST_TIMEOUT_S = 1800.0


class RequestTimeoutError(EmbedsuiteError):
    """A request ran past the app's time limit."""


def request_timeout(long: bool = False) -> float | None:
    """The time limit of one request in seconds (``None``: no limit).

    Read from ``EMBEDSUITE_REQUEST_TIMEOUT`` (``EMBEDSUITE_LONG_REQUEST_TIMEOUT`` for
    training / upload requests) at each call, so a running app can be tested with
    other values; ``0`` or ``none`` turns the limit off. An unusable value is logged
    and the default is used.
    """
    env, default = ((LONG_TIMEOUT_ENV, DEFAULT_LONG_REQUEST_TIMEOUT_S) if long
                    else (TIMEOUT_ENV, DEFAULT_REQUEST_TIMEOUT_S))
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    if raw.lower() in ("0", "none", "off"):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        logger.warning("%s=%r is not a number of seconds; using %g s", env, raw, default)
        return default
    return value or None


def timeout_message(limit: float, long: bool = False) -> str:
    """What a request past its time limit tells the user (how to avoid it, how to raise it)."""
    env = LONG_TIMEOUT_ENV if long else TIMEOUT_ENV
    return (f"The request took longer than {limit:g} s, the app's time limit, and was "
            f"stopped waiting for. Send fewer or shorter texts (or a smaller file), use the "
            f"Python API or the CLI for big jobs, or start the app with a higher {env} "
            f"(seconds; 0 = no limit).")


def run_with_timeout(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                      limit: float | None, long: bool) -> Any:
    """``fn(*args, **kwargs)``, or :class:`RequestTimeoutError` after ``limit`` seconds.

    The call runs in a daemon thread under a :class:`~embedsuite.cancel.CancelToken`.
    Past its limit the user gets the message at once and the token is cancelled: the
    encoders check it between batches, so the work stops within one batch instead of
    using the CPU for a result nobody reads.
    """
    if limit is None:
        return fn(*args, **kwargs)
    box: dict[str, Any] = {}
    run = contextvars.copy_context().run
    token = CancelToken()

    def scoped() -> Any:
        with cancel_scope(token):
            return fn(*args, **kwargs)

    def target() -> None:
        try:
            box["value"] = run(scoped)
        except OperationCancelledError:
            logger.info("%s stopped after its request timed out", fn.__name__)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"request-{fn.__name__}", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        token.cancel(f"{fn.__name__} ran past the request limit of {limit:g} s")
        logger.warning("%s ran past the request limit of %g s; it is cancelled and stops at "
                       "its next batch", fn.__name__, limit)
        raise RequestTimeoutError(timeout_message(limit, long))
    if "error" in box:
        raise box["error"]
    return box.get("value")


@overload
def ui_errors(fn: F, *, long: bool = ...) -> F: ...


@overload
def ui_errors(fn: None = ..., *, long: bool = ...) -> Callable[[F], F]: ...


def ui_errors(fn: F | None = None, *, long: bool = False) -> F | Callable[[F], F]:
    """Turn domain errors into ``gr.Error`` (a readable message in the page) at the UI edge.

    Unexpected exceptions are logged with their traceback server-side and shown
    as a short message, never as a stack trace. Each call runs under the request
    time limit (:func:`request_timeout`; ``@ui_errors(long=True)`` for handlers that
    train or embed a whole upload) and past it the user gets a message saying how
    to fix it. The handler's run time is recorded for :func:`server_stats`.
    """
    if fn is None:
        return functools.partial(ui_errors, long=long)
    import gradio as gr

    name = fn.__name__
    func: Callable[..., Any] = fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return run_with_timeout(func, args, kwargs, request_timeout(long), long)
        except gr.Error as exc:
            exc.print_exception = False
            logger.info("input error in %s: %s", name, str(exc.message)[:200])
            raise
        except INPUT_ERRORS as exc:
            # a user's input error: one log line, no traceback (gradio would print one)
            msg = error_message(exc)
            logger.info("input error in %s: %s", name, msg.splitlines()[0] if msg else "")
            raise gr.Error(msg, print_exception=False) from None
        except Exception as exc:
            logger.exception("unexpected error in %s", name)  # a real fault: the traceback
            raise gr.Error(f"Something went wrong ({type(exc).__name__}); the details are in "
                           f"the server log. The app keeps running.",
                           print_exception=False) from None
        finally:
            record_time(name, time.perf_counter() - t0)

    return wrapper


def reveal(event: Any, *components: Any) -> Any:
    """Show ``components`` (result boxes hidden on a fresh page) once ``event`` succeeded.

    A private step of its own, so the event's API output stays the plain values and a
    failed event leaves the page as it was.
    """
    import gradio as gr

    n = len(components)

    def show() -> Any:
        updates = [gr.update(visible=True) for _ in range(n)]
        return updates[0] if n == 1 else updates

    return event.success(show, outputs=list(components), api_visibility="private",
                         queue=False, show_progress="hidden")
