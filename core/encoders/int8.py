"""``e5-small-int8``: a fast int8 CPU path for e5-small (OpenVINO or ONNX Runtime).

Built offline, once, from the rebuilt fp32 folder of :mod:`embedsuite.encoders.e5`. Both
backends start from the same ONNX export of the BERT body (``torch.onnx``, eager
attention, every hidden state as an output so token embeddings of any layer stay
available):

* ``openvino`` (the default when OpenVINO is installed): the ONNX graph is converted
  to OpenVINO and quantised **statically** with NNCF (``ModelType.TRANSFORMER``:
  SmoothQuant + fast bias correction), calibrated on the project's own demo texts
  (:func:`calibration_texts`: the demo catalogue, the translation demo sentences in 8
  languages, the inside-the-encoder reference; no evaluation data). Static scales make
  a vector independent of its batch mates. At run time a batch is split over
  parallel infer requests, one CPU stream each.
* ``onnxruntime``: ONNX Runtime's transformer optimiser fuses the graph for BERT, then
  ``quantize_dynamic`` turns the weights into per-channel int8 (activations quantised
  per batch at run time), except the 12 feed-forward output MatMuls, which stay float
  (see :func:`_ffn_output_matmuls`). Needs no calibration data.

Each result lives beside the fp32 folder (``<cache_dir>/models/e5-small-int8-ov`` and
``<cache_dir>/models/e5-small-int8``), built in a temporary sibling and renamed into
place under a file lock, and is checked against the fp32 model before it is installed.
At run time only the backend, ``tokenizers`` and numpy are needed (no torch): the same
``tokenizer.json``, the same ``query: ``/``passage: `` prompts, mean pooling over the
attention mask and L2 normalisation, as in the fp32 path. Measurements behind the
choice of default: ``benchmarks/README.md``.

The runtimes are the optional extra ``fast`` (``pip install embedsuite[fast]``);
without them the encoder says so on first use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.atomic import atomic_dir
from embedsuite.cancel import check_cancelled
from embedsuite.encoders.base import BaseEncoder, Role, TokenEmbeddings, check_role, progress
from embedsuite.encoders.e5 import _CHECK_SENTENCES, PROMPTS, E5SmallEncoder
from embedsuite.encoders.st import SentenceTransformerEncoder
from embedsuite.paths import cache_dir
from embedsuite.validation import as_pair_list, as_text_list

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "INT8_VERSION",
    "OV_VERSION",
    "E5SmallInt8Encoder",
    "MissingRuntimeError",
    "build_int8_folder",
    "build_openvino_folder",
    "calibration_texts",
    "default_backend",
    "import_onnxruntime",
    "import_openvino",
]

#: bump when the recipe changes: the folder is rebuilt and the fingerprint changes
INT8_VERSION = 2
RECIPE = "onnx-opset17+ort-bert-fusion+dynamic-int8-per-channel+ffn-output-fp32"
#: the build fails below this cosine to fp32 on the check sentences
MIN_BUILD_COSINE = 0.98
#: default CPU threads (0 = one per core). On the idle 2-core machine
#: (benchmarks/throughput.py, 10 tokens, batch 32) OpenVINO gave 1,113 sentences/s with 2
#: threads (2 streams) against 563 with 1; ONNX Runtime 351.7 against 198.3
#: (benchmarks/encode.py). ``embedsuite serve`` gives each of its workers an equal share
#: (EMBEDSUITE_THREADS), which overrides it.
DEFAULT_THREADS = 0
_N_LAYERS = 12
_OUTPUTS = [f"hidden_{i}" for i in range(_N_LAYERS + 1)]
#: the int8 backends; ``EMBEDSUITE_INT8_BACKEND`` picks one (default: :func:`default_backend`)
BACKENDS = ("openvino", "onnxruntime")
#: bump when the OpenVINO recipe changes
OV_VERSION = 1
OV_RECIPE = "onnx-opset17+openvino+nncf-static-int8-transformer(smoothquant)+demo-calibration"
#: most parallel infer requests (CPU streams) one batch is split over
MAX_STREAMS = 4


class MissingRuntimeError(ImportError):
    """A package the int8 encoder needs is not installed."""


def import_onnxruntime() -> Any:
    """``import onnxruntime``, or a clear error saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingRuntimeError(
            "the encoder 'e5-small-int8' needs ONNX Runtime, which is not installed "
            f"({exc}); install the extra with `pip install 'embedsuite[fast]'` (or "
            "`pip install onnxruntime onnx`), or use the exact encoder 'e5-small'"
        ) from None
    return onnxruntime


