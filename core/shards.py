"""Embedding shards on disk: the output of ``embedsuite embed-corpus`` and how to read it.

A shards folder holds

- ``part-000000.parquet``, ``part-000001.parquet``, ...: shard ``i`` holds the input rows
  ``[i * shard_rows, (i + 1) * shard_rows)`` as ``id`` (string), ``embedding``
  (``fixed_size_list<float32>[dim]``, L2-normalised) and, with ``keep_text``, ``text``.
  The row range and the encoder fingerprint are also stored in the file's key-value
  metadata (key ``embedsuite``), so a shard can be checked without the manifest.
- ``manifest.json``: encoder name and fingerprint, dim, role, the input (path, size,
  mtime, column), ``shard_rows``, ``total_rows`` and one entry per shard (name, start,
  rows, bytes, sha256). It is written last: a folder without it is an unfinished run.

Everything here works one shard at a time, so a corpus larger than memory can be read:
:func:`iter_shards` yields ``(ids, vectors)`` per shard and :func:`load_embeddings`
assembles the vectors once into a memory-mapped ``embeddings.npy`` beside the shards.
Nothing here imports Ray.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.atomic import atomic_write_bytes, atomic_write_text
from embedsuite.errors import EmbedsuiteError

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST",
    "ShardError",
    "ShardedEmbeddings",
    "ids_from_shards",
    "index_from_shards",
    "iter_shards",
    "load_embeddings",
    "read_manifest",
    "read_shard",
    "shard_name",
    "shard_table_bytes",
]

MANIFEST = "manifest.json"
FORMAT = "embedsuite-shards"
META_KEY = b"embedsuite"
MATRIX = "embeddings.npy"
MATRIX_STAMP = "embeddings.json"

_RERUN = "rerun `embedsuite embed-corpus` with the same --out to finish or repair it"


class ShardError(EmbedsuiteError, ValueError):
    """A shards folder is unfinished, inconsistent, corrupted or from another encoder."""


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``part-000012.parquet``."""
    return f"part-{int(index):06d}.parquet"


def _pa() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with pandas 3 / ray[data]
        raise ImportError("reading and writing embedding shards needs pyarrow, which comes "
                          "with an optional extra: pip install 'embedsuite[ray]' (or just "
                          "pip install pyarrow)") from None
    return pa, pq


def shard_table_bytes(ids: list[str], vectors: np.ndarray, *, start: int, fingerprint: str,
                      texts: list[str] | None = None) -> bytes:
    """Serialise one shard to Parquet bytes (zstd); write them with an atomic rename."""
    pa, pq = _pa()
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[0] != len(ids):
        raise ValueError(f"vectors must be ({len(ids)}, dim), got shape {v.shape}")
    emb = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), int(v.shape[1]))
    cols = {"id": pa.array(ids, pa.string()), "embedding": emb}
    if texts is not None:
        cols["text"] = pa.array(texts, pa.string())
    meta = {"start": int(start), "rows": len(ids), "dim": int(v.shape[1]),
            "fingerprint": fingerprint}
    table = pa.table(cols).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def shard_info(path: Path) -> dict[str, Any] | None:
    """The ``embedsuite`` footer metadata of a shard (cheap: reads the footer only), or
    ``None`` when the file is missing or not a readable shard."""
    _, pq = _pa()
    try:
        md = pq.read_metadata(path)
        raw = (md.metadata or {}).get(META_KEY)
        info = json.loads(raw) if raw else None
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or md.num_rows != info.get("rows"):
        return None
    return info


def _decode(data: bytes, where: str, dim: int | None = None
            ) -> tuple[list[str], np.ndarray, list[str] | None]:
    pa, pq = _pa()
    try:
        table = pq.read_table(pa.BufferReader(data))
        ids = table.column("id").to_pylist()
        col = table.column("embedding").combine_chunks()
        d = int(col.type.list_size)
        vecs = col.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        vecs = vecs.reshape(-1, d)
        texts = table.column("text").to_pylist() if "text" in table.column_names else None
    except (OSError, ValueError, KeyError, AttributeError, pa.ArrowException) as exc:
        raise ShardError(f"{where} is not a readable embedding shard ({exc}); delete it and "
                         f"{_RERUN}") from None
    if dim is not None and d != dim:
        raise ShardError(f"{where} has {d}-dim vectors, the manifest says {dim}; delete it "
                         f"and {_RERUN}")
    return ids, vecs, texts


