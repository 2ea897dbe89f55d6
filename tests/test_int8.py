"""``e5-small-int8``: the int8 paths of e5-small (OpenVINO static int8, the default, and
ONNX Runtime dynamic int8) against the fp32 encoder.

The integration tests build each int8 folder once (about a minute each on two cores,
after the fp32 rebuild that the other integration tests need anyway).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from embedsuite.cache import EmbeddingCache
from embedsuite.encoders import get_encoder
from embedsuite.encoders.e5 import E5SmallEncoder
from embedsuite.encoders.int8 import E5SmallInt8Encoder, MissingRuntimeError, default_backend

LANGS = ["eng", "deu", "fra", "spa", "rus", "cmn", "jpn", "ara", "hin", "kor", "ell"]
# Both int8 paths keep cosine >= 0.98 to fp32 on real sentences (benchmarks/README.md, 2,000
# Tatoeba English sentences: OpenVINO static min 0.9878 / mean 0.9987, ONNX Runtime dynamic
# min 0.9965 / mean 0.9990); 0.97 leaves room for other CPUs' kernels while any real fault
# (wrong pooling, prompt, tokenizer or layer) drops it far below 0.9.
MIN_COSINE = 0.97


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_missing_runtime_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          tmp_cache: EmbeddingCache, backend: str) -> None:
    monkeypatch.setitem(sys.modules, backend, None)  # makes `import <backend>` fail
    enc = E5SmallInt8Encoder(folder=tmp_path / "int8", cache=tmp_cache, backend=backend)
    with pytest.raises(MissingRuntimeError, match=r"pip install 'embedsuite\[fast\]'"):
        enc.encode("hello")
    assert not (tmp_path / "int8").exists()


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSUITE_INT8_BACKEND", "onnxruntime")
    assert default_backend() == "onnxruntime"
    assert E5SmallInt8Encoder().backend == "onnxruntime"
    monkeypatch.delenv("EMBEDSUITE_INT8_BACKEND")
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert default_backend() == "onnxruntime"  # falls back when OpenVINO is missing
    with pytest.raises(ValueError, match=r"backend must be one of \('openvino', 'onnxruntime'\), "
                                         r"got 'tensorrt'"):
        E5SmallInt8Encoder(backend="tensorrt")


def test_fingerprint_differs_without_building(tmp_path: Path) -> None:
    ov = E5SmallInt8Encoder(folder=tmp_path / "ov", backend="openvino")
    ort = E5SmallInt8Encoder(folder=tmp_path / "ort", backend="onnxruntime")
    for enc in (ov, ort):
        assert enc.fingerprint.startswith("e5-small-int8:")
        assert enc.fingerprint != E5SmallEncoder().fingerprint
        assert not enc.is_built()
    assert ov.fingerprint != ort.fingerprint  # their vectors differ, so must their caches
    assert E5SmallInt8Encoder(backend="openvino").path.name == "e5-small-int8-ov"
    assert E5SmallInt8Encoder(backend="onnxruntime").path.name == "e5-small-int8"
    assert get_encoder("e5-small-int8").name == "e5-small-int8"


@pytest.fixture(scope="module", params=["openvino", "onnxruntime"])
def int8(request: pytest.FixtureRequest) -> E5SmallInt8Encoder:
    pytest.importorskip(request.param, reason="the optional extra 'fast' is not installed")
    return E5SmallInt8Encoder(backend=request.param)


@pytest.fixture(scope="module")
def sentences(data_dir: Path) -> list[str]:
    out: list[str] = []
    for lang in LANGS:
        side = "deu" if lang == "eng" else lang
        name = f"tatoeba.{side}-eng.{lang}"
        lines = (data_dir / "tatoeba" / name).read_text(encoding="utf-8").splitlines()
        out += [ln.strip() for ln in lines[100:109] if ln.strip()]
    return out


@pytest.mark.integration
@pytest.mark.data
def test_close_to_fp32_on_real_sentences(int8: E5SmallInt8Encoder, e5,  # type: ignore[no-untyped-def]
                                         sentences: list[str]) -> None:
    assert len(sentences) >= 90
    for role in ("query", "passage"):
        a = int8.encode(sentences, role=role, use_cache=False)
        b = e5.encode(sentences, role=role, use_cache=False)
        cos = np.sum(a * b, axis=1)
        assert cos.min() >= MIN_COSINE, (role, float(cos.min()), sentences[int(cos.argmin())])


@pytest.mark.integration
def test_contract(int8: E5SmallInt8Encoder, e5) -> None:  # type: ignore[no-untyped-def]
    texts = ["The cat sits on the mat.", "Der Hund läuft.", "猫がいます。"]
    v = int8.encode(texts, use_cache=False)
    assert v.shape == (3, int8.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    one = int8.encode(texts[0], use_cache=False)
    assert one.shape == (int8.dim,)
    if int8.backend == "openvino":  # static scales: batch mates do not move a vector
        assert float(one @ v[0]) >= 0.9999
    else:  # dynamic int8 scales activations per batch, so batch mates move it slightly
        assert float(one @ v[0]) >= 0.99
    q = int8.encode(texts[0], role="query", use_cache=False)
    p = int8.encode(texts[0], role="passage", use_cache=False)
    assert float(q @ p) < 0.999  # the prompts differ
    with pytest.raises(ValueError, match="role"):
        int8.encode("x", role="document")  # type: ignore[arg-type]
    assert int8.fingerprint != e5.fingerprint
    assert int8.is_built()


@pytest.mark.integration
def test_token_embeddings_match_fp32(int8: E5SmallInt8Encoder, e5) -> None:  # type: ignore[no-untyped-def]
    text = "Paris is the capital of France."
    a = int8.encode_tokens(text, pair="What is the capital of France?", layers=[8, -1])
    b = e5.encode_tokens(text, pair="What is the capital of France?", layers=[8, -1])
    assert a.tokens == b.tokens
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert a.vectors.shape == b.vectors.shape == (len(b.tokens), 2 * e5.dim)
    assert a.pair_vectors is not None and b.pair_vectors is not None
    assert a.pair_vectors.shape == b.pair_vectors.shape
    cos = np.sum(a.vectors * b.vectors, 1) / (
        np.linalg.norm(a.vectors, axis=1) * np.linalg.norm(b.vectors, axis=1))
    assert cos.mean() >= 0.95
    np.testing.assert_array_equal(int8.token_offsets(text), e5.token_offsets(text))
    assert int8.count_tokens([text]) == e5.count_tokens([text])


@pytest.mark.integration
def test_token_pass_gives_the_sentence_vector(int8: E5SmallInt8Encoder) -> None:
    """One pass serves both with static int8 (the sentiment head's prediction relies on it);
    dynamic int8 scales per batch, so it gives no sentence vector from the token pass."""
    texts = ["A gripping film.", "Der Hund läuft über die Straße.", "猫がいます。"]
    for role in ("query", "passage"):
        toks = int8.encode_tokens(texts, role=role, layers=[6, 12], batch_size=2)
        assert isinstance(toks, list)
        if int8.backend != "openvino":
            assert all(t.sentence is None for t in toks)
            continue
        got = np.stack([t.sentence for t in toks])  # type: ignore[misc]
        np.testing.assert_allclose(got, int8.encode(texts, role=role, use_cache=False),
                                   atol=1e-5)
        assert int8.encode_tokens(texts[0], pair="q?").sentence is None  # type: ignore[union-attr]
