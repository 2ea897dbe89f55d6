"""Helpers shared by the tabs: the app context, tab registry, and the UI error edge."""

from __future__ import annotations

import collections
import contextvars
import functools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import numpy as np

from embedsuite.encoders import DEFAULT_ENCODER, get_encoder
from embedsuite.encoders.base import BaseEncoder
from embedsuite.errors import EmbedsuiteError
from embedsuite.registry import Registry

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["TABS", "AppContext", "RequestTimeoutError", "TabSpec", "register_tab",
           "request_timeout", "server_stats", "ui_errors"]

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


@dataclass
class AppContext:
    """Shared state of one app: the encoder (loaded once, used by every tab) and caches.

    Attributes:
        encoder_name: The shared encoder's registry name or folder.
        resources: A per-app store tabs may use for loaded heads, indexes, ...
    """

    encoder_name: str = DEFAULT_ENCODER
    resources: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def encoder(self) -> BaseEncoder:
        """The shared encoder (one instance per process)."""
        return get_encoder(self.encoder_name)

    def resource(self, key: str, factory: Callable[[], Any]) -> Any:
        """Return ``resources[key]``, creating it once with ``factory`` (thread-safe)."""
        with self._lock:
            if key not in self.resources:
                self.resources[key] = factory()
            return self.resources[key]


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


def _timeout_message(limit: float, long: bool) -> str:
    env = LONG_TIMEOUT_ENV if long else TIMEOUT_ENV
    return (f"The request took longer than {limit:g} s, the app's time limit, and was "
            f"stopped waiting for. Send fewer or shorter texts (or a smaller file), use the "
            f"Python API or the CLI for big jobs, or start the app with a higher {env} "
            f"(seconds; 0 = no limit).")


def _run_with_timeout(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                      limit: float | None, long: bool) -> Any:
    """``fn(*args, **kwargs)``, or :class:`RequestTimeoutError` after ``limit`` seconds.

    The call runs in a daemon thread; Python cannot stop a thread, so a call past
    its limit finishes in the background (its result is dropped) while the user
    gets the message at once.
    """
    if limit is None:
        return fn(*args, **kwargs)
    box: dict[str, Any] = {}
    run = contextvars.copy_context().run

    def target() -> None:
        try:
            box["value"] = run(fn, *args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"request-{fn.__name__}", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        logger.warning("%s ran past the request limit of %g s; it finishes in the background "
                       "and its result is dropped", fn.__name__, limit)
        raise RequestTimeoutError(_timeout_message(limit, long))
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
            return _run_with_timeout(func, args, kwargs, request_timeout(long), long)
        except gr.Error:
            raise
        except (EmbedsuiteError, ValueError, TypeError, KeyError, FileNotFoundError) as exc:
            msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            raise gr.Error(msg) from None
        except Exception as exc:
            logger.exception("unexpected error in %s", name)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}); the details are in "
                           f"the server log. The app keeps running.") from None
        finally:
            with _STATS_LOCK:
                _STATS[name].append(time.perf_counter() - t0)

    return wrapper
