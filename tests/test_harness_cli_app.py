"""The evaluation harness (with a fake task), the CLI and the app shell."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from embedsuite.encoders import ENCODERS
from embedsuite.evaluation.harness import TASKS, TaskContext, get_tasks, make_record, run_evaluation
from embedsuite.testing import FakeEncoder


class _CountingTask:
    name = "toy"
    description = "nearest-neighbour accuracy on a toy set"
    needs_token_embeddings = False
    main_metric = ("toy", "accuracy")
    runs = 0

    def run(self, encoder: Any, ctx: TaskContext) -> list[dict[str, Any]]:
        _CountingTask.runs += 1
        q = encoder.encode(["red apple", "blue sky", "green grass"])
        d = encoder.encode(["apple red", "sky blue", "grass green"], role="passage")
        acc = float(np.mean(np.argmax(q @ d.T, axis=1) == np.arange(3)))
        n = 3 if ctx.limit is None else min(3, ctx.limit)
        return [make_record(encoder.name, self.name, "toy", "accuracy", acc, n),
                make_record("baseline:random", self.name, "toy", "accuracy", 1 / 3, n)]


class _TokenTask(_CountingTask):
    name = "toytok"
    needs_token_embeddings = True
    main_metric = ("toy", "accuracy")


@pytest.fixture
def registered(tmp_cache) -> Iterator[None]:  # type: ignore[no-untyped-def]
    get_tasks()
    TASKS.register("toy", _CountingTask())
    TASKS.register("toytok", _TokenTask())
    ENCODERS.register("fake-a", lambda: FakeEncoder(name="fake-a", cache=tmp_cache))
    ENCODERS.register("fake-b", lambda: FakeEncoder(name="fake-b", cache=tmp_cache,
                                                    token_embeddings=False))
    yield
    for n in ("toy", "toytok"):
        TASKS.unregister(n)
    for n in ("fake-a", "fake-b"):
        ENCODERS.unregister(n)


def test_harness_records_markdown_and_resume(tmp_path: Path, registered: None) -> None:
    _CountingTask.runs = 0
    recs = run_evaluation(["fake-a", "fake-b"], ["toy", "toytok"], tmp_path, data_dir=tmp_path)
    assert _CountingTask.runs == 3  # toytok is not applicable to fake-b
    assert all(set(r) == {"encoder", "task", "dataset", "metric", "value", "n"} for r in recs)
    assert {r["encoder"] for r in recs} == {"fake-a", "fake-b", "baseline:random"}
    assert json.loads((tmp_path / "results.json").read_text()) == recs
    md = (tmp_path / "results.md").read_text()
    assert "| fake-b |" in md and "n/a" in md and "| baseline:random |" in md
    run_evaluation(["fake-a", "fake-b"], ["toy", "toytok"], tmp_path, data_dir=tmp_path)
    assert _CountingTask.runs == 3  # resumed from parts/
    run_evaluation(["fake-a"], ["toy"], tmp_path, data_dir=tmp_path, limit=2)
    assert _CountingTask.runs == 4  # other settings: recomputed


class _MtebTask(_CountingTask):
    name = "toymteb"
    mteb_main_metric = ("toy-mteb", "f1")
    seen: ClassVar[list[str]] = []

    def run(self, encoder: Any, ctx: TaskContext) -> list[dict[str, Any]]:
        _MtebTask.seen.append(ctx.protocol)
        ds = "toy-mteb" if ctx.protocol == "mteb" else "toy"
        metric = "f1" if ctx.protocol == "mteb" else "accuracy"
        return [make_record(encoder.name, self.name, ds, metric, 0.5, 3)]


def test_harness_mteb_protocol(tmp_path: Path, registered: None) -> None:
    """Tasks with an MTEB variant run it; the others are reported n/a with the reason."""
    TASKS.register("toymteb", _MtebTask())
    try:
        _MtebTask.seen = []
        recs = run_evaluation(["fake-a"], ["toy", "toymteb"], tmp_path, data_dir=tmp_path,
                              protocol="mteb")
        assert _MtebTask.seen == ["mteb"]
        assert {(r["task"], r["dataset"], r["metric"]) for r in recs} == {
            ("toymteb", "toy-mteb", "f1")}
        md = (tmp_path / "results.md").read_text()
        assert "(protocol: mteb)" in md and "toymteb (toy-mteb f1)" in md
        assert "n/a: task toy has no MTEB-comparable protocol" in md
        assert "| fake-a | n/a | 0.500 |" in md
        status = json.loads((tmp_path / "parts" / "fake-a__toy.json").read_text())["status"]
        assert status["status"] == "not_applicable"
    finally:
        TASKS.unregister("toymteb")


class _FailingTask(_CountingTask):
    name = "toyfail"

    def run(self, encoder: Any, ctx: TaskContext) -> list[dict[str, Any]]:
        raise ValueError("layers [12] do not exist in fake-a")


def test_harness_failing_part_does_not_lose_the_others(tmp_path: Path, registered: None
                                                       ) -> None:
    TASKS.register("toyfail", _FailingTask())
    try:
        recs = run_evaluation(["fake-a"], ["toyfail", "toy"], tmp_path, data_dir=tmp_path)
        assert {r["task"] for r in recs} == {"toy"}
        assert not (tmp_path / "parts" / "fake-a__toyfail.json").exists()  # a rerun retries
        md = (tmp_path / "results.md").read_text()
        assert "| fake-a | error |" in md
        assert "| fake-a | toyfail | error |" in md and "layers [12] do not exist" in md
    finally:
        TASKS.unregister("toyfail")


def test_task_context_option_precedence(tmp_path: Path) -> None:
    ctx = TaskContext(data_dir=tmp_path, options={"langs": ["deu"], "qa.langs": ["en"]})
    assert ctx.option("qa", "langs") == ["en"]
    assert ctx.option("translation", "langs") == ["deu"]
    one = TaskContext(data_dir=tmp_path, options={"qa.langs": "en", "kinds": "linear,attention"})
    assert one.option_list("qa", "langs") == ["en"]  # one CLI value arrives as a str
    assert one.option_list("sentiment", "kinds") == ["linear", "attention"]
    assert one.option_list("translation", "langs", ["deu"]) == ["deu"]
    assert one.option_list("translation", "langs") is None
    assert ctx.option("qa", "epochs", 2) == 2


def test_cli_option_parsing(tmp_path: Path, registered: None, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.app import cli

    got: dict[str, Any] = {}

    def fake_run(encoders: Any, tasks: Any, out: Any, **kw: Any) -> list[Any]:
        got.update(kw["options"])
        (Path(out) / "results.md").write_text("table")
        return []

    monkeypatch.setattr("embedsuite.evaluation.run_evaluation", fake_run)
    assert cli.main(["evaluate", "--encoders", "fake-a", "--tasks", "toy", "--out",
                     str(tmp_path), "--option", "qa.head=shipped", "--option", "qa.epochs=3",
                     "--option", "qa.langs=en,de"]) == 0
    assert got == {"qa.head": "shipped", "qa.epochs": 3, "qa.langs": ["en", "de"]}
    assert cli.main(["evaluate", "--encoders", "fake-a", "--out", str(tmp_path),
                     "--option", "novalue"]) == 2
    assert "--option expects KEY=VALUE (e.g. qa.head=shipped), got 'novalue'" in (
        capsys.readouterr().err)


def test_harness_unknown_names(tmp_path: Path, registered: None) -> None:
    from embedsuite.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="Unknown task 'tyo'. Did you mean 'toy'"):
        run_evaluation(["fake-a"], ["tyo"], tmp_path)
    with pytest.raises(UnknownNameError, match="Unknown encoder 'fake-c'"):
        run_evaluation(["fake-c"], ["toy"], tmp_path)
    with pytest.raises(ValueError, match="protocol must be 'default' or 'mteb'"):
        run_evaluation(["fake-a"], ["toy"], tmp_path, protocol="x")


def test_task_context_require(tmp_path: Path) -> None:
    ctx = TaskContext(data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="evaluation data .* not found"):
        ctx.require("sst2", "missing.tsv")


def test_make_record_rejects_nan() -> None:
    with pytest.raises(ValueError, match="is not finite"):
        make_record("e", "t", "d", "m", float("nan"), 1)


def test_cli_encode_and_errors(tmp_path: Path, registered: None, capsys) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.app.cli import main

    src = tmp_path / "in.txt"
    src.write_text("first line\n\nsecond line\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    assert main(["encode", "--encoder", "fake-a", "--quiet", str(src), str(out)]) == 0
    arr = np.load(out, allow_pickle=False)
    assert arr.shape == (2, 16) and arr.dtype == np.float32
    assert main(["encode", "--encoder", "fake-x", str(src), str(out)]) == 2
    assert "Unknown encoder 'fake-x'. Did you mean " in capsys.readouterr().err
    assert main(["encode", str(tmp_path / "none.txt"), str(out)]) == 2
    assert "expected a UTF-8 text file" in capsys.readouterr().err
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"\xff\xfe\x00\x81binary")
    assert main(["encode", "--encoder", "fake-a", str(bad), str(out)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_cli_encoders_and_cache(capsys) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.app.cli import main

    assert main(["encoders", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in rows]
    assert names[0] == "e5-small"
    assert {"minilm-l6", "use-m3", "tfidf"} <= set(names)
    assert {r["name"]: r["token_embeddings"] for r in rows}["use-m3"] is False
    assert main(["cache", "info"]) == 0
    assert "entries" in json.loads(capsys.readouterr().out)


def test_cli_evaluate(tmp_path: Path, registered: None, capsys) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.app.cli import main

    assert main(["evaluate", "--encoders", "fake-a", "--tasks", "toy", "--out",
                 str(tmp_path)]) == 0
    assert "| fake-a |" in capsys.readouterr().out


def test_app_builds_with_encoder_tab(tmp_cache) -> None:  # type: ignore[no-untyped-def]
    import gradio as gr

    from embedsuite.app.blocks import build_demo
    from embedsuite.app.tabs.encoder import encoder_info, nearest_summary, similarity, split_lines
    from embedsuite.app.ui import AppContext

    demo = build_demo(ctx=AppContext(encoder_name="e5-small"))
    assert isinstance(demo, gr.Blocks)
    enc = FakeEncoder(cache=tmp_cache)
    _fig, rows = similarity(enc, "red apple\napple red\nblue sky", "query")
    assert len(rows) == 3 and rows[0][1] == pytest.approx(1.0, abs=1e-5)
    assert rows[0][2] > rows[0][3]
    md = nearest_summary([r[0] for r in rows], rows)
    assert "| red apple | apple red |" in md
    assert encoder_info(enc)["name"] == "fake"
    with pytest.raises(ValueError, match="No texts given"):
        split_lines("  \n ")
    with pytest.raises(ValueError, match="the app takes at most 256 at once"):
        split_lines("\n".join(["x"] * 300))


def test_ui_errors_become_gradio_errors() -> None:
    import gradio as gr

    from embedsuite.app.ui import ui_errors

    @ui_errors
    def bad(x: str) -> str:
        raise ValueError(f"bad input {x!r}; type something")

    @ui_errors
    def crash() -> None:
        raise RuntimeError("internal detail")

    with pytest.raises(gr.Error, match="bad input 'q'; type something"):
        bad("q")
    with pytest.raises(gr.Error, match="Something went wrong \\(RuntimeError\\)"):
        crash()


def test_results_png_and_bias_task(tmp_path: Path, registered: None) -> None:
    run_evaluation(["fake-a", "fake-b"], ["toy", "bias"], tmp_path, data_dir=tmp_path,
                   options={"bias_langs": ["en"]})
    png = tmp_path / "results.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recs = json.loads((tmp_path / "results.json").read_text())
    bias = [r for r in recs if r["task"] == "bias" and r["metric"] == "mean_abs_effect_size"]
    assert {r["encoder"] for r in bias} == {"fake-a", "fake-b"}
    assert all(r["value"] >= 0 for r in bias)
    md = (tmp_path / "results.md").read_text()
    assert "lower is better for bias" in md


def test_compare_tab_handlers(tmp_path: Path, registered: None) -> None:
    from embedsuite.app.tabs.compare import live_compare, load_results, result_folders
    from embedsuite.app.ui import AppContext

    run_evaluation(["fake-a"], ["toy"], tmp_path / "run1", data_dir=tmp_path)
    (tmp_path / "parts-only").mkdir()
    assert result_folders(tmp_path) == ["run1"]
    md, png, rows = load_results("run1", tmp_path)
    assert "| fake-a |" in md and png is not None and png.endswith("results.png")
    assert rows[0][:4] == ["fake-a", "toy", "toy", "accuracy"]
    with pytest.raises(FileNotFoundError, match="has no results.json"):
        load_results("parts-only", tmp_path)
    with pytest.raises(FileNotFoundError, match="No results folder 'missing'"):
        load_results("missing", tmp_path)
    ctx = AppContext(encoder_name="fake-a", allowed_encoders=("fake-a", "fake-b"))
    fa, fb = live_compare(ctx, "fake-a", "fake-b", "red apple\napple red\nblue sky", "query")
    assert fa is not None and fb is not None
    with pytest.raises(ValueError, match="Pick two different encoders"):
        live_compare(ctx, "fake-a", "fake-a", "x\ny", "query")
    with pytest.raises(ValueError, match="does not offer the encoder 'use-m3'"):
        live_compare(ctx, "fake-a", "use-m3", "x\ny", "query")


def test_markdown_shows_a_per_encoder_baseline_as_a_range(tmp_path: Path) -> None:
    from embedsuite.evaluation.harness import write_markdown

    task = _CountingTask()
    recs = [make_record("enc-a", "toy", "toy", "accuracy", 0.9, 3),
            make_record("baseline:uses-encoder", "toy", "toy", "accuracy", 0.2, 3),
            make_record("enc-b", "toy", "toy", "accuracy", 0.8, 3),
            make_record("baseline:uses-encoder", "toy", "toy", "accuracy", 0.3, 3)]
    status = [{"encoder": e, "task": "toy", "status": "ok", "seconds": 1.0}
              for e in ("enc-a", "enc-b")]
    write_markdown(tmp_path / "r.md", recs, status, [task])
    md = (tmp_path / "r.md").read_text()
    assert "| baseline:uses-encoder | 0.200-0.300 |" in md
    assert "| enc-a | **0.900** |" in md and "| enc-b | 0.800 |" in md
    assert "A range (lo-hi): a baseline that uses the shared encoder" in md


def test_cli_train_sentiment_calibrates(tmp_path: Path, registered: None, capsys) -> None:  # type: ignore[no-untyped-def]
    from embedsuite.app.cli import main
    from embedsuite.heads import SentimentClassifier

    rows = ["text,label", *(f"good great film {i},positive" for i in range(6)),
            *(f"bad awful film {i},negative" for i in range(6))]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "dev.csv").write_text("text,label\ngreat,positive\nawful,negative\n"
                                      "good dull,negative\nbad lovely,positive\n")
    out = tmp_path / "head"
    assert main(["train-sentiment", str(tmp_path / "train.csv"), str(out), "--encoder",
                 "fake-a", "--quiet", "--calibrate", str(tmp_path / "dev.csv")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["calibration_temperature"] != 1.0
    head = SentimentClassifier.load(out)
    assert head.calibration_temperature_ == pytest.approx(info["calibration_temperature"],
                                                          abs=1e-4)
