"""Cooperative cancellation: long work checks a token between batches and stops.

Python cannot stop a thread from outside. A request that runs past its time limit
(the app, the REST API) therefore sets the :class:`CancelToken` of its context, and
the loops that do the work (the encoders' batch loops, the micro-batcher) call
:func:`check_cancelled` between batches: the work stops within one batch instead of
finishing in the background.

>>> token = CancelToken()
>>> with cancel_scope(token):
...     check_cancelled()          # not cancelled: returns
>>> token.cancel("too slow")
>>> with cancel_scope(token):
...     check_cancelled()
Traceback (most recent call last):
...
embedsuite.cancel.OperationCancelledError: too slow
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

from embedsuite.errors import EmbedsuiteError

__all__ = ["CancelToken", "OperationCancelledError", "cancel_scope", "check_cancelled",
           "current_token"]


class OperationCancelledError(EmbedsuiteError):
    """The work was cancelled (its request timed out or its client went away)."""


class CancelToken:
    """A flag one thread sets and the worker checks between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "the operation was cancelled"

    def cancel(self, reason: str | None = None) -> None:
        """Ask the work to stop at its next check."""
        if reason:
            self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`OperationCancelledError` once cancelled."""
        if self._event.is_set():
            raise OperationCancelledError(self.reason)


_CURRENT: contextvars.ContextVar[CancelToken | None] = contextvars.ContextVar(
    "embedsuite_cancel_token", default=None)


def current_token() -> CancelToken | None:
    """The token of the running context, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def cancel_scope(token: CancelToken) -> Iterator[CancelToken]:
    """Run the body with ``token`` as the context's token."""
    reset = _CURRENT.set(token)
    try:
        yield token
    finally:
        _CURRENT.reset(reset)


def check_cancelled() -> None:
    """Raise :class:`OperationCancelledError` when the context's token was cancelled."""
    token = _CURRENT.get()
    if token is not None:
        token.check()
