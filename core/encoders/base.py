"""The ``Encoder`` protocol that every head depends on, and a cached base class."""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from embedsuite.cache import EmbeddingCache, default_cache, make_key
from embedsuite.cancel import check_cancelled
from embedsuite.errors import TokenEmbeddingsUnavailableError
from embedsuite.validation import as_text_list

logger = logging.getLogger(__name__)

Role = Literal["query", "passage"]
ROLES: tuple[str, ...] = ("query", "passage")
#: vectors written to the cache at least this often during one long encode
_FLUSH_EVERY = 2048

__all__ = [
    "ROLES", "BaseEncoder", "Encoder", "Role", "TokenEmbeddings", "check_role", "encoder_depth",
    "progress", "resolve_layers", "scale_layers",
]


@dataclass
class TokenEmbeddings:
    """Per-token vectors of one text, with character offsets into the ORIGINAL text.

    Attributes:
        text: The text as given.
        vectors: ``(n_tokens, dim)`` float32, one row per token of ``text``
            (special and prompt tokens excluded).
        offsets: ``(n_tokens, 2)`` int, ``text[start:end]`` is the token's span.
        tokens: The token strings.
        pair_vectors: With a ``pair`` encoded in the same sequence, its token
            vectors (prompt included), else ``None``.
        truncated: Whether the text was cut at the encoder's limit.
        sentence: The encoder's own sentence vector of the text (L2-normalised, what
            ``encode(text, role)`` gives) computed from the same forward pass, when the
            encoder can give it (no ``pair``); else ``None``.
    """

    text: str
    vectors: np.ndarray
    offsets: np.ndarray
    tokens: list[str] = field(default_factory=list)
    pair_vectors: np.ndarray | None = None
    truncated: bool = False
    sentence: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


@runtime_checkable
class Encoder(Protocol):
    """What a head needs from a text encoder (cf. MTEB's ``EncoderProtocol``)."""

    name: str
    dim: int
    max_seq_length: int
    has_token_embeddings: bool

    @property
    def fingerprint(self) -> str:
        """Identifies the exact weights (and settings); keys caches and saved heads."""
        ...

    def encode(
        self,
        texts: str | Sequence[str],
        role: Role = "query",
        *,
        batch_size: int = 32,
        show_progress: bool | None = None,
        use_cache: bool = True,
    ) -> np.ndarray:
        """L2-normalised float32: ``(dim,)`` for a str, ``(n, dim)`` for a list."""
        ...

    def encode_tokens(
        self,
        texts: str | Sequence[str],
        role: Role = "passage",
        *,
        pair: str | Sequence[str] | None = None,
        pair_role: Role = "query",
        layers: Sequence[int] | None = None,
        batch_size: int = 16,
        show_progress: bool | None = None,
    ) -> TokenEmbeddings | list[TokenEmbeddings]:
        """Token vectors with offsets into the original text (see :class:`TokenEmbeddings`)."""
        ...

    def prepare(self, texts: Sequence[str]) -> None:
        """Adapt to a corpus before use (no-op for pretrained encoders; ``tfidf`` fits here)."""
        ...


