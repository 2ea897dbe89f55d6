"""The sentiment (text classification) head on the frozen shared encoder.

Two kinds:

* ``sentiment-linear``: a linear probe (multinomial logistic regression) on the
  sentence embedding ``encode(text, role="query")``; fast, the baseline. With
  few examples per class it blends in a centroid (prototype) classifier.
* ``sentiment-attention``: attention pooling over the encoder's frozen token
  states (several layers concatenated) plus the sentence embedding, then a
  small MLP (:mod:`.networks`), trained with torch on token features cached on
  disk (:class:`~embedsuite.encoders.token_store.TokenFeatureStore`).

>>> from embedsuite.heads import SentimentClassifier
>>> clf = SentimentClassifier(kind="linear").fit(texts, labels)
>>> clf.predict("a charming, funny film")
{'label': 'positive', 'score': ...}
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import numpy as np

from embedsuite.encoders.base import Encoder, TokenEmbeddings
from embedsuite.encoders.token_store import TokenFeatureStore
from embedsuite.heads.base import HEADS, BaseHead
from embedsuite.heads.sentiment.networks import build_net, net_proba, train_attention_net
from embedsuite.paths import ASSETS_DIR

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_HEAD_DIR", "KINDS", "STORE_LAYERS", "SentimentClassifier", "load_default"]

#: hidden-state layers stored by default in the token-feature cache (a superset of
#: what the attention head reads, so other layer mixes need no new encoding).
STORE_LAYERS: tuple[int, ...] = (6, 8, 10, 12)
KINDS: tuple[str, ...] = ("linear", "attention")
#: texts whose probabilities the attention kind keeps in memory (LRU) between calls
PREDICT_MEMO = 10_000
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


class SentimentClassifier(BaseHead):
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

    kinds: ClassVar[tuple[str, ...]] = ("sentiment-linear", "sentiment-attention")
    what: ClassVar[str] = "sentiment head"
    _fitted: ClassVar[tuple[str, ...]] = ("classes_",)
    _runtime_params: ClassVar[tuple[str, ...]] = ("encoder", "feature_cache", "show_progress")

    classes_: list[str]
    _proba_memo: OrderedDict[str, np.ndarray] | None
    coef_: np.ndarray | None
    intercept_: np.ndarray | None
    centroids_: np.ndarray | None
    tokens_net_: Any
    blend_: float
    temperature_: float
    calibration_temperature_: float
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
    def head_kind(self) -> str:
        """The registry name of this head's kind (``sentiment-linear`` ...)."""
        return _KIND_NAMES[self._check_kind()]

    def _check_kind(self) -> str:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        return self.kind

    def _store(self) -> TokenFeatureStore:
        store: TokenFeatureStore | None = getattr(self, "_feature_store", None)
        if store is None or store.root != TokenFeatureStore.root_of(self.feature_cache):
            store = TokenFeatureStore(self.feature_cache)
            self._feature_store = store
        return store

    def layer_ids(self) -> list[int]:
        """Hidden states the attention kind reads: ``layers``, or by default
        :data:`STORE_LAYERS` (chosen for 12 layers) scaled to the encoder's depth."""
        from embedsuite.encoders.base import resolve_layers

        return resolve_layers(self.layers, self.active_encoder, STORE_LAYERS)

    def _token_encoder(self) -> Encoder:
        """The encoder, which must give token embeddings (the attention kind reads them)."""
        enc = self.active_encoder
        if not enc.has_token_embeddings:
            from embedsuite.errors import TokenEmbeddingsUnavailableError

            raise TokenEmbeddingsUnavailableError(
                f"the 'attention' sentiment head reads token embeddings, which encoder "
                f"{enc.name!r} does not give; use kind='linear' or an encoder such as 'e5-small'"
            )
        return enc

    def _token_features(self, texts: list[str]) -> list[np.ndarray]:
        """Token states for training, from the token-feature store (encoded once)."""
        enc = self._token_encoder()
        return self._store().features(enc, texts, self.layer_ids(), "query",
                                      store_layers=STORE_LAYERS,
                                      show_progress=self.show_progress)

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
        # the attention kind's token pass comes first: it also fills the sentence cache,
        # so the sentence vectors below cost no second pass
        feats = self._token_features(items) if kind == "attention" else None
        sent = self._resolve_encoder().encode(items, role="query",
                                              show_progress=self.show_progress)
        if feats is None:
            self._fit_linear(sent, y)
        else:
            self._fit_attention(feats, sent, y)
        self.n_train_ = len(items)
        self.calibration_temperature_ = 1.0
        self._proba_memo = None
        return self

    def calibrate(self, texts: Sequence[str], labels: Sequence[str] | Sequence[int]
                  ) -> SentimentClassifier:
        """Temperature scaling (Guo et al. 2017) on held-out labelled texts: one scalar ``T``
        that divides the log-probabilities, chosen to minimise the held-out negative
        log-likelihood. The predicted labels do not change, only how sure the head says it
        is. Use texts the head was not trained on (for SST-2: the dev split).

        Raises:
            NotFittedError: Before ``fit``/``load``.
            ValueError: No texts, or labels the head does not know.
        """
        from scipy.optimize import minimize_scalar

        items, y = self._labelled(texts, labels, "calibrate needs held-out labelled texts")
        logp = np.log(np.clip(self._raw_proba(items).astype(np.float64), 1e-12, 1.0))

        def nll(log_t: float) -> float:
            z = logp / np.exp(log_t)
            z = z - z.max(1, keepdims=True)
            return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean())

        res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
        self.calibration_temperature_ = float(np.exp(res.x))
        logger.info("calibrated on %d texts: temperature %.3f (held-out NLL %.4f -> %.4f)",
                    len(items), self.calibration_temperature_, nll(0.0), float(res.fun))
        return self

    def _label_prior(self, classes: list[str]) -> np.ndarray:
        """Sentence vectors of the label names (a zero-shot prior for few-shot fits)."""
        return self.active_encoder.encode([c.replace("_", " ") for c in classes], role="query")

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
            vecs = self.active_encoder.encode([c.replace("_", " ") for c in self.classes_],
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

    def _fit_attention(self, feats: list[np.ndarray], sent: np.ndarray, y: np.ndarray
                       ) -> None:
        width = feats[0].shape[1] if feats else self.active_encoder.dim * len(self.layer_ids())
        net, val_acc = train_attention_net(
            feats, sent, y, len(self.classes_), width=width, hidden=self.hidden,
            heads=self.heads, dropout=self.dropout, epochs=self.epochs, lr=self.lr,
            batch_size=self.batch_size, weight_decay=self.weight_decay,
            val_fraction=self.val_fraction, seed=self.random_state,
            show_progress=self.show_progress)
        if val_acc is not None:
            self.val_accuracy_ = val_acc
        self.tokens_net_ = net
        self.coef_ = None
        self.intercept_ = None
        self.centroids_ = None
        self.blend_ = 0.0

    # -- predict ----------------------------------------------------------------
    def _check(self) -> None:
        self._check_fitted()

    def _forward(self, items: list[str]) -> np.ndarray:
        """Calibrated class probabilities ``(n, n_classes)``: the only step that calls the
        encoder (through :meth:`_raw_proba`)."""
        p = self._raw_proba(items)
        t = float(getattr(self, "calibration_temperature_", 1.0))
        if t == 1.0 or not len(p):
            return p
        z = np.log(np.clip(p.astype(np.float64), 1e-12, 1.0)) / t
        return _softmax(z).astype(np.float32)

    def _raw_proba(self, items: list[str]) -> np.ndarray:
        """Class probabilities before calibration (recent texts' from an in-memory LRU)."""
        if getattr(self, "tokens_net_", None) is None:
            sent = self.active_encoder.encode(items, role="query",
                                              show_progress=self.show_progress)
            return self._linear_proba(sent)
        memo = self._memo()
        todo = [t for t in dict.fromkeys(items) if t not in memo]
        if todo:
            for t, row in zip(todo, self._attention_proba(todo), strict=True):
                memo[t] = row
        out = np.empty((len(items), len(self.classes_)), np.float32)
        for i, t in enumerate(items):
            memo.move_to_end(t)
            out[i] = memo[t]
        while len(memo) > PREDICT_MEMO:
            memo.popitem(last=False)
        return out

    def _memo(self) -> OrderedDict[str, np.ndarray]:
        """Probabilities of recent texts (LRU, :data:`PREDICT_MEMO` of them, in memory)."""
        memo = getattr(self, "_proba_memo", None)
        if memo is None:
            memo = OrderedDict()
            self._proba_memo = memo
        return memo

    def _attention_proba(self, texts: list[str]) -> np.ndarray:
        """One encoder pass per text gives both inputs of the attention net: the token states
        and the sentence vector (taken from the sentence cache when it holds it). Nothing
        is written to the token-feature store: at prediction it would cost more disk and
        time than it saves; the new sentence vectors go to the sentence cache."""
        enc = self._token_encoder()
        known = enc.cached_vectors(texts, "query") if hasattr(enc, "cached_vectors") else {}
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        got = cast(list[TokenEmbeddings], enc.encode_tokens(
            [texts[i] for i in order], role="query", layers=self.layer_ids(), batch_size=32,
            show_progress=self.show_progress))
        embs: list[TokenEmbeddings] = [got[0]] * len(texts)
        for i, e in zip(order, got, strict=True):
            embs[i] = e
        fresh = {t: e.sentence for t, e in zip(texts, embs, strict=True)
                 if t not in known and e.sentence is not None}
        if fresh and hasattr(enc, "remember_vectors"):
            enc.remember_vectors(fresh, "query")
        sent = {**known, **fresh}
        rest = [t for t in texts if t not in sent]
        if rest:  # an encoder whose token pass gives no sentence vector
            sent.update(zip(rest, enc.encode(rest, role="query"), strict=True))
        feats = [e.vectors.astype(np.float16) for e in embs]  # as stored for training
        return net_proba(self.tokens_net_, feats, np.stack([sent[t] for t in texts]))

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
        out = self.label_scores(p)
        return out[0] if p.ndim == 1 else out

    def label_scores(self, proba: np.ndarray) -> list[dict[str, Any]]:
        """``{"label", "score"}`` per row of probabilities (as :meth:`predict` gives), for
        probabilities computed elsewhere (e.g. a server's batched ``predict_proba``)."""
        self._check()
        return [{"label": self.classes_[int(r.argmax())], "score": round(float(r.max()), 6)}
                for r in np.atleast_2d(proba)]

    def score(self, texts: Sequence[str], labels: Sequence[str] | Sequence[int]) -> float:
        """Accuracy on labelled texts (scikit-learn's ``score``)."""
        items, y = self._labelled(texts, labels, "score needs at least one labelled text")
        return float(np.mean(self._forward(items).argmax(1) == y))

    def _labelled(self, texts: Sequence[str], labels: Sequence[str] | Sequence[int],
                  need: str) -> tuple[list[str], np.ndarray]:
        """``(texts, class indices)`` of labelled texts for a fitted head (``score``,
        ``calibrate``); ``need`` starts the message when none are given."""
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
            raise ValueError(f"{need}, got none")
        return items, np.array([self.classes_.index(v) for v in ys])

    # -- persistence ------------------------------------------------------------
    def _saved_params(self) -> dict[str, Any]:
        params = super()._saved_params()
        params["layers"] = self.layer_ids()
        return params

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        config: dict[str, Any] = {
            "labels": list(self.classes_),
            "n_train": int(getattr(self, "n_train_", 0)),
            "blend": float(self.blend_),
            "temperature": float(getattr(self, "temperature_", 1.0)),
            "calibration_temperature": float(getattr(self, "calibration_temperature_", 1.0)),
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
            if self.coef_ is None or self.intercept_ is None:
                raise ValueError("a linear sentiment head without weights cannot be saved")
            tensors["coef"] = self.coef_
            tensors["intercept"] = self.intercept_
            if self.centroids_ is not None:
                tensors["centroids"] = self.centroids_
        return config, tensors, {}

    def _restore(self, config: dict[str, Any], tensors: dict[str, np.ndarray],
                 sidecars: dict[str, np.ndarray]) -> None:
        labels = [str(x) for x in config["labels"]]
        self.n_train_ = int(config.get("n_train", 0))
        self.blend_ = float(config.get("blend", 0.0))
        self.temperature_ = float(config.get("temperature", 1.0))
        self.calibration_temperature_ = float(config.get("calibration_temperature", 1.0))
        self.prior_gate_ = float(config.get("label_prior_gate", 0.0))
        self.centroids_ = tensors.get("centroids")
        if self._check_kind() == "attention":
            import torch

            arch = config["arch"]
            net = build_net(int(arch["d_tokens"]), int(arch["d_sent"]), len(labels),
                            hidden=int(arch["hidden"]), heads=int(arch["heads"]),
                            dropout=float(self.dropout))
            state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in tensors.items()
                     if k.startswith("net.")}
            net.load_state_dict(state)
            net.eval()
            self.tokens_net_ = net
            self.coef_ = self.intercept_ = None
        else:
            self.tokens_net_ = None
            self.coef_ = np.asarray(tensors["coef"], np.float32)
            self.intercept_ = np.asarray(tensors["intercept"], np.float32)
            if self.coef_.shape[0] != len(labels):
                raise ValueError("coef rows do not match the labels")
        self.classes_ = labels
        self._proba_memo = None


HEADS.register("sentiment-linear", SentimentClassifier)
HEADS.register("sentiment-attention", SentimentClassifier)

#: Where the shipped default English head lives (trained by demos/train_sentiment.py).
DEFAULT_HEAD_DIR = ASSETS_DIR / "sentiment-default"


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
