"""Helpers shared by the tabs: the app context, tab registry, and the UI error edge."""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from core.encoders import DEFAULT_ENCODER, get_encoder
from core.encoders.base import BaseEncoder
from core.errors import EmbedsuiteError
from core.registry import Registry

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["TABS", "AppContext", "TabSpec", "register_tab", "server_stats", "ui_errors"]

#: Limits applied to user input in the app (issue: resource limits).
MAX_TEXT_CHARS = 20_000
MAX_BATCH = 256
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


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


def ui_errors(fn: F) -> F:
    """Turn domain errors into ``gr.Error`` (a readable message in the page) at the UI edge.

    Unexpected exceptions are logged with their traceback server-side and shown
    as a short message, never as a stack trace. The handler's run time is recorded
    for :func:`server_stats`.
    """
    import gradio as gr

    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (EmbedsuiteError, ValueError, TypeError, KeyError, FileNotFoundError) as exc:
            msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            raise gr.Error(msg) from None
        except Exception as exc:
            logger.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}); the details are in "
                           f"the server log. The app keeps running.") from None
        finally:
            with _STATS_LOCK:
                _STATS[name].append(time.perf_counter() - t0)

    return wrapper  # type: ignore[return-value]
