"""Run tasks for encoders and write ``results.json`` + ``results.md``.

A task is an object with ``name``, ``description``, ``needs_token_embeddings``,
``main_metric`` (a ``(dataset, metric)`` pair shown in the summary table) and
``run(encoder, ctx) -> list[record]``. A task with an MTEB-comparable variant also has
``mteb_main_metric`` and runs it when ``ctx.protocol == "mteb"``; under that protocol
the other tasks are reported as not applicable. Records are plain dicts
``{"encoder", "task", "dataset", "metric", "value", "n"}``; fractions (accuracy,
F1, NDCG...) are in [0, 1]. Each encoder x task result is written to
``DIR/parts/`` atomically as soon as it finishes, so an interrupted run resumes
where it stopped.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import pkgutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from embedsuite.atomic import atomic_write_text
from embedsuite.encoders import get_encoder
from embedsuite.encoders.base import Encoder
from embedsuite.paths import data_dir as default_data_dir
from embedsuite.plotting import MissingExtraError, new_figure
from embedsuite.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["PROTOCOLS", "TASKS", "Task", "TaskContext", "get_tasks", "main_metric", "make_record",
           "not_applicable", "run_evaluation"]

RECORD_KEYS = ("encoder", "task", "dataset", "metric", "value", "n")


@dataclass
class TaskContext:
    """What a task gets besides the encoder.

    Attributes:
        data_dir: The shared data root (``sst2/``, ``tatoeba/``, ...).
        limit: Cap on examples per dataset (``None``: all).
        protocol: ``"default"`` or ``"mteb"`` (MTEB-comparable variants).
        seed: Seed for anything random.
        options: Task-specific options (e.g. ``{"langs": ["deu", "fra"]}``).
        work_dir: A folder for the task's own cached features.
        show_progress: Progress bars on/off (``None``: automatic).
    """

    data_dir: Path
    limit: int | None = None
    protocol: str = "default"
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    work_dir: Path | None = None
    show_progress: bool | None = None

    def option(self, task: str, key: str, default: Any = None) -> Any:
        """A task option: ``"<task>.<key>"`` if given, else ``"<key>"``, else ``default``."""
        if f"{task}.{key}" in self.options:
            return self.options[f"{task}.{key}"]
        return self.options.get(key, default)

    def option_list(self, task: str, key: str, default: Sequence[str] | None = None
                    ) -> list[str] | None:
        """A list-valued option; one value given on the command line (``--option
        qa.langs=en``) arrives as a str and is split on commas."""
        value = self.option(task, key)
        if value is None or value in ("", []):
            return None if default is None else list(default)
        if isinstance(value, str):
            return [x.strip() for x in value.split(",") if x.strip()]
        return [str(x) for x in value]

    def require(self, *relative: str) -> Path:
        """The path of a data file, or a clear error naming what is missing."""
        p = self.data_dir.joinpath(*relative)
        if not p.exists():
            raise FileNotFoundError(
                f"evaluation data {p} not found; expected the shared data folder (see "
                f"../shared/data/README.md); pass --data-dir or set EMBEDSUITE_DATA"
            )
        return p


@runtime_checkable
class Task(Protocol):
    """An evaluation task (cf. sentence-transformers' ``SentenceEvaluator``)."""

    name: str
    description: str
    needs_token_embeddings: bool
    main_metric: tuple[str, str]

    def run(self, encoder: Encoder, ctx: TaskContext) -> list[dict[str, Any]]:
        """Evaluate ``encoder``; return records (see :func:`make_record`)."""
        ...


TASKS: Registry[Task] = Registry("task")
PROTOCOLS = ("default", "mteb")


def main_metric(task: Task, protocol: str = "default") -> tuple[str, str]:
    """The ``(dataset, metric)`` a task is summarised by under ``protocol``."""
    if protocol == "mteb":
        ds, metric = getattr(task, "mteb_main_metric", task.main_metric)
        return ds, metric
    ds, metric = task.main_metric
    return ds, metric


def not_applicable(task: Task, encoder: Encoder, protocol: str) -> str | None:
    """Why ``task`` cannot run for ``encoder`` under ``protocol`` (``None``: it can)."""
    if protocol == "mteb" and not hasattr(task, "mteb_main_metric"):
        return f"task {task.name} has no MTEB-comparable protocol"
    if task.needs_token_embeddings and not encoder.has_token_embeddings:
        return f"{encoder.name} has no token embeddings"
    return None
_DISCOVERED = False


def get_tasks() -> Registry[Task]:
    """The task registry, after importing every module of ``embedsuite.evaluation.tasks``."""
    global _DISCOVERED
    if not _DISCOVERED:
        import embedsuite.evaluation.tasks as pkg

        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{mod.name}")
        _DISCOVERED = True
    return TASKS


def make_record(encoder: str, task: str, dataset: str, metric: str, value: float, n: int
                ) -> dict[str, Any]:
    """One result record; ``value`` must be finite."""
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"metric {task}/{dataset}/{metric} is not finite ({value!r})")
    return {"encoder": encoder, "task": task, "dataset": dataset, "metric": metric,
            "value": v, "n": int(n)}


