"""Training the QA span network on frozen token features: pairs, batches, the loop.

Every distinct context (role ``passage``) and question (role ``query``) is encoded once,
alone, and its token states are kept in the shared
:class:`~embedsuite.encoders.token_store.TokenFeatureStore` (resumable chunks). Encoding a
context once and each question once (instead of every question together with its
context) is about five times cheaper on SQuAD-like data; the question-context
interaction is learnt by the span network (:mod:`.network`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from embedsuite.atomic import atomic_write_text
from embedsuite.data.squad import QAExample, load_squad
from embedsuite.encoders.base import Encoder, Role, TokenEmbeddings, progress
from embedsuite.encoders.token_store import TokenFeatureStore, autocast_bf16
from embedsuite.heads.qa.features import char_span_to_tokens, match_features
from embedsuite.heads.qa.network import best_spans, run_net
from embedsuite.metrics import f1_score, metric_max_over_ground_truths, squad_scores

logger = logging.getLogger(__name__)

__all__ = ["fit_calibration", "make_pairs", "split_by_title", "train_from_squad",
           "train_in_memory", "train_net"]


@dataclass
class _Pair:
    """One training/validation item: a question read against a context."""

    q: int  # index into the question features
    c: int  # index into the context features
    start: int  # network position (0 = no answer, 1 + token index otherwise)
    end: int
    feats: np.ndarray
    golds: list[str]
    ex: int  # index of the example


def make_pairs(examples: Sequence[QAExample], ctx_index: dict[str, int],
               q_index: dict[str, int], ctx_feats: list[tuple[np.ndarray, np.ndarray]],
               negatives: float = 0.0, seed: int = 0) -> tuple[list[_Pair], int]:
    """Positive pairs (gold token span) and, optionally, no-answer pairs.

    A no-answer pair reads a question against another paragraph of the same article
    (a hard negative), target position 0. ``negatives`` is their number per positive.

    Returns:
        ``(pairs, n_skipped)``: questions whose answer is beyond the encoded tokens are skipped.
    """
    rng = np.random.default_rng(seed)
    pairs: list[_Pair] = []
    skipped = 0
    by_title: dict[str, list[str]] = {}
    for e in examples:
        by_title.setdefault(e.title, [])
        if e.context not in by_title[e.title]:
            by_title[e.title].append(e.context)
    for k, e in enumerate(examples):
        c = ctx_index[e.context]
        offs = ctx_feats[c][1]
        text, st = e.answers[0] if e.answers else ("", 0)
        span = char_span_to_tokens(offs, st, st + len(text)) if text else None
        golds = [a for a, _ in e.answers]
        if span is None:
            skipped += 1
            continue
        pairs.append(_Pair(q_index[e.question], c, span[0] + 1, span[1] + 1,
                           match_features(e.question, e.context, offs), golds, k))
        others = [o for o in by_title[e.title] if o != e.context]
        n_neg = int(negatives) + int(rng.random() < negatives - int(negatives))
        for o in rng.permutation(len(others))[:n_neg] if others else []:
            oc = ctx_index[others[int(o)]]
            pairs.append(_Pair(q_index[e.question], oc, 0, 0,
                               match_features(e.question, others[int(o)], ctx_feats[oc][1]),
                               [], k))
    return pairs, skipped


def _batches(pairs: list[_Pair], ctx_lens: Sequence[int], max_tokens: int,
             rng: np.random.Generator) -> list[list[int]]:
    """Batches of pair indices grouped by context (projected once) and similar lengths."""
    by_ctx: dict[int, list[int]] = {}
    for i, p in enumerate(pairs):
        by_ctx.setdefault(p.c, []).append(i)
    ctxs = list(by_ctx)
    rng.shuffle(ctxs)
    batches: list[list[int]] = []
    for s in range(0, len(ctxs), 64):
        block = sorted(ctxs[s : s + 64], key=lambda c: ctx_lens[c])
        cur: list[int] = []
        longest = 0
        for c in block:
            longest = max(longest, ctx_lens[c])
            if cur and (len(cur) + len(by_ctx[c])) * longest > max_tokens:
                batches.append(cur)
                cur = []
                longest = ctx_lens[c]
            cur += by_ctx[c]
        if cur:
            batches.append(cur)
    order = rng.permutation(len(batches))
    return [batches[int(i)] for i in order]


def _net_inputs(pairs: list[_Pair], idx: Sequence[int],
                ctx_feats: list[tuple[np.ndarray, np.ndarray]],
                q_feats: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Any, ...]:
    used = list(dict.fromkeys(pairs[i].c for i in idx))
    local = {c: n for n, c in enumerate(used)}
    return ([ctx_feats[c][0] for c in used], [q_feats[pairs[i].q][0] for i in idx],
            [pairs[i].feats for i in idx], [local[pairs[i].c] for i in idx])


def predict_pairs(net: Any, pairs: list[_Pair], ctx_feats: list[tuple[np.ndarray, np.ndarray]],
                  q_feats: list[tuple[np.ndarray, np.ndarray]], max_len: int = 30,
                  max_tokens: int = 12000) -> list[tuple[int, int, float, float]]:
    """Best span per pair: ``(token i, token j, span score, no-answer score)``."""
    import torch

    net.eval()
    out: list[tuple[int, int, float, float]] = [(0, 0, 0.0, 0.0)] * len(pairs)
    rng = np.random.default_rng(0)
    lens = [len(v) for v, _ in ctx_feats]
    with torch.inference_mode():
        for idx in _batches(pairs, lens, max_tokens, rng):
            st, en = run_net(net, *_net_inputs(pairs, idx, ctx_feats, q_feats))
            st_np, en_np = st.float().numpy(), en.float().numpy()
            for r, i in enumerate(idx):
                n = lens[pairs[i].c]
                sp = best_spans(st_np[r, 1 : n + 1], en_np[r, 1 : n + 1], max_len, 1)
                a, b, sc = sp[0] if sp else (0, 0, -1e9)
                out[i] = (a, b, sc, float(st_np[r, 0] + en_np[r, 0]))
    return out


def evaluate_pairs(net: Any, pairs: list[_Pair], examples: Sequence[QAExample],
                   ctx_feats: list[tuple[np.ndarray, np.ndarray]],
                   q_feats: list[tuple[np.ndarray, np.ndarray]], ctx_texts: list[str],
                   ) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """SQuAD EM/F1 on the positive pairs, and (margin, correct) for calibration."""
    preds = predict_pairs(net, pairs, ctx_feats, q_feats)
    answers, golds, margins, labels = [], [], [], []
    for p, (i, j, sc, null) in zip(pairs, preds, strict=True):
        offs = ctx_feats[p.c][1]
        ans = ctx_texts[p.c][int(offs[i, 0]) : int(offs[j, 1])]
        margins.append(sc - null)
        if p.golds:
            answers.append(ans)
            golds.append(p.golds)
            labels.append(metric_max_over_ground_truths(f1_score, ans, p.golds) >= 0.5)
        else:
            labels.append(False)
    del examples
    return squad_scores(answers, golds), np.array(margins), np.array(labels, bool)


def fit_calibration(margins: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(a, b)`` of ``p(correct) = sigmoid(a * margin + b)`` (logistic regression)."""
    from sklearn.linear_model import LogisticRegression

    if len(set(labels.tolist())) < 2:
        return np.array([1.0, 0.0], np.float32)
    lr = LogisticRegression(C=1.0).fit(margins.reshape(-1, 1), labels)
    return np.array([float(lr.coef_[0, 0]), float(lr.intercept_[0])], np.float32)


