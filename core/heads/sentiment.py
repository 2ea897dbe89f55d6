"""Sentiment (text classification) heads on the frozen shared encoder.

Two kinds:

* ``sentiment-linear``: a linear probe (multinomial logistic regression) on the
  sentence embedding ``encode(text, role="query")``; fast, the baseline. With
  few examples per class it blends in a centroid (prototype) classifier.
* ``sentiment-attention``: attention pooling over the encoder's frozen token
  states (several layers concatenated) plus the sentence embedding, then a
  small MLP, trained with torch on token features cached on disk.

>>> from embedsuite.heads import SentimentClassifier
>>> clf = SentimentClassifier(kind="linear").fit(texts, labels)
>>> clf.predict("a charming, funny film")
{'label': 'positive', 'score': ...}
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from embedsuite.atomic import atomic_write_bytes, atomic_write_text
from embedsuite.encoders.base import Encoder, TokenEmbeddings, progress
from embedsuite.heads.base import HEADS

logger = logging.getLogger(__name__)

#: hidden-state layers stored by default in the token-feature cache (a superset of
#: what the attention head reads, so other layer mixes need no new encoding).
STORE_LAYERS: tuple[int, ...] = (6, 8, 10, 12)


def _layers_key(layers: Sequence[int]) -> str:
    return "L" + "-".join(str(int(x)) for x in layers)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class TokenFeatureStore:
    """An append-only on-disk cache of token states (float16), keyed by encoder and text.

    The encoder does not cache token embeddings, and the attention head reads them
    for every training epoch, so they are computed once and kept in chunk files
    (``chunk-N.npy`` with the rows of all tokens, ``chunk-N.json`` with the texts and
    their token counts) under ``root/<encoder fingerprint>/<role>-L<layers>/``.
    Each chunk is written atomically, so an interrupted run keeps what it finished.

    Args:
        root: The folder (default ``<cache_dir>/features/sentiment``).
        chunk_size: Texts encoded and written per chunk.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, chunk_size: int = 2048) -> None:
        if root is None:
            from embedsuite.paths import cache_dir

            root = cache_dir() / "features" / "sentiment"
        self.root = Path(root)
        self.chunk_size = int(chunk_size)
        self._index: dict[Path, dict[str, tuple[int, int]]] = {}
        self._arrays: dict[tuple[Path, int], np.ndarray] = {}
        self._offsets: dict[tuple[Path, int], np.ndarray] = {}

    # -- layout -------------------------------------------------------------
    def _folder(self, encoder: Encoder, role: str, layers: Sequence[int]) -> tuple[Path, list[int]]:
        """The folder holding ``layers`` (an existing superset is reused) and column picks."""
        base = self.root / _safe(encoder.fingerprint)
        want = [int(x) for x in layers]
        if base.is_dir():
            for d in sorted(base.glob(f"{role}-L*")):
                have = [int(x) for x in d.name.split("-L", 1)[1].split("-") if x.lstrip("-")]
                if all(w in have for w in want) and any(d.glob("chunk-*.json")):
                    return d, [have.index(w) for w in want]
        return base / f"{role}-{_layers_key(want)}", list(range(len(want)))

    def _load_index(self, folder: Path) -> dict[str, tuple[int, int]]:
        idx = self._index.setdefault(folder, {})
        if not folder.is_dir():
            return idx
        for meta in sorted(folder.glob("chunk-*.json")):
            cid = int(meta.stem.split("-")[1])
            if (folder, cid) in self._offsets:
                continue
            info = json.loads(meta.read_text(encoding="utf-8"))
            offs = np.concatenate([[0], np.cumsum(info["lengths"])]).astype(np.int64)
            self._offsets[(folder, cid)] = offs
            for row, t in enumerate(info["texts"]):
                idx.setdefault(t, (cid, row))
        return idx

    def _array(self, folder: Path, cid: int) -> np.ndarray:
        key = (folder, cid)
        if key not in self._arrays:
            self._arrays[key] = np.load(folder / f"chunk-{cid:05d}.npy", mmap_mode="r",
                                        allow_pickle=False)
        return self._arrays[key]

    # -- API ----------------------------------------------------------------
    def features(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        layers: Sequence[int],
        role: str = "query",
        *,
        store_layers: Sequence[int] | None = None,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> list[np.ndarray]:
        """Token states ``(n_tokens, dim * len(layers))`` float16 for each text.

        Missing texts are encoded (with ``store_layers``, a superset of ``layers``,
        default :data:`STORE_LAYERS` when it contains them) and written to disk.
        """
        folder, cols = self._folder(encoder, role, layers)
        idx = self._load_index(folder)
        todo = list(dict.fromkeys(t for t in texts if t not in idx))
        if todo:
            if not folder.exists():
                stored = list(store_layers) if store_layers is not None else list(STORE_LAYERS)
                if not all(int(x) in stored for x in layers):
                    stored = [int(x) for x in layers]
                folder = self.root / _safe(encoder.fingerprint) / f"{role}-{_layers_key(stored)}"
                cols = [stored.index(int(x)) for x in layers]
                idx = self._load_index(folder)
            self._encode_missing(encoder, folder, todo, role, batch_size=batch_size,
                                show_progress=show_progress)
            idx = self._load_index(folder)
        dim = encoder.dim
        out = []
        for t in texts:
            cid, row = idx[t]
            offs = self._offsets[(folder, cid)]
            arr = self._array(folder, cid)[offs[row] : offs[row + 1]]
            if len(cols) * dim == arr.shape[1]:
                out.append(np.asarray(arr))
            else:
                out.append(np.concatenate([arr[:, c * dim : (c + 1) * dim] for c in cols], axis=1))
        return out

    def lookup(self, encoder: Encoder, texts: Sequence[str], layers: Sequence[int],
               role: str = "query") -> list[np.ndarray | None]:
        """Cached token states for each text, ``None`` where a text is not cached."""
        folder, cols = self._folder(encoder, role, layers)
        idx = self._load_index(folder)
        dim = encoder.dim
        out: list[np.ndarray | None] = []
        for t in texts:
            if t not in idx:
                out.append(None)
                continue
            cid, row = idx[t]
            offs = self._offsets[(folder, cid)]
            arr = self._array(folder, cid)[offs[row] : offs[row + 1]]
            out.append(np.concatenate([arr[:, c * dim : (c + 1) * dim] for c in cols], axis=1))
        return out

    def _encode_missing(self, encoder: Encoder, folder: Path, todo: list[str], role: str, *,
                        batch_size: int, show_progress: bool | None) -> None:
        stored = [int(x) for x in folder.name.split("-L", 1)[1].split("-") if x.lstrip("-")]
        folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem.split("-")[1]) for p in folder.glob("chunk-*.json")]
        cid = max(existing, default=-1) + 1
        with progress(len(todo), "token features", show_progress, threshold=64) as bar:
            for s in range(0, len(todo), self.chunk_size):
                chunk = sorted(todo[s : s + self.chunk_size], key=len)
                embs = cast(list[TokenEmbeddings], encoder.encode_tokens(
                    chunk, role=role, layers=stored,  # type: ignore[arg-type]
                    batch_size=batch_size, show_progress=False))
                lengths = [len(e) for e in embs]
                width = encoder.dim * len(stored)
                flat = (np.concatenate([e.vectors for e in embs], axis=0) if sum(lengths)
                        else np.zeros((0, width), np.float32)).astype(np.float16)
                buf = io.BytesIO()
                np.save(buf, flat, allow_pickle=False)
                atomic_write_bytes(folder / f"chunk-{cid:05d}.npy", buf.getvalue())
                atomic_write_text(folder / f"chunk-{cid:05d}.json",
                                  json.dumps({"texts": chunk, "lengths": lengths},
                                             ensure_ascii=False))
                cid += 1
                bar.update(len(chunk))


