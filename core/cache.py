"""On-disk embedding cache shared by every head and every process.

One SQLite file (WAL mode, so several processes read and write at once) maps a
key derived from (encoder fingerprint, kind, role, text) to an array. Each row
carries a CRC32 of its bytes: a row that fails the check is dropped and
recomputed, and a database file that SQLite cannot read is moved aside and
started afresh.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.paths import cache_dir

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingCache", "default_cache", "make_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key BLOB PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    crc INTEGER NOT NULL,
    created REAL NOT NULL
)
"""
_CHUNK = 500


def make_key(fingerprint: str, role: str, text: str, kind: str = "sentence") -> bytes:
    """A 16-byte key for one cached array."""
    h = hashlib.blake2b(digest_size=16)
    for part in (fingerprint, kind, role, text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.digest()


class EmbeddingCache:
    """A persistent key -> array store.

    Args:
        path: The SQLite file; defaults to ``<cache_dir>/embeddings.sqlite``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / "embeddings.sqlite"
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self.hits = 0
        self.misses = 0
        self.corrupt = 0

    # -- connection -------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(2):
            try:
                conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                conn.commit()
                self._conn, self._pid = conn, os.getpid()
                return conn
            except sqlite3.DatabaseError as exc:
                if attempt:
                    raise
                self._quarantine(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _quarantine(self, exc: Exception) -> None:
        """Move an unreadable database aside so a fresh one can be started."""
        bad = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        logger.warning(
            "embedding cache %s is unreadable (%s); moved it to %s and starting a fresh one",
            self.path, exc, bad,
        )
        self._conn = None
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                try:
                    os.replace(p, Path(str(bad) + suffix))
                except OSError:
                    p.unlink(missing_ok=True)

    def _run(self, fn: Any) -> Any:
        with self._lock:
            try:
                return fn(self._connect())
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                self._quarantine(exc)
                return fn(self._connect())

    # -- API -----------------------------------------------------------------
    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, np.ndarray]:
        """Return the cached arrays found for ``keys`` (missing or corrupt keys are absent)."""
        keys = list(keys)

        def _get(conn: sqlite3.Connection) -> dict[bytes, np.ndarray]:
            found: dict[bytes, np.ndarray] = {}
            bad: list[bytes] = []
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                q = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, dtype, shape, data, crc FROM entries WHERE key IN ({q})", chunk
                ).fetchall()
                for key, dtype, shape, data, crc in rows:
                    arr = self._decode(dtype, shape, data, crc)
                    if arr is None:
                        bad.append(key)
                    else:
                        found[key] = arr
            if bad:
                self.corrupt += len(bad)
                logger.warning(
                    "embedding cache: %d corrupt entr%s detected; recomputing",
                    len(bad), "y" if len(bad) == 1 else "ies",
                )
                conn.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in bad])
                conn.commit()
            return found

        found = self._run(_get)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    @staticmethod
    def _decode(dtype: str, shape: str, data: bytes, crc: int) -> np.ndarray | None:
        try:
            if zlib.crc32(data) != crc:
                return None
            dims = tuple(int(s) for s in shape.split(",") if s)
            arr = np.frombuffer(data, dtype=np.dtype(dtype))
            if arr.size != int(np.prod(dims)) or not np.all(np.isfinite(arr)):
                return None
            return arr.reshape(dims)
        except (ValueError, TypeError):
            return None

    def put_many(self, items: Mapping[bytes, np.ndarray], fingerprint: str) -> None:
        """Store arrays (existing keys are overwritten)."""
        now = time.time()
        rows = []
        for key, arr in items.items():
            a = np.ascontiguousarray(arr)
            data = a.tobytes()
            rows.append(
                (key, fingerprint, a.dtype.str, ",".join(map(str, a.shape)), data,
                 zlib.crc32(data), now)
            )

        def _put(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?)", rows)
            conn.commit()

        if rows:
            self._run(_put)

    def info(self) -> dict[str, object]:
        """Entries, size and a per-encoder-fingerprint count."""

        def _info(conn: sqlite3.Connection) -> dict[str, object]:
            total = conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(data)),0) FROM entries")
            n, nbytes = total.fetchone()
            per = dict(
                conn.execute(
                    "SELECT fingerprint, COUNT(*) FROM entries GROUP BY fingerprint"
                ).fetchall()
            )
            return {"path": str(self.path), "entries": n, "data_bytes": nbytes,
                    "by_fingerprint": per}

        out = self._run(_info)
        size = sum(
            Path(str(self.path) + s).stat().st_size
            for s in ("", "-wal", "-shm")
            if Path(str(self.path) + s).exists()
        )
        out["file_bytes"] = size
        return out

    def clear(self, fingerprint: str | None = None) -> int:
        """Delete all entries (or those of one encoder fingerprint); return how many."""

        def _clear(conn: sqlite3.Connection) -> int:
            if fingerprint is None:
                cur = conn.execute("DELETE FROM entries")
            else:
                cur = conn.execute("DELETE FROM entries WHERE fingerprint = ?", (fingerprint,))
            conn.commit()
            conn.execute("VACUUM")
            return cur.rowcount

        return int(self._run(_clear))

    def close(self) -> None:
        """Close this process's connection."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


_DEFAULT: EmbeddingCache | None = None


def default_cache() -> EmbeddingCache:
    """The process-wide cache at the default location."""
    global _DEFAULT
    if _DEFAULT is None or _DEFAULT.path != cache_dir() / "embeddings.sqlite":
        _DEFAULT = EmbeddingCache()
    return _DEFAULT
