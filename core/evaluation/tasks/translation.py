"""Task ``translation``: Tatoeba retrieval (cosine and margin) and bitext mining.

Data: LASER Tatoeba v1 (``tatoeba/tatoeba.<xxx>-eng.{xxx,eng}``, 112 languages
paired with English; line i of one file translates line i of the other).

Retrieval, per language and scoring (``cosine`` and ``margin`` on the encoder's
vectors, as MTEB and LASER score them; ``cosine-centered`` and ``margin-centered``
after removing each side's mean vector, the head's default): top-1 accuracy
xxx->eng and eng->xxx, and the weighted F1 of the top-1 xxx->eng predictions
computed as MTEB's BitextMining evaluator does (``sklearn.metrics.f1_score(gold,
predicted, average="weighted")``; for ``cosine`` this is MTEB's Tatoeba main
score). Records: ``tatoeba/<scoring>`` (``accuracy_mean``, ``accuracy_mean_eng2xxx``,
``f1_mean``: means over the languages evaluated) and ``tatoeba/<scoring>/<lang>``
(``accuracy``, ``accuracy_eng2xxx``, ``f1``).

Mining, per language: the source side holds the language's sentences plus 50 %
distractors (sentences of another pair's non-English side), the target side the
SHUFFLED English translations plus 50 % distractors (English sentences of a third
pair); distractors equal to a gold sentence are removed, so they have no
translation on the other side. :func:`embedsuite.heads.translation.mine_pairs` (centred
margin, LASER "max", the default threshold) aligns them; precision = correct mined pairs
/ mined pairs, recall = correct mined pairs / gold pairs. Records:
``tatoeba-mining/margin-centered`` (``precision_mean``, ``recall_mean``,
``f1_mean``) and ``tatoeba-mining/margin-centered/<lang>`` (``precision``,
``recall``, ``f1``).

Options (``ctx.options``): ``langs`` (list, default all 112), ``role`` (encoder
role on both sides, default ``"query"``), ``mine_threshold`` (default
:data:`~embedsuite.heads.translation.DEFAULT_MINE_THRESHOLD`), ``mining`` (bool, default
True). ``ctx.limit`` keeps the first N pairs of each language.

``--protocol mteb``: MTEB's BitextMining scoring only (records ``tatoeba/cosine``
and ``tatoeba/cosine/<lang>``, main score ``f1_mean``), no margin, no mining.

Run ``python -m embedsuite.evaluation.tasks.translation table RESULTS.json`` to print
the per-language Markdown table of a finished run, and ``... calibrate`` to
sweep the mining threshold (see docs/translation.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from embedsuite.encoders.base import Encoder, check_role, progress
from embedsuite.evaluation.harness import TASKS, TaskContext, make_record
from embedsuite.heads.translation import (
    DEFAULT_MINE_THRESHOLD,
    margin_scores,
    maybe_center,
    mine_pairs,
)
from embedsuite.metrics import mining_scores

logger = logging.getLogger(__name__)

__all__ = [
    "TranslationTask",
    "available_languages",
    "load_pair",
    "mining_candidates",
    "retrieval_scores",
]

DATASET = "tatoeba"
SCORING_NAMES = ("cosine", "margin", "cosine-centered", "margin-centered")


def available_languages(folder: Path) -> list[str]:
    """The ``xxx`` codes of the ``tatoeba.xxx-eng.*`` file pairs in ``folder``, sorted."""
    out = []
    for p in folder.glob("tatoeba.*-eng.eng"):
        lang = p.name.split(".")[1].split("-")[0]
        if (folder / f"tatoeba.{lang}-eng.{lang}").is_file():
            out.append(lang)
    return sorted(out)


def load_pair(folder: Path, lang: str, limit: int | None = None) -> tuple[list[str], list[str]]:
    """Aligned ``(xxx sentences, English sentences)`` of one language (first ``limit`` pairs).

    Raises:
        FileNotFoundError: The language's files are missing (known languages are listed).
        ValueError: The two files differ in length.
    """
    src_p = folder / f"tatoeba.{lang}-eng.{lang}"
    eng_p = folder / f"tatoeba.{lang}-eng.eng"
    if not src_p.is_file() or not eng_p.is_file():
        known = ", ".join(available_languages(folder)) or "none"
        raise FileNotFoundError(f"no Tatoeba files for language {lang!r} in {folder} (expected "
                                f"{src_p.name} and {eng_p.name}); known languages: {known}")
    src = src_p.read_text(encoding="utf-8").splitlines()
    eng = eng_p.read_text(encoding="utf-8").splitlines()
    if len(src) != len(eng):
        raise ValueError(f"{src_p.name} has {len(src)} lines but {eng_p.name} {len(eng)}; "
                         f"the files must be aligned line by line")
    keep = [i for i in range(len(src)) if src[i].strip() and eng[i].strip()]
    if limit is not None:
        keep = keep[:limit]
    return [src[i] for i in keep], [eng[i] for i in keep]


def retrieval_scores(x: np.ndarray, y: np.ndarray, k: int = 4) -> dict[str, dict[str, float]]:
    """Top-1 retrieval metrics of aligned vectors ``x[i] <-> y[i]`` (xxx, eng).

    Returns:
        ``{scoring: {...}}`` for the scorings ``cosine`` and ``margin`` (on the
        encoder's vectors, as in MTEB and LASER) and ``cosine-centered`` and
        ``margin-centered`` (each side's mean removed first, the head's default),
        each with ``accuracy`` (xxx->eng), ``accuracy_eng2xxx`` and ``f1`` (MTEB:
        weighted F1 of the xxx->eng top-1).
    """
    from sklearn.metrics import f1_score

    n = x.shape[0]
    gold = np.arange(n)
    mats: list[tuple[str, np.ndarray]] = []
    for suffix, (a, b) in (("", (x, y)), ("-centered", (maybe_center(x, True),
                                                         maybe_center(y, True)))):
        cos = a @ b.T  # n <= ~1000 per Tatoeba language: the full matrix is small
        r_x = _topk_mean(cos, k)
        r_y = _topk_mean(cos.T, k)
        mats += [(f"cosine{suffix}", cos), (f"margin{suffix}",
                                            margin_scores(cos, r_x, r_y[None, :]))]
    out: dict[str, dict[str, float]] = {}
    for name, mat in mats:
        pred = np.argmax(mat, axis=1)
        pred_rev = np.argmax(mat, axis=0)
        out[name] = {
            "accuracy": float(np.mean(pred == gold)),
            "accuracy_eng2xxx": float(np.mean(pred_rev == gold)),
            "f1": float(f1_score(gold, pred, average="weighted", zero_division=0)),
        }
    return out


def _topk_mean(mat: np.ndarray, k: int) -> np.ndarray:
    kk = min(k, mat.shape[1])
    part = np.partition(mat, mat.shape[1] - kk, axis=1)[:, mat.shape[1] - kk :]
    return part.mean(axis=1).astype(np.float32)


def mining_candidates(
    src: Sequence[str], eng: Sequence[str], src_distract: Sequence[str],
    eng_distract: Sequence[str], seed: int = 0,
    src_distract_eng: Sequence[str] | None = None,
) -> tuple[list[str], list[str], dict[int, int]]:
    """Build one mining problem: sources, shuffled targets, and the gold ``src -> tgt`` map.

    ``src``/``eng`` are aligned; half their size of distractors is added to each
    side. Distractors that would be right answers are dropped first: texts equal
    to a gold text, and source distractors whose English translation
    (``src_distract_eng``, aligned with ``src_distract``) is on the target side
    (Tatoeba's English sentences recur across language pairs).
    """
    rng = random.Random(seed)
    n = len(src)
    half = n // 2
    gold_src, gold_eng = set(src), set(eng)
    ed = [t for t in dict.fromkeys(eng_distract) if t not in gold_eng]
    ed = rng.sample(ed, min(half, len(ed)))
    on_target = gold_eng | set(ed)
    sd_eng = list(src_distract_eng) if src_distract_eng is not None else [""] * len(src_distract)
    if len(sd_eng) != len(src_distract):
        raise ValueError("src_distract_eng must be aligned with src_distract")
    seen: set[str] = set()
    sd = []
    for t, e in zip(src_distract, sd_eng, strict=True):
        if t in gold_src or t in seen or e in on_target:
            continue
        seen.add(t)
        sd.append(t)
    sd = rng.sample(sd, min(half, len(sd)))
    sources = list(src) + sd
    perm = list(range(n))
    rng.shuffle(perm)  # target position p holds eng[perm[p]]
    targets = [eng[i] for i in perm] + ed
    pos = {orig: p for p, orig in enumerate(perm)}
    gold = {i: pos[i] for i in range(n)}
    return sources, targets, gold


class TranslationTask:
    """Tatoeba translation retrieval (xxx<->eng, cosine and margin) and bitext mining."""

    name = "translation"
    description = ("Tatoeba (LASER v1, 112 languages <-> English): top-1 retrieval accuracy "
                   "(cosine, ratio margin k=4), MTEB-style F1, and bitext mining P/R/F1")
    needs_token_embeddings = False
    main_metric = ("tatoeba/margin-centered", "accuracy_mean")
    language_metric = ("tatoeba/margin-centered/", "accuracy")
    #: ``--protocol mteb``: MTEB BitextMining scoring (top-1 cosine, F1), no mining.
    mteb_main_metric = ("tatoeba/cosine", "f1_mean")
    mteb_language_metric = ("tatoeba/cosine/", "f1")

    def run(self, encoder: Encoder, ctx: TaskContext) -> list[dict[str, Any]]:
        """Evaluate ``encoder``; see the module docstring for the records."""
        folder = ctx.require(DATASET)
        all_langs = available_languages(folder)
        langs = ctx.option_list(self.name, "langs", all_langs) or list(all_langs)
        unknown = [lang for lang in langs if lang not in all_langs]
        if unknown:
            raise ValueError(f"unknown Tatoeba language(s) {unknown}; known: "
                             f"{', '.join(all_langs)}")
        role = check_role(ctx.option(self.name, "role", "query"))
        threshold = float(ctx.option(self.name, "mine_threshold", DEFAULT_MINE_THRESHOLD))
        mteb = ctx.protocol == "mteb"
        do_mining = bool(ctx.option(self.name, "mining", True)) and not mteb
        scorings = ("cosine",) if mteb else SCORING_NAMES
        k = int(ctx.option(self.name, "k", 4))
        pairs = {lang: load_pair(folder, lang, ctx.limit) for lang in langs}
        # distractor pairs: the next two languages of the evaluated list (of all, if < 3)
        pool = langs if len(langs) >= 3 else all_langs

        def partners(lang: str) -> tuple[str, str]:
            i = pool.index(lang) if lang in pool else all_langs.index(lang)
            seq = pool if lang in pool else all_langs
            return seq[(i + 1) % len(seq)], seq[(i + 2) % len(seq)]

        if do_mining:
            for lang in langs:
                for other in partners(lang):
                    if other not in pairs:
                        pairs[other] = load_pair(folder, other, ctx.limit)
        prepare = getattr(encoder, "prepare", None)
        if callable(prepare):
            prepare([t for s, e in pairs.values() for t in (*s, *e)])

        vec_cache: dict[tuple[str, int], np.ndarray] = {}

        def vectors(lang: str, side: int) -> np.ndarray:
            key = (lang, side)
            if key not in vec_cache:
                vec_cache[key] = np.asarray(encoder.encode(
                    pairs[lang][side], role=role, show_progress=False), np.float32)
            return vec_cache[key]

        per: dict[str, dict[str, dict[str, float]]] = {}
        mining: dict[str, dict[str, float]] = {}
        total = sum(len(pairs[lang][0]) for lang in langs)
        records: list[dict[str, Any]] = []
        with progress(len(langs), "tatoeba languages", ctx.show_progress, threshold=2) as bar:
            for lang in langs:
                x, y = vectors(lang, 0), vectors(lang, 1)
                per[lang] = retrieval_scores(x, y, k)
                n = len(pairs[lang][0])
                for scoring in scorings:
                    m = per[lang][scoring]
                    ds = f"{DATASET}/{scoring}/{lang}"
                    for metric in ("accuracy", "accuracy_eng2xxx", "f1"):
                        records.append(make_record(encoder.name, self.name, ds, metric,
                                                   m[metric], n))
                if do_mining and n >= 4:
                    m_src, m_eng = partners(lang)
                    srcs, tgts, gold = mining_candidates(
                        pairs[lang][0], pairs[lang][1], pairs[m_src][0], pairs[m_eng][1],
                        seed=ctx.seed, src_distract_eng=pairs[m_src][1])
                    lookup = _text_vectors([(pairs[lang][0], x), (pairs[m_src][0],
                                                                  vectors(m_src, 0))])
                    a = np.stack([lookup[t] for t in srcs])
                    lookup_t = _text_vectors([(pairs[lang][1], y), (pairs[m_eng][1],
                                                                    vectors(m_eng, 1))])
                    b = np.stack([lookup_t[t] for t in tgts])
                    mined = mine_pairs(maybe_center(a, True), maybe_center(b, True), k=k,
                                       threshold=None, scoring="margin")
                    mining[lang] = mining_scores(mined, gold, threshold)
                    ds = f"{DATASET}-mining/margin-centered/{lang}"
                    for metric in ("precision", "recall", "f1"):
                        records.append(make_record(encoder.name, self.name, ds, metric,
                                                   mining[lang][metric], n))
                bar.update(1)
                bar.set_postfix(lang=lang, f1=f"{per[lang]['cosine']['f1']:.3f}",
                                margin=f"{per[lang]['margin-centered']['accuracy']:.3f}")
        names = {"accuracy": "accuracy_mean", "accuracy_eng2xxx": "accuracy_mean_eng2xxx",
                 "f1": "f1_mean"}
        for scoring in scorings:
            for metric, mean_name in names.items():
                vals = [per[lang][scoring][metric] for lang in langs]
                records.append(make_record(encoder.name, self.name, f"{DATASET}/{scoring}",
                                           mean_name, float(np.mean(vals)), total))
        if mining:
            for metric in ("precision", "recall", "f1"):
                vals = [m[metric] for m in mining.values()]
                records.append(make_record(encoder.name, self.name,
                                           f"{DATASET}-mining/margin-centered",
                                           f"{metric}_mean", float(np.mean(vals)), total))
        logger.info("translation: %d languages, margin accuracy mean %.4f (centred %.4f)",
                    len(langs),
                    float(np.mean([per[lang]["margin"]["accuracy"] for lang in langs])),
                    float(np.mean([per[lang]["margin-centered"]["accuracy"] for lang in langs])))
        return records


def _text_vectors(groups: Sequence[tuple[Sequence[str], np.ndarray]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for texts, vecs in groups:
        for t, v in zip(texts, vecs, strict=True):
            out.setdefault(t, v)
    return out


TASKS.register("translation", TranslationTask())


# ---------------------------------------------------------------------------
# command line: the per-language table of a run, and the threshold sweep
# ---------------------------------------------------------------------------
def markdown_table(records: Sequence[dict[str, Any]], encoder: str | None = None,
                   exclude: Sequence[str] = ()) -> str:
    """A per-language Markdown table (cosine / margin accuracy, F1, mining F1) of a run.

    With ``exclude`` (e.g. the languages a threshold was tuned on) a second mean
    row covers only the other languages.
    """
    recs = [r for r in records if r.get("task") == "translation"
            and (encoder is None or r.get("encoder") == encoder)]
    cell: dict[tuple[str, str], float] = {}
    count: dict[str, int] = {}
    for r in recs:
        parts = str(r["dataset"]).split("/")
        if len(parts) == 3:
            cell[(f"{parts[0]}/{parts[1]}:{r['metric']}", parts[2])] = float(r["value"])
            count[parts[2]] = int(r["n"])
    cols = [("tatoeba/cosine:accuracy", "cos acc"),
            ("tatoeba/cosine:f1", "cos F1 (MTEB)"),
            ("tatoeba/margin:accuracy", "margin acc"),
            ("tatoeba/cosine-centered:accuracy", "centred cos acc"),
            ("tatoeba/margin-centered:accuracy", "centred margin acc"),
            ("tatoeba/margin-centered:accuracy_eng2xxx", "centred margin eng->xxx"),
            ("tatoeba-mining/margin-centered:precision", "mining P"),
            ("tatoeba-mining/margin-centered:recall", "mining R"),
            ("tatoeba-mining/margin-centered:f1", "mining F1")]
    langs = sorted(count)
    lines = ["| lang | pairs | " + " | ".join(c[1] for c in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    for lang in langs:
        vals = [cell.get((c, lang)) for c, _ in cols]
        lines.append(f"| {lang} | {count[lang]} | "
                     + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |")
    groups = [(f"mean ({len(langs)})", langs)]
    rest = [lang for lang in langs if lang not in set(exclude)]
    if exclude and rest:
        groups.append((f"mean without {', '.join(sorted(set(exclude) & set(langs)))} "
                       f"({len(rest)})", rest))
    for title, group in groups:
        means = []
        for c, _ in cols:
            vs = [cell[(c, lang)] for lang in group if (c, lang) in cell]
            means.append(f"**{np.mean(vs):.3f}**" if vs else "-")
        lines.append(f"| **{title}** | {sum(count[lang] for lang in group)} | "
                     + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


def calibrate_threshold(
    encoder: Encoder, folder: Path, langs: Sequence[str], *, role: str = "query",
    limit: int | None = None, thresholds: Sequence[float] | None = None, seed: int = 0,
    centered: bool = True,
) -> list[tuple[float, float, float, float]]:
    """Sweep the mining threshold on ``langs``: ``(threshold, P, R, F1)`` means, per threshold."""
    role_ = check_role(role)
    ths = list(thresholds) if thresholds is not None else [round(1.0 + 0.025 * i, 3)
                                                           for i in range(25)]
    all_langs = available_languages(folder)
    pool = list(langs) if len(langs) >= 3 else all_langs  # distractors as in the task
    runs = []
    for lang in tqdm(list(langs), desc="calibrate", disable=None):
        i = pool.index(lang)
        m_src, m_eng = pool[(i + 1) % len(pool)], pool[(i + 2) % len(pool)]
        src, eng = load_pair(folder, lang, limit)
        sd, sd_eng = load_pair(folder, m_src, limit)
        _, ed = load_pair(folder, m_eng, limit)
        srcs, tgts, gold = mining_candidates(src, eng, sd, ed, seed=seed,
                                             src_distract_eng=sd_eng)
        a = maybe_center(np.asarray(encoder.encode(srcs, role=role_), np.float32), centered)
        b = maybe_center(np.asarray(encoder.encode(tgts, role=role_), np.float32), centered)
        runs.append((mine_pairs(a, b, threshold=None), gold))
    out = []
    for th in ths:
        ms = [mining_scores(p, g, th) for p, g in runs]
        pr, rc, f1 = (float(np.mean([m[k] for m in ms])) for k in ("precision", "recall", "f1"))
        out.append((th, pr, rc, f1))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``table RESULTS.json`` or ``calibrate --langs ...``."""
    p = argparse.ArgumentParser(prog="python -m embedsuite.evaluation.tasks.translation")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="per-language Markdown table of a results.json")
    t.add_argument("results")
    t.add_argument("--encoder", default=None)
    t.add_argument("--exclude", default="", help="languages left out of a second mean row")
    c = sub.add_parser("calibrate", help="sweep the mining threshold on some languages")
    c.add_argument("--langs", required=True)
    c.add_argument("--encoder", default="e5-small")
    c.add_argument("--role", default="query")
    c.add_argument("--limit", type=int, default=None)
    c.add_argument("--data-dir", default=None)
    c.add_argument("--no-center", action="store_true", help="score the raw vectors")
    c.add_argument("--thresholds", default=None, help="comma-separated values to try")
    args = p.parse_args(argv)
    if args.cmd == "table":
        records = json.loads(Path(args.results).read_text(encoding="utf-8"))
        sys.stdout.write(markdown_table(records, args.encoder, [
            s.strip() for s in args.exclude.split(",") if s.strip()]))
        return 0
    from embedsuite.encoders import get_encoder
    from embedsuite.paths import data_dir

    folder = Path(args.data_dir) if args.data_dir else data_dir() / DATASET
    rows = calibrate_threshold(get_encoder(args.encoder), folder,
                               [s.strip() for s in args.langs.split(",") if s.strip()],
                               role=args.role, limit=args.limit, centered=not args.no_center,
                               thresholds=None if not args.thresholds else
                               [float(t) for t in args.thresholds.split(",")])
    sys.stdout.write("| threshold | precision | recall | F1 |\n|---:|---:|---:|---:|\n")
    for th, pr, rc, f1 in rows:
        sys.stdout.write(f"| {th:.3f} | {pr:.3f} | {rc:.3f} | {f1:.3f} |\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