def _settings_key(ctx: TaskContext) -> str:
    blob = json.dumps({"limit": ctx.limit, "protocol": ctx.protocol, "seed": ctx.seed,
                       "options": ctx.options}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def run_evaluation(
    encoders: Sequence[str],
    tasks: Sequence[str],
    out_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    protocol: str = "default",
    seed: int = 0,
    options: dict[str, Any] | None = None,
    resume: bool = True,
    show_progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every encoder on every task; write ``results.json`` and ``results.md``.

    Args:
        encoders: Encoder names or sentence-transformers folders.
        tasks: Task names, or ``["all"]``.
        out_dir: Where results (and ``parts/`` for resuming) go.
        data_dir: The shared data root (default ``$EMBEDSUITE_DATA``, or ``../shared/data``
            in a checkout).
        limit: Cap on examples per dataset.
        protocol: ``"default"`` or ``"mteb"``.
        seed: Seed passed to tasks.
        options: Task options (e.g. ``{"langs": [...]}``).
        resume: Reuse finished encoder x task parts written with the same settings.
        show_progress: Progress bars.

    Raises:
        UnknownNameError: An unknown encoder or task (known ones are listed).
        ValueError: An unknown protocol or an empty list.
    """
    registry = get_tasks()
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be 'default' or 'mteb', got {protocol!r}")
    task_names = registry.names() if list(tasks) == ["all"] else list(tasks)
    if not task_names or not encoders:
        raise ValueError("give at least one encoder and one task (or --tasks all)")
    task_objs = [registry.get(t) for t in task_names]
    encs = [get_encoder(e) for e in encoders]  # validates names before any work
    out = Path(out_dir)
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    ctx = TaskContext(
        data_dir=default_data_dir(data_dir), limit=limit,
        protocol=protocol, seed=seed, options=dict(options or {}),
        work_dir=out / "work", show_progress=show_progress,
    )
    key = _settings_key(ctx)
    records: list[dict[str, Any]] = []
    status: list[dict[str, Any]] = []
    for enc_name, enc in zip(encoders, encs, strict=True):
        for task in task_objs:
            part = parts / f"{_safe(str(enc_name))}__{_safe(task.name)}.json"
            if resume and part.is_file():
                try:
                    saved = json.loads(part.read_text())
                    if saved.get("settings") == key:
                        logger.info("resume: %s x %s already done", enc_name, task.name)
                        records += saved["records"]
                        status.append(saved["status"])
                        continue
                except (ValueError, KeyError):
                    logger.warning("ignoring unreadable part %s; recomputing", part)
            t0 = time.perf_counter()
            reason = not_applicable(task, enc, protocol)
            if reason is not None:
                st = {"encoder": str(enc_name), "task": task.name, "status": "not_applicable",
                      "reason": reason, "seconds": 0.0}
                recs: list[dict[str, Any]] = []
            else:
                logger.info("running %s x %s", enc_name, task.name)
                try:
                    recs = task.run(enc, ctx)
                except (ValueError, RuntimeError, OSError) as exc:
                    # one failing part must not lose the others; no part file: a rerun retries
                    logger.error("%s x %s failed: %s", enc_name, task.name, exc)
                    status.append({"encoder": str(enc_name), "task": task.name,
                                   "status": "error", "reason": str(exc)[:300],
                                   "seconds": round(time.perf_counter() - t0, 2)})
                    continue
                for r in recs:
                    # baselines run inside a task keep their own name ("baseline:...")
                    if not str(r.get("encoder", "")).startswith("baseline:"):
                        r["encoder"] = str(enc_name)
                    missing = [k for k in RECORD_KEYS if k not in r]
                    if missing:
                        raise ValueError(f"task {task.name} returned a record without {missing}")
                st = {"encoder": str(enc_name), "task": task.name, "status": "ok",
                      "seconds": round(time.perf_counter() - t0, 2)}
            atomic_write_text(part, json.dumps({"settings": key, "status": st, "records": recs},
                                               indent=1))
            records += recs
            status.append(st)
    atomic_write_text(out / "results.json", json.dumps(records, indent=1, ensure_ascii=False))
    write_markdown(out / "results.md", records, status, task_objs, protocol=protocol)
    try:
        plot_results(out / "results.png", records, task_objs, protocol=protocol)
    except MissingExtraError as exc:  # a core-only install: the numbers are written already
        logger.warning("no %s: %s", out / "results.png", exc)
    except Exception:  # a plot must never lose the numbers
        logger.exception("could not draw %s", out / "results.png")
    return records


def _fmt(v: float) -> str:
    return f"{v:.3f}"


def write_markdown(path: Path, records: list[dict[str, Any]], status: list[dict[str, Any]],
                   tasks: Sequence[Task], *, protocol: str = "default") -> None:
    """Summary table (encoders x main metric per task, best in bold) and all records."""
    encoders = list(dict.fromkeys([s["encoder"] for s in status]
                                  + [r["encoder"] for r in records]))
    na = {(s["encoder"], s["task"]) for s in status if s["status"] == "not_applicable"}
    failed = {(s["encoder"], s["task"]): s.get("reason", "") for s in status
              if s["status"] == "error"}
    reasons = sorted({s.get("reason", "") for s in status if s["status"] == "not_applicable"})
    mains = [main_metric(t, protocol) for t in tasks]
    cols = []
    spread: dict[tuple[str, str], tuple[float, float]] = {}
    for t, (ds, metric) in zip(tasks, mains, strict=True):
        vals: dict[str, float] = {}
        seen: dict[str, list[float]] = {}
        for r in records:
            if r["task"] == t.name and r["dataset"] == ds and r["metric"] == metric:
                vals[r["encoder"]] = r["value"]
                seen.setdefault(r["encoder"], []).append(float(r["value"]))
        for e, vs in seen.items():  # a baseline that uses the encoder runs once per encoder
            if len({_fmt(v) for v in vs}) > 1:
                spread[(e, t.name)] = (min(vs), max(vs))
        cols.append((t, vals))
    title = "# Evaluation results" + (" (protocol: mteb)" if protocol == "mteb" else "")
    lines = [title, "",
             "| encoder | " + " | ".join(f"{t.name} ({m[0]} {m[1]})"
                                        for t, m in zip(tasks, mains, strict=True)) + " |",
             "|---|" + "---|" * len(tasks)]
    for e in encoders:
        cells = []
        for t, vals in cols:
            if (e, t.name) in na:
                cells.append("n/a")
            elif (e, t.name) in failed:
                cells.append("error")
            elif (e, t.name) in spread:
                lo, hi = spread[(e, t.name)]
                cells.append(f"{_fmt(lo)}-{_fmt(hi)}")
            elif e in vals:
                best = (max if getattr(t, "higher_is_better", True) else min)(vals.values())
                s = _fmt(vals[e])
                cells.append(f"**{s}**" if vals[e] == best and len(vals) > 1 else s)
            else:
                cells.append("-")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lower = [t.name for t in tasks if not getattr(t, "higher_is_better", True)]
    why = ("n/a: " + "; ".join(r for r in reasons if r) + ". ") if reasons else ""
    if spread:
        why += ("A range (lo-hi): a baseline that uses the shared encoder, run once per "
                "encoder. ")
    lines += ["", why + "Bold: best "
              "per column" + (f" (lower is better for {', '.join(lower)})." if lower else "."), "",
              "## All records", "", "| encoder | task | dataset | metric | value | n |",
              "|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['encoder']} | {r['task']} | {r['dataset']} | {r['metric']} | "
                     f"{_fmt(r['value'])} | {r['n']} |")
    lines += ["", "## Run status", "", "| encoder | task | status | seconds | reason |",
              "|---|---|---|---|---|"]
    for st in status:
        reason = str(st.get("reason", "")).replace("|", "/").replace("\n", " ")
        lines.append(f"| {st['encoder']} | {st['task']} | {st['status']} | "
                     f"{st.get('seconds', '')} | {reason} |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def _main_values(records: list[dict[str, Any]], tasks: Sequence[Task], protocol: str = "default"
                 ) -> tuple[list[str], np.ndarray]:
    names = list(dict.fromkeys(r["encoder"] for r in records))
    # the encoders first, then the baselines run inside tasks
    encoders = ([e for e in names if not e.startswith("baseline:")]
                + [e for e in names if e.startswith("baseline:")])
    grid = np.full((len(encoders), len(tasks)), np.nan)
    for r in records:
        for j, t in enumerate(tasks):
            if r["task"] == t.name and (r["dataset"], r["metric"]) == main_metric(t, protocol):
                grid[encoders.index(r["encoder"]), j] = r["value"]
    return encoders, grid


def plot_results(path: Path, records: list[dict[str, Any]], tasks: Sequence[Task], *,
                 protocol: str = "default") -> None:
    """``results.png``: encoders x tasks heat map, plus per-language bars where tasks have them.

    A task with ``language_metric = (dataset_prefix, metric)`` (``mteb_language_metric``
    under the mteb protocol) gets a bar chart of ``value`` per language (records whose
    dataset is ``dataset_prefix + <lang>``).
    """
    encoders, grid = _main_values(records, tasks, protocol)

    def lang_metric(t: Task) -> tuple[str, str] | None:
        if protocol == "mteb":
            return getattr(t, "mteb_language_metric", None)
        return getattr(t, "language_metric", None)

    lang_tasks = [t for t in tasks if lang_metric(t)]
    n_rows = 1 + len(lang_tasks)
    fig = new_figure(figsize=(max(8.0, 1.6 * len(tasks) + 3),
                              2.0 + 0.5 * len(encoders) + 3.2 * len(lang_tasks)))
    import matplotlib  # present: new_figure raised MissingExtraError otherwise

    heights = [max(2.0, 0.5 * len(encoders) + 1)] + [3.0] * len(lang_tasks)
    gs = fig.add_gridspec(n_rows, 1, height_ratios=heights)
    ax = fig.add_subplot(gs[0])
    # colour = rank within the column (best = brightest; bias: lower is better), so
    # columns on different scales read alike; n/a cells are grey, the values are printed
    shown = np.full_like(grid, np.nan)
    for j, t in enumerate(tasks):
        col = grid[:, j]
        ok = ~np.isnan(col)
        if ok.sum():
            lo, hi = np.nanmin(col), np.nanmax(col)
            x = (col - lo) / (hi - lo) if hi > lo else np.ones_like(col)
            shown[:, j] = x if getattr(t, "higher_is_better", True) else 1 - x
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
    ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(len(tasks)), [f"{t.name}\n{main_metric(t, protocol)[1]}" for t in tasks],
                  fontsize=8)
    ax.set_yticks(range(len(encoders)), encoders, fontsize=8)
    for i in range(len(encoders)):
        for j in range(len(tasks)):
            txt = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.3f}"
            dark = not np.isnan(shown[i, j]) and shown[i, j] < 0.6
            ax.text(j, i, txt, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_title("Transfer across tasks (main metric per task; colour: best in the column "
                 "brightest)", fontsize=10)
    for k, t in enumerate(lang_tasks, start=1):
        prefix, metric = lang_metric(t)  # type: ignore[misc]
        per: dict[str, dict[str, float]] = {}
        for r in records:
            if r["task"] == t.name and r["metric"] == metric and r["dataset"].startswith(prefix):
                lang = r["dataset"][len(prefix):]
                if lang and "/" not in lang:
                    per.setdefault(r["encoder"], {})[lang] = r["value"]
        axb = fig.add_subplot(gs[k])
        langs = sorted({lg for d in per.values() for lg in d})
        if not langs:
            axb.set_axis_off()
            continue
        width = 0.8 / max(1, len(per))
        for i, (enc, d) in enumerate(per.items()):
            xs = np.arange(len(langs)) + i * width
            axb.bar(xs, [d.get(lg, 0.0) for lg in langs], width=width, label=enc)
        step = max(1, len(langs) // 60)
        axb.set_xticks(np.arange(0, len(langs), step) + 0.4 - width / 2, langs[::step],
                       rotation=90, fontsize=6)
        axb.set_ylim(0, 1)
        axb.set_ylabel(metric, fontsize=8)
        axb.set_title(f"{t.name}: {metric} per language", fontsize=9)
        axb.legend(fontsize=7, ncol=min(4, len(per)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