def import_openvino() -> Any:
    """``import openvino``, or a clear error saying how to install it."""
    try:
        import openvino
    except ImportError as exc:
        raise MissingRuntimeError(
            "the encoder 'e5-small-int8' with backend 'openvino' needs OpenVINO, which is not "
            f"installed ({exc}); install the extra with `pip install 'embedsuite[fast]'`, pick "
            "EMBEDSUITE_INT8_BACKEND=onnxruntime, or use the exact encoder 'e5-small'"
        ) from None
    return openvino


def default_backend() -> str:
    """``EMBEDSUITE_INT8_BACKEND`` if set, else ``openvino`` when importable, else
    ``onnxruntime``."""
    env = os.environ.get("EMBEDSUITE_INT8_BACKEND", "").strip()
    if env:
        return env
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "onnxruntime"
    return "openvino"


def calibration_texts() -> list[str]:
    """The project's own texts used to calibrate static int8 scales (no evaluation data).

    The demo catalogue (titles, and title + description), the translation demo sentences
    (8 languages) and the inside-the-encoder reference sentences, in a fixed order.
    """
    import csv

    a = Path(__file__).resolve().parent.parent / "assets"
    texts: list[str] = []
    with open(a / "demo_catalogue.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            texts += [r["title"], f"{r['title']}. {r['description']}"]
    demo = json.loads((a / "translation_demo.json").read_text(encoding="utf-8"))

    def walk(x: object) -> None:
        if isinstance(x, str):
            texts.append(x)
        elif isinstance(x, list):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            for k, y in x.items():
                if k not in ("description", "license", "title", "language_names"):
                    walk(y)

    walk(demo.get("sets", {}))
    ref = (a / "inside_reference.txt").read_text(encoding="utf-8").splitlines()
    texts += [ln.strip() for ln in ref if ln.strip() and not ln.startswith("#")]
    return [t for t in texts if t.strip()]


def _export_onnx(fp32: Path, out: Path) -> None:
    import torch
    from transformers import BertModel

    model = BertModel.from_pretrained(str(fp32), add_pooling_layer=False,
                                      attn_implementation="eager").eval()

    class _AllHidden(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, ...]:
            o = self.m(input_ids=input_ids, attention_mask=attention_mask,
                       output_hidden_states=True, return_dict=True)
            return tuple(o.hidden_states)

    ids = torch.randint(5, 1000, (2, 16))
    axes = {"b": 0, "s": 1}
    dyn = {n: {v: k for k, v in axes.items()} for n in ["input_ids", "attention_mask", *_OUTPUTS]}
    import warnings

    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(_AllHidden(model), (ids, torch.ones_like(ids)), str(out),
                          input_names=["input_ids", "attention_mask"], output_names=_OUTPUTS,
                          dynamic_axes=dyn, opset_version=17, dynamo=False)


def _optimize_and_quantize(src: Path, work: Path, dest: Path, hidden: int, heads: int) -> None:
    import_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    fused = work / "fused.onnx"
    opt = optimizer.optimize_model(str(src), model_type="bert", num_heads=heads,
                                   hidden_size=hidden, opt_level=1)
    logger.info("ONNX Runtime fusion: %s",
                {k: v for k, v in opt.get_fused_operator_statistics().items() if v})
    opt.save_model_to_file(str(fused))
    keep = _ffn_output_matmuls(fused, hidden)
    quantize_dynamic(str(fused), str(dest), per_channel=True, weight_type=QuantType.QInt8,
                     nodes_to_exclude=keep,
                     extra_options={"DefaultTensorType": 1})  # FLOAT for fused ops' outputs


def _ffn_output_matmuls(model_path: Path, hidden: int) -> list[str]:
    """Names of the feed-forward output MatMuls (intermediate -> hidden), kept in float.

    Their inputs (after GELU) have the widest activation range, so dynamic uint8
    activations lose most there. Measured on 500 SST-2 / Tatoeba kor+jpn sentences
    against fp32 (``benchmarks/README.md``): quantising everything gave mean cosine
    0.9963 (min 0.9908); keeping these 12 MatMuls in float gave 0.9988 (min 0.9972)
    for 13 % more time; keeping every FFN MatMul, 0.9995 for 47 % more.
    """
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    shapes = {i.name: tuple(i.dims) for i in m.graph.initializer}
    return [n.name for n in m.graph.node if n.op_type == "MatMul"
            and any(len(shapes.get(x, ())) == 2 and shapes[x][1] == hidden
                    and shapes[x][0] > hidden for x in n.input)]


def _copy_tokenizer_files(fp32: Path, dest: Path) -> None:
    """The tokenizer and config files the int8 folders share with the fp32 folder."""
    for name in ("tokenizer.json", "config.json", "tokenizer_config.json",
                 "special_tokens_map.json", "config_sentence_transformers.json"):
        if (fp32 / name).is_file():
            shutil.copy2(fp32 / name, dest / name)


def build_int8_folder(dest: Path, fp32: Path, *, check: bool = True) -> Path:
    """Build the int8 ONNX folder ``dest`` from the fp32 sentence-transformers folder ``fp32``.

    Raises:
        MissingRuntimeError: ``onnxruntime``/``onnx`` are not installed.
        RuntimeError: The int8 model disagrees with fp32 beyond :data:`MIN_BUILD_COSINE`.
    """
    import_onnxruntime()
    t0 = time.perf_counter()
    cfg = json.loads((fp32 / "config.json").read_text())
    with atomic_dir(dest) as tmp, tempfile.TemporaryDirectory(
        prefix=f".{dest.name}.work.", dir=dest.parent) as work:
        w = Path(work)
        logger.info("building e5-small-int8 from %s into %s", fp32, dest)
        _export_onnx(fp32, w / "model_fp32.onnx")
        _optimize_and_quantize(w / "model_fp32.onnx", w, tmp / "model_int8.onnx",
                               int(cfg["hidden_size"]), int(cfg["num_attention_heads"]))
        _copy_tokenizer_files(fp32, tmp)
        (tmp / "README.md").write_text(
            "# e5-small-int8 (built by embedsuite)\n\n"
            f"From the rebuilt fp32 folder `{fp32}`: {RECIPE}. Mean pooling and L2 "
            "normalisation are applied by the encoder, as in the fp32 path.\n")
        (tmp / "embedsuite_build.json").write_text(json.dumps(
            {"int8_version": INT8_VERSION, "recipe": RECIPE, "fp32": str(fp32),
             "onnxruntime": import_onnxruntime().__version__,
             "build_s": round(time.perf_counter() - t0, 1)}, indent=2))
        if check:
            worst = _compare_with_fp32(tmp, fp32, _CHECK_SENTENCES)
            if worst < MIN_BUILD_COSINE:
                raise RuntimeError(
                    f"the int8 model disagrees with fp32 e5-small (min cosine {worst:.4f} < "
                    f"{MIN_BUILD_COSINE}); this onnxruntime version may quantise differently"
                )
            logger.info("e5-small-int8 vs fp32: min cosine %.4f on the check sentences", worst)
    return dest


def build_openvino_folder(dest: Path, fp32: Path, *, check: bool = True) -> Path:
    """Build the OpenVINO static-int8 folder ``dest`` from the fp32 folder ``fp32``.

    Raises:
        MissingRuntimeError: ``openvino``/``nncf`` are not installed.
        RuntimeError: The int8 model disagrees with fp32 beyond :data:`MIN_BUILD_COSINE`.
    """
    ov = import_openvino()
    try:
        import nncf
    except ImportError as exc:
        raise MissingRuntimeError(
            f"building e5-small-int8 for OpenVINO needs NNCF, which is not installed ({exc}); "
            "install the extra with `pip install 'embedsuite[fast]'`"
        ) from None
    from tokenizers import Tokenizer

    t0 = time.perf_counter()
    with atomic_dir(dest) as tmp, tempfile.TemporaryDirectory(
        prefix=f".{dest.name}.work.", dir=dest.parent) as work:
        w = Path(work)
        logger.info("building e5-small-int8 (OpenVINO) from %s into %s", fp32, dest)
        _export_onnx(fp32, w / "model_fp32.onnx")
        tok = Tokenizer.from_file(str(fp32 / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(512)
        texts = calibration_texts()
        feeds = []
        for i, t in enumerate(texts):  # both prompts, alternating
            ids = np.array([tok.encode(PROMPTS["query" if i % 2 else "passage"] + t).ids],
                           np.int64)
            feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
        model = ov.convert_model(str(w / "model_fp32.onnx"))
        q = nncf.quantize(model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                          subset_size=len(feeds))
        ov.save_model(q, str(tmp / "openvino_int8.xml"))
        _copy_tokenizer_files(fp32, tmp)
        (tmp / "README.md").write_text(
            "# e5-small-int8, OpenVINO (built by embedsuite)\n\n"
            f"From the rebuilt fp32 folder `{fp32}`: {OV_RECIPE}, calibrated on "
            f"{len(texts)} of the project's demo texts. Mean pooling and L2 normalisation "
            "are applied by the encoder, as in the fp32 path.\n")
        (tmp / "embedsuite_build.json").write_text(json.dumps(
            {"ov_version": OV_VERSION, "recipe": OV_RECIPE, "fp32": str(fp32),
             "openvino": ov.get_version(), "nncf": nncf.__version__,
             "calibration_texts": len(texts),
             "build_s": round(time.perf_counter() - t0, 1)}, indent=2))
        if check:
            worst = _compare_with_fp32(tmp, fp32, _CHECK_SENTENCES, backend="openvino")
            if worst < MIN_BUILD_COSINE:
                raise RuntimeError(
                    f"the int8 model disagrees with fp32 e5-small (min cosine {worst:.4f} < "
                    f"{MIN_BUILD_COSINE}); this OpenVINO/NNCF version may quantise "
                    f"differently; try EMBEDSUITE_INT8_BACKEND=onnxruntime"
                )
            logger.info("e5-small-int8 (OpenVINO) vs fp32: min cosine %.4f on the check "
                        "sentences", worst)
    return dest


def _compare_with_fp32(folder: Path, fp32: Path, sentences: list[str],
                       backend: str = "onnxruntime") -> float:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(fp32), device="cpu")
    ref = st.encode([PROMPTS["query"] + s for s in sentences], normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False)
    enc = E5SmallInt8Encoder(folder=folder, fp32=E5SmallEncoder(folder=fp32), backend=backend)
    ours = enc.encode(sentences, role="query", use_cache=False)
    return float(np.min(np.sum(ours * ref, axis=1)))


class E5SmallInt8Encoder(BaseEncoder):
    """e5-small with int8 weights on CPU, through OpenVINO or ONNX Runtime.

    Args:
        folder: The int8 folder (default ``<cache_dir>/models/e5-small-int8-ov`` for
            OpenVINO, ``<cache_dir>/models/e5-small-int8`` for ONNX Runtime), built from
            ``fp32`` on first use.
        fp32: The fp32 encoder it is built from (default: a new ``E5SmallEncoder``).
        threads: CPU threads (``0``: one per core; default from ``EMBEDSUITE_THREADS`` or
            :data:`DEFAULT_THREADS`). OpenVINO runs one stream per thread (at most
            :data:`MAX_STREAMS`) and splits each batch over them.
        backend: ``"openvino"`` or ``"onnxruntime"`` (default: :func:`default_backend`).
        cache: The embedding cache.
    """

    name = "e5-small-int8"
    dim = 384
    max_seq_length = 512
    has_token_embeddings = True
    num_layers = 12  # e5-small's depth (the ONNX graph exposes every hidden state)
    languages = "~100 (XLM-R languages)"
    source = ("e5-small's rebuilt fp32 folder, exported to ONNX and int8-quantised "
              "(OpenVINO static int8, or ONNX Runtime dynamic int8)")

    def __init__(self, folder: str | os.PathLike[str] | None = None, *,
                 fp32: E5SmallEncoder | None = None, threads: int | None = None,
                 backend: str | None = None, cache: Any = None) -> None:
        super().__init__(cache=cache)
        self.backend = backend if backend is not None else default_backend()
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r} "
                             f"(EMBEDSUITE_INT8_BACKEND or the backend argument)")
        sub = "e5-small-int8-ov" if self.backend == "openvino" else "e5-small-int8"
        self.path = Path(folder) if folder else cache_dir() / "models" / sub
        self.fp32 = fp32 if fp32 is not None else E5SmallEncoder(cache=cache)
        env = os.environ.get("EMBEDSUITE_THREADS")
        self.threads = threads if threads is not None else (int(env) if env else DEFAULT_THREADS)
        self.prompts = dict(PROMPTS)
        self._session: Any = None
        self._requests: list[Any] = []
        self._lock = threading.RLock()  # one session and tokenizer set per encoder
        self._tokenizers: dict[str, Any] = {}
        self._fingerprint: str | None = None

    # -- build --------------------------------------------------------------
    @property
    def _model_file(self) -> str:
        return "openvino_int8.xml" if self.backend == "openvino" else "model_int8.onnx"

    @property
    def fingerprint(self) -> str:
        """The fp32 fingerprint plus the int8 recipe (no build needed; differs from fp32's)."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=10)
            if self.backend == "openvino":
                h.update(f"{self.fp32.fingerprint}|ov-int8-v{OV_VERSION}|{OV_RECIPE}".encode())
            else:
                h.update(f"{self.fp32.fingerprint}|int8-v{INT8_VERSION}|{RECIPE}".encode())
            self._fingerprint = f"e5-small-int8:{h.hexdigest()}"
        return self._fingerprint

    def is_built(self) -> bool:
        info = self.path / "embedsuite_build.json"
        if not info.is_file() or not (self.path / self._model_file).is_file():
            return False
        try:
            meta = json.loads(info.read_text())
        except (OSError, ValueError):
            return False
        if self.backend == "openvino":
            return bool(meta.get("ov_version") == OV_VERSION)
        return bool(meta.get("int8_version") == INT8_VERSION)

    def _import_runtime(self) -> Any:
        return import_openvino() if self.backend == "openvino" else import_onnxruntime()

    def build(self) -> None:
        """Build the int8 folder if needed (under a file lock; safe across processes)."""
        if self.is_built():
            return
        self._import_runtime()
        from filelock import FileLock

        fp32_path = self.fp32.path
        self.fp32._build()  # the fp32 folder first (itself locked)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=1800):
            if not self.is_built():
                if self.backend == "openvino":
                    build_openvino_folder(self.path, fp32_path)
                else:
                    build_int8_folder(self.path, fp32_path)

    # -- runtime ------------------------------------------------------------
    @property
    def session(self) -> Any:
        """The ONNX Runtime session or OpenVINO compiled model (built and loaded on first
        access)."""
        with self._lock:
            return self._load_session()

    def _n_threads(self) -> int:
        return int(self.threads) if int(self.threads) > 0 else (os.cpu_count() or 1)

    def _load_session(self) -> Any:
        if self._session is not None:
            return self._session
        rt = self._import_runtime()
        self.build()
        logger.info("loading %s (%s) from %s", self.name, self.backend, self.path)
        if self.backend == "openvino":
            threads = self._n_threads()
            streams = max(1, min(threads, MAX_STREAMS))
            compiled = rt.Core().compile_model(
                str(self.path / self._model_file), "CPU",
                {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": streams,
                 "PERFORMANCE_HINT": "THROUGHPUT"})
            self._requests = [compiled.create_infer_request() for _ in range(streams)]
            self._session = compiled
        else:
            so = rt.SessionOptions()
            so.intra_op_num_threads = int(self.threads)
            so.inter_op_num_threads = 1
            so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = rt.InferenceSession(str(self.path / self._model_file), so,
                                                providers=["CPUExecutionProvider"])
        return self._session

    def _tok(self, kind: str = "plain") -> Any:
        """A ``tokenizers.Tokenizer`` of the fp32 folder: ``"plain"`` (no truncation),
        ``"single"`` (truncated at 512) or ``"pair"`` (only the second text truncated).

        Separate instances, so no call changes another's settings (thread-safe).
        """
        with self._lock:
            return self._load_tok(kind)

    def _load_tok(self, kind: str) -> Any:
        if kind not in self._tokenizers:
            from tokenizers import Tokenizer

            self.build()
            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            tok.no_padding()
            if kind == "plain":
                tok.no_truncation()
            else:
                tok.enable_truncation(self.max_seq_length,
                                      strategy="only_second" if kind == "pair" else "longest_first")
            self._tokenizers[kind] = tok
        return self._tokenizers[kind]

    @property
    def tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` (the fp32 folder's ``tokenizer.json``; no truncation)."""
        return self._tok("plain")

    def _with_prompt(self, texts: list[str], role: Role) -> list[str]:
        prompt = self.prompts.get(role, "")
        return [prompt + t for t in texts]

    def count_tokens(self, texts: Sequence[str], role: Role = "passage") -> list[int]:
        """Token counts (specials and prompt included, no truncation)."""
        encs = self.tokenizer.encode_batch(self._with_prompt(list(texts), role))
        return [len(e.ids) for e in encs]

    def _count_too_long(self, texts: list[str], role: Role) -> list[tuple[int, int]]:
        return [(i, n) for i, n in enumerate(self.count_tokens(texts, role))
                if n > self.max_seq_length]

    def _feed(self, encs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), np.int64)  # pad id 1 is masked out anyway
        mask = np.zeros((len(encs), width), np.int64)
        for r, e in enumerate(encs):
            n = len(e.ids)
            ids[r, :n] = e.ids
            mask[r, :n] = 1
        return ids, mask

    def _run(self, ids: np.ndarray, mask: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        if self.backend != "openvino":
            return list(self.session.run(outputs, {"input_ids": ids, "attention_mask": mask}))
        with self._lock:  # infer requests are not thread-safe
            self._load_session()
            # split the batch row-wise over the streams (at least 4 rows each)
            k = max(1, min(len(self._requests), len(ids) // 4))
            parts = [np.arange(i, len(ids), k) for i in range(k)]
            for req, rows in zip(self._requests, parts, strict=False):
                req.start_async({"input_ids": np.ascontiguousarray(ids[rows]),
                                 "attention_mask": np.ascontiguousarray(mask[rows])})
            outs = [np.empty((len(ids), ids.shape[1], self.dim), np.float32) for _ in outputs]
            for req, rows in zip(self._requests, parts, strict=False):
                req.wait()
                for o, name in zip(outs, outputs, strict=True):
                    o[rows] = req.get_tensor(name).data
            return outs

    def _encode_batch(self, texts: list[str], role: Role) -> np.ndarray:
        encs = self._tok("single").encode_batch(self._with_prompt(texts, role))
        ids, mask = self._feed(encs)
        (hidden,) = self._run(ids, mask, [_OUTPUTS[-1]])
        m = mask[:, :, None].astype(np.float32)
        return np.asarray((hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9),
                          dtype=np.float32)

    # -- token embeddings ---------------------------------------------------
    def token_offsets(self, text: str, role: Role = "passage") -> np.ndarray:
        """Character offsets ``(n, 2)`` of ``text``'s tokens (no truncation, prompt excluded)."""
        prompt = self.prompts.get(role, "")
        enc = self.tokenizer.encode(prompt + text, add_special_tokens=False)
        spans = [SentenceTransformerEncoder._clip(text, s, e, len(prompt)) for s, e in enc.offsets]
        return np.array([sp for sp in spans if sp is not None], dtype=np.int64).reshape(-1, 2)

    def encode_tokens(
        self,
        texts: str | Sequence[str],
        role: Role = "passage",
        *,
        pair: str | Sequence[str] | None = None,
        pair_role: Role = "query",
        layers: Sequence[int] | None = None,
        batch_size: int = 16,
        show_progress: bool | None = None,
    ) -> TokenEmbeddings | list[TokenEmbeddings]:
        """Token vectors with offsets into the original strings (as ``e5-small``'s).

        ``layers`` are hidden-state indices (0 = embeddings, -1 = last); see
        :meth:`embedsuite.encoders.st.SentenceTransformerEncoder.encode_tokens`.
        """
        role, pair_role = check_role(role), check_role(pair_role)
        items, single = as_text_list(texts)
        pairs = None if pair is None else as_pair_list(pair, len(items))
        layer_ids = list(layers) if layers is not None else [-1]
        for li in layer_ids:
            if not -len(_OUTPUTS) <= li < len(_OUTPUTS):
                raise ValueError(f"layer {li} out of range: e5-small has hidden states "
                                 f"0..{_N_LAYERS} (or -1 for the last)")
        names = [_OUTPUTS[li] for li in layer_ids]
        prompt = self.prompts.get(role, "")
        pprompt = self.prompts.get(pair_role, "")
        results: list[TokenEmbeddings] = []
        n_trunc = 0
        with progress(len(items), f"tokens {self.name}", show_progress, threshold=64) as bar:
            for s in range(0, len(items), batch_size):
                check_cancelled()  # a timed-out request stops here, within one batch
                batch = items[s : s + batch_size]
                full = [prompt + t for t in batch]
                if pairs is not None:
                    encs = self._tok("pair").encode_batch(
                        [(pprompt + p, f) for p, f in zip(pairs[s : s + batch_size], full,
                                                          strict=True)])
                    text_seq = 1
                else:
                    encs = self._tok("single").encode_batch(full)
                    text_seq = 0
                ids, mask = self._feed(encs)
                # static int8 (OpenVINO) gives batch-independent numbers, so the token pass
                # can give the exact sentence vector too; dynamic int8 (ONNX Runtime) scales
                # per batch, so there the sentence vector stays encode()'s
                pools = pairs is None and self.backend == "openvino"
                wanted = sorted(set(names) | ({_OUTPUTS[-1]} if pools else set()))
                by_name = dict(zip(wanted, self._run(ids, mask, wanted), strict=True))
                sel = np.concatenate([by_name[n] for n in names], axis=-1).astype(np.float32)
                sent = None
                if pools:  # the sentence vector of _encode_batch, from this very pass
                    m = mask[:, :, None].astype(np.float32)
                    pooled = (by_name[_OUTPUTS[-1]] * m).sum(axis=1) / np.maximum(
                        m.sum(axis=1), 1e-9)
                    sent = (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True),
                                                1e-12)).astype(np.float32)
                for r, text in enumerate(batch):
                    e = encs[r]
                    keep, spans, toks, pkeep, truncated = SentenceTransformerEncoder._split_row(
                        text, e.sequence_ids, e.offsets, e.tokens, text_seq, len(prompt),
                        int(mask[r].sum()) >= self.max_seq_length)
                    n_trunc += truncated
                    results.append(TokenEmbeddings(
                        text=text,
                        vectors=np.ascontiguousarray(sel[r, keep], dtype=np.float32),
                        offsets=np.array(spans, dtype=np.int64).reshape(-1, 2),
                        tokens=toks,
                        pair_vectors=(np.ascontiguousarray(sel[r, pkeep], dtype=np.float32)
                                      if pairs is not None else None),
                        truncated=bool(truncated),
                        sentence=None if sent is None else sent[r].copy(),
                    ))
                bar.update(len(batch))
        if n_trunc:
            logger.warning("%d of %d texts were cut at %s's limit of %d tokens",
                           n_trunc, len(items), self.name, self.max_seq_length)
        return results[0] if single else results
