"""Task ``sentiment``: SST-2 accuracy of the sentiment heads, full data and 8-shot.

Records:

* ``sst2/<head kind>`` ``accuracy``: trained on ``sentiment-train.tsv`` (phrases),
  tested on ``sentiment-test.tsv`` (1,821 sentences), for each head kind the
  encoder supports (``sentiment-attention`` needs token embeddings).
* ``sst2-8shot`` ``accuracy_mean`` / ``accuracy_std``: 8 examples per class drawn
  from train, 10 seeds (MTEB's classification protocol), with the linear head's
  few-shot recipe (logistic regression + centroids + label-name prior).
* ``sst2-8shot/mteb-lr`` ``accuracy_mean`` / ``accuracy_std``: the same draws with
  plain ``LogisticRegression(max_iter=100)``, the MTEB reference.
* ``sst2-0shot`` ``accuracy``: no example at all, only the label names
  ("negative", "positive") encoded as passages: the share of the 8-shot result
  that the label-name prior alone gives.

``--protocol mteb``: only the ``sst2-8shot/mteb-lr`` experiments (MTEB's
classification protocol: 8 per class, 10 experiments, ``LogisticRegression(max_iter=100)``
on the sentence embeddings, accuracy on the test set), main score ``accuracy_mean``.

Options (``ctx.options``): ``kinds`` (list of ``linear``/``attention``), ``shots``
(default 8), ``experiments`` (default 10).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.data.sst2 import SST2_LABELS, read_sst2
from embedsuite.encoders.base import Encoder
from embedsuite.evaluation.harness import TASKS, TaskContext, make_record

logger = logging.getLogger(__name__)

def sample_k_shot(labels: list[str], k: int, seed: int) -> list[int]:
    """Indices of ``k`` examples per class (MTEB-style undersampling), seeded."""
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        out += rng.choice(idx, size=min(k, len(idx)), replace=False).tolist()
    return sorted(out)


class SentimentTask:
    """SST-2 accuracy of the sentiment heads (full training data and k-shot)."""

    name = "sentiment"
    description = "SST-2 sentiment: accuracy of the linear and attention heads, and 8-shot"
    needs_token_embeddings = False
    main_metric = ("sst2/sentiment-linear", "accuracy")  # every encoder has it
    mteb_main_metric = ("sst2-8shot/mteb-lr", "accuracy_mean")

    def run(self, encoder: Encoder, ctx: TaskContext) -> list[dict[str, Any]]:
        """Train and test each head kind, then the k-shot experiments."""
        from sklearn.linear_model import LogisticRegression

        from embedsuite.heads.sentiment import SentimentClassifier

        train_x, train_y = read_sst2(ctx.require("sst2", "sentiment-train.tsv"), ctx.limit,
                                     ctx.seed, unique=True)
        test_x, test_y = read_sst2(ctx.require("sst2", "sentiment-test.tsv"), ctx.limit, ctx.seed)
        prepare = getattr(encoder, "prepare", None)
        if callable(prepare):
            prepare(train_x + test_x)
        mteb = ctx.protocol == "mteb"
        kinds = [] if mteb else (ctx.option_list(self.name, "kinds")
                                or ["linear", "attention"])
        cache = ctx.work_dir / "token-features" if ctx.work_dir is not None else None
        records = []
        for kind in kinds:
            if kind == "attention" and not encoder.has_token_embeddings:
                logger.info("skipping the attention head: %s has no token embeddings",
                            encoder.name)
                continue
            head = SentimentClassifier(encoder, kind=kind, random_state=ctx.seed,
                                       feature_cache=_shared_feature_cache(cache),
                                       show_progress=ctx.show_progress)
            head.fit(train_x, train_y)
            acc = head.score(test_x, test_y)
            logger.info("sst2 %s: accuracy %.4f", head.head_kind, acc)
            records.append(make_record(encoder.name, self.name, f"sst2/{head.head_kind}",
                                       "accuracy", acc, len(test_x)))
        shots = int(ctx.option(self.name, "shots", 8))
        n_exp = int(ctx.option(self.name, "experiments", 10))
        test_vecs = encoder.encode(test_x, role="query", show_progress=ctx.show_progress)
        y_test = np.array(test_y)
        ours: list[float] = []
        lr_accs: list[float] = []
        for e in range(n_exp):
            idx = sample_k_shot(train_y, shots, ctx.seed + e)
            xs, ys = [train_x[i] for i in idx], [train_y[i] for i in idx]
            if not mteb:
                head = SentimentClassifier(encoder, kind="linear", random_state=ctx.seed + e)
                head.fit(xs, ys)
                pred = np.array(head.classes_)[head._linear_proba(test_vecs).argmax(1)]
                ours.append(float((pred == y_test).mean()))
            lr = LogisticRegression(max_iter=100).fit(encoder.encode(xs, role="query"), ys)
            lr_accs.append(float((lr.predict(test_vecs) == y_test).mean()))
        n = len(test_x)
        runs = [(f"sst2-{shots}shot/mteb-lr", lr_accs)]
        if not mteb:
            names = encoder.encode(list(SST2_LABELS.values()), role="passage")
            zero = np.array(list(SST2_LABELS.values()))[(test_vecs @ names.T).argmax(1)]
            records.append(make_record(encoder.name, self.name, "sst2-0shot", "accuracy",
                                       float((zero == y_test).mean()), n))
            runs.insert(0, (f"sst2-{shots}shot", ours))
        for ds, accs in runs:
            records.append(make_record(encoder.name, self.name, ds, "accuracy_mean",
                                       float(np.mean(accs)), n))
            records.append(make_record(encoder.name, self.name, ds, "accuracy_std",
                                       float(np.std(accs)), n))
        return records


def _shared_feature_cache(fallback: Path | None) -> Path | None:
    """The default feature cache (shared across runs); ``fallback`` if it is not writable."""
    from embedsuite.paths import cache_dir

    try:
        root = cache_dir() / "features" / "sentiment"
        root.mkdir(parents=True, exist_ok=True)
        return root
    except OSError:
        return fallback


TASKS.register("sentiment", SentimentTask())
