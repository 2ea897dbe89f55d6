"""The Encoder contract, checked on the fake encoder (fast) — the same rules every encoder keeps."""

from __future__ import annotations

import numpy as np
import pytest

from embedsuite.encoders.base import Encoder, TokenEmbeddings
from embedsuite.errors import TokenEmbeddingsUnavailableError
from embedsuite.testing import FakeEncoder


def test_fake_encoder_satisfies_protocol(fake_encoder: FakeEncoder) -> None:
    assert isinstance(fake_encoder, Encoder)


def test_str_gives_vector_list_gives_matrix(fake_encoder: FakeEncoder) -> None:
    v = fake_encoder.encode("hello world")
    m = fake_encoder.encode(["hello world", "goodbye"])
    assert v.shape == (32,) and m.shape == (2, 32)
    assert v.dtype == np.float32 and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(v, m[0], rtol=1e-6)
    assert fake_encoder.encode([]).shape == (0, 32)


def test_duplicates_are_encoded_once(fake_encoder: FakeEncoder) -> None:
    out = fake_encoder.encode(["same", "same", "other", "same"], use_cache=False)
    assert fake_encoder.calls == 2
    np.testing.assert_array_equal(out[0], out[3])


def test_errors_name_the_position(fake_encoder: FakeEncoder) -> None:
    with pytest.raises(TypeError, match=r"texts\[2\] must be a str, got int"):
        fake_encoder.encode(["a", "b", 5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"texts\[1\] is empty or whitespace only"):
        fake_encoder.encode(["a", " \n"])
    with pytest.raises(ValueError, match=r"role must be one of \('query', 'passage'\)"):
        fake_encoder.encode("a", role="document")  # type: ignore[arg-type]


def test_token_embeddings_offsets_point_into_original_text(fake_encoder: FakeEncoder) -> None:
    text = "Crème brûlée,  très   bon!"
    te = fake_encoder.encode_tokens(text)
    assert isinstance(te, TokenEmbeddings)
    assert te.vectors.shape == (len(te), 32) and te.offsets.shape == (len(te), 2)
    assert [text[s:e] for s, e in te.offsets] == te.tokens
    many = fake_encoder.encode_tokens([text, "x"], layers=[-2, -1])
    assert isinstance(many, list) and many[0].vectors.shape[1] == 64


def test_encoder_without_tokens_says_so(tmp_cache) -> None:  # type: ignore[no-untyped-def]
    enc = FakeEncoder(cache=tmp_cache, token_embeddings=False, name="plain")
    with pytest.raises(TokenEmbeddingsUnavailableError,
                       match="encoder 'plain' gives sentence vectors only"):
        enc.encode_tokens("x")


def test_use_m3_has_no_token_embeddings() -> None:
    from embedsuite.encoders import get_encoder

    use = get_encoder("use-m3")
    assert use.has_token_embeddings is False
    with pytest.raises(TokenEmbeddingsUnavailableError, match="'use-m3' gives sentence vectors"):
        use.encode_tokens("hello")


def test_tfidf_must_be_fitted_then_encodes() -> None:
    from embedsuite.encoders import get_encoder
    from embedsuite.errors import NotFittedError

    enc = get_encoder("tfidf")
    with pytest.raises(NotFittedError, match=r"call encoder.prepare\(corpus_texts\)"):
        enc.encode("hello")
    animals = [f"the cat number {i} sat on the warm mat" for i in range(10)]
    money = [f"stock prices fell sharply in trading session {i}" for i in range(10)]
    enc.prepare(animals + money)
    m = enc.encode(animals + money)
    assert m.shape == (20, enc.dim) and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-5)
    q = enc.encode("a cat on a mat")
    assert (m[:10] @ q).mean() > (m[10:] @ q).mean()
    assert get_encoder("tfidf") is not enc  # never shared: each use fits its own corpus


def test_use_m3_encodes_multilingual() -> None:
    from embedsuite.encoders import get_encoder

    use = get_encoder("use-m3")
    m = use.encode(["The weather is nice today.", "Das Wetter ist heute schön.",
                    "I lost my wallet at the station."], use_cache=False)
    assert m.shape == (3, 512)
    sims = m @ m.T
    assert sims[0, 1] > sims[0, 2]


def test_scale_layers_maps_defaults_to_depth() -> None:
    from embedsuite.encoders.base import resolve_layers, scale_layers

    assert scale_layers((6, 8, 10, 12), 12) == [6, 8, 10, 12]
    assert scale_layers((6, 8, 10, 12), 6) == [3, 4, 5, 6]
    assert scale_layers((3, 6, 9, 12), 6) == [2, 3, 5, 6]
    assert scale_layers((3, 6, 9, 12), 2) == [1, 2]  # duplicates dropped
    assert scale_layers((6, 12), 24) == [12, 24]
    assert scale_layers((0, -1), 6) == [0, -1]
    with pytest.raises(ValueError, match="depth and reference must be positive, got 0 and 12"):
        scale_layers((6,), 0)

    class Six:
        num_layers = 6

    assert resolve_layers(None, Six(), (6, 8, 10, 12)) == [3, 4, 5, 6]
    assert resolve_layers((1, 2), Six(), (6, 8, 10, 12)) == [1, 2]  # explicit wins
    assert resolve_layers(None, object(), (6, 8, 10, 12)) == [6, 8, 10, 12]  # depth unknown
