"""The evaluation run is reproducible: same inputs, same numbers (to 3 decimals)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.data]

#: Small but real: every task, with the QA head trained on a tiny budget.
OPTIONS = {"qa.langs": ["en"], "qa.train_questions": 40, "qa.epochs": 1, "qa.baseline": False,
           "translation.langs": ["deu", "fra", "spa"], "bias.bias_langs": ["en"]}


def _rounded(records: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], float]:
    return {(r["encoder"], r["task"], r["dataset"], r["metric"]): round(r["value"], 3)
            for r in records}


def test_two_runs_give_the_same_numbers(e5: Any, data_dir: Path, tmp_path: Path) -> None:
    from embedsuite.evaluation import run_evaluation

    kw = {"data_dir": data_dir, "limit": 24, "options": OPTIONS, "show_progress": False}
    first = run_evaluation(["e5-small"], ["all"], tmp_path / "a", **kw)
    second = run_evaluation(["e5-small"], ["all"], tmp_path / "b", resume=False, **kw)
    a, b = _rounded(first), _rounded(second)
    # each run trained its own QA head (checkpoints in its own work folder): the second
    # did not resume the first run's finished training
    for run in ("a", "b"):
        assert list((tmp_path / run / "work" / "qa-train" / "train").glob("*/state.json")), run
    assert {k[1] for k in a} >= {"sentiment", "translation", "recommendation", "qa"}
    assert a == b
    saved = json.loads((tmp_path / "b" / "results.json").read_text())
    assert _rounded(saved) == b
