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
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

PRELUDE = """
import sys
from pathlib import Path
from typing import Any
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


def _fonts_cover(text: Any) -> bool:
    """Whether the fonts matplotlib resolves for ``text`` hold a glyph for each character."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    chars: set[int] = set()
    for path in font_manager.fontManager._find_fonts_by_props(text.get_fontproperties()):
        chars |= set(FT2Font(str(path)).get_charmap())
    return all(ord(c) in chars for c in text.get_text() if not c.isspace())


def _cjk_figure() -> Any:
    from embedsuite.plotting import new_figure

    fig = new_figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.set_title("这部电影太无聊了 (boring)")
    ax.set_xticks([0, 1], ["東京", "Paris"])
    ax.annotate("青山大桥", (0.5, 0.5))
    fig.tight_layout()
    return fig


def test_cjk_text_is_drawn_with_a_font_that_has_its_glyphs(tmp_path: Path) -> None:
    from matplotlib.text import Text

    from embedsuite.plotting import cjk_font

    if cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: apt-get install fonts-noto-cjk)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would warn
        fig = _cjk_figure()
        fig.savefig(tmp_path / "cjk.png")
    texts = [t for t in fig.findobj(Text) if t.get_text().strip()]
    cjk = [t for t in texts if any(ord(c) > 0x2E80 for c in t.get_text())]
    assert {t.get_text() for t in cjk} >= {"这部电影太无聊了 (boring)", "東京", "青山大桥"}
    assert all(_fonts_cover(t) for t in texts)


def test_without_a_cjk_font_plots_draw_quietly(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No CJK font: boxes instead of glyphs, but no warning per missing glyph."""
    from embedsuite import plotting

    monkeypatch.setattr(plotting, "font_families", lambda: ["sans-serif"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _cjk_figure().savefig(tmp_path / "boxes.png")
    assert (tmp_path / "boxes.png").read_bytes()[:4] == b"\x89PNG"
