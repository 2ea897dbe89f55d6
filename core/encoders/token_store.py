"""A disk cache of frozen token states, shared by the heads that read them (sentiment, QA).

Encoders cache sentence vectors themselves; token states are far larger, and a head
trained on a frozen encoder reads them again every epoch, so they are computed once and
kept here: float16 rows in chunk files under
``root/<encoder fingerprint>/<role>-L<layers>-<precision>/``, where ``precision`` is how
the encoder ran (``fp32``, or ``bf16`` under CPU bfloat16 autocast). Everything that
changes the numbers is in that key. Each chunk is ``chunk-N.npy`` (the token rows),
``chunk-N.offsets.npy`` (their character spans) and ``chunk-N.json`` (texts, token counts,
truncation flags), written atomically with the JSON last, so an interrupted run keeps
every chunk it finished and never reads a half-written one.

A folder holding a superset of the asked layers serves them: columns are picked in the
order asked for, whatever the stored order.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from embedsuite.atomic import atomic_write_bytes, atomic_write_text
from embedsuite.encoders.base import Encoder, Role, TokenEmbeddings, progress

logger = logging.getLogger(__name__)

__all__ = ["TokenFeatureStore", "autocast_bf16"]


def autocast_bf16(on: bool) -> contextlib.AbstractContextManager[Any]:
    """CPU bfloat16 autocast when ``on`` (a no-op context otherwise)."""
    if not on:
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _layers_of(folder: Path) -> list[int]:
    part = folder.name.split("-L", 1)[1].rsplit("-", 1)[0]
    return [int(x) for x in part.split("-") if x]


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


class TokenFeatureStore:
    """Token states (float16) and character offsets of texts, cached on disk by text.

    Args:
        root: The folder (default ``<cache_dir>/features/tokens``).
        chunk_size: Texts encoded and written per chunk.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, chunk_size: int = 1024) -> None:
        self.root = self.root_of(root)
        self.chunk_size = int(chunk_size)
        self._index: dict[Path, dict[str, tuple[int, int]]] = {}
        self._seen: set[tuple[Path, int]] = set()
        self._offsets: dict[tuple[Path, int], np.ndarray] = {}
        self._arrays: dict[tuple[Path, int, str], np.ndarray] = {}

    @staticmethod
    def root_of(root: str | os.PathLike[str] | None) -> Path:
        """The folder a store given ``root`` uses (``None``: under the cache dir)."""
        if root is None:
            from embedsuite.paths import cache_dir

            return cache_dir() / "features" / "tokens"
        return Path(root)

    # -- layout -------------------------------------------------------------------------------
    @staticmethod
    def folder_name(role: str, layers: Sequence[int], bf16: bool) -> str:
        """``<role>-L<layers>-<fp32|bf16>``: everything that changes the stored numbers."""
        return f"{role}-L{'-'.join(str(int(x)) for x in layers)}-{'bf16' if bf16 else 'fp32'}"

    def _find(self, encoder: Encoder, role: str, layers: Sequence[int], bf16: bool
              ) -> tuple[Path, list[int]] | None:
        """An existing folder holding every asked layer, and the stored column of each."""
        base = self.root / _safe(encoder.fingerprint)
        want = [int(x) for x in layers]
        tag = "bf16" if bf16 else "fp32"
        if base.is_dir():
            for d in sorted(base.glob(f"{role}-L*-{tag}")):
                have = _layers_of(d)
                if all(w in have for w in want) and any(d.glob("chunk-*.json")):
                    return d, [have.index(w) for w in want]
        return None

    def _target(self, encoder: Encoder, role: str, layers: Sequence[int], bf16: bool,
                store_layers: Sequence[int] | None) -> tuple[Path, list[int]]:
        found = self._find(encoder, role, layers, bf16)
        if found is not None:
            return found
        want = [int(x) for x in layers]
        stored = [int(x) for x in store_layers] if store_layers is not None else want
        if not all(w in stored for w in want):
            stored = want
        folder = self.root / _safe(encoder.fingerprint) / self.folder_name(role, stored, bf16)
        return folder, [stored.index(w) for w in want]

    def _load_index(self, folder: Path) -> dict[str, tuple[int, int]]:
        idx = self._index.setdefault(folder, {})
        if not folder.is_dir():
            return idx
        for meta in sorted(folder.glob("chunk-*.json")):
            cid = int(meta.stem.split("-")[1])
            if (folder, cid) in self._seen:
                continue
            info = json.loads(meta.read_text(encoding="utf-8"))
            self._offsets[(folder, cid)] = np.concatenate(
                [[0], np.cumsum(info["lengths"])]).astype(np.int64)
            self._seen.add((folder, cid))
            for row, t in enumerate(info["texts"]):
                idx.setdefault(t, (cid, row))
        return idx

    def _array(self, folder: Path, cid: int, kind: str) -> np.ndarray:
        key = (folder, cid, kind)
        if key not in self._arrays:
            name = f"chunk-{cid:05d}.npy" if kind == "vectors" else f"chunk-{cid:05d}.offsets.npy"
            self._arrays[key] = np.load(folder / name, mmap_mode="r", allow_pickle=False)
        return self._arrays[key]

    def _rows(self, folder: Path, cols: list[int], dim: int, text: str,
              idx: dict[str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        cid, row = idx[text]
        lo, hi = self._offsets[(folder, cid)][row : row + 2]
        vec = self._array(folder, cid, "vectors")[lo:hi]
        n_stored = vec.shape[1] // dim
        if cols != list(range(n_stored)):  # any other order or subset: pick the columns
            vec = np.concatenate([vec[:, c * dim : (c + 1) * dim] for c in cols], axis=1)
        return vec, self._array(folder, cid, "offsets")[lo:hi]

    # -- API -------------------------------------------------------------------------------------
    def features(self, encoder: Encoder, texts: Sequence[str], layers: Sequence[int],
                 role: Role = "query", *, store_layers: Sequence[int] | None = None,
                 bf16: bool = False, batch_size: int = 32, show_progress: bool | None = None,
                 ) -> list[np.ndarray]:
        """Token states ``(n_tokens, dim * len(layers))`` float16 per text, layers in the
        order asked; missing texts are encoded (with ``store_layers``, a superset, when
        given) and written to disk first."""
        return [v for v, _ in self.features_with_offsets(
            encoder, texts, layers, role, store_layers=store_layers, bf16=bf16,
            batch_size=batch_size, show_progress=show_progress)]

    def features_with_offsets(self, encoder: Encoder, texts: Sequence[str],
                              layers: Sequence[int], role: Role = "query", *,
                              store_layers: Sequence[int] | None = None, bf16: bool = False,
                              batch_size: int = 32, show_progress: bool | None = None,
                              ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text ``(token states float16, character offsets int32 (n, 2))``."""
        folder, cols = self._target(encoder, role, layers, bf16, store_layers)
        idx = self._load_index(folder)
        todo = list(dict.fromkeys(t for t in texts if t not in idx))
        if todo:
            self._encode_missing(encoder, folder, todo, role, bf16, batch_size=batch_size,
                                 show_progress=show_progress)
            idx = self._load_index(folder)
        return [self._rows(folder, cols, encoder.dim, t, idx) for t in texts]

    def lookup(self, encoder: Encoder, texts: Sequence[str], layers: Sequence[int],
               role: Role = "query", *, bf16: bool = False) -> list[np.ndarray | None]:
        """Cached token states per text (layers in the order asked), ``None`` where a text
        is not cached; nothing is encoded."""
        found = self._find(encoder, role, layers, bf16)
        if found is None:
            return [None] * len(texts)
        folder, cols = found
        idx = self._load_index(folder)
        return [self._rows(folder, cols, encoder.dim, t, idx)[0] if t in idx else None
                for t in texts]

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        from filelock import FileLock

        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / ".lock"), timeout=3600):
            yield

    def _encode_missing(self, encoder: Encoder, folder: Path, todo: list[str], role: Role,
                        bf16: bool, *, batch_size: int, show_progress: bool | None) -> None:
        stored = _layers_of(folder)
        with self._locked(folder):
            idx = self._load_index(folder)  # another process may have written some meanwhile
            todo = sorted((t for t in todo if t not in idx), key=len)  # less padding
            existing = [int(p.stem.split("-")[1]) for p in folder.glob("chunk-*.json")]
            cid = max(existing, default=-1) + 1
            with progress(len(todo), f"token features ({role})", show_progress,
                          threshold=64) as bar:
                for s in range(0, len(todo), self.chunk_size):
                    chunk = todo[s : s + self.chunk_size]
                    with autocast_bf16(bf16):
                        embs = cast(list[TokenEmbeddings], encoder.encode_tokens(
                            chunk, role=role, layers=stored, batch_size=batch_size,
                            show_progress=False))
                    self._write(folder, cid, chunk, embs, encoder.dim * len(stored))
                    if not bf16 and hasattr(encoder, "remember_vectors"):
                        # the pass gave the sentence vectors too: a later encode() of the
                        # same texts (a head's fit) finds them in the sentence cache
                        encoder.remember_vectors({t: e.sentence for t, e in zip(
                            chunk, embs, strict=True) if e.sentence is not None}, role)
                    cid += 1
                    bar.update(len(chunk))

    @staticmethod
    def _write(folder: Path, cid: int, texts: list[str], embs: list[TokenEmbeddings],
               width: int) -> None:
        lengths = [len(e) for e in embs]
        if sum(lengths):
            vec = np.concatenate([e.vectors for e in embs], axis=0).astype(np.float16)
            off = np.concatenate([np.asarray(e.offsets).reshape(-1, 2) for e in embs],
                                 axis=0).astype(np.int32)
        else:
            vec, off = np.zeros((0, width), np.float16), np.zeros((0, 2), np.int32)
        atomic_write_bytes(folder / f"chunk-{cid:05d}.npy", _npy_bytes(vec))
        atomic_write_bytes(folder / f"chunk-{cid:05d}.offsets.npy", _npy_bytes(off))
        atomic_write_text(folder / f"chunk-{cid:05d}.json", json.dumps(
            {"texts": texts, "lengths": lengths,
             "truncated": [bool(e.truncated) for e in embs]}, ensure_ascii=False))
