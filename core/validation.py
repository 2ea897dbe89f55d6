"""Input checks shared by the encoders and the heads."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["as_text_list", "check_text"]


def check_text(text: object, where: str = "text", *, allow_empty: bool = False) -> str:
    """Return ``text`` if it is a usable string, else raise a clear error.

    Args:
        text: The value to check.
        where: How the value is named in the message (``"texts[3]"``).
        allow_empty: Accept empty or whitespace-only strings.

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``text`` is empty or whitespace only (unless allowed).
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
