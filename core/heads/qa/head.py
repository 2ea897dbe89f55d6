"""Extractive question answering: a span head on the shared encoder's frozen token vectors.

The context (role ``passage``) and the question (role ``query``) are encoded
separately by the frozen shared encoder (token vectors of a few hidden layers,
:data:`.features.DEFAULT_LAYERS`); a small trainable network
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch

from embedsuite.data.squad import QAExample
from embedsuite.encoders.base import Encoder, TokenEmbeddings
from embedsuite.encoders.token_store import autocast_bf16
from embedsuite.heads.base import HEADS, BaseHead
from embedsuite.heads.qa.features import DEFAULT_LAYERS, match_features
from embedsuite.heads.qa.network import SpanNet, best_spans, run_net
from embedsuite.heads.qa.training import train_from_squad, train_in_memory
from embedsuite.paths import ASSETS_DIR
from embedsuite.validation import as_text_list, check_text

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_HEAD_DIR", "KIND", "RESULT_KEYS", "ExtractiveQA", "train_qa"]

KIND = "qa-span"
DEFAULT_HEAD_DIR = ASSETS_DIR / "qa-default"
#: keys of every answer dict
RESULT_KEYS = ("answer", "start", "end", "score", "window", "window_start", "window_end")


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` without spaces and punctuation at either end (the span itself when
    nothing else is left)."""
    s, e = start, end
    while s < e and not text[s].isalnum():
        s += 1
    while e > s and not text[e - 1].isalnum():
        e -= 1
    return (s, e) if s < e else (start, end)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


_WindowScores = tuple[int, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _Window:
    start: int  # char offset in the document
    end: int
    text: str


# -- the head -------------------------------------------------------------------------------
class ExtractiveQA(BaseHead):
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

    kinds: ClassVar[tuple[str, ...]] = (KIND,)
    what: ClassVar[str] = "QA head"
    _fitted: ClassVar[tuple[str, ...]] = ("net_", "calibration_")

    net_: SpanNet
    calibration_: np.ndarray  # (a, b): p = sigmoid(a * margin + b)
    training_info_: dict[str, Any]

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

    # -- plumbing ------------------------------------------------------------------------
    def _check_encoder(self) -> Encoder:
        enc = self.active_encoder
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

        return resolve_layers(self.layers, self.active_encoder, DEFAULT_LAYERS)

    def new_net(self, d_in: int) -> SpanNet:
        """A freshly initialised span network for ``d_in``-wide token vectors."""
        return SpanNet(d_in, self.d_model, self.n_layers, self.n_heads, self.dropout)

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
        enc = self._resolve_encoder()
        self._check_encoder()
        self.net_, self.calibration_, self.training_info_ = train_in_memory(
            self.new_net, enc, self.layer_ids(), exs, epochs=epochs, lr=lr, seed=seed,
            show_progress=show_progress)
        return self

    # -- inference -----------------------------------------------------------------------
    def _windows(self, text: str) -> list[_Window]:
        """Overlapping windows of ``text`` within :attr:`window_tokens` tokens."""
        enc = self.active_encoder
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
        enc = self.active_encoder
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
        self._check_fitted()
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
        self._check_fitted()
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
        keys = list(dict.fromkeys((c, j) for c, r in zip(ctxs, reads, strict=True) for j in r))
        texts = [docs[c][j].text for c, j in keys]
        with autocast_bf16(self.bf16):
            wemb = enc.encode_tokens(texts, role="passage", layers=self.layer_ids(),
                                     batch_size=self.batch_size, show_progress=False)
            qemb = enc.encode_tokens(list(dict.fromkeys(qs)), role="query",
                                     layers=self.layer_ids(), batch_size=32,
                                     show_progress=False)
        wemb, qemb = cast(list[TokenEmbeddings], wemb), cast(list[TokenEmbeddings], qemb)
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
            # distinct answers: a span that differs from a better one only by spaces or
            # punctuation at its ends (", Margaret Olsen") is the same answer
            key = _trimmed(context, cnd["start"], cnd["end"])
            if key in seen:
                continue
            seen.add(key)
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
    def _saved_params(self) -> dict[str, Any]:
        params = super()._saved_params()
        params["layers"] = self.layer_ids()
        return params

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        tensors = {f"net.{k}": v.detach().float().cpu().numpy()
                   for k, v in self.net_.state_dict().items()}
        tensors["calibration"] = np.asarray(self.calibration_, np.float32)
        return ({"d_in": int(self.net_.d_in), "training": getattr(self, "training_info_", {})},
                tensors, {})

    def _restore(self, config: dict[str, Any], tensors: dict[str, np.ndarray],
                 sidecars: dict[str, np.ndarray]) -> None:
        net = self.new_net(int(config["d_in"]))
        state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in tensors.items()
                 if k.startswith("net.")}
        net.load_state_dict(state)
        net.eval()
        self.net_ = net
        self.calibration_ = np.asarray(tensors["calibration"], np.float32)
        self.training_info_ = dict(config.get("training", {}))

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


HEADS.register(KIND, ExtractiveQA)


def train_qa(squad_path: str | os.PathLike[str], work_dir: str | os.PathLike[str], *,
             encoder: Encoder | None = None, out: str | os.PathLike[str] | None = None,
             epochs: int = 8, lr: float = 2e-3, d_model: int = 128, n_layers: int = 1,
             val_fraction: float = 0.1, negatives: float = 0.25, seed: int = 0,
             limit: int | None = None, max_tokens: int = 12000, bf16_features: bool = True,
             show_progress: bool | None = True, log: Any = None,
             stop_after: int | None = None,
             feature_dir: str | os.PathLike[str] | None = None) -> ExtractiveQA:
    """Extract (or reuse) the cached features of a SQuAD file and train a QA head.

    Args:
        squad_path: SQuAD v1.1 JSON (training questions).
        work_dir: Training checkpoints (a rerun with the same settings resumes, or, when
            training finished, restores the result) and, without ``feature_dir``, the
            feature cache.
        encoder: The frozen encoder (default e5-small).
        out: Where to save the trained head (optional).
        epochs: Passes over the training pairs.
        lr: Peak learning rate.
        d_model: Width of the span network.
        n_layers: Its transformer layers.
        val_fraction: Articles held out for model selection and score calibration.
        negatives: No-answer pairs per question (other paragraphs of the same article).
        seed: Seed of split, sampling and initialisation.
        limit: Use only the first ``limit`` questions.
        max_tokens: Padded context tokens per training batch.
        bf16_features: Extract features under bfloat16 autocast (faster).
        show_progress: Progress bars.
        log: Optional callable receiving one line per epoch.
        stop_after: Stop after this many epochs of the ``epochs``-long schedule
            (resumable: rerun with a larger value or None to go on).
        feature_dir: Where the token features are cached (default ``work_dir/features``);
            features depend only on the encoder and the texts, so runs can share them.

    Returns:
        The trained :class:`ExtractiveQA`.
    """
    head = ExtractiveQA(encoder, d_model=d_model, n_layers=n_layers)
    enc = head._resolve_encoder()
    head.net_, head.calibration_, head.training_info_ = train_from_squad(
        head.new_net, enc, head.layer_ids(), squad_path, work_dir, epochs=epochs, lr=lr,
        val_fraction=val_fraction, negatives=negatives, seed=seed, limit=limit,
        max_tokens=max_tokens, bf16_features=bf16_features, show_progress=show_progress,
        log=log, stop_after=stop_after, tag_extra=(d_model, n_layers),
        feature_dir=feature_dir)
    if out is not None:
        head.save(out)
    return head
