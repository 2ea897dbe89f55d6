"""A small deterministic fake encoder for unit tests (no model, no downloads).

Texts are split into lower-cased word tokens; each token gets a fixed random
vector (seeded by its hash) and a sentence is the mean of its tokens, so texts
that share words are similar. Like a real encoder, the vectors depend on the role
(``query`` / ``passage``: the same text gets close but different vectors) and on the
hidden layer asked for (each layer its own block), so a test catches a head that reads
the wrong role or the wrong layers. Token embeddings carry exact character offsets.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from embedsuite.cache import EmbeddingCache
from embedsuite.encoders.base import BaseEncoder, Role, TokenEmbeddings, check_role
from embedsuite.validation import as_text_list

__all__ = ["FakeEncoder"]

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class FakeEncoder(BaseEncoder):
    """Hash-based bag-of-words encoder.

    Args:
        dim: Vector size.
        name: Registry-like name (part of the fingerprint).
        cache: An :class:`EmbeddingCache` (tests pass a temporary one).
        token_embeddings: Whether :meth:`encode_tokens` works.
    """

    max_seq_length = 128
    languages = "any (hashing)"
    source = "embedsuite.testing (for tests)"

    def __init__(self, dim: int = 16, name: str = "fake", cache: EmbeddingCache | None = None,
                 token_embeddings: bool = True) -> None:
        super().__init__(cache=cache)
        self.dim = dim
        self.name = name
        self.has_token_embeddings = token_embeddings
        self.calls = 0  # texts actually computed (cache misses)
        self.token_calls = 0  # texts given to encode_tokens (never cached)

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:fake-{self.dim}"

    #: how far a role, and a layer, move a token's vector from its base vector
    ROLE_SHIFT = 0.3
    LAYER_SHIFT = 0.5

    def _hashed(self, key: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"),
                                              digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)

    def _vec(self, token: str, role: str = "", layer: int | None = None) -> np.ndarray:
        """The token's vector: a base vector of the (lower-cased) token, moved by the role
        and by the layer (``None``: the output layer, no layer shift)."""
        tok = token.lower()
        v = self._hashed(tok)
        if role:
            v = v + self.ROLE_SHIFT * self._hashed(f"{tok}\x00role:{role}")
        if layer is not None:
            v = v + self.LAYER_SHIFT * self._hashed(f"{tok}\x00layer:{layer}")
        return v.astype(np.float32)

    def _token_block(self, toks: Sequence[str], role: str,
                     layers: Sequence[int] | None) -> np.ndarray:
        """``(n, dim * len(layers))``: each asked layer's vectors, in the order asked."""
        ids: list[int | None] = list(layers) if layers is not None else [None]
        blocks = [np.array([self._vec(t, role, lay) for t in toks], np.float32)
                  .reshape(-1, self.dim) for lay in ids]
        return np.concatenate(blocks, axis=1)

    def tokenize(self, text: str) -> list[tuple[str, int, int]]:
        """(token, start, end) triples."""
        return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]

    def _sentence(self, text: str, role: Role) -> np.ndarray:
        toks = self.tokenize(text)[: self.max_seq_length]
        if toks:
            return np.mean([self._vec(tok, role) for tok, _, _ in toks], axis=0)
        return self._vec("<empty>", role)

    @staticmethod
    def _unit(v: np.ndarray) -> np.ndarray:
        """``v`` scaled to length 1, as ``encode`` returns it."""
        return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            out[i] = self._sentence(t, role)
        return out

    def encode_tokens(self, texts: str | Sequence[str], role: Role = "passage", *,
                      pair: str | Sequence[str] | None = None, pair_role: Role = "query",
                      layers: Sequence[int] | None = None, batch_size: int = 16,
                      show_progress: bool | None = None) -> TokenEmbeddings | list[TokenEmbeddings]:
        if not self.has_token_embeddings:
            return super().encode_tokens(texts, role)
        check_role(role)
        items, single = as_text_list(texts)
        self.token_calls += len(items)
        out: list[TokenEmbeddings] = []
        for t in items:
            toks = self.tokenize(t)
            truncated = len(toks) > self.max_seq_length
            toks = toks[: self.max_seq_length]
            vecs = self._token_block([tok for tok, _, _ in toks], role, layers)
            pv = None
            if pair is not None:
                ptxt = pair if isinstance(pair, str) else pair[len(out)]
                pv = self._token_block([tok for tok, _, _ in self.tokenize(ptxt)], pair_role,
                                       layers)
            out.append(TokenEmbeddings(
                text=t, vectors=vecs,
                offsets=np.array([(s, e) for _, s, e in toks], np.int64).reshape(-1, 2),
                tokens=[tok for tok, _, _ in toks], pair_vectors=pv, truncated=truncated,
                # like the real encoders: the pass's own sentence vector (none for pairs)
                sentence=None if pair is not None else self._unit(self._sentence(t, role))))
        return out[0] if single else out