def _save_state(path: Path, net: Any, opt: Any, info: dict[str, Any]) -> None:
    """A resumable training checkpoint (safetensors + JSON, no pickle)."""
    from safetensors.torch import save_file

    tensors = {f"net.{k}": v.detach().contiguous() for k, v in net.state_dict().items()}
    st = opt.state_dict()
    for pid, d in st["state"].items():
        for name, v in d.items():
            tensors[f"opt.{pid}.{name}"] = (v if hasattr(v, "shape") else
                                           __import__("torch").tensor(v)).contiguous()
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "state.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, path / "state.safetensors")
    atomic_write_text(path / "state.json", json.dumps(
        {**info, "param_groups": [{k: v for k, v in g.items() if k != "params"}
                                  for g in st["param_groups"]]}, indent=1))


def _load_state(path: Path, net: Any, opt: Any) -> dict[str, Any] | None:
    from safetensors.torch import load_file

    if not (path / "state.json").is_file() or not (path / "state.safetensors").is_file():
        return None
    info = json.loads((path / "state.json").read_text())
    tensors = load_file(str(path / "state.safetensors"))
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    st = opt.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    st["state"] = state
    for g, saved in zip(st["param_groups"], info.get("param_groups", []), strict=False):
        g.update(saved)
    opt.load_state_dict(st)
    return dict(info)


