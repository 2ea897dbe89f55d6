"""The distribution: import name ``embedsuite``, light core imports, and the built wheel.

The wheel test builds the wheel, installs it (with the ``[app]`` extra) into a fresh virtual
environment outside the repository beside a throwaway distribution that owns a top-level
``core`` package, and uses it from a directory that holds yet another ``core/`` (a Django
project's layout): both imports, ``embedsuite --help``, ``embedsuite sentiment``, the shipped
QA head, and ``embedsuite serve`` answering HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: repository folder -> import name (pyproject's package-dir)
MAPPED = {"core": "embedsuite", "apps": "embedsuite.app"}
#: pandas is left out: scikit-learn imports it when it is installed (the [app] extra brings it)
HEAVY = ("gradio", "matplotlib", "ray", "faiss", "openvino", "onnxruntime")


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {done.returncode}\n"
                             f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
    return done  # type: ignore[no-any-return]


# -- the namespace in this checkout ----------------------------------------------------------
def test_pyproject_lists_every_package_folder() -> None:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert cfg["package-dir"] == {v: k for k, v in MAPPED.items()}
    found = set()
    for folder, name in MAPPED.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *rel)))
    assert sorted(cfg["packages"]) == sorted(found)


def test_no_import_of_core_or_apps_is_left() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(core|apps)(\.|\s|$)", re.MULTILINE)
    offenders = []
    for folder in ("core", "apps", "tests", "demos", "benchmarks", "scripts"):
        for f in (REPO / folder).rglob("*.py"):
            for m in pattern.finditer(f.read_text(encoding="utf-8")):
                offenders.append(f"{f.relative_to(REPO)}: {m.group(0).strip()}")
    assert not offenders, "imports of the repository folders instead of embedsuite:\n" + \
        "\n".join(offenders)


def test_importing_the_heads_loads_no_ui_plot_or_cluster_stack(tmp_path: Path) -> None:
    code = ("import sys, embedsuite.heads, embedsuite.encoders\n"
            "from embedsuite.heads import SentimentClassifier, ExtractiveQA, "
            "TranslationRetriever, ContentRecommender\n"
            "from embedsuite.heads.sentiment import load_default\n"
            "from embedsuite.encoders import get_encoder\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    done = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert json.loads(done.stdout.strip().replace("'", '"')) == []


def test_a_local_core_package_does_not_shadow_embedsuite(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("OWNER = 'the product'\n")
    code = ("import core, embedsuite.heads, embedsuite.app\n"
            "print(core.OWNER, embedsuite.heads.__name__, hasattr(embedsuite.app, 'build_demo'))")
    done = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert done.stdout.split() == ["the", "product", "embedsuite.heads", "True"]


def test_missing_data_dir_outside_a_checkout_is_explained(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from embedsuite import paths

    monkeypatch.delenv("EMBEDSUITE_DATA", raising=False)
    monkeypatch.setattr(paths, "in_checkout", lambda: False)
    with pytest.raises(paths.DataDirError, match="--data-dir DIR or set EMBEDSUITE_DATA"):
        paths.data_dir()
    assert paths.data_dir("/x/y") == Path("/x/y")
    monkeypatch.setenv("EMBEDSUITE_DATA", "/from/env")
    assert paths.data_dir() == Path("/from/env")


# -- the wheel ----------------------------------------------------------------------------------
def _throwaway_core_wheel(folder: Path) -> Path:
    """A minimal wheel of a distribution ``core-thing`` that installs top-level ``core``."""
    files = {
        "core/__init__.py": b"OWNER = 'core-thing'\n",
        "core_thing-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: core-thing\n"
                                             b"Version: 1.0\n",
        "core_thing-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: embedsuite-tests\n"
                                          b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        "core_thing-1.0.dist-info/top_level.txt": b"core\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("core_thing-1.0.dist-info/RECORD,,")
    path = folder / "core_thing-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("core_thing-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.browser  # starts the app (`embedsuite serve`)
def test_wheel_installs_beside_a_core_package_and_works(e5, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e5.model  # noqa: B018  (the child processes reuse this session's built model cache)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)])
    (wheel,) = dist.glob("embedsuite-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"embedsuite", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    for asset in ("embedsuite/assets/sentiment-default/model.safetensors",
                  "embedsuite/assets/qa-default/config.json",
                  "embedsuite/assets/demo_catalogue.csv", "embedsuite/py.typed",
                  "embedsuite/app/cli.py", "embedsuite/app/tabs/qa.py"):
        assert asset in names, asset
    assert not any("__pycache__" in n for n in names)
    sys.stderr.write(f"\nwheel {wheel.name}: {wheel.stat().st_size / 1e6:.2f} MB\n")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py, bin_ = venv / "bin" / "python", venv / "bin"
    constraints = REPO / "scripts" / "constraints.txt"
    _run([str(py), "-m", "pip", "install", "-q", _throwaway_core_wheel(tmp_path).as_posix()])
    _run([str(py), "-m", "pip", "install", "-q", "-c", str(constraints), "torch"])
    _run([str(py), "-m", "pip", "install", "-q", "-c", str(constraints), f"{wheel}[app]"])

    product = tmp_path / "product"  # a cwd with its own top-level core/ (Django's layout)
    (product / "core").mkdir(parents=True)
    (product / "core" / "__init__.py").write_text("OWNER = 'the product'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{bin_}{os.pathsep}{env.get('PATH', '')}", GRADIO_ANALYTICS_ENABLED="False",
               EMBEDSUITE_CACHE=os.environ["EMBEDSUITE_CACHE"], EMBEDSUITE_PROGRESS="0")
    env.pop("EMBEDSUITE_DATA", None)

    def run(*cmd: str, cwd: Path = product) -> str:
        return _run(list(cmd), cwd=cwd, env=env, timeout=600).stdout

    # the installed core-thing is intact beside embedsuite; the product's own core wins in its cwd
    out = run(str(py), "-c", "import core, embedsuite, embedsuite.heads, embedsuite.app.cli; "
              "from embedsuite.heads import SentimentClassifier; "
              "from embedsuite.encoders import get_encoder; "
              "print(core.OWNER, '|', embedsuite.__file__)")
    owner, where = (s.strip() for s in out.split("|"))
    assert owner == "the product"
    assert Path(where).is_relative_to(venv), where
    out = run(str(py), "-c", "import core; print(core.OWNER)", cwd=tmp_path)
    assert out.strip() == "core-thing"
    assert "apps" not in run(str(py), "-c", "import importlib.util as u; "
                             "print('apps' if u.find_spec('apps') else '-')")

    assert "train-qa" in run(str(bin_ / "embedsuite"), "--help")
    row = json.loads(run(str(bin_ / "embedsuite"), "sentiment",
                         "A warm, funny and beautifully acted film.").splitlines()[0])
    assert row["label"] == "positive", row
    out = run(str(py), "-c", "import json; from embedsuite.heads import ExtractiveQA; "
              "r = ExtractiveQA.load_default().answer('When was the mill built?', "
              "'The Old Mill was built in 1921 by the Weber family. It still grinds flour.'); "
              "print(json.dumps(r))")
    assert "1921" in json.loads(out)["answer"]

    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(bin_ / "embedsuite"), "serve", "--port", str(port)],
                            cwd=product, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + 240, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    body = r.read().decode("utf-8", "replace")
                    break
            except OSError:
                time.sleep(1)
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        assert "gradio" in body.lower(), (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