# ---------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------

KINDS: tuple[str, ...] = ("linear", "attention")
_KIND_NAMES = {"linear": "sentiment-linear", "attention": "sentiment-attention"}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _as_labels(labels: object, n: int) -> list[str]:
    """Labels as strings, one per text (str, int and bool accepted)."""
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise TypeError(
            f"labels must be a list with one label per text, got {type(labels).__name__}; "
            f"e.g. fit(['great film', 'dull'], ['positive', 'negative'])"
        )
    items = list(labels)  # type: ignore[call-overload]
    if len(items) != n:
        raise ValueError(
            f"got {n} texts but {len(items)} labels; give exactly one label per text"
        )
    out = []
    for i, raw in enumerate(items):
        y = raw.item() if isinstance(raw, (np.integer, np.str_, np.bool_)) else raw
        if not isinstance(y, (str, int)) or (isinstance(y, str) and not y.strip()):
            raise TypeError(
                f"labels[{i}] must be a non-empty str or an int, got {type(y).__name__} "
                f"({y!r:.40}); use class names such as 'positive' / 'negative'"
            )
        out.append(str(y).strip())
    return out


def _build_net(d_tokens: int, d_sent: int, n_classes: int, *, hidden: int, heads: int,
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


def _pad_batch(feats: Sequence[np.ndarray], width: int) -> tuple[Any, Any]:
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


class SentimentClassifier:
    """A text classifier (sentiment or any labels) on the frozen shared encoder.

    Follows scikit-learn's estimator contract: ``__init__`` only stores its
    arguments, :meth:`fit` returns ``self``, fitted attributes end in ``_``.

    Args:
        encoder: The shared encoder (``None``: the default encoder, resolved lazily).
        kind: ``"linear"`` (logistic regression on the sentence vector, plus a
            centroid classifier and label-name prior when few examples are given) or
            ``"attention"`` (attention pooling over token states + MLP, torch).
        C: Inverse L2 strength of the logistic regression (linear kind).
        few_shot_max: With at most this many examples in its smallest class, the linear
            kind switches to few-shot mode: class centroids plus a label-name prior
            (0 turns it off).
        label_prior: Weight of the label names' vectors added to the centroids in
            few-shot mode (0 turns it off); gated by how well the names alone
            classify the training examples.
        layers: Hidden-state layers read by the attention kind (``None``: ``(6, 8, 10, 12)``
            scaled to the encoder's depth, e.g. ``[3, 4, 5, 6]`` on a 6-layer model).
        hidden: Width of the attention kind's projection and MLP.
        heads: Attention-pooling heads.
        epochs: Training epochs (attention kind).
        lr: AdamW learning rate (attention kind).
        batch_size: Training batch size (attention kind).
        dropout: Dropout (attention kind).
        weight_decay: AdamW weight decay (attention kind).
        val_fraction: Share of the training data held out to pick the best epoch
            (attention kind, used when at least 200 examples are given).
        random_state: Seed.
        feature_cache: Folder for cached token features (default under the cache dir).
        show_progress: Progress bars (``None``: automatic).
    """

    classes_: list[str]
    coef_: np.ndarray | None
    intercept_: np.ndarray | None
    centroids_: np.ndarray | None
    tokens_net_: Any
    blend_: float
    temperature_: float
    prior_gate_: float
    n_train_: int
    val_accuracy_: float

    def __init__(
        self,
        encoder: Encoder | None = None,
        kind: str = "linear",
        *,
        C: float = 2.0,
        few_shot_max: int = 32,
        label_prior: float = 2.0,
        layers: Sequence[int] | None = None,
        hidden: int = 128,
        heads: int = 4,
        epochs: int = 8,
        lr: float = 1e-3,
        batch_size: int = 64,
        dropout: float = 0.3,
        weight_decay: float = 0.01,
        val_fraction: float = 0.05,
        random_state: int = 0,
        feature_cache: str | os.PathLike[str] | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.encoder = encoder
        self.kind = kind
        self.C = C
        self.few_shot_max = few_shot_max
        self.label_prior = label_prior
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.feature_cache = feature_cache
        self.show_progress = show_progress

    # -- helpers --------------------------------------------------------------
    @property
    def encoder_(self) -> Encoder:
        """The encoder in use (the default one when none was given)."""
        if self.encoder is None:
            from embedsuite.encoders import DEFAULT_ENCODER, get_encoder

            self.encoder = get_encoder(DEFAULT_ENCODER)
        return self.encoder

    @property
    def head_kind(self) -> str:
        """The registry name of this head's kind (``sentiment-linear`` ...)."""
        return _KIND_NAMES[self._check_kind()]

    def _check_kind(self) -> str:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        return self.kind

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (scikit-learn style)."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params: Any) -> SentimentClassifier:
        """Set constructor arguments (scikit-learn style)."""
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"unknown parameter {k!r}; valid ones: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def __sklearn_clone__(self) -> SentimentClassifier:
        """An unfitted copy sharing the same encoder (the encoder is never copied)."""
        return type(self)(**self.get_params())

    def _store(self) -> TokenFeatureStore:
        store = getattr(self, "_feature_store", None)
        if store is None or store.root != TokenFeatureStore(self.feature_cache).root:
            store = TokenFeatureStore(self.feature_cache)
            self._feature_store = store
        return store

    def layer_ids(self) -> list[int]:
        """Hidden states the attention kind reads: ``layers``, or by default
        :data:`STORE_LAYERS` (chosen for 12 layers) scaled to the encoder's depth."""
        from embedsuite.encoders.base import resolve_layers

        return resolve_layers(self.layers, self.encoder_, STORE_LAYERS)

    def _token_features(self, texts: list[str], *, cache: bool) -> list[np.ndarray]:
        enc = self.encoder_
        if not enc.has_token_embeddings:
            from embedsuite.errors import TokenEmbeddingsUnavailableError

            raise TokenEmbeddingsUnavailableError(
                f"the 'attention' sentiment head reads token embeddings, which encoder "
                f"{enc.name!r} does not give; use kind='linear' or an encoder such as 'e5-small'"
            )
        layers = self.layer_ids()
        if cache:
            return self._store().features(enc, texts, layers, "query",
                                          show_progress=self.show_progress)
        found = self._store().lookup(enc, texts, layers, "query")
        todo = [i for i, f in enumerate(found) if f is None]
        if todo:
            embs = cast(list[TokenEmbeddings], enc.encode_tokens(
                [texts[i] for i in todo], role="query", layers=layers,
                show_progress=self.show_progress))
            for i, e in zip(todo, embs, strict=True):
                found[i] = e.vectors.astype(np.float16)
        return [f for f in found if f is not None]

    # -- fit ------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[str] | Sequence[int]
            ) -> SentimentClassifier:
        """Train the head on labelled texts (any label names, two classes or more).

        Raises:
            TypeError: A text or label of the wrong type (its position is named).
            ValueError: Mismatched lengths, fewer than two classes, or an unknown kind.
        """
        from embedsuite.validation import as_text_list

        kind = self._check_kind()
        items, single = as_text_list(texts)
        if single:
            raise TypeError("fit expects a list of texts, got a single str")
        ys = _as_labels(labels, len(items))
        classes = sorted(set(ys))
        if len(classes) < 2:
            raise ValueError(
                f"fit needs at least two classes, got only {classes!r} in {len(ys)} labels; "
                f"add examples of another class"
            )
        y = np.array([classes.index(v) for v in ys], np.int64)
        self.classes_ = classes
        sent = self.encoder_.encode(items, role="query", show_progress=self.show_progress)
        if kind == "linear":
            self._fit_linear(sent, y)
        else:
            self._fit_attention(items, sent, y)
        self.n_train_ = len(items)
        return self

    def _label_prior(self, classes: list[str]) -> np.ndarray:
        """Sentence vectors of the label names (a zero-shot prior for few-shot fits)."""
        return self.encoder_.encode([c.replace("_", " ") for c in classes], role="query")

    def _fit_linear(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        n_classes = len(self.classes_)
        lr = LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
        lr.fit(x, y)
        if n_classes == 2:
            w = lr.coef_[0] / 2.0
            b = float(lr.intercept_[0]) / 2.0
            coef = np.stack([-w, w])
            intercept = np.array([-b, b])
        else:
            coef, intercept = lr.coef_, lr.intercept_
        self.coef_ = coef.astype(np.float32)
        self.intercept_ = intercept.astype(np.float32)
        counts = np.bincount(y, minlength=n_classes)
        self.centroids_ = None
        self.blend_ = 0.0
        self.temperature_ = 1.0
        self.prior_gate_ = 0.0
        if self.few_shot_max and counts.min() <= self.few_shot_max:
            self._fit_prototypes(x, y, counts)
        self.tokens_net_ = None

    def _fit_prototypes(self, x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> None:
        """Few-shot mode: class centroids moved toward the label names' vectors.

        The label names are encoded as passages (the text "queries" its label), centred,
        and added to the centroids with weight ``label_prior``, scaled down as examples
        grow and gated by how well the names alone classify the training examples
        (names such as "0"/"1" that carry no meaning get a gate near 0).
        """
        k = len(self.classes_)
        cents = np.stack([x[y == c].mean(0) for c in range(k)])
        gate = 0.0
        names = np.zeros_like(cents)
        if self.label_prior > 0:
            vecs = self.encoder_.encode([c.replace("_", " ") for c in self.classes_],
                                        role="passage")
            names = vecs - vecs.mean(0)
            zero_shot = float(((x @ vecs.T).argmax(1) == y).mean())
            gate = max(0.0, (zero_shot - 1.0 / k) / (1.0 - 1.0 / k))
        weight = self.label_prior * gate * min(1.0, 8.0 / float(counts.min()))
        protos = cents + weight * names
        sims = np.sort(x @ protos.T, axis=1)
        margin = float(np.mean(sims[:, -1] - sims[:, -2]))
        self.centroids_ = protos.astype(np.float32)
        self.blend_ = 1.0
        # a training example at the mean margin gets probability ~0.9 (binary)
        self.temperature_ = float(np.log(9.0) / max(margin, 1e-4))
        self.prior_gate_ = gate

    def _fit_attention(self, texts: list[str], sent: np.ndarray, y: np.ndarray) -> None:
        import torch

        feats = self._token_features(texts, cache=True)
        width = feats[0].shape[1] if feats else self.encoder_.dim * len(self.layer_ids())
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        n = len(texts)
        idx = rng.permutation(n)
        n_val = round(n * self.val_fraction) if n >= 200 else 0
        val, train = idx[:n_val], idx[n_val:]
        net = _build_net(width, sent.shape[1], len(self.classes_), hidden=self.hidden,
                         heads=self.heads, dropout=self.dropout)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps_per_epoch = max(1, -(-len(train) // self.batch_size))
        total = steps_per_epoch * self.epochs
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=total,
                                                    pct_start=0.1)
        sent_t = torch.from_numpy(sent.astype(np.float32))
        y_t = torch.from_numpy(y)
        best: tuple[float, dict[str, Any]] | None = None
        with progress(self.epochs, "train sentiment-attention", self.show_progress,
                      threshold=1) as bar:
            for _epoch in range(self.epochs):
                net.train()
                order = rng.permutation(train)
                # bucket by length inside windows of 50 batches: less padding, still random
                win = self.batch_size * 50
                batches = []
                for s in range(0, len(order), win):
                    part = sorted(order[s : s + win], key=lambda i: len(feats[i]))
                    batches += [part[j : j + self.batch_size]
                                for j in range(0, len(part), self.batch_size)]
                rng.shuffle(batches)
                for b in batches:
                    xb, mb = _pad_batch([feats[i] for i in b], width)
                    logits, _ = net(xb, mb, sent_t[b])
                    loss = torch.nn.functional.cross_entropy(logits, y_t[b])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                if n_val:
                    p = self._net_proba(net, [feats[i] for i in val], sent[val])
                    acc = float((p.argmax(1) == y[val]).mean())
                    if best is None or acc > best[0]:
                        best = (acc, {k: v.detach().clone() for k, v in net.state_dict().items()})
                    bar.set_postfix(val_acc=f"{acc:.3f}")
                bar.update(1)
        if best is not None:
            net.load_state_dict(best[1])
            self.val_accuracy_ = best[0]
        net.eval()
        self.tokens_net_ = net
        self.coef_ = None
        self.intercept_ = None
        self.centroids_ = None
        self.blend_ = 0.0

    @staticmethod
    def _net_proba(net: Any, feats: Sequence[np.ndarray], sent: np.ndarray,
                   batch: int = 256) -> np.ndarray:
        import torch

        net.eval()
        width = int(net.norm.normalized_shape[0])
        out = []
        order = np.argsort([len(f) for f in feats])
        with torch.inference_mode():
            for s in range(0, len(order), batch):
                b = order[s : s + batch]
                xb, mb = _pad_batch([feats[i] for i in b], width)
                logits, _ = net(xb, mb, torch.from_numpy(sent[b].astype(np.float32)))
                out.append(torch.softmax(logits, -1).numpy())
        proba = np.empty((len(feats), out[0].shape[1] if out else 0), np.float32)
        if out:
            proba[order] = np.concatenate(out)
        net.train()
        return proba

    # -- predict ----------------------------------------------------------------
    def _check(self) -> None:
        from embedsuite.heads.base import check_fitted

        check_fitted(self, "classes_")

    def _forward(self, items: list[str]) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``: the only step that calls the encoder."""
        sent = self.encoder_.encode(items, role="query", show_progress=self.show_progress)
        if getattr(self, "tokens_net_", None) is not None:
            feats = self._token_features(items, cache=False)
            return self._net_proba(self.tokens_net_, feats, sent)
        return self._linear_proba(sent)

    def _linear_proba(self, x: np.ndarray) -> np.ndarray:
        assert self.coef_ is not None and self.intercept_ is not None
        p = _softmax(x @ self.coef_.T + self.intercept_)
        if self.centroids_ is not None and self.blend_ > 0:
            p = (1 - self.blend_) * p + self.blend_ * self._centroid_proba(x)
        return p.astype(np.float32)

    def _centroid_proba(self, x: np.ndarray) -> np.ndarray:
        c = self.centroids_
        assert c is not None
        sims = x @ c.T
        return _softmax(sims * self.temperature_)

    def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in the order of :attr:`classes_`.

        Returns:
            ``(n_classes,)`` for a str, ``(n, n_classes)`` for a list.
        """
        from embedsuite.validation import as_text_list

        self._check()
        items, single = as_text_list(texts)
        p = self._forward(items) if items else np.zeros((0, len(self.classes_)), np.float32)
        return p[0] if single else p

    def predict(self, texts: str | Sequence[str]) -> dict[str, Any] | list[dict[str, Any]]:
        """``{"label", "score"}`` per text: the most probable class and its probability."""
        p = self.predict_proba(texts)
        rows = p[None, :] if p.ndim == 1 else p
        out = [{"label": self.classes_[int(r.argmax())], "score": round(float(r.max()), 6)}
               for r in rows]
        return out[0] if p.ndim == 1 else out

    def score(self, texts: Sequence[str], labels: Sequence[str] | Sequence[int]) -> float:
        """Accuracy on labelled texts (scikit-learn's ``score``)."""
        from embedsuite.validation import as_text_list

        self._check()
        items, _ = as_text_list(texts)
        ys = _as_labels(labels, len(items))
        unknown = sorted(set(ys) - set(self.classes_))
        if unknown:
            raise ValueError(
                f"labels hold {unknown[:5]!r}, which the head was not trained on (its classes: "
                f"{self.classes_!r}); map them to one of those classes or retrain with them"
            )
        if not items:
            raise ValueError("score needs at least one labelled text, got none")
        p = self._forward(items)
        pred = [self.classes_[int(i)] for i in p.argmax(1)]
        return float(np.mean([a == b for a, b in zip(pred, ys, strict=True)]))

    # -- persistence ------------------------------------------------------------
    _SAVED_PARAMS = ("kind", "C", "few_shot_max", "label_prior", "layers", "hidden", "heads",
                     "epochs", "lr", "batch_size", "dropout", "weight_decay", "val_fraction",
                     "random_state")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted head as a folder (``config.json`` + ``model.safetensors``)."""
        from embedsuite.heads.base import write_head_folder

        self._check()
        params = {k: getattr(self, k) for k in self._SAVED_PARAMS}
        params["layers"] = self.layer_ids()
        config: dict[str, Any] = {
            "labels": list(self.classes_),
            "params": params,
            "n_train": int(getattr(self, "n_train_", 0)),
            "blend": float(self.blend_),
            "temperature": float(getattr(self, "temperature_", 1.0)),
            "label_prior_gate": float(getattr(self, "prior_gate_", 0.0)),
        }
        tensors: dict[str, np.ndarray] = {}
        if self.tokens_net_ is not None:
            net = self.tokens_net_
            config["arch"] = {"d_tokens": int(net.norm.normalized_shape[0]),
                              "d_sent": int(net.mlp[0].in_features
                                            - self.hidden * (self.heads + 1)),
                              "hidden": self.hidden, "heads": self.heads}
            for k, v in net.state_dict().items():
                tensors[f"net.{k}"] = v.detach().cpu().numpy().astype(np.float32)
        else:
            assert self.coef_ is not None and self.intercept_ is not None
            tensors["coef"] = self.coef_
            tensors["intercept"] = self.intercept_
            if self.centroids_ is not None:
                tensors["centroids"] = self.centroids_
        return write_head_folder(path, self.head_kind, config, tensors, self.encoder_)

    @classmethod
    def load(cls, path: str | os.PathLike[str], encoder: Encoder | None = None
             ) -> SentimentClassifier:
        """Load a saved head folder.

        Raises:
            HeadFormatError: The folder is missing, damaged, or holds another head kind.
            EncoderMismatchError: ``encoder`` is not the encoder the head was trained on.
        """
        from embedsuite.errors import HeadFormatError
        from embedsuite.heads.base import load_head

        head = load_head(path, encoder)
        if not isinstance(head, cls):
            raise HeadFormatError(
                f"{path} holds a {type(head).__name__}, not a sentiment head; load it with "
                f"embedsuite.heads.load_head instead"
            )
        return head

    @classmethod
    def _load(cls, config: dict[str, Any], tensors: dict[str, np.ndarray],
              encoder: Encoder | None) -> SentimentClassifier:
        from embedsuite.errors import HeadFormatError

        try:
            params = dict(config["params"])
            labels = [str(x) for x in config["labels"]]
            head = cls(encoder, **params)
            head.classes_ = labels
            head.n_train_ = int(config.get("n_train", 0))
            head.blend_ = float(config.get("blend", 0.0))
            head.temperature_ = float(config.get("temperature", 1.0))
            head.prior_gate_ = float(config.get("label_prior_gate", 0.0))
            head.centroids_ = tensors.get("centroids")
            if head.kind == "attention":
                import torch

                arch = config["arch"]
                net = _build_net(int(arch["d_tokens"]), int(arch["d_sent"]), len(labels),
                                 hidden=int(arch["hidden"]), heads=int(arch["heads"]),
                                 dropout=float(head.dropout))
                state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in tensors.items()
                         if k.startswith("net.")}
                net.load_state_dict(state)
                net.eval()
                head.tokens_net_ = net
                head.coef_ = head.intercept_ = None
            else:
                head.tokens_net_ = None
                head.coef_ = np.asarray(tensors["coef"], np.float32)
                head.intercept_ = np.asarray(tensors["intercept"], np.float32)
                if head.coef_.shape[0] != len(labels):
                    raise ValueError("coef rows do not match the labels")
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise HeadFormatError(
                f"the saved sentiment head is malformed ({type(exc).__name__}: {exc}); "
                f"re-train and re-save it"
            ) from None
        return head

    def __repr__(self) -> str:
        fitted = f", classes={self.classes_}" if getattr(self, "classes_", None) else ""
        return f"SentimentClassifier(kind={self.kind!r}{fitted})"


HEADS.register("sentiment-linear", SentimentClassifier)
HEADS.register("sentiment-attention", SentimentClassifier)

#: Where the shipped default English head lives (trained by demos/train_sentiment.py).
DEFAULT_HEAD_DIR = Path(__file__).resolve().parent.parent / "assets" / "sentiment-default"


def load_default(encoder: Encoder | None = None) -> SentimentClassifier:
    """The shipped English sentiment head (SST-2), on ``encoder`` (default: e5-small)."""
    if not (DEFAULT_HEAD_DIR / "config.json").is_file():
        from embedsuite.errors import HeadFormatError

        raise HeadFormatError(
            f"expected the shipped sentiment head at {DEFAULT_HEAD_DIR}, but its config.json "
            f"is missing (a damaged install?). Reinstall embedsuite, or train a head: in a "
            f"checkout `python demos/train_sentiment.py`; from an installed wheel "
            f"`embedsuite train-sentiment SST2_DIR/sentiment-train.tsv DIR --kind attention` "
            f"and load it with SentimentClassifier.load(DIR)"
        )
    return SentimentClassifier.load(DEFAULT_HEAD_DIR, encoder)
