"""Association tests on any encoder: WEAT (Caliskan et al. 2017) and SEAT (May et al. 2019).

For target sets X, Y and attribute sets A, B of embeddings::

    s(w, A, B)  = mean_a cos(w, a) - mean_b cos(w, b)
    effect size = (mean_{x in X} s(x) - mean_{y in Y} s(y)) / std_{w in X u Y} s(w)   (ddof=1)
    p-value     = P[ sum_{Xi} s - sum_{Yi} s >= observed ]  over equal-size re-partitions Xi, Yi
                  of X u Y: exact when there are at most ``exact_limit`` partitions, else
                  ``n_permutations`` random ones, (k + 1) / (n + 1) (one-sided, as in WEAT).

WEAT embeds the bare words; SEAT puts each word into short bleached sentence
templates and embeds the sentences. The word lists (``core/assets/bias/*.json``)
are written for this project in English, German, French and Spanish.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from embedsuite.encoders.base import Encoder

logger = logging.getLogger(__name__)

__all__ = [
    "AssociationTest",
    "BiasResult",
    "counterfactual_sentiment",
    "effect_size",
    "load_counterfactual",
    "load_tests",
    "permutation_p_value",
    "plot_effect_sizes",
    "readable_test_name",
    "run_bias_tests",
]


@dataclass(frozen=True)
class AssociationTest:
    """One WEAT/SEAT test: two target sets and two attribute sets of texts."""

    name: str
    language: str
    kind: str  # "weat" (words) or "seat" (sentences)
    X: tuple[str, ...]
    Y: tuple[str, ...]
    A: tuple[str, ...]
    B: tuple[str, ...]


@dataclass(frozen=True)
class BiasResult:
    """The outcome of one test (``as_record()`` gives the JSON record)."""

    test: str
    language: str
    effect_size: float
    p_value: float
    n_targets: int
    n_attributes: int
    permutations: int
    exact: bool

    def as_record(self) -> dict[str, Any]:
        return {"test": self.test, "language": self.language,
                "effect_size": round(self.effect_size, 4), "p_value": round(self.p_value, 5),
                "n_targets": self.n_targets, "n_attributes": self.n_attributes}


def _assoc(W: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """s(w, A, B) for every row of ``W`` (rows L2-normalised)."""
    return (W @ A.T).mean(axis=1) - (W @ B.T).mean(axis=1)


def effect_size(X: np.ndarray, Y: np.ndarray, A: np.ndarray, B: np.ndarray) -> float:
    """WEAT effect size d (Cohen's-d-like, pooled over X and Y, ddof=1)."""
    sx, sy = _assoc(X, A, B), _assoc(Y, A, B)
    std = np.concatenate([sx, sy]).std(ddof=1)
    if std == 0:
        return 0.0
    return float((sx.mean() - sy.mean()) / std)


def permutation_p_value(s: np.ndarray, n_x: int, *, n_permutations: int = 10_000,
                        exact_limit: int = 20_000, seed: int = 0) -> tuple[float, int, bool]:
    """One-sided p-value of the WEAT statistic from the association scores ``s``.

    Args:
        s: s(w, A, B) for the targets, the first ``n_x`` being X.
        n_x: Size of X.
        n_permutations: Random partitions when the exact test is too large.
        exact_limit: Enumerate all partitions when there are at most this many.
        seed: Random seed.

    Returns:
        (p_value, partitions used, whether the test was exact).
    """
    n = len(s)
    total = s.sum()
    observed = 2 * s[:n_x].sum() - total  # sum_X - sum_Y
    n_parts = math.comb(n, n_x)
    if n_parts <= exact_limit:
        idx = np.array(list(itertools.combinations(range(n), n_x)), dtype=np.int64)
        stats = 2 * s[idx].sum(axis=1) - total
        exact = True
    else:
        rng = np.random.default_rng(seed)
        stats = np.empty(n_permutations)
        for i in range(0, n_permutations, 1000):
            m = min(1000, n_permutations - i)
            perm = np.argsort(rng.random((m, n)), axis=1)[:, :n_x]
            stats[i : i + m] = 2 * s[perm].sum(axis=1) - total
        exact = False
    # ">=" with a tiny tolerance for float noise; the exact enumeration contains the observed
    # partition itself, the Monte Carlo estimate adds it (p = (k + 1) / (n + 1), never 0)
    k = int(np.sum(stats >= observed - 1e-9))
    p = k / len(stats) if exact else (k + 1) / (len(stats) + 1)
    return float(p), len(stats), exact


def _expand(words: tuple[str, ...], templates: Sequence[str]) -> tuple[str, ...]:
    return tuple(tp.format(w) for w in words for tp in templates)


def load_tests(languages: Sequence[str] | None = None, kinds: Sequence[str] = ("weat", "seat")
               ) -> list[AssociationTest]:
    """The project's association tests (WEAT words and SEAT sentences) per language.

    Raises:
        ValueError: An unknown language (the known ones are listed).
    """
    folder = resources.files("embedsuite") / "assets" / "bias"
    known = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))
    langs = list(languages) if languages else known
    unknown = [lang for lang in langs if lang not in known]
    if unknown:
        raise ValueError(f"no bias word lists for language(s) {unknown}; known: {known}")
    out = []
    for lang in langs:
        spec = json.loads((folder / f"{lang}.json").read_text(encoding="utf-8"))
        for name, t in spec["tests"].items():
            sets = {k: tuple(t[k]) for k in "XYAB"}
            if "weat" in kinds:
                out.append(AssociationTest(name, lang, "weat", **sets))
            if "seat" in kinds:
                word_t = spec["templates"]
                target_t = spec.get("name_templates", word_t) if t.get("names") else word_t
                out.append(AssociationTest(
                    name, lang, "seat", _expand(sets["X"], target_t), _expand(sets["Y"], target_t),
                    _expand(sets["A"], word_t), _expand(sets["B"], word_t)))
    return out


