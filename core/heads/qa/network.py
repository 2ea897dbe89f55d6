"""The trainable span network of the QA head and the helpers that batch its inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from embedsuite.heads.qa.features import N_MATCH_FEATURES

__all__ = ["SpanNet", "best_spans", "run_net"]


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
