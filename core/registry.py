"""Name -> object registries that reject duplicates and answer typos with "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from embedsuite.errors import UnknownNameError

T = TypeVar("T")

__all__ = ["Registry", "did_you_mean"]


def did_you_mean(name: str, known: list[str], *, n: int = 3, cutoff: float = 0.5) -> str:
    """``" Did you mean 'a' or 'b'?"`` for the close matches of ``name``, else ``""``."""
    close = difflib.get_close_matches(name, known, n=n, cutoff=cutoff)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """A mapping from names to objects (classes, factories, tasks).

    Args:
        kind: What the registry holds, used in messages ("encoder", "task", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator.

        Raises:
            ValueError: If the name is already taken or not a non-empty string.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")

        def _add(item: T) -> T:
            if name in self._items:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered; pick another name "
                    f"or unregister the old one first"
                )
            self._items[name] = item
            return item

        if obj is None:
            return _add
        return _add(obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (unknown names raise like :meth:`get`)."""
        self.get(name)
        del self._items[name]

    def get(self, name: str) -> T:
        """Return the object registered as ``name``.

        Raises:
            UnknownNameError: With close matches ("did you mean ...?") and the known names.
        """
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        """The message for an unknown ``name``."""
        known = ", ".join(sorted(self._items)) or "(none registered)"
        hint = did_you_mean(name, list(self._items)) if isinstance(name, str) else ""
        return f"Unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {known}."

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, object) pairs in registration order."""
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