def train_net(new_net: Callable[[int], Any], train_pairs: list[_Pair], val_pairs: list[_Pair],
              val_examples: Sequence[QAExample], ctx_feats: list[tuple[np.ndarray, np.ndarray]],
              q_feats: list[tuple[np.ndarray, np.ndarray]], ctx_texts: list[str], *,
              epochs: int, lr: float, seed: int, max_tokens: int = 12000,
              ckpt_dir: Path | None = None, show_progress: bool | None = True,
              log: Any = None, bf16: bool = True, stop_after: int | None = None,
              ) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The training loop: AdamW, linear warm-up/decay, best epoch kept (on validation F1).

    ``new_net(d_in)`` gives a freshly initialised network. Returns ``(net, calibration,
    info)``, the calibration fitted on the validation pairs; with ``ckpt_dir`` each finished
    epoch is saved there and a rerun resumes after the last one. ``bf16`` runs the
    forward pass under CPU bfloat16 autocast (weights and optimiser stay float32).
    ``stop_after`` ends training after that many epochs of the ``epochs``-long
    learning-rate schedule (a time budget); a later call with a larger value goes on.
    """
    import torch

    torch.manual_seed(seed)
    d_in = int(ctx_feats[0][0].shape[1])
    net = new_net(d_in)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    lens = [len(v) for v, _ in ctx_feats]
    rng = np.random.default_rng(seed)
    n_batches = len(_batches(train_pairs, lens, max_tokens, np.random.default_rng(seed)))
    total = max(1, epochs * n_batches)
    warm = max(1, int(0.06 * total))

    def lr_at(step: int) -> float:
        return lr * min(1.0, (step + 1) / warm) * max(0.02, (total - step) / max(1, total - warm))

    info: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "best_f1": -1.0}
    best_state: dict[str, Any] | None = None
    if ckpt_dir is not None:
        loaded = _load_state(ckpt_dir, net, opt)
        if loaded is not None and loaded.get("epochs") == epochs:
            info = loaded
            rng = np.random.default_rng(seed + info["epoch"])
            best_path = ckpt_dir / "best.safetensors"
            if best_path.is_file():
                from safetensors.torch import load_file

                best_state = load_file(str(best_path))
            logger.info("resuming after epoch %d", info["epoch"])
    info["epochs"] = epochs
    step = int(info["step"])
    last = epochs if stop_after is None else max(0, min(epochs, stop_after))
    for ep in range(int(info["epoch"]), last):
        net.train()
        batches = _batches(train_pairs, lens, max_tokens, rng)
        t0 = time.perf_counter()
        run_loss = 0.0
        with progress(len(batches), f"epoch {ep + 1}/{epochs}", show_progress, threshold=0) as bar:
            for b, idx in enumerate(batches):
                for g in opt.param_groups:
                    g["lr"] = lr_at(step)
                with autocast_bf16(bf16):
                    st, en = run_net(net, *_net_inputs(train_pairs, idx, ctx_feats, q_feats))
                ts = torch.tensor([train_pairs[i].start for i in idx])
                te = torch.tensor([train_pairs[i].end for i in idx])
                loss = (torch.nn.functional.cross_entropy(st, ts)
                        + torch.nn.functional.cross_entropy(en, te)) / 2
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                step += 1
                lv = float(loss.detach())
                run_loss = 0.98 * run_loss + 0.02 * lv if b else lv
                bar.set_postfix(loss=f"{run_loss:.3f}")
                bar.update(1)
        scores, margins, labels = evaluate_pairs(net, val_pairs, val_examples, ctx_feats,
                                                 q_feats, ctx_texts)
        rec = {"epoch": ep + 1, "loss": round(run_loss, 4), "val_f1": round(scores["f1"], 4),
               "val_em": round(scores["exact_match"], 4),
               "seconds": round(time.perf_counter() - t0, 1)}
        info["history"].append(rec)
        msg = (f"epoch {ep + 1}/{epochs}: loss {run_loss:.3f}  val F1 {scores['f1']:.3f}  "
               f"EM {scores['exact_match']:.3f}  ({rec['seconds']} s)")
        logger.info(msg)
        if log is not None:
            log(msg)
        if scores["f1"] > info["best_f1"]:
            info["best_f1"] = scores["f1"]
            info["best_epoch"] = ep + 1
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            if ckpt_dir is not None:
                from safetensors.torch import save_file

                ckpt_dir.mkdir(parents=True, exist_ok=True)
                save_file({k: v.contiguous() for k, v in best_state.items()},
                          str(ckpt_dir / "best.safetensors"))
        info["epoch"] = ep + 1
        info["step"] = step
        if ckpt_dir is not None:
            _save_state(ckpt_dir, net, opt, info)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    _, margins, labels = evaluate_pairs(net, val_pairs, val_examples, ctx_feats, q_feats,
                                        ctx_texts)
    info.pop("param_groups", None)
    return net, fit_calibration(margins, labels), info


def split_by_title(examples: Sequence[QAExample], val_fraction: float, seed: int = 0,
                   ) -> tuple[list[QAExample], list[QAExample]]:
    """Train/validation split by article (no paragraph in both)."""
    titles = sorted({e.title for e in examples})
    rng = np.random.default_rng(seed)
    n_val = round(len(titles) * val_fraction)
    val_titles = set(rng.permutation(titles)[:n_val].tolist()) if n_val else set()
    return ([e for e in examples if e.title not in val_titles],
            [e for e in examples if e.title in val_titles])


def _prepare(examples: Sequence[QAExample], ctx_texts: list[str], q_texts: list[str],
             ctx_feats: list[tuple[np.ndarray, np.ndarray]], val_fraction: float,
             negatives: float, seed: int) -> tuple[list[_Pair], list[_Pair], list[QAExample],
                                                   dict[str, int]]:
    ci = {t: i for i, t in enumerate(ctx_texts)}
    qi = {t: i for i, t in enumerate(q_texts)}
    tr, va = split_by_title(examples, val_fraction, seed)
    if not va:  # tiny data: validate on the training questions
        va = list(tr)
    tp, sk1 = make_pairs(tr, ci, qi, ctx_feats, negatives, seed)
    vp, sk2 = make_pairs(va, ci, qi, ctx_feats, negatives, seed + 1)
    if not tp:
        raise ValueError("no usable training question: every answer lies beyond the encoded "
                         "tokens of its context")
    return tp, vp, va, {"train_pairs": len(tp), "val_pairs": len(vp), "skipped": sk1 + sk2,
                        "train_questions": len(tr), "val_questions": len(va)}


def train_in_memory(new_net: Callable[[int], Any], encoder: Encoder, layers: Sequence[int],
                    examples: Sequence[QAExample], *, epochs: int, lr: float, seed: int,
                    show_progress: bool | None = None, val_fraction: float = 0.0,
                    negatives: float = 0.25) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """Train on ``examples`` with features computed in memory (no disk cache).

    Returns ``(net, calibration, training_info)``.
    """
    ctx_texts = list(dict.fromkeys(e.context for e in examples))
    q_texts = list(dict.fromkeys(e.question for e in examples))

    def feats(texts: list[str], role: Role) -> list[tuple[np.ndarray, np.ndarray]]:
        embs = cast(list[TokenEmbeddings], encoder.encode_tokens(
            texts, role=role, layers=list(layers), show_progress=show_progress))
        return [(e.vectors, e.offsets) for e in embs]

    cf, qf = feats(ctx_texts, "passage"), feats(q_texts, "query")
    tp, vp, va, counts = _prepare(examples, ctx_texts, q_texts, cf, val_fraction, negatives,
                                  seed)
    net, calibration, info = train_net(new_net, tp, vp, va, cf, qf, ctx_texts, epochs=epochs,
                                       lr=lr, seed=seed, show_progress=show_progress)
    return net, calibration, {**counts, "epochs": epochs, "lr": lr, "seed": seed,
                              "history": info["history"]}


def train_from_squad(new_net: Callable[[int], Any], encoder: Encoder, layers: Sequence[int],
                     squad_path: str | os.PathLike[str], work_dir: str | os.PathLike[str], *,
                     epochs: int, lr: float, val_fraction: float, negatives: float, seed: int,
                     limit: int | None, max_tokens: int, bf16_features: bool,
                     show_progress: bool | None, log: Any, stop_after: int | None,
                     tag_extra: Sequence[Any] = (),
                     feature_dir: str | os.PathLike[str] | None = None,
                     ) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """Features of a SQuAD file from the disk cache (``feature_dir``, default
    ``work_dir/features``; built once, resumable), then training with resumable
    checkpoints under ``work_dir/train``; returns ``(net, calibration, info)``."""
    examples = load_squad(squad_path, limit)
    store = TokenFeatureStore(feature_dir if feature_dir is not None
                              else Path(work_dir) / "features")
    ctx_texts = sorted({e.context for e in examples}, key=lambda t: (len(t), t))
    q_texts = sorted({e.question for e in examples}, key=lambda t: (len(t), t))
    t0 = time.perf_counter()
    qf = store.features_with_offsets(encoder, q_texts, layers, "query", bf16=bf16_features,
                                     batch_size=32, show_progress=show_progress)
    cf = store.features_with_offsets(encoder, ctx_texts, layers, "passage",
                                     bf16=bf16_features, batch_size=16,
                                     show_progress=show_progress)
    logger.info("features ready in %.0f s", time.perf_counter() - t0)
    tp, vp, va, counts = _prepare(examples, ctx_texts, q_texts, cf, val_fraction, negatives,
                                  seed)
    logger.info("training pairs %d, validation pairs %d, skipped %d", counts["train_pairs"],
                counts["val_pairs"], counts["skipped"])
    tag = hashlib.sha256(json.dumps([str(squad_path), limit, epochs, lr, *tag_extra,
                                     val_fraction, negatives, seed, max_tokens,
                                     encoder.fingerprint, list(layers), bf16_features]).encode()
                         ).hexdigest()[:12]
    net, calibration, info = train_net(
        new_net, tp, vp, va, cf, qf, ctx_texts, epochs=epochs, lr=lr, seed=seed,
        max_tokens=max_tokens, ckpt_dir=Path(work_dir) / "train" / tag,
        show_progress=show_progress, log=log, stop_after=stop_after)
    return net, calibration, {
        **counts, "data": Path(squad_path).name, "epochs": epochs, "lr": lr,
        "stop_after": stop_after, "epochs_run": info.get("epoch"), "seed": seed,
        "val_fraction": val_fraction, "negatives": negatives,
        "best_epoch": info.get("best_epoch"), "val_f1": info.get("best_f1"),
        "history": info["history"]}
