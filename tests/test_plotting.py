"""Plots leave matplotlib's global state alone: no backend switch, no pyplot figures.

Each check runs in a subprocess whose backend was set to ``svg`` first (``MPLBACKEND``),
as a notebook user's would be; every plotting function of the library and of the app
tabs is called there, and the backend must still be ``svg`` afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

PRELUDE = """
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
from matplotlib.figure import Figure

assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
out = Path(sys.argv[1])
figs = []
"""

CORE = """
from embedsuite.bias import BiasResult, plot_effect_sizes
from embedsuite.evaluation.harness import make_record, plot_results
from embedsuite.evaluation.tasks.recommendation import CONTENT_DATASET, DATASET, plot_records
from embedsuite.explain import plot_token_map, token_similarity
from embedsuite.testing import FakeEncoder

task = SimpleNamespace(name="toy", main_metric=("toy", "accuracy"),
                       language_metric=("toy/", "accuracy"))
recs = [make_record(e, "toy", ds, "accuracy", v, 10)
        for e, ds, v in [("a", "toy", 0.5), ("b", "toy", 0.7), ("a", "toy/de", 0.4),
                         ("b", "toy/de", 0.6)]]
plot_results(out / "results.png", recs, [task])
plot_records([make_record("a", "recommendation", DATASET, "ndcg@10", 0.2, 5),
              make_record("a", "recommendation", CONTENT_DATASET, "ndcg@10_cold", 0.1, 3),
              make_record("baseline:popularity", "recommendation", DATASET, "ndcg@10", 0.1, 5)],
             out / "recommendation.png")
figs.append(plot_effect_sizes({"a": [BiasResult("weat:flowers", "en", 0.8, 0.01, 8, 8, 100,
                                                True)]}))
ta, tb, sim = token_similarity(FakeEncoder(dim=16), "red apple", "apple green")
figs.append(plot_token_map(ta, tb, sim))
for name in ("results.png", "recommendation.png"):
    assert (out / name).read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n", name
# the library never even imports the state machine interface
assert "matplotlib.pyplot" not in sys.modules
"""

APPS = """
from embedsuite.app.tabs.encoder import similarity
from embedsuite.app.tabs.inside import text_map
from embedsuite.app.tabs.qa import plot_span_scores
from embedsuite.app.tabs.recommend import catalogue_map, fit_catalogue
from embedsuite.app.tabs.sentiment import plot_confusion
from embedsuite.app.tabs.translation import _heatmap
from embedsuite.testing import FakeEncoder

enc = FakeEncoder(dim=16)
figs.append(similarity(enc, "red apple\\napple red\\nblue sky", "query")[0])
figs.append(text_map(enc, "a | x y\\nb | y z\\nc | z w"))
doc = "The tower was built in 1889 in Paris."
offsets = [(0, 3), (4, 9), (10, 13), (14, 19), (20, 22), (23, 27)]
window = {"offsets": offsets, "start": np.arange(6.0), "end": np.arange(6.0)[::-1],
          "window": 0}
head = SimpleNamespace(token_scores=lambda q, d: [window])
figs.append(plot_span_scores(head, doc, "When was the tower built?"))
items = [{"id": f"i{i}", "title": f"T{i}", "description": f"word{i} shared"} for i in range(6)]
figs.append(catalogue_map(fit_catalogue(enc, items), ["i1"], ["i2"], ["i3"]))
figs.append(plot_confusion(np.array([[3, 1], [0, 4]]), ["negative", "positive"]))
figs.append(_heatmap(np.eye(3), [{"source_index": 0, "target_index": 0}], "mining"))
"""

CHECK = """
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert figs and all(isinstance(f, Figure) and f.axes for f in figs), figs
for i, f in enumerate(figs):
    f.savefig(out / f"fig{i}.png")  # no backend needed
print("ok", len(figs))
"""


@pytest.mark.parametrize("part", ["core", "apps"])
def test_plots_leave_the_backend_alone(part: str, tmp_path: Path) -> None:
    script = textwrap.dedent(PRELUDE) + (CORE if part == "core" else APPS) + CHECK
    env = dict(os.environ, MPLBACKEND="svg", EMBEDSUITE_CACHE=str(tmp_path / "cache"),
               GRADIO_ANALYTICS_ENABLED="False", EMBEDSUITE_PROGRESS="0")
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, check=False,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().startswith("ok")


def test_new_figure_is_standalone() -> None:
    from matplotlib.figure import Figure

    from embedsuite.plotting import new_figure

    fig = new_figure(figsize=(3, 2))
    assert isinstance(fig, Figure) and tuple(fig.get_size_inches()) == (3, 2)
    assert fig.subplots() in fig.axes


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from embedsuite.plotting import MissingExtraError, new_figure

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.raises(MissingExtraError, match=r"pip install 'embedsuite\[eval\]'"):
        new_figure()