def read_shard(path: str | os.PathLike[str], *, sha256: str | None = None
               ) -> tuple[list[str], np.ndarray]:
    """``(ids, vectors)`` of one shard file; checks ``sha256`` when given."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError:
        raise ShardError(f"shard {p} is missing; {_RERUN}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ShardError(f"shard {p} is corrupted (its sha256 differs from the manifest's); "
                         f"delete it and {_RERUN}")
    ids, vecs, _ = _decode(data, str(p))
    return ids, vecs


def read_manifest(folder: str | os.PathLike[str], *, encoder: Any = None) -> dict[str, Any]:
    """Read and check ``manifest.json`` of a shards folder.

    Args:
        folder: The ``--out`` folder of ``embed-corpus``.
        encoder: An encoder (or its fingerprint string) the vectors must come from.

    Raises:
        ShardError: No manifest (unfinished run), a malformed one, another encoder's
            fingerprint, or a listed shard missing (each message says how to fix it).
    """
    d = Path(folder)
    path = d / MANIFEST
    if not d.is_dir():
        raise ShardError(f"{d} is not a folder; give the --out folder of "
                         f"`embedsuite embed-corpus`")
    if not path.is_file():
        extra = (" (it holds shards: the run did not finish)"
                 if any(d.glob("part-*.parquet")) else "")
        raise ShardError(f"{d} has no {MANIFEST}{extra}; {_RERUN}")
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path} is not readable JSON ({exc}); {_RERUN}") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT or not isinstance(
            man.get("shards"), list):
        raise ShardError(f"{path} is not an embedding-shards manifest (format {FORMAT!r})")
    if encoder is not None:
        fp = encoder if isinstance(encoder, str) else encoder.fingerprint
        if fp != man.get("fingerprint"):
            raise ShardError(
                f"{d} was embedded with {man.get('encoder')!r} (fingerprint "
                f"{man.get('fingerprint')}), not with the encoder given ({fp}); use that "
                f"encoder, or rerun `embedsuite embed-corpus` with yours into a new --out")
    total = 0
    for s in man["shards"]:
        if not (d / s["name"]).is_file():
            raise ShardError(f"shard {s['name']} listed in {path} is missing; {_RERUN}")
        total += int(s["rows"])
    if total != man.get("total_rows"):
        raise ShardError(f"{path} lists {total} rows in its shards but total_rows is "
                         f"{man.get('total_rows')}; {_RERUN}")
    return man


def iter_shards(folder: str | os.PathLike[str], *, encoder: Any = None, verify: bool = True,
                with_text: bool = False) -> Iterator[Any]:
    """Yield ``(ids, vectors)`` per shard in row order (``(ids, vectors, texts)`` with
    ``with_text``; ``texts`` is ``None`` unless the run kept them).

    Only one shard is in memory at a time. With ``verify`` each shard's sha256 and row
    count are checked against the manifest.

    Raises:
        ShardError: See :func:`read_manifest`; a corrupted shard is named.
    """
    d = Path(folder)
    man = read_manifest(d, encoder=encoder)
    for s in man["shards"]:
        p = d / s["name"]
        data = p.read_bytes()
        if verify and hashlib.sha256(data).hexdigest() != s["sha256"]:
            raise ShardError(f"shard {p} is corrupted (its sha256 differs from the "
                             f"manifest's); delete it and {_RERUN}")
        ids, vecs, texts = _decode(data, str(p), int(man["dim"]))
        if len(ids) != int(s["rows"]) or len(vecs) != len(ids):
            raise ShardError(f"shard {p} holds {len(ids)} rows, the manifest says {s['rows']}; "
                             f"delete it and {_RERUN}")
        yield (ids, vecs, texts) if with_text else (ids, vecs)


@dataclass
class ShardedEmbeddings:
    """All vectors of a shards folder: ``ids[i]`` is the id of row ``vectors[i]``."""

    ids: list[str]
    vectors: np.ndarray
    texts: list[str] | None
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return len(self.ids)


def _stamp(man: dict[str, Any]) -> str:
    keys = [(s["name"], s["sha256"], s["rows"]) for s in man["shards"]]
    return hashlib.sha256(json.dumps([man["fingerprint"], keys]).encode()).hexdigest()


def load_embeddings(folder: str | os.PathLike[str], *, encoder: Any = None, mmap: bool = True,
                    verify: bool = True) -> ShardedEmbeddings:
    """Every vector of a shards folder as one ``(n, dim)`` float32 matrix.

    The matrix is assembled shard by shard into ``embeddings.npy`` beside the shards
    (written once, atomically, and reused while the manifest is unchanged) and
    memory-mapped read-only, so heads and indexes read it lazily from disk.

    Args:
        folder: The shards folder.
        encoder: Check the vectors come from this encoder (or fingerprint).
        mmap: Memory-map the matrix (``False``: read it into RAM).
        verify: Check each shard's sha256 while assembling.
    """
    d = Path(folder)
    man = read_manifest(d, encoder=encoder)
    n, dim = int(man["total_rows"]), int(man["dim"])
    stamp = _stamp(man)
    mat_path, stamp_path = d / MATRIX, d / MATRIX_STAMP
    ids: list[str] = []
    texts: list[str] | None = [] if man.get("keep_text") else None
    fresh = False
    try:
        fresh = json.loads(stamp_path.read_text()).get("stamp") == stamp and mat_path.is_file()
    except (OSError, ValueError):
        fresh = False
    if fresh:
        for s_ids, _, s_texts in _iter_columns(d, man):
            ids.extend(s_ids)
            if texts is not None and s_texts is not None:
                texts.extend(s_texts)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{MATRIX}.", suffix=".tmp", dir=d)
        os.close(fd)
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
            row = 0
            for s_ids, vecs, s_texts in iter_shards(d, verify=verify, with_text=True):
                out[row : row + len(vecs)] = vecs
                row += len(vecs)
                ids.extend(s_ids)
                if texts is not None and s_texts is not None:
                    texts.extend(s_texts)
            out.flush()
            del out
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, mat_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        atomic_write_text(stamp_path, json.dumps({"stamp": stamp, "n": n, "dim": dim}))
        logger.info("assembled %d x %d vectors into %s", n, dim, mat_path)
    vectors = np.load(mat_path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if vectors.shape != (n, dim):
        raise ShardError(f"{mat_path} has shape {vectors.shape}, the manifest says "
                         f"({n}, {dim}); delete it and load again")
    return ShardedEmbeddings(ids, vectors, texts, man)


def _iter_columns(d: Path, man: dict[str, Any]
                  ) -> Iterator[tuple[list[str], None, list[str] | None]]:
    """ids (and texts) of every shard without decoding the vectors."""
    _, pq = _pa()
    for s in man["shards"]:
        cols = ["id", "text"] if man.get("keep_text") else ["id"]
        try:
            t = pq.read_table(d / s["name"], columns=cols)
        except (OSError, ValueError) as exc:
            raise ShardError(f"shard {d / s['name']} is not readable ({exc}); {_RERUN}"
                             ) from None
        yield (t.column("id").to_pylist(), None,
               t.column("text").to_pylist() if "text" in cols else None)


def ids_from_shards(folder: str | os.PathLike[str]) -> list[str]:
    """The ids of every row, in row order (vectors are not read)."""
    d = Path(folder)
    man = read_manifest(d)
    out: list[str] = []
    for ids, _, _ in _iter_columns(d, man):
        out.extend(ids)
    return out


def index_from_shards(folder: str | os.PathLike[str], *, encoder: Any = None,
                      **index_kwargs: Any) -> Any:
    """A :class:`embedsuite.index.VectorIndex` over every vector of a shards folder.

    The vectors are read through the memory-mapped matrix of :func:`load_embeddings`;
    row ``i`` of the index is ``ids_from_shards(folder)[i]``.

    Args:
        folder: The shards folder.
        encoder: Check the vectors come from this encoder (or fingerprint).
        **index_kwargs: Passed to :class:`embedsuite.index.VectorIndex` (``exact_threshold``,
            ``storage``, ``nlist``, ``nprobe``, ...).
    """
    from embedsuite.index import VectorIndex

    emb = load_embeddings(folder, encoder=encoder)
    return VectorIndex(**index_kwargs).build(emb.vectors)


def write_ids(path: str | os.PathLike[str], ids: list[str]) -> Path:
    """Write ids as a one-column Parquet file (atomically)."""
    pa, pq = _pa()
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(ids, pa.string())}), buf, compression="zstd")
    return atomic_write_bytes(path, buf.getvalue())
