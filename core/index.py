"""A vector index for cosine top-k search: exact for small sets, IVF (faiss) for large ones.

- Exact search runs in blocks of candidates, so memory stays bounded for any size.
- Above ``exact_threshold`` vectors an inverted-file index (faiss ``IndexIVF*``, about
  ``4 * sqrt(n)`` lists, ``nprobe`` lists searched) answers approximately. IVF was picked
  over HNSW because it builds in minutes on two cores (k-means on a sample, then one
  assignment pass), where an HNSW graph over a million vectors takes far longer to build.
- Compact storage: ``storage="f16"`` or ``"i8"`` (per-dimension scales calibrated on the
  data) keeps the searched copy small; the top ``k * rescore_factor`` candidates are then
  rescored with the float32 vectors, which stay on disk (memory-mapped) after ``load``.

Saved as a folder: ``config.json``, ``vectors.npy`` (float32), the compact codes and, for
IVF, ``ivf.faiss``; nothing is pickled, everything is memory-mapped on load.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from embedsuite.atomic import atomic_dir, recover_dir
from embedsuite.errors import HeadFormatError, NotFittedError

logger = logging.getLogger(__name__)

__all__ = ["VectorIndex"]

STORAGES = ("f32", "f16", "i8")
_NO_FAISS = ("faiss is not installed (it comes with the optional extra: "
             "pip install 'embedsuite[ann]'); searching the {n:,} vectors exactly instead")


def _faiss() -> Any:
    """The faiss module, or ``None`` when the optional ``[ann]`` extra is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


