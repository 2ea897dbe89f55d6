"""The attention-pooling network of the ``sentiment-attention`` head and its training loop.

torch is imported only here, and only when this head kind is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embedsuite.encoders.base import progress

__all__ = ["build_net", "net_proba", "pad_batch", "train_attention_net"]


def build_net(d_tokens: int, d_sent: int, n_classes: int, *, hidden: int, heads: int,
               dropout: float) -> Any:
    """The attention-pooling network (torch is imported only for this head kind)."""
    import torch
    from torch import nn

    class AttentionPoolNet(nn.Module):
        """LayerNorm -> projection -> multi-head attention pooling (+ mean pool and the
        sentence vector) -> MLP -> class logits."""

        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(d_tokens)
            self.proj = nn.Linear(d_tokens, hidden)
            self.att = nn.Linear(hidden, heads)
            self.drop = nn.Dropout(dropout)
            self.mlp = nn.Sequential(
                nn.Linear(hidden * (heads + 1) + d_sent, hidden), nn.GELU(), nn.Dropout(dropout),
                nn.Linear(hidden, n_classes),
            )

        def forward(self, x: torch.Tensor, mask: torch.Tensor, sent: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
            h = torch.nn.functional.gelu(self.proj(self.drop(self.norm(x))))  # (B, T, H)
            scores = self.att(h).masked_fill(~mask[..., None], -1e4)  # (B, T, heads)
            w = torch.softmax(scores, dim=1)
            pooled = torch.einsum("bth,btd->bhd", w, h).flatten(1)
            m = mask[..., None].float()
            mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            z = torch.cat([pooled, mean, sent], dim=-1)
            return self.mlp(self.drop(z)), w

    return AttentionPoolNet()


def pad_batch(feats: Sequence[np.ndarray], width: int) -> tuple[Any, Any]:
    import torch

    lengths = [max(len(f), 1) for f in feats]
    x = np.zeros((len(feats), max(lengths), width), np.float32)
    mask = np.zeros((len(feats), max(lengths)), bool)
    for i, f in enumerate(feats):
        if len(f):
            x[i, : len(f)] = f
            mask[i, : len(f)] = True
        else:
            mask[i, 0] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def net_proba(net: Any, feats: Sequence[np.ndarray], sent: np.ndarray, batch: int = 256
              ) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` of ``net`` (batches sorted by length)."""
    import torch

    was_training = net.training
    net.eval()
    width = int(net.norm.normalized_shape[0])
    out = []
    order = np.argsort([len(f) for f in feats])
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            b = order[s : s + batch]
            xb, mb = pad_batch([feats[i] for i in b], width)
            logits, _ = net(xb, mb, torch.from_numpy(sent[b].astype(np.float32)))
            out.append(torch.softmax(logits, -1).numpy())
    proba = np.empty((len(feats), out[0].shape[1] if out else 0), np.float32)
    if out:
        proba[order] = np.concatenate(out)
    net.train(was_training)
    return proba


def train_attention_net(feats: Sequence[np.ndarray], sent: np.ndarray, y: np.ndarray,
                        n_classes: int, *, width: int, hidden: int, heads: int, dropout: float,
                        epochs: int, lr: float, batch_size: int, weight_decay: float,
                        val_fraction: float, seed: int, show_progress: bool | None,
                        ) -> tuple[Any, float | None]:
    """Train the attention-pooling net (AdamW, one-cycle schedule, best epoch on a held-out
    share when at least 200 examples are given); returns ``(net, val_accuracy or None)``."""
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    n = len(feats)
    idx = rng.permutation(n)
    n_val = round(n * val_fraction) if n >= 200 else 0
    val, train = idx[:n_val], idx[n_val:]
    net = build_net(width, sent.shape[1], n_classes, hidden=hidden, heads=heads,
                    dropout=dropout)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, -(-len(train) // batch_size))
    total = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total,
                                                pct_start=0.1)
    sent_t = torch.from_numpy(sent.astype(np.float32))
    y_t = torch.from_numpy(y)
    best: tuple[float, dict[str, Any]] | None = None
    with progress(epochs, "train sentiment-attention", show_progress, threshold=1) as bar:
        for _epoch in range(epochs):
            net.train()
            order = rng.permutation(train)
            # bucket by length inside windows of 50 batches: less padding, still random
            win = batch_size * 50
            batches = []
            for s in range(0, len(order), win):
                part = sorted(order[s : s + win], key=lambda i: len(feats[i]))
                batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
            rng.shuffle(batches)
            for b in batches:
                xb, mb = pad_batch([feats[i] for i in b], width)
                logits, _ = net(xb, mb, sent_t[b])
                loss = torch.nn.functional.cross_entropy(logits, y_t[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            if n_val:
                p = net_proba(net, [feats[i] for i in val], sent[val])
                acc = float((p.argmax(1) == y[val]).mean())
                if best is None or acc > best[0]:
                    best = (acc, {k: v.detach().clone() for k, v in net.state_dict().items()})
                bar.set_postfix(val_acc=f"{acc:.3f}")
            bar.update(1)
    if best is not None:
        net.load_state_dict(best[1])
    net.eval()
    return net, (best[0] if best is not None else None)