def check_role(role: object) -> Role:
    """Validate an encode role."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return role  # type: ignore[return-value]


def encoder_depth(encoder: object) -> int | None:
    """Transformer layers of ``encoder`` when it says (its ``num_layers``), else ``None``."""
    n = getattr(encoder, "num_layers", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def scale_layers(layers: Sequence[int], depth: int, reference: int = 12) -> list[int]:
    """Map hidden-state indices chosen for a ``reference``-layer encoder onto ``depth`` layers.

    Index ``i`` becomes ``ceil(i * depth / reference)`` (at least 1), duplicates dropped and
    order kept; negative indices (counted from the top) stay as they are. For
    ``depth == reference`` nothing changes: ``(6, 8, 10, 12)`` on a 6-layer model gives
    ``[3, 4, 5, 6]``, ``(3, 6, 9, 12)`` gives ``[2, 3, 5, 6]``.
    """
    if depth <= 0 or reference <= 0:
        raise ValueError(f"depth and reference must be positive, got {depth} and {reference}")
    out: list[int] = []
    for i in layers:
        j = int(i) if int(i) <= 0 else max(1, math.ceil(int(i) * depth / reference))
        if j not in out:
            out.append(j)
    return out


def resolve_layers(layers: Sequence[int] | None, encoder: object,
                   default: Sequence[int], reference: int = 12) -> list[int]:
    """The hidden states a token head reads: ``layers`` as given, or ``default`` (chosen for a
    ``reference``-layer encoder) scaled to the depth of ``encoder`` when it reports one."""
    if layers is not None:
        return [int(x) for x in layers]
    depth = encoder_depth(encoder)
    return scale_layers(default, depth, reference) if depth else [int(x) for x in default]


def progress(total: int, desc: str, show: bool | None, threshold: int = 256) -> tqdm:
    """A tqdm bar, on by default only for long work on a terminal.

    ``EMBEDSUITE_PROGRESS=0`` turns bars off, ``=1`` forces them on.
    """
    env = os.environ.get("EMBEDSUITE_PROGRESS")
    if show is None:
        show = (env == "1") or (env != "0" and sys.stderr.isatty() and total >= threshold)
    return tqdm(total=total, desc=desc, disable=not show, unit="text", leave=False)


class BaseEncoder:
    """Shared plumbing: validation, the on-disk cache, batching, progress.

    Subclasses set ``name``, ``dim``, ``max_seq_length``, ``has_token_embeddings``,
    ``languages``, ``source`` and implement :meth:`_encode_batch` (and, for token
    embeddings, :meth:`encode_tokens`).
    """

    name: str = "base"
    dim: int = 0
    max_seq_length: int = 512
    has_token_embeddings: bool = False
    languages: str = ""
    source: str = ""

    def __init__(self, cache: EmbeddingCache | None = None) -> None:
        self._cache = cache

    # -- to implement -----------------------------------------------------
    @property
    def fingerprint(self) -> str:
        raise NotImplementedError

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        """Encode one batch; return ``(n, dim)`` float32 (normalisation is done here after)."""
        raise NotImplementedError

    def _count_too_long(self, texts: list[str], role: Role) -> list[tuple[int, int]]:
        """(position, n_tokens) of texts over :attr:`max_seq_length` (override where known)."""
        return []

    # -- public -----------------------------------------------------------
    @property
    def cache(self) -> EmbeddingCache:
        """The embedding cache (the process-wide default unless one was given)."""
        return self._cache if self._cache is not None else default_cache()

    def is_built(self) -> bool:
        """Whether the weights are ready locally (override for encoders built on first use)."""
        return True

    def cached_vectors(self, texts: Sequence[str], role: Role) -> dict[str, np.ndarray]:
        """The sentence vectors of ``texts`` already in the cache (nothing is computed)."""
        fp = self.fingerprint
        keys = {make_key(fp, role, t): t for t in texts}
        found = self.cache.get_many(set(keys))
        return {keys[k]: v for k, v in found.items() if v.shape == (self.dim,)}

    def remember_vectors(self, vectors: Mapping[str, np.ndarray], role: Role) -> None:
        """Put sentence vectors computed elsewhere (e.g. by :meth:`encode_tokens`) in the
        cache, so that :meth:`encode` finds them."""
        if vectors:
            fp = self.fingerprint
            self.cache.put_many({make_key(fp, role, t): np.asarray(v, np.float32)
                                 for t, v in vectors.items()}, fp)

    def encode(
        self,
        texts: str | Sequence[str],
        role: Role = "query",
        *,
        batch_size: int = 32,
        show_progress: bool | None = None,
        use_cache: bool = True,
    ) -> np.ndarray:
        """Embed text(s); L2-normalised float32 ``(dim,)`` for a str, ``(n, dim)`` for a list.

        Raises:
            TypeError: A text is not a str (its position is named).
            ValueError: A text is empty or whitespace only, or ``role`` is unknown.
        """
        role = check_role(role)
        items, single = as_text_list(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(items), self.dim), dtype=np.float32)
        todo = list(range(len(items)))
        keys: list[bytes] = []
        if use_cache and items:
            fp = self.fingerprint
            keys = [make_key(fp, role, t) for t in items]
            found = self.cache.get_many(set(keys))
            todo = []
            for i, k in enumerate(keys):
                arr = found.get(k)
                if arr is not None and arr.shape == (self.dim,):
                    out[i] = arr
                else:
                    todo.append(i)
        if todo:
            # unique texts only, longest first within batches keeps padding low
            uniq: dict[str, list[int]] = {}
            for i in todo:
                uniq.setdefault(items[i], []).append(i)
            order = sorted(uniq, key=len, reverse=True)
            too_long = self._count_too_long(order, role)
            if too_long:
                _, n_tok = too_long[0]
                logger.warning(
                    "%d of %d texts are longer than %s's limit of %d tokens and were truncated "
                    "(e.g. a text of %d tokens); split long documents into passages to keep "
                    "their ends", len(too_long), len(order), self.name, self.max_seq_length, n_tok,
                )
            new: dict[bytes, np.ndarray] = {}
            with progress(len(order), f"encode {self.name}", show_progress) as bar:
                for s in range(0, len(order), batch_size):
                    check_cancelled()  # a timed-out request stops here, within one batch
                    batch = order[s : s + batch_size]
                    vecs = np.asarray(self._encode_batch(batch, role), dtype=np.float32)
                    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
                    vecs = vecs / np.maximum(norms, 1e-12)
                    for t, v in zip(batch, vecs, strict=True):
                        for i in uniq[t]:
                            out[i] = v
                            if keys:
                                new[keys[i]] = v
                    bar.update(len(batch))
                    if len(new) >= _FLUSH_EVERY:  # an interrupted long encode keeps its work
                        self.cache.put_many(new, self.fingerprint)
                        new = {}
            if new:
                self.cache.put_many(new, self.fingerprint)
        return out[0] if single else out

    def encode_tokens(
        self,
        texts: str | Sequence[str],
        role: Role = "passage",
        *,
        pair: str | Sequence[str] | None = None,
        pair_role: Role = "query",
        layers: Sequence[int] | None = None,
        batch_size: int = 16,
        show_progress: bool | None = None,
    ) -> TokenEmbeddings | list[TokenEmbeddings]:
        """Token vectors; encoders without them raise :class:`TokenEmbeddingsUnavailableError`."""
        raise TokenEmbeddingsUnavailableError(
            f"encoder {self.name!r} gives sentence vectors only, no token embeddings; "
            f"use an encoder with token embeddings (e.g. 'e5-small' or 'minilm-l6') for this head"
        )

    def prepare(self, texts: Sequence[str]) -> None:
        """Adapt to a corpus before use (a no-op for pretrained encoders)."""

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary (for ``embedsuite encoders`` and the app)."""
        return {
            "name": self.name,
            "dim": self.dim,
            "max_seq_length": self.max_seq_length,
            "languages": self.languages,
            "token_embeddings": self.has_token_embeddings,
            "source": self.source,
            "built": self.is_built(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"