class VectorIndex:
    """Cosine top-k over L2-normalised vectors.

    Args:
        exact_threshold: Up to this many vectors, search is exact.
        storage: ``"f32"``, ``"f16"`` or ``"i8"`` for the searched copy.
        nlist: IVF lists (default ``4 * sqrt(n)``).
        nprobe: IVF lists searched per query (default ``max(32, nlist // 16)``).
        rescore_factor: With compact storage, rescore ``k * rescore_factor`` candidates
            with float32 vectors.
        block_size: Candidates per block in exact search.
        seed: Seed for the IVF training sample.
    """

    def __init__(self, *, exact_threshold: int = 50_000, storage: str = "f32",
                 nlist: int | None = None, nprobe: int | None = None, rescore_factor: int = 4,
                 block_size: int = 65_536, seed: int = 0) -> None:
        self.exact_threshold = exact_threshold
        self.storage = storage
        self.nlist = nlist
        self.nprobe = nprobe
        self.rescore_factor = rescore_factor
        self.block_size = block_size
        self.seed = seed
        self.vectors_: np.ndarray | None = None
        self.codes_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.ivf_: Any = None

    # -- build --------------------------------------------------------------
    def build(self, vectors: np.ndarray) -> VectorIndex:
        """Index ``vectors`` (``(n, dim)``, L2-normalised); returns ``self``.

        Raises:
            ValueError: Not a 2-D finite float matrix, or an unknown storage.
        """
        if self.storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {self.storage!r}")
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"vectors must be a non-empty (n, dim) matrix, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("vectors contain NaN or inf; encode the texts again")
        self.vectors_ = np.ascontiguousarray(x)
        ivf = len(x) > self.exact_threshold
        if ivf and _faiss() is None:
            logger.warning(_NO_FAISS.format(n=len(x)))
            ivf = False
        if ivf:
            # the IVF lists hold their own (compact) copy of the vectors
            self.ivf_, self.codes_, self.scale_ = self._build_ivf(self.vectors_), None, None
        else:
            self.ivf_ = None
            self.codes_, self.scale_ = self._compact(self.vectors_)
        return self

    def _compact(self, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.storage == "f16":
            return x.astype(np.float16), None
        if self.storage == "i8":
            # per-dimension scale from the 99.9th percentile of |x| (clips rare outliers)
            sample = x if len(x) <= 200_000 else x[np.random.default_rng(self.seed).choice(
                len(x), 200_000, replace=False)]
            scale = np.maximum(np.quantile(np.abs(sample), 0.999, axis=0), 1e-6) / 127.0
            codes = np.clip(np.rint(x / scale), -127, 127).astype(np.int8)
            return codes, scale.astype(np.float32)
        return None, None

    def _build_ivf(self, x: np.ndarray) -> Any:
        faiss = _faiss()
        n, d = x.shape
        nlist = self.nlist or max(16, int(4 * math.sqrt(n)))
        quantizer = faiss.IndexFlatIP(d)
        ivf: Any
        if self.storage == "f32":
            ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            qtype = (faiss.ScalarQuantizer.QT_fp16 if self.storage == "f16"
                     else faiss.ScalarQuantizer.QT_8bit)
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, qtype,
                                                faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(self.seed)
        sample = x if n <= 64 * nlist else x[rng.choice(n, 64 * nlist, replace=False)]
        logger.info("training IVF with %d lists on %d vectors", nlist, len(sample))
        ivf.train(sample)
        for s in range(0, n, 100_000):
            ivf.add(x[s : s + 100_000])
        # about 1/16 of the lists: recall@10 >= 0.95 on e5 embeddings (benchmarks/ann.py)
        ivf.nprobe = self.nprobe or max(32, nlist // 16)
        return ivf

    # -- search -------------------------------------------------------------
    @property
    def kind_(self) -> str:
        """``"exact"`` or ``"ivf"``."""
        return "ivf" if self.ivf_ is not None else "exact"

    def __len__(self) -> int:
        return 0 if self.vectors_ is None else int(self.vectors_.shape[0])

    def search(self, queries: np.ndarray, k: int = 10, *, exact: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` cosine scores and ids per query (rows sorted best first).

        Args:
            queries: ``(dim,)`` or ``(q, dim)`` L2-normalised vectors.
            k: Neighbours per query (capped at the index size).
            exact: Force exact float32 search (the reference for recall).
        """
        if self.vectors_ is None:
            raise NotFittedError("This VectorIndex is empty; call build(vectors) or load(folder)")
        q = np.asarray(queries, dtype=np.float32)
        single = q.ndim == 1
        q = q.reshape(1, -1) if single else q
        if q.shape[1] != self.vectors_.shape[1]:
            raise ValueError(f"queries have {q.shape[1]} dims, the index has "
                             f"{self.vectors_.shape[1]}; use the encoder that built the index")
        k = max(1, min(int(k), len(self)))
        if exact or (self.ivf_ is None and self.codes_ is None):
            s, i = self._exact(q, k, self.vectors_, None)
        else:
            kk = min(len(self), k * self.rescore_factor)
            if self.ivf_ is not None:
                _, i = self.ivf_.search(q, kk)
            else:
                _, i = self._exact(q, kk, self.codes_, self.scale_)  # type: ignore[arg-type]
            s, i = self._rescore(q, i, k)
        return (s[0], i[0]) if single else (s, i)

    def _exact(self, q: np.ndarray, k: int, mat: np.ndarray, scale: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
        best_s = np.full((len(q), k), -np.inf, np.float32)
        best_i = np.full((len(q), k), -1, np.int64)
        qq = q * scale if scale is not None else q
        for s in range(0, len(mat), self.block_size):
            block = np.asarray(mat[s : s + self.block_size], dtype=np.float32)
            sc = qq @ block.T
            kb = min(k, sc.shape[1])
            part = np.argpartition(-sc, kb - 1, axis=1)[:, :kb]
            cand_s = np.concatenate([best_s, np.take_along_axis(sc, part, 1)], axis=1)
            cand_i = np.concatenate([best_i, part + s], axis=1)
            top = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
            best_s = np.take_along_axis(cand_s, top, 1)
            best_i = np.take_along_axis(cand_i, top, 1)
        order = np.argsort(-best_s, axis=1, kind="stable")
        return np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)

    def _rescore(self, q: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.vectors_ is None:
            raise NotFittedError("This VectorIndex is empty")
        safe = np.where(ids < 0, 0, ids)
        exact = np.einsum("qd,qkd->qk", q, np.asarray(self.vectors_[safe.ravel()]).reshape(
            *safe.shape, -1))
        exact = np.where(ids < 0, -np.inf, exact)
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        return (np.take_along_axis(exact, order, 1).astype(np.float32),
                np.take_along_axis(ids, order, 1))

    # -- persistence ----------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes of what search keeps in RAM (the float32 copy is disk-backed after load)."""
        n = 0
        if self.codes_ is not None:
            n += self.codes_.nbytes
        elif self.vectors_ is not None and self.ivf_ is None:
            n += self.vectors_.nbytes
        if self.ivf_ is not None:
            n += int(_faiss().serialize_index(self.ivf_).nbytes)
        return n

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index folder atomically."""
        if self.vectors_ is None:
            raise NotFittedError("This VectorIndex is empty; call build(vectors) first")
        with atomic_dir(path) as tmp:
            np.save(tmp / "vectors.npy", self.vectors_, allow_pickle=False)
            if self.codes_ is not None:
                np.save(tmp / "codes.npy", self.codes_, allow_pickle=False)
            if self.scale_ is not None:
                np.save(tmp / "scale.npy", self.scale_, allow_pickle=False)
            if self.ivf_ is not None:
                _faiss().write_index(self.ivf_, str(tmp / "ivf.faiss"))
            cfg = {"format": "embedsuite-vector-index", "version": 1, "storage": self.storage,
                   "exact_threshold": self.exact_threshold, "nlist": self.nlist,
                   "nprobe": None if self.ivf_ is None else int(self.ivf_.nprobe),
                   "rescore_factor": self.rescore_factor, "block_size": self.block_size,
                   "seed": self.seed, "n": len(self), "dim": int(self.vectors_.shape[1]),
                   "kind": self.kind_}
            (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> VectorIndex:
        """Load a saved index; arrays (and the IVF lists) are memory-mapped by default.

        Raises:
            HeadFormatError: Not an index folder, or files missing or inconsistent.
        """
        folder = recover_dir(path)
        cfg_path = folder / "config.json"
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, ValueError):
            raise HeadFormatError(f"{folder} is not a saved vector index (no readable "
                                  f"config.json); save one with VectorIndex.save()") from None
        if cfg.get("format") != "embedsuite-vector-index":
            raise HeadFormatError(f"{cfg_path} is not a vector index config")
        idx = cls(exact_threshold=cfg["exact_threshold"], storage=cfg["storage"],
                  nlist=cfg["nlist"], nprobe=cfg["nprobe"], rescore_factor=cfg["rescore_factor"],
                  block_size=cfg["block_size"], seed=cfg["seed"])
        mode: Literal["r"] | None = "r" if mmap else None
        try:
            idx.vectors_ = np.load(folder / "vectors.npy", mmap_mode=mode, allow_pickle=False)
            if (folder / "codes.npy").exists():
                idx.codes_ = np.load(folder / "codes.npy", mmap_mode=mode, allow_pickle=False)
            if (folder / "scale.npy").exists():
                idx.scale_ = np.load(folder / "scale.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise HeadFormatError(f"{folder}: unreadable index arrays ({exc})") from None
        if idx.vectors_.shape != (cfg["n"], cfg["dim"]):
            raise HeadFormatError(f"{folder}: vectors.npy has shape {idx.vectors_.shape}, the "
                                  f"config says ({cfg['n']}, {cfg['dim']}); re-build the index")
        faiss: Any = _faiss() if cfg["kind"] == "ivf" else None
        if cfg["kind"] == "ivf" and faiss is None:
            # vectors.npy holds every float32 vector, so exact search still answers
            logger.warning(_NO_FAISS.format(n=cfg["n"]))
        elif cfg["kind"] == "ivf":
            flags = faiss.IO_FLAG_MMAP if mmap else 0
            idx.ivf_ = faiss.read_index(str(folder / "ivf.faiss"), flags)
            idx.ivf_.nprobe = cfg["nprobe"]
        return idx
