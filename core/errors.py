"""Exceptions raised by embedsuite.

Every message says what was expected, what came, and how to fix it.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError

__all__ = [
    "EmbedsuiteError",
    "EncoderMismatchError",
    "HeadFormatError",
    "NotFittedError",
    "TokenEmbeddingsUnavailableError",
    "UnknownNameError",
]


class EmbedsuiteError(Exception):
    """Base class of embedsuite's own errors."""


class UnknownNameError(EmbedsuiteError, KeyError):
    """A name that no registry knows (encoder, head, task, ...)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TokenEmbeddingsUnavailableError(EmbedsuiteError, NotImplementedError):
    """The encoder only gives sentence vectors, but token vectors were asked for."""


class EncoderMismatchError(EmbedsuiteError, ValueError):
    """A saved head is used beside a different encoder than it was trained with."""


class HeadFormatError(EmbedsuiteError, ValueError):
    """A saved head folder is missing, malformed or tampered with."""