def run_bias_tests(encoder: Encoder, tests: Sequence[AssociationTest] | None = None, *,
                   n_permutations: int = 10_000, seed: int = 0) -> list[BiasResult]:
    """Run association tests on ``encoder`` (texts embedded with the ``query`` role)."""
    tests = list(tests) if tests is not None else load_tests()
    texts = sorted({t for at in tests for t in (*at.X, *at.Y, *at.A, *at.B)})
    encoder.prepare(texts)
    vecs = dict(zip(texts, encoder.encode(texts, role="query"), strict=True))
    results = []
    for at in tests:
        X, Y, A, B = (np.stack([vecs[w] for w in ws]) for ws in (at.X, at.Y, at.A, at.B))
        d = effect_size(X, Y, A, B)
        s = np.concatenate([_assoc(X, A, B), _assoc(Y, A, B)])
        p, used, exact = permutation_p_value(s, len(X), n_permutations=n_permutations, seed=seed)
        results.append(BiasResult(f"{at.kind}:{at.name}", at.language, d, p,
                                  len(X) + len(Y), len(A) + len(B), used, exact))
    return results


def counterfactual_sentiment(
    predict_positive: Callable[[list[str]], np.ndarray],
    templates: Sequence[str],
    groups: Mapping[str, Sequence[str]],
) -> list[dict[str, Any]]:
    """Score gaps of a sentiment model when only a name or identity term changes.

    Args:
        predict_positive: Maps texts to the probability of the positive class.
        templates: Sentences with one ``{}`` slot.
        groups: Group name -> terms put into the slot.

    Returns:
        One record per group pair: ``{"group_a", "group_b", "mean_gap", "worst_gap",
        "worst_template", "n"}``, gaps = mean P(pos | group a) - mean P(pos | group b)
        per template (the worst is the largest absolute gap).
    """
    names = list(groups)
    per_group = {}
    for g in names:
        texts = [t.format(term) for t in templates for term in groups[g]]
        p = np.asarray(predict_positive(texts), dtype=np.float64)
        per_group[g] = p.reshape(len(templates), len(groups[g])).mean(axis=1)
    out = []
    for a, b in itertools.combinations(names, 2):
        gaps = per_group[a] - per_group[b]
        worst = int(np.argmax(np.abs(gaps)))
        out.append({"group_a": a, "group_b": b, "mean_gap": round(float(gaps.mean()), 4),
                    "worst_gap": round(float(gaps[worst]), 4),
                    "worst_template": templates[worst], "n": len(templates)})
    return out


def load_counterfactual(language: str = "en"
                        ) -> tuple[list[str], dict[str, dict[str, list[str]]]]:
    """The project's counterfactual templates and group families (``core/assets/bias``).

    Returns:
        The templates, and family -> group -> terms (groups are compared within a family).
    """
    path = resources.files("embedsuite") / "assets" / "bias" / "counterfactual" / f"{language}.json"
    if not path.is_file():
        raise ValueError(f"no counterfactual templates for language {language!r}; known: ['en']")
    spec = json.loads(path.read_text(encoding="utf-8"))
    families = {f: {g: list(t) for g, t in groups.items()}
                for f, groups in spec["families"].items()}
    return list(spec["templates"]), families


def readable_test_name(test: str, language: str = "") -> str:
    """A test id as people read it: ``weat:career_family__male_female_names`` ->
    ``career vs family / male vs female names (WEAT, en)``."""
    kind, _, name = test.rpartition(":")

    def pair(part: str) -> str:
        words = [w for w in part.split("_") if w]
        return " ".join([f"{words[0]} vs {words[1]}", *words[2:]]) if len(words) >= 2 \
            else " ".join(words)

    body = " / ".join(pair(p) for p in name.split("__") if p) or name
    tags = ", ".join(t for t in (kind.upper(), language) if t)
    return f"{body} ({tags})" if tags else body


def plot_effect_sizes(results: Mapping[str, Sequence[BiasResult]]) -> Any:
    """Grouped horizontal bars: effect size per test x language, one colour per encoder."""
    from embedsuite.plotting import new_figure

    encoders = list(results)
    keys = list(dict.fromkeys((r.test, r.language) for rs in results.values() for r in rs))
    fig = new_figure(figsize=(9, 0.32 * len(keys) * max(1, len(encoders)) + 1.5))
    ax = fig.subplots()
    height = 0.8 / max(1, len(encoders))
    for i, enc in enumerate(encoders):
        by_key = {(r.test, r.language): r for r in results[enc]}
        ys = [k + i * height for k in range(len(keys))]
        vals = [by_key[k].effect_size if k in by_key else 0.0 for k in keys]
        bars = ax.barh(ys, vals, height=height, label=enc)
        for bar, k in zip(bars, keys, strict=True):
            r = by_key.get(k)
            if r is not None and r.p_value < 0.05:
                ax.text(bar.get_width(), bar.get_y() + height / 2, " *", va="center", fontsize=8)
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(keys))],
                  [readable_test_name(t, lang) for t, lang in keys], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("effect size d (* p < 0.05)")
    ax.set_title("Association tests per encoder")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
