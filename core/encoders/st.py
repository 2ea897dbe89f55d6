"""Any sentence-transformers folder as an :class:`~embedsuite.encoders.base.Encoder`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.cancel import check_cancelled
from embedsuite.encoders.base import BaseEncoder, Role, TokenEmbeddings, check_role, progress
from embedsuite.validation import as_pair_list, as_text_list

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

logger = logging.getLogger(__name__)

__all__ = ["SentenceTransformerEncoder", "folder_fingerprint"]


def folder_fingerprint(path: Path) -> str:
    """A content digest of a model folder (file names, sizes, first and last 64 KiB)."""
    h = hashlib.blake2b(digest_size=10)
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        size = f.stat().st_size
        h.update(str(f.relative_to(path)).encode())
        h.update(str(size).encode())
        with open(f, "rb") as fh:
            h.update(fh.read(65536))
            if size > 65536:
                fh.seek(max(size - 65536, 65536))
                h.update(fh.read())
    return h.hexdigest()


class SentenceTransformerEncoder(BaseEncoder):
    """A local sentence-transformers folder (loaded lazily, on first use).

    Args:
        path: The folder (``modules.json``, weights, tokenizer).
        name: The registry name; defaults to the folder name.
        prompts: Role -> prefix, e.g. ``{"query": "query: ", "passage": "passage: "}``;
            defaults to the folder's ``config_sentence_transformers.json`` prompts.
        languages: Free text for listings.
        source: Where the weights come from, for listings.
    """

    has_token_embeddings = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        prompts: dict[str, str] | None = None,
        languages: str = "",
        source: str = "",
        dim: int | None = None,
        max_seq_length: int | None = None,
        cache: Any = None,
    ) -> None:
        super().__init__(cache=cache)
        self.path = Path(path)
        self.name = name or self.path.name
        self._prompts = prompts
        self.languages = languages
        self.source = source or f"local folder {self.path}"
        self._model: Any = None
        self._fingerprint: str | None = None
        if dim is not None:
            self.dim = dim
        if max_seq_length is not None:
            self.max_seq_length = max_seq_length
        if dim is None or max_seq_length is None:
            self._read_config()

    def _read_config(self) -> None:
        if not (self.path / "modules.json").is_file():
            raise FileNotFoundError(
                f"{self.path} is not a sentence-transformers folder (no modules.json); "
                f"expected a folder saved by SentenceTransformer.save()"
            )
        cfg = json.loads((self.path / "config.json").read_text())
        self.dim = int(cfg.get("hidden_size") or cfg.get("d_model") or 0)
        sb = self.path / "sentence_bert_config.json"
        if sb.is_file():
            self.max_seq_length = int(json.loads(sb.read_text()).get("max_seq_length", 512))
        for dense_cfg in sorted(self.path.glob("*_Dense/config.json")):
            self.dim = int(json.loads(dense_cfg.read_text())["out_features"])

    # -- lazy model -------------------------------------------------------
    def _build(self) -> None:
        """Hook for subclasses that create the folder on first use."""

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (built and loaded on first access)."""
        if self._model is None:
            self._build()
            from sentence_transformers import SentenceTransformer

            logger.info("loading %s from %s", self.name, self.path)
            self._model = SentenceTransformer(str(self.path), device="cpu")
            self._model.max_seq_length = self.max_seq_length
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def num_layers(self) -> int | None:
        """Transformer layers of the model (token heads scale their default layers to it)."""
        cfg = getattr(self.model[0].auto_model, "config", None)
        n = getattr(cfg, "num_hidden_layers", None)
        return int(n) if n else None

    @property
    def prompts(self) -> dict[str, str]:
        if self._prompts is None:
            p = self.path / "config_sentence_transformers.json"
            prompts = json.loads(p.read_text()).get("prompts", {}) if p.is_file() else {}
            self._prompts = {k: v for k, v in prompts.items() if k in ("query", "passage")}
        return self._prompts

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._build()
            self._fingerprint = f"{self.name}:{folder_fingerprint(self.path)}"
        return self._fingerprint

    # -- sentence embeddings ------------------------------------------------
    def _with_prompt(self, texts: list[str], role: Role) -> list[str]:
        prompt = self.prompts.get(role, "")
        return [prompt + t for t in texts]

    def _count_too_long(self, texts: list[str], role: Role) -> list[tuple[int, int]]:
        lengths = self.count_tokens(texts, role)
        return [(i, n) for i, n in enumerate(lengths) if n > self.max_seq_length]

    def count_tokens(self, texts: Sequence[str], role: Role = "passage") -> list[int]:
        """Token counts (specials and prompt included, no truncation)."""
        enc = self.tokenizer(self._with_prompt(list(texts), role), add_special_tokens=True,
                             truncation=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        return np.asarray(
            self.model.encode(
                self._with_prompt(texts, role),
                batch_size=len(texts),
                convert_to_numpy=True,
                normalize_embeddings=False,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )

    # -- token embeddings ---------------------------------------------------
    def token_offsets(self, text: str, role: Role = "passage") -> np.ndarray:
        """Character offsets ``(n, 2)`` of ``text``'s tokens (no truncation, prompt excluded)."""
        prompt = self.prompts.get(role, "")
        enc = self.tokenizer(prompt + text, add_special_tokens=False, truncation=False,
                             return_offsets_mapping=True, verbose=False)
        spans = [self._clip(text, s, e, len(prompt)) for s, e in enc["offset_mapping"]]
        return np.array([sp for sp in spans if sp is not None], dtype=np.int64).reshape(-1, 2)

    @classmethod
    def _split_row(cls, text: str, seq_ids: Sequence[int | None],
                   offsets: Sequence[Sequence[int]], tokens: Sequence[str], text_seq: int,
                   plen: int, at_limit: bool
                   ) -> tuple[list[int], list[tuple[int, int]], list[str], list[int], bool]:
        """One encoded row -> (text token positions, their spans in ``text``, their tokens,
        pair token positions, truncated). Shared by every encoder with token embeddings.

        A row is truncated only if the sequence is full (``at_limit``) and text is left
        over: characters the tokenizer drops (control characters) are not a cut.
        """
        keep: list[int] = []
        spans: list[tuple[int, int]] = []
        toks: list[str] = []
        pkeep: list[int] = []
        for j, sid in enumerate(seq_ids):
            if sid == text_seq:
                sp = cls._clip(text, int(offsets[j][0]), int(offsets[j][1]), plen)
                if sp is not None:
                    keep.append(j)
                    spans.append(sp)
                    toks.append(tokens[j])
            elif sid is not None:
                pkeep.append(j)
        end = spans[-1][1] if spans else 0
        return keep, spans, toks, pkeep, at_limit and end < len(text.rstrip())

    @staticmethod
    def _clip(text: str, s: int, e: int, plen: int) -> tuple[int, int] | None:
        if e <= plen or e <= s:
            return None
        s, e = max(s - plen, 0), e - plen
        while s < e and text[s].isspace():
            s += 1
        if s >= e:
            return None
        return s, e

    def _mean_pooled(self) -> bool:
        """Whether the pipeline is transformer -> mean pooling (-> normalize), so that a
        token pass can give the sentence vector too (prompt tokens are pooled as well)."""
        mods = list(self.model)
        if len(mods) < 2 or type(mods[1]).__name__ != "Pooling":
            return False
        pool = mods[1]
        mode = getattr(pool, "pooling_mode", None)
        mean = (mode == "mean") if mode is not None else bool(
            getattr(pool, "pooling_mode_mean_tokens", False))
        return mean and bool(getattr(pool, "include_prompt", True)) and all(
            type(m).__name__ == "Normalize" for m in mods[2:])

    def encode_tokens(
        self,
        texts: str | Sequence[str],
        role: Role = "passage",
        *,
        pair: str | Sequence[str] | None = None,
        pair_role: Role = "query",
        layers: Sequence[int] | None = None,
        batch_size: int = 16,
        show_progress: bool | None = None,
    ) -> TokenEmbeddings | list[TokenEmbeddings]:
        """Token vectors of ``texts`` with offsets into the original strings.

        Args:
            texts: The text(s) whose tokens are returned.
            role: Prompt role of ``texts``.
            pair: Optional text(s) encoded before ``texts`` in the same sequence (a
                question, say); one per text, or one str for all.
            pair_role: Prompt role of ``pair``.
            layers: Hidden-state indices to concatenate (0 = embeddings, -1 = last);
                the vectors then have ``dim * len(layers)`` columns. Default ``[-1]``.
            batch_size: Sequences per forward pass.
            show_progress: Progress bar (default: on for long work on a terminal).
        """
        import torch

        role, pair_role = check_role(role), check_role(pair_role)
        items, single = as_text_list(texts)
        pairs = None if pair is None else as_pair_list(pair, len(items))
        layer_ids = list(layers) if layers is not None else [-1]
        prompt = self.prompts.get(role, "")
        pprompt = self.prompts.get(pair_role, "")
        model = self.model
        tok = self.tokenizer
        auto = model[0].auto_model
        depth = self.num_layers or 0
        bad = [i for i in layer_ids if depth and not -(depth + 1) <= int(i) <= depth]
        if bad:
            raise ValueError(f"layers {bad} do not exist in {self.name}: it has hidden states "
                             f"0..{depth} (0 = embeddings, {depth} = last layer); pass layers "
                             f"in that range (a head trained for a deeper encoder cannot be "
                             f"used as is)")
        results: list[TokenEmbeddings] = []
        n_trunc = 0
        pools = pairs is None and self._mean_pooled()
        with progress(len(items), f"tokens {self.name}", show_progress, threshold=64) as bar:
            for s in range(0, len(items), batch_size):
                check_cancelled()  # a timed-out request stops here, within one batch
                batch = items[s : s + batch_size]
                full = [prompt + t for t in batch]
                kwargs: dict[str, Any] = dict(
                    padding=True, max_length=self.max_seq_length, return_tensors="pt",
                    return_offsets_mapping=True, verbose=False,
                )
                if pairs is not None:
                    first = [pprompt + p for p in pairs[s : s + batch_size]]
                    enc = tok(first, full, truncation="only_second", **kwargs)
                    text_seq = 1
                else:
                    enc = tok(full, truncation=True, **kwargs)
                    text_seq = 0
                offsets = enc.pop("offset_mapping").tolist()
                feed = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask",
                                                               "token_type_ids")}
                with torch.inference_mode():
                    out = auto(**feed, output_hidden_states=True, return_dict=True)
                hs = out.hidden_states
                sel = torch.cat([hs[i] for i in layer_ids], dim=-1).float().numpy()
                sent = None
                if pools:  # the model's own sentence vector from this very pass
                    m = feed["attention_mask"].unsqueeze(-1).to(hs[-1].dtype)
                    pooled = ((hs[-1] * m).sum(1) / m.sum(1).clamp(min=1e-9)).float()
                    sent = torch.nn.functional.normalize(pooled, dim=-1).numpy()
                for r, text in enumerate(batch):
                    keep, spans, toks, pkeep, truncated = self._split_row(
                        text, enc.sequence_ids(r), offsets[r],
                        tok.convert_ids_to_tokens(enc["input_ids"][r].tolist()), text_seq,
                        len(prompt), int(enc["attention_mask"][r].sum()) >= self.max_seq_length)
                    n_trunc += truncated
                    results.append(
                        TokenEmbeddings(
                            text=text,
                            vectors=np.ascontiguousarray(sel[r, keep], dtype=np.float32),
                            offsets=np.array(spans, dtype=np.int64).reshape(-1, 2),
                            tokens=toks,
                            pair_vectors=(np.ascontiguousarray(sel[r, pkeep], dtype=np.float32)
                                          if pairs is not None else None),
                            truncated=bool(truncated),
                            sentence=None if sent is None else sent[r].copy(),
                        )
                    )
                bar.update(len(batch))
        if n_trunc:
            logger.warning(
                "%d of %d texts were cut at %s's limit of %d tokens; split long documents into "
                "windows (the QA head does) to keep their ends",
                n_trunc, len(items), self.name, self.max_seq_length,
            )
        return results[0] if single else results
