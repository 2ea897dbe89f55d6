"""Extractive question answering: a span head on the shared encoder's frozen token vectors.

The context (role ``passage``) and the question (role ``query``) are encoded
separately by the frozen shared encoder (token vectors of a few hidden layers,
:data:`embedsuite.heads.qa_train.DEFAULT_LAYERS`); a small trainable network
(:class:`SpanNet`) lets every context token attend to the question, adds
word-match flags, runs a light transformer layer over the context and gives a
start and an end score per token, plus a learnt "no answer" position. Encoding
each window of a document once serves every question asked about it.

Long documents are cut into overlapping windows within the encoder's limit;
the windows are ranked with the shared encoder's sentence vectors (question as
``query``, windows as ``passage``) and the best ``max_windows`` are read. Span
scores are made comparable across windows by the "no answer" position (score =
span logit minus no-answer logit) and mapped to a probability by a logistic
calibration fitted on held-out SQuAD questions. Answers are always exact slices
of the ORIGINAL text: ``context[start:end] == answer``.

>>> qa = ExtractiveQA.load_default()
>>> r = qa.answer("Who wrote Faust?", "Faust was written by Johann Wolfgang von Goethe.")
>>> sorted(r) == sorted(RESULT_KEYS)
True
"""

from __future__ import annotations

import logging
import math
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from embedsuite.encoders.base import Encoder
from embedsuite.heads.base import (
    HEADS,
    check_fitted,
    load_head_of_kind,
    write_head_folder,
)
from embedsuite.heads.qa_train import DEFAULT_LAYERS
from embedsuite.validation import as_text_list, check_text

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_HEAD_DIR", "RESULT_KEYS", "ExtractiveQA", "SpanNet", "match_features"]

KIND = "qa-span"
DEFAULT_HEAD_DIR = Path(__file__).resolve().parent.parent / "assets" / "qa-default"
#: keys of every answer dict
RESULT_KEYS = ("answer", "start", "end", "score", "window", "window_start", "window_end")
N_FLAGS = 3
#: flags, plus their densities within +-4 and +-12 tokens (how close a token is to matches)
N_MATCH_FEATURES = 3 * N_FLAGS
_NEAR = (4, 12)
_WORD = re.compile(r"\w+", re.UNICODE)


