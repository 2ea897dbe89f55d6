"""Task ``bias``: mean absolute WEAT/SEAT effect size per encoder (lower is better).

Uses the project's own word and sentence lists (``core/assets/bias``), so it needs no
data folder. Records: dataset ``weat+seat`` metric ``mean_abs_effect_size`` (the table's
bias column), and per test ``bias/<test>/<language>`` with ``effect_size`` and ``p_value``.
"""

from __future__ import annotations

from typing import Any

from embedsuite.bias import load_tests, run_bias_tests
from embedsuite.encoders.base import Encoder
from embedsuite.evaluation.harness import TASKS, TaskContext, make_record


class BiasTask:
    """Association tests as an evaluation task."""

    name = "bias"
    description = "WEAT/SEAT tests (en, de, fr, es): mean |effect size|, lower is better"
    needs_token_embeddings = False
    main_metric = ("weat+seat", "mean_abs_effect_size")
    higher_is_better = False

    def run(self, encoder: Encoder, ctx: TaskContext) -> list[dict[str, Any]]:
        langs = ctx.option_list(self.name, "bias_langs")
        results = run_bias_tests(encoder, load_tests(langs), seed=ctx.seed)
        recs = []
        for r in results:
            ds = f"bias/{r.test}/{r.language}"
            recs.append(make_record(encoder.name, self.name, ds, "effect_size", r.effect_size,
                                    r.n_targets))
            recs.append(make_record(encoder.name, self.name, ds, "p_value", r.p_value,
                                    r.n_targets))
        mean_abs = sum(abs(r.effect_size) for r in results) / len(results)
        recs.append(make_record(encoder.name, self.name, "weat+seat", "mean_abs_effect_size",
                                mean_abs, len(results)))
        return recs


TASKS.register("bias", BiasTask())
