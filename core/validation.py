"""Input checks shared by the encoders and the heads."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence

from embedsuite.errors import EmbedsuiteError, HeadFormatError

__all__ = ["as_pair_list", "as_text_list", "check_text", "saved_head_errors"]

#: Lone UTF-16 surrogates: Python str can hold them, but they are not Unicode text and
#: tokenizers reject them with an obscure TypeError.
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: object, where: str = "text", *, allow_empty: bool = False) -> str:
    """Return ``text`` if it is a usable string, else raise a clear error.

    Args:
        text: The value to check.
        where: How the value is named in the message (``"texts[3]"``).
        allow_empty: Accept empty or whitespace-only strings.

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``text`` is empty or whitespace only (unless allowed), or holds an
            invalid (lone surrogate) character.
    """
    if not isinstance(text, str):
        raise TypeError(
            f"{where} must be a str, got {type(text).__name__} ({text!r:.60}); "
            f"convert it to text first, e.g. str(value)"
        )
    if not allow_empty and not text.strip():
        raise ValueError(
            f"{where} is empty or whitespace only; expected some text. "
            f"Remove empty entries before encoding"
        )
    if not text.isascii():
        bad = _SURROGATE.search(text)
        if bad is not None:
            raise ValueError(
                f"{where} holds an invalid character U+{ord(bad.group()):04X} (a lone surrogate) "
                f"at position {bad.start()}; this is not valid Unicode text, usually a file "
                f"decoded with errors='surrogateescape' or a broken JSON escape. Fix the source, "
                f"or clean it with text.encode('utf-8', 'replace').decode('utf-8')"
            )
    return text


def as_text_list(
    texts: object, name: str = "texts", *, allow_empty: bool = False
) -> tuple[list[str], bool]:
    """Normalise ``str | sequence of str`` into a list and a "was a single str" flag.

    Raises:
        TypeError: Not a str or a sequence of str (the message names the first bad position).
        ValueError: An empty or whitespace-only entry (position named).
    """
    if isinstance(texts, str):
        return [check_text(texts, name, allow_empty=allow_empty)], True
    if texts is None or isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Sequence):
        if texts is not None and hasattr(texts, "__iter__") and not isinstance(
            texts, (bytes, bytearray, dict)
        ):
            texts = list(texts)
        else:
            raise TypeError(
                f"{name} must be a str or a list of str, got {type(texts).__name__}"
            )
    items = list(texts)
    for i, t in enumerate(items):
        check_text(t, f"{name}[{i}]", allow_empty=allow_empty)
    return items, False


@contextlib.contextmanager
def saved_head_errors(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn the raw errors of rebuilding a head from an edited ``config.json`` (a missing
    key, a wrong type, shapes that do not fit the weights) into :class:`HeadFormatError`.

    embedsuite's own errors (:class:`EncoderMismatchError`, ...) pass through.
    """
    try:
        yield
    except EmbedsuiteError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise HeadFormatError(
            f"the {what} in {path} does not fit its config.json ({detail:.160}); the file was "
            f"edited or damaged. Re-save the head (head.save(folder)) or restore the folder"
        ) from None


def as_pair_list(pair: str | Sequence[str], n: int) -> list[str]:
    """The pair texts of ``encode_tokens``: one str for all ``n`` texts, or one per text.

    Raises:
        ValueError: A list whose length is not ``n`` (or an invalid text).
    """
    plist, single = as_text_list(pair, "pair")
    if single:
        plist = plist * n
    if len(plist) != n:
        raise ValueError(f"pair has {len(plist)} texts but texts has {n}; give one pair "
                         f"per text or a single str for all")
    return plist