# -- word-match features --------------------------------------------------------------------
def _is_cjk(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def match_features(question: str, context: str, offsets: np.ndarray) -> np.ndarray:
    """Per context token: does it, or its word, occur in the question?

    Three flags per token (language-agnostic, computed on the original text):
    the token's word (a ``\\w+`` run around it) is a question word; the token's
    text (3+ characters, or any CJK character) occurs in the question; the
    token's text is a whole question word. Then the share of flagged tokens
    within 4 and within 12 tokens of each token (answers sit near matches).

    Args:
        question: The question.
        context: The text the offsets point into.
        offsets: ``(n, 2)`` character spans of the context tokens.

    Returns:
        ``(n, 9)`` float32 in [0, 1].
    """
    q = _fold(question)
    q_words = set(_WORD.findall(q))
    words = [(m.start(), m.end()) for m in _WORD.finditer(context)]
    out = np.zeros((len(offsets), N_MATCH_FEATURES), np.float32)
    flags = out[:, :N_FLAGS]
    wi = 0
    for i, (s, e) in enumerate(np.asarray(offsets).tolist()):
        piece = _fold(context[s:e]).strip()
        core = "".join(ch for ch in piece if ch.isalnum())
        while wi < len(words) and words[wi][1] <= s:
            wi += 1
        if wi < len(words) and words[wi][0] < e:
            w = _fold(context[words[wi][0] : words[wi][1]])
            if w in q_words and not (len(w) > 4 and all(_is_cjk(c) for c in w)):
                flags[i, 0] = 1.0
        if core and (len(core) >= 3 or any(_is_cjk(c) for c in core)) and core in q:
            flags[i, 1] = 1.0
        if core and core in q_words:
            flags[i, 2] = 1.0
    if len(out):
        csum = np.concatenate([np.zeros((1, N_FLAGS), np.float32), np.cumsum(flags, 0)])
        idx = np.arange(len(out))
        for k, r in enumerate(_NEAR, 1):
            lo, hi = np.maximum(idx - r, 0), np.minimum(idx + r + 1, len(out))
            out[:, k * N_FLAGS : (k + 1) * N_FLAGS] = (csum[hi] - csum[lo]) / (2 * r + 1)
    return out


# -- the trainable network ------------------------------------------------------------------
class SpanNet(nn.Module):
    """Start/end scores from frozen context and question token vectors.

    Position 0 of the outputs is a learnt "no answer" position; positions 1..n
    are the context tokens.

    Args:
        d_in: Width of the frozen token vectors (encoder dim x layers).
        d: Width of the trainable layers.
        n_layers: Transformer layers over the question-aware context.
        n_heads: Attention heads.
        dropout: Dropout rate.
        conv_kernel: Width of a 1-D convolution over the context before the
            transformer layers (0: none).
    """

    def __init__(self, d_in: int, d: int = 128, n_layers: int = 1, n_heads: int = 4,
                 dropout: float = 0.1, conv_kernel: int = 5) -> None:
        super().__init__()
        self.d_in = d_in
        self.proj_c = nn.Sequential(nn.Linear(d_in, d), nn.LayerNorm(d), nn.Dropout(dropout))
        self.proj_q = nn.Sequential(nn.Linear(d_in, d), nn.LayerNorm(d), nn.Dropout(dropout))
        self.att = nn.Linear(d, d, bias=False)
        self.q_pool = nn.Linear(d, 1)
        self.match = nn.Linear(N_MATCH_FEATURES + 1, d)
        self.fuse = nn.Sequential(nn.Linear(4 * d, d), nn.GELU(), nn.Dropout(dropout))
        self.null = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 1024, d))
        # no dropout inside the layer: dropout masks over (batch, heads, n, n) attention
        # weights cost more CPU time than the rest of the step; the inputs are dropped instead
        layer = nn.TransformerEncoderLayer(d, n_heads, 2 * d, 0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.drop = nn.Dropout(dropout)
        # a local convolution lets "near a question word" be learnt directly
        self.conv = nn.Conv1d(d, d, conv_kernel, padding=conv_kernel // 2) if conv_kernel else None
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, 2)
        self.scale = 1.0 / math.sqrt(d)

    def forward(self, ctx: torch.Tensor, ctx_mask: torch.Tensor, q: torch.Tensor,
                q_mask: torch.Tensor, feats: torch.Tensor, ctx_index: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores for each question.

        Args:
            ctx: ``(C, n, d_in)`` context token vectors (padded).
            ctx_mask: ``(C, n)`` True for real tokens.
            q: ``(B, m, d_in)`` question token vectors (padded).
            q_mask: ``(B, m)`` True for real tokens.
            feats: ``(B, n, 3)`` word-match flags of each question's context.
            ctx_index: ``(B,)`` which context each question reads.

        Returns:
            ``(start, end)``, each ``(B, n + 1)``; padding gets ``-inf``.
        """
        c = self.proj_c(ctx)[ctx_index]  # each context projected once, shared by its questions
        cm = ctx_mask[ctx_index]
        qv = self.proj_q(q)
        # context -> question attention
        sc = torch.einsum("bnd,bmd->bnm", self.att(c), qv) * self.scale
        sc = sc.masked_fill(~q_mask[:, None, :], -1e4)
        a = torch.einsum("bnm,bmd->bnd", torch.softmax(sc, dim=-1), qv)
        soft_max = sc.max(dim=-1).values.unsqueeze(-1)
        # question summary
        w = self.q_pool(qv).squeeze(-1).masked_fill(~q_mask, -1e4)
        qs = torch.einsum("bm,bmd->bd", torch.softmax(w, dim=-1), qv)[:, None, :]
        h = self.fuse(torch.cat([c, a, c * a, c * qs], dim=-1))
        h = h + self.match(torch.cat([feats, torch.tanh(soft_max)], dim=-1))
        n = h.shape[1]
        if self.conv is not None:
            hm = (h * cm[..., None].to(h.dtype)).transpose(1, 2)
            h = h + torch.nn.functional.gelu(self.conv(hm).transpose(1, 2))
        h = h + self.pos[:, :n]
        h = torch.cat([self.null.expand(h.shape[0], 1, -1) + qs, self.drop(h)], dim=1)
        mask = torch.cat([torch.ones_like(cm[:, :1]), cm], dim=1)
        h = self.layers(h, src_key_padding_mask=~mask)
        logits = self.out(self.norm(h)).float().masked_fill(~mask[..., None], float("-inf"))
        return logits[..., 0], logits[..., 1]


# -- batching helpers (shared by training and inference) ------------------------------------
def _pad(arrays: Sequence[np.ndarray], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(1, max((len(a) for a in arrays), default=1))
    out = np.zeros((len(arrays), n, width), np.float32)
    mask = np.zeros((len(arrays), n), bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
        mask[i, : len(a)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def run_net(net: SpanNet, ctx_vecs: Sequence[np.ndarray], q_vecs: Sequence[np.ndarray],
            feats: Sequence[np.ndarray], ctx_index: Sequence[int],
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad numpy inputs and run ``net`` (gradients follow the caller's mode)."""
    d_in = int(ctx_vecs[0].shape[1]) if len(ctx_vecs[0]) else int(q_vecs[0].shape[1])
    c, cm = _pad(ctx_vecs, d_in)
    q, qm = _pad(q_vecs, d_in)
    f, _ = _pad(feats, N_MATCH_FEATURES)
    f = f[:, : c.shape[1]]
    if f.shape[1] < c.shape[1]:
        f = torch.nn.functional.pad(f, (0, 0, 0, c.shape[1] - f.shape[1]))
    return net(c, cm, q, qm, f, torch.as_tensor(list(ctx_index), dtype=torch.long))


def best_spans(start: np.ndarray, end: np.ndarray, max_len: int, k: int,
               ) -> list[tuple[int, int, float]]:
    """Top ``k`` token spans ``(i, j, start[i] + end[j])`` with ``i <= j < i + max_len``.

    ``start``/``end`` are the token scores WITHOUT the no-answer position.
    """
    n = len(start)
    if n == 0:
        return []
    s = start[:, None] + end[None, :]
    i, j = np.indices((n, n))
    s = np.where((j >= i) & (j < i + max_len), s, -np.inf)
    flat = s.ravel()
    k = min(k, int(np.isfinite(flat).sum()))
    if k <= 0:
        return []
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top])]
    return [(int(t // n), int(t % n), float(flat[t])) for t in top]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


_WindowScores = tuple[int, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _Window:
    start: int  # char offset in the document
    end: int
    text: str


# -- the head -------------------------------------------------------------------------------
@HEADS.register(KIND)
class ExtractiveQA:
    """Extractive QA head: answers are exact character spans of the given context.

    Args:
        encoder: The shared frozen encoder (``None``: the default encoder, lazily).
        d_model: Width of the trainable layers.
        n_layers: Transformer layers of the span network.
        n_heads: Attention heads.
        dropout: Dropout while training.
        layers: Encoder hidden states used as token features (``None``: ``(3, 6, 9, 12)``
            scaled to the encoder's depth, e.g. ``[2, 3, 5, 6]`` on a 6-layer model).
        window_tokens: Tokens per window of a long document (within the encoder's limit).
        stride_tokens: Overlap between consecutive windows, in tokens.
        max_windows: Windows read per question (the best ranked by the shared encoder).
        no_answer_threshold: Calibrated score under which the answer is ``""``.
        batch_size: Sequences per encoder forward pass.
        bf16: Run the encoder under CPU bfloat16 autocast (about 1.7x faster on CPUs
            with bf16 support; token vectors keep a cosine > 0.9999 to float32; the
            shipped head was trained on features extracted this way).
    """

    def __init__(self, encoder: Encoder | None = None, *, d_model: int = 128, n_layers: int = 1,
                 n_heads: int = 4, dropout: float = 0.1,
                 layers: Sequence[int] | None = None, window_tokens: int = 384,
                 stride_tokens: int = 128, max_windows: int = 4,
                 no_answer_threshold: float = 0.0, batch_size: int = 16,
                 bf16: bool = False) -> None:
        self.encoder = encoder
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.layers = layers
        self.window_tokens = window_tokens
        self.stride_tokens = stride_tokens
        self.max_windows = max_windows
        self.no_answer_threshold = no_answer_threshold
        self.batch_size = batch_size
        self.bf16 = bf16
        self.net_: SpanNet | None = None
        self.calibration_: np.ndarray | None = None  # (a, b): p = sigmoid(a * margin + b)
        self.training_info_: dict[str, Any] | None = None

    # -- plumbing ------------------------------------------------------------------------
    @property
    def encoder_(self) -> Encoder:
        """The encoder in use (the default one when none was given)."""
        if self.encoder is None:
            from embedsuite.encoders import DEFAULT_ENCODER, get_encoder

            self.encoder = get_encoder(DEFAULT_ENCODER)
        return self.encoder

    def _check_encoder(self) -> Encoder:
        enc = self.encoder_
        if not getattr(enc, "has_token_embeddings", False):
            from embedsuite.errors import TokenEmbeddingsUnavailableError

            raise TokenEmbeddingsUnavailableError(
                f"ExtractiveQA needs token embeddings but encoder {enc.name!r} gives sentence "
                f"vectors only; use an encoder with token embeddings, e.g. 'e5-small'"
            )
        return enc

    def layer_ids(self) -> list[int]:
        """Hidden states read as token features: ``layers``, or by default ``(3, 6, 9, 12)``
        (chosen for 12 layers) scaled to the encoder's depth."""
        from embedsuite.encoders.base import resolve_layers

        return resolve_layers(self.layers, self.encoder_, DEFAULT_LAYERS)

    def new_net(self, d_in: int) -> SpanNet:
        """A freshly initialised span network for ``d_in``-wide token vectors."""
        return SpanNet(d_in, self.d_model, self.n_layers, self.n_heads, self.dropout)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments (scikit-learn convention)."""
        return {k: getattr(self, k) for k in (
            "encoder", "d_model", "n_layers", "n_heads", "dropout", "layers", "window_tokens",
            "stride_tokens", "max_windows", "no_answer_threshold", "batch_size", "bf16")}

    def set_params(self, **params: Any) -> ExtractiveQA:
        """Set constructor arguments (scikit-learn convention)."""
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(
                    f"unknown parameter {k!r} for ExtractiveQA; valid: {sorted(valid)}"
                )
            setattr(self, k, v)
        return self

    # -- training ------------------------------------------------------------------------
    def fit(self, questions: Sequence[str], contexts: Sequence[str],
            answers: Sequence[tuple[str, int] | dict[str, Any]], *, epochs: int = 6,
            lr: float = 2e-3, seed: int = 0, show_progress: bool | None = None,
            ) -> ExtractiveQA:
        """Train the span network on (question, context, answer) triples.

        Args:
            questions: The questions.
            contexts: Their contexts (one per question; repeats are encoded once).
            answers: One gold answer per question, ``(text, char_start)`` or
                ``{"text", "answer_start"}``; ``context[start:start+len(text)] == text``.
            epochs: Passes over the data.
            lr: Peak learning rate (AdamW, linear warm-up and decay).
            seed: Seed of the initialisation and the shuffling.
            show_progress: Progress bars.

        Returns:
            self
        """
        from embedsuite.heads.qa_train import QAExample, fit_head_in_memory

        qs, _ = as_text_list(questions, "questions")
        cs, _ = as_text_list(contexts, "contexts")
        if len(qs) != len(cs) or len(qs) != len(answers):
            raise ValueError(
                f"questions, contexts and answers must have the same length, got {len(qs)}, "
                f"{len(cs)} and {len(answers)}"
            )
        exs = []
        for i, (q, c, a) in enumerate(zip(qs, cs, answers, strict=True)):
            text, st = (a["text"], int(a["answer_start"])) if isinstance(a, dict) else a
            if c[st : st + len(text)] != text:
                raise ValueError(
                    f"answers[{i}] {text!r} is not at character {st} of contexts[{i}]; expected "
                    f"contexts[{i}][start:start+len(text)] == text"
                )
            exs.append(QAExample(str(i), q, c, [(text, st)]))
        self._check_encoder()
        fit_head_in_memory(self, exs, epochs=epochs, lr=lr, seed=seed,
                           show_progress=show_progress)
        return self

    # -- inference -----------------------------------------------------------------------
    def _windows(self, text: str) -> list[_Window]:
        """Overlapping windows of ``text`` within :attr:`window_tokens` tokens."""
        enc = self.encoder_
        limit = min(self.window_tokens, max(16, int(getattr(enc, "max_seq_length", 512)) - 4))
        offsets_fn = getattr(enc, "token_offsets", None)
        if offsets_fn is not None:
            offs = np.asarray(offsets_fn(text, "passage"))
        else:
            # protocol-only fallback: one encode_tokens call tells the token spans
            offs = np.asarray(enc.encode_tokens(text, role="passage").offsets)  # type: ignore[union-attr]
            if len(offs) and offs[-1, 1] < len(text.rstrip()):
                # the encoder truncated: approximate the rest by its characters per token
                per = max(1.0, offs[-1, 1] / len(offs))
                rest = np.arange(int(offs[-1, 1]), len(text), per).astype(int)
                extra = np.stack([rest, np.minimum(rest + int(per), len(text))], 1)
                offs = np.concatenate([offs, extra])
        n = len(offs)
        if n <= limit:
            return [_Window(0, len(text), text)]
        step = max(1, limit - min(self.stride_tokens, limit // 2))
        out = []
        for s in range(0, n, step):
            e = min(n, s + limit)
            cs, ce = int(offs[s, 0]), int(offs[e - 1, 1])
            out.append(_Window(cs, ce, text[cs:ce]))
            if e >= n:
                break
        return out

    def _rank_windows(self, questions: list[str], windows: list[_Window]) -> np.ndarray:
        """``(n_questions, n_windows)`` cosine of question (query) and window (passage)."""
        enc = self.encoder_
        qv = enc.encode(questions, role="query", show_progress=False)
        wv = enc.encode([w.text for w in windows], role="passage", show_progress=False)
        return np.asarray(qv @ wv.T)

    def answer(self, question: str | Sequence[str], context: str | Sequence[str], *,
               top_k: int = 1, max_answer_len: int = 30,
               no_answer_threshold: float | None = None,
               max_windows: int | None = None) -> Any:
        """Answer question(s) with a span of the context.

        Args:
            question: A question, or a list of questions (a batch).
            context: The text to read (any length); one str for all questions, or a
                list with one context per question.
            top_k: Answers per question; 1 gives a dict, more give a list of dicts
                (best first, distinct spans).
            max_answer_len: Longest answer, in tokens.
            no_answer_threshold: Calibrated score under which the answer is ``""``
                (default: the head's :attr:`no_answer_threshold`).
            max_windows: Windows read per question (default: :attr:`max_windows`).

        Returns:
            Per question a dict with keys :data:`RESULT_KEYS` (or a list of them for
            ``top_k > 1``): ``answer`` == ``context[start:end]``; ``score`` a calibrated
            probability-like confidence in [0, 1] comparable across windows; ``window``
            the index of the window the answer came from (0 for short texts) and
            ``window_start``/``window_end`` its character span. When the best score is
            under the threshold, the first result is ``answer=""``, ``start=end=0``
            with that best score. A list in gives a list out.

        Raises:
            NotFittedError: The head is not trained or loaded.
            ValueError: Empty question or context, mismatched lengths, bad ``top_k``.
        """
        check_fitted(self, ["net_", "calibration_"])
        qs, single = as_text_list(question, "question")
        if isinstance(context, str):
            ctxs = [check_text(context, "context")] * len(qs)
        else:
            ctxs, _ = as_text_list(context, "context")
            if len(ctxs) != len(qs):
                raise ValueError(
                    f"context has {len(ctxs)} texts but question has {len(qs)}; give one "
                    f"context per question or a single str for all"
                )
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        if not isinstance(max_answer_len, int) or max_answer_len < 1:
            raise ValueError(f"max_answer_len must be an int >= 1, got {max_answer_len!r}")
        thr = self.no_answer_threshold if no_answer_threshold is None else no_answer_threshold
        mw = self.max_windows if max_windows is None else max_windows
        if mw < 1:
            raise ValueError(f"max_windows must be >= 1, got {mw}")
        # preprocess: windows per distinct context, windows to read per question
        docs: dict[str, list[_Window]] = {}
        for c in ctxs:
            if c not in docs:
                docs[c] = self._windows(c)
        reads: list[list[int]] = []
        for i, (q, c) in enumerate(zip(qs, ctxs, strict=True)):
            wins = docs[c]
            if len(wins) <= mw:
                reads.append(list(range(len(wins))))
            else:
                cos = self._rank_windows([q], wins)[0]
                reads.append([int(j) for j in np.argsort(-cos)[:mw]])
            del i
        # forward: encode each needed window once and each question once
        scores = self._forward(qs, ctxs, docs, reads)
        # postprocess
        out = []
        for i, c in enumerate(ctxs):
            res = self._postprocess(c, docs[c], scores[i], top_k, max_answer_len, thr)
            out.append(res[0] if top_k == 1 else res)
        return out[0] if single else out

    def token_scores(self, question: str, context: str, *, max_windows: int | None = None
                     ) -> list[dict[str, Any]]:
        """Start / end scores of every token of the windows read for one question.

        For explanations: the raw (uncalibrated) logits the answer is chosen from.

        Returns:
            One dict per window read: ``{"window", "offsets"`` (``(n, 2)`` character spans
            into ``context``), ``"start"``, ``"end"`` (``(n,)`` scores)``}``.
        """
        check_fitted(self, ["net_", "calibration_"])
        q = check_text(question, "question")
        c = check_text(context, "context")
        mw = self.max_windows if max_windows is None else max_windows
        wins = self._windows(c)
        if len(wins) <= mw:
            read = list(range(len(wins)))
        else:
            read = [int(j) for j in np.argsort(-self._rank_windows([q], wins)[0])[:mw]]
        out = []
        for widx, offs, st, en in self._forward([q], [c], {c: wins}, [read])[0]:
            shift = wins[widx].start
            out.append({"window": widx, "offsets": np.asarray(offs) + shift,
                        "start": np.asarray(st[1:], np.float32),
                        "end": np.asarray(en[1:], np.float32)})
        return out

    def _forward(self, qs: list[str], ctxs: list[str], docs: dict[str, list[_Window]],
                 reads: list[list[int]]) -> list[list[_WindowScores]]:
        """Per question, per window read: (window index, offsets, start, end) scores."""
        enc = self._check_encoder()
        assert self.net_ is not None
        keys = list(dict.fromkeys((c, j) for c, r in zip(ctxs, reads, strict=True) for j in r))
        texts = [docs[c][j].text for c, j in keys]
        from embedsuite.heads.qa_train import _autocast

        with _autocast(self.bf16):
            wemb = enc.encode_tokens(texts, role="passage", layers=self.layer_ids(),
                                     batch_size=self.batch_size, show_progress=False)
            qemb = enc.encode_tokens(list(dict.fromkeys(qs)), role="query",
                                     layers=self.layer_ids(), batch_size=32,
                                     show_progress=False)
        assert isinstance(wemb, list) and isinstance(qemb, list)
        qmap = {e.text: e.vectors for e in qemb}
        kidx = {k: i for i, k in enumerate(keys)}
        pairs = [(i, kidx[(c, j)]) for i, (c, r) in enumerate(zip(ctxs, reads, strict=True))
                 for j in r]
        results: list[list[_WindowScores]] = [[] for _ in qs]
        net = self.net_
        net.eval()
        bs = 32
        with torch.inference_mode():
            for s in range(0, len(pairs), bs):
                chunk = pairs[s : s + bs]
                used = list(dict.fromkeys(w for _, w in chunk))
                local = {w: n for n, w in enumerate(used)}
                feats = [match_features(qs[i], wemb[w].text, wemb[w].offsets) for i, w in chunk]
                st, en = run_net(net, [wemb[w].vectors for w in used],
                                 [qmap[qs[i]] for i, _ in chunk], feats,
                                 [local[w] for _, w in chunk])
                st_np, en_np = st.float().numpy(), en.float().numpy()
                for r, (i, w) in enumerate(chunk):
                    n = len(wemb[w])
                    results[i].append((keys[w][1], wemb[w].offsets, st_np[r, : n + 1],
                                       en_np[r, : n + 1]))
        return results

    def _postprocess(self, context: str, windows: list[_Window],
                     per_window: list[_WindowScores],
                     top_k: int, max_len: int, threshold: float) -> list[dict[str, Any]]:
        assert self.calibration_ is not None
        a, b = float(self.calibration_[0]), float(self.calibration_[1])
        cands: list[dict[str, Any]] = []
        for widx, offs, st, en in per_window:
            win = windows[widx]
            null = float(st[0] + en[0])
            for i, j, sc in best_spans(st[1:], en[1:], max_len, top_k + 2):
                cs = win.start + int(offs[i, 0])
                ce = win.start + int(offs[j, 1])
                cands.append({"answer": context[cs:ce], "start": cs, "end": ce,
                              "score": _sigmoid(a * (sc - null) + b), "window": widx,
                              "window_start": win.start, "window_end": win.end})
        cands.sort(key=lambda d: -d["score"])
        seen: set[tuple[int, int]] = set()
        out = []
        for cnd in cands:
            if (cnd["start"], cnd["end"]) in seen:
                continue
            seen.add((cnd["start"], cnd["end"]))
            out.append(cnd)
            if len(out) == top_k:
                break
        if not out:
            out = [{"answer": "", "start": 0, "end": 0, "score": 0.0, "window": 0,
                    "window_start": 0, "window_end": len(context)}]
        elif out[0]["score"] < threshold:
            out.insert(0, {**out[0], "answer": "", "start": 0, "end": 0})
            out = out[:top_k]
        return out

    # -- persistence ---------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        p = self.get_params()
        p.pop("encoder")
        p["layers"] = self.layer_ids()
        assert self.net_ is not None
        return {"params": p, "d_in": int(self.net_.d_in),
                "training": self.training_info_ or {}}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save as ``config.json`` + ``model.safetensors`` (no pickle)."""
        check_fitted(self, ["net_", "calibration_"])
        assert self.net_ is not None and self.calibration_ is not None
        tensors = {f"net.{k}": v.detach().float().cpu().numpy()
                   for k, v in self.net_.state_dict().items()}
        tensors["calibration"] = np.asarray(self.calibration_, np.float32)
        enc = self.encoder_
        return write_head_folder(path, KIND, self._config(), tensors, enc)

    @classmethod
    def _load(cls, config: dict[str, Any], tensors: dict[str, np.ndarray],
              encoder: Encoder | None) -> ExtractiveQA:
        params = dict(config.get("params", {}))
        params["layers"] = tuple(params.get("layers", (3, 6, 9, 12)))
        head = cls(encoder, **params)
        net = head.new_net(int(config["d_in"]))
        state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in tensors.items()
                 if k.startswith("net.")}
        net.load_state_dict(state)
        net.eval()
        head.net_ = net
        head.calibration_ = np.asarray(tensors["calibration"], np.float32)
        head.training_info_ = dict(config.get("training", {}))
        return head

    @classmethod
    def load(cls, path: str | os.PathLike[str], encoder: Encoder | None = None) -> ExtractiveQA:
        """Load a saved head (checks that it was trained on ``encoder``).

        Raises:
            HeadFormatError: Not a saved QA head.
            EncoderMismatchError: Trained on another encoder.
        """
        return load_head_of_kind(cls, path, encoder, KIND, "QA head")

    @classmethod
    def load_default(cls, encoder: Encoder | None = None) -> ExtractiveQA:
        """The shipped head (trained on SQuAD with e5-small; see docs/qa.md)."""
        if not (DEFAULT_HEAD_DIR / "config.json").is_file():
            from embedsuite.errors import HeadFormatError

            raise HeadFormatError(
                f"expected the shipped QA head at {DEFAULT_HEAD_DIR}, but its config.json is "
                f"missing (a damaged install?). Reinstall embedsuite, or train a head: in a "
                f"checkout `python demos/train_qa.py`; from an installed wheel "
                f"`embedsuite train-qa --data SQUAD.json --out DIR` and load it with "
                f"ExtractiveQA.load(DIR)")
        return cls.load(DEFAULT_HEAD_DIR, encoder)
