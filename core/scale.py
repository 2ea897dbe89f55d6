"""Embed a corpus that outgrows one process: Ray Data, idempotent Parquet shards, a manifest.

>>> from embedsuite.scale import embed_corpus
>>> embed_corpus("corpus.parquet", encoder="e5-small", out="emb/", column="text")  # doctest: +SKIP

Design (exactly-once output under retries):

1. The driver plans the work: it reads only the input's metadata (Parquet) and cuts the
   rows into shards of ``shard_rows``; shard ``i`` is rows ``[i * shard_rows,
   (i + 1) * shard_rows)`` and is always written to ``part-{i:06d}.parquet``. CSV and
   JSONL inputs are first streamed once into ``_input.parquet`` in the output folder
   (only the id and text columns), since their rows cannot be located by byte offset.
2. Shards already on disk with the right row range, row count and encoder fingerprint
   (read from the Parquet footer) are skipped: a rerun only does what is missing.
3. The remaining shard specs become a Ray dataset (``ray.data.from_items``) mapped with
   ``map_batches`` by a callable class (:class:`ShardEmbedder`) in an actor pool: each
   actor loads the shared encoder once (``get_encoder(name)``), reads its rows straight
   from the input, embeds them and writes the shard to a temporary file renamed into
   place. Actors are restartable (``max_restarts=-1``) and their calls are retried
   (``max_task_retries``): a killed worker's shard is recomputed and written to the
   same name, so a retry overwrites instead of duplicating, and a half-written file
   never carries a shard's name.
4. The driver then checks every shard (row count, range, fingerprint), hashes it, and
   writes ``manifest.json`` atomically, last. Readers (:mod:`embedsuite.shards`) refuse a
   folder without it.

Ray is optional: ``engine="local"`` runs the same shard loop in this process (and
accepts an encoder object); ``engine="ray"`` imports Ray only when called.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.atomic import atomic_write_bytes, atomic_write_text
from embedsuite.encoders.base import check_role
from embedsuite.shards import (
    FORMAT,
    MANIFEST,
    ShardError,
    shard_info,
    shard_name,
    shard_table_bytes,
)

logger = logging.getLogger(__name__)

__all__ = ["INPUT_FORMATS", "ShardEmbedder", "embed_corpus", "plan_input", "require_ray",
           "resolve_encoder"]

#: Input suffixes and their format.
INPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                 ".ndjson": "jsonl", ".csv": "csv"}
STAGED = "_input.parquet"
JOB = "_job.json"
WORKERS = ".workers"
RAY_HINT = "pip install 'embedsuite[ray]'"


def require_ray() -> Any:
    """Import Ray (with Ray Data) or explain how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError(f"embedding with Ray needs the optional Ray extra: {RAY_HINT} "
                          f"(or use engine='local' to embed in this process)") from None
    return ray


def resolve_encoder(name: str | os.PathLike[str]) -> Any:
    """The encoder for a name: a registered name or model folder (``get_encoder``), or
    ``"package.module:factory"`` for a custom encoder importable on every worker (the
    factory is called without arguments)."""
    key = str(name)
    if ":" in key and not Path(key).exists():
        import importlib

        mod, _, attr = key.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load the encoder factory {key!r} ({exc}); give a "
                             f"registered encoder name or 'package.module:factory'") from None
        return factory()
    from embedsuite.encoders import get_encoder

    return get_encoder(key)


# ---------------------------------------------------------------------------
# the input
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class InputPlan:
    """Where the workers read rows: a Parquet file and its columns."""

    source: str          # the user's input, absolute
    format: str          # parquet | jsonl | csv
    size: int
    mtime: float
    path: str            # Parquet file the workers read (the input or the staged copy)
    text_column: str
    id_column: str | None
    rows: int


def _input_format(path: Path) -> str:
    fmt = INPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown input format {path.suffix!r}; expected one of "
                         f"{sorted(INPUT_FORMATS)} (Parquet, JSON Lines or CSV)")
    return fmt


def _check_columns(found: Sequence[str], column: str, id_column: str | None, path: Path) -> None:
    for what, name in (("text", column), ("id", id_column)):
        if name is not None and name not in found:
            raise ValueError(f"{path} has no {what} column {name!r}; columns found: "
                             f"{list(found)}; pass the right one with "
                             f"--{'column' if what == 'text' else 'id-column'}")


def _stage(src: Path, fmt: str, column: str, id_column: str | None, dest: Path) -> int:
    """Stream a CSV / JSONL input into a Parquet file of (id?, text) columns; row count."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    cols = [column] + ([id_column] if id_column and id_column != column else [])
    if fmt == "csv":
        head = pcsv.open_csv(src)
        _check_columns(head.schema.names, column, id_column, src)
        reader = pcsv.open_csv(src, convert_options=pcsv.ConvertOptions(
            include_columns=cols, column_types=dict.fromkeys(cols, pa.string())))
    else:
        try:
            reader = pjson.open_json(src)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"{src} is not JSON Lines (one JSON object per line): {exc}"
                             ) from None
        _check_columns(reader.schema.names, column, id_column, src)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    n = 0
    schema = pa.schema([(c, pa.string()) for c in cols])
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            for batch in reader:
                arrays = [batch.column(batch.schema.get_field_index(c)) for c in cols]
                arrays = [a if a.type == pa.string() else a.cast(pa.string()) for a in arrays]
                w.write_table(pa.table(dict(zip(cols, arrays, strict=True)), schema=schema))
                n += batch.num_rows
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def plan_input(input: str | os.PathLike[str], out: str | os.PathLike[str], *,
               column: str = "text", id_column: str | None = None) -> InputPlan:
    """Check the input and find (or stage) the Parquet file the workers read.

    Raises:
        FileNotFoundError: No such input.
        ValueError: Unknown suffix, or a missing column (the columns found are listed).
    """
    import pyarrow.parquet as pq

    src = Path(input).resolve()
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found; expected a Parquet, JSONL or CSV file")
    fmt = _input_format(src)
    st = src.stat()
    if fmt == "parquet":
        try:
            pf = pq.ParquetFile(src)
        except Exception as exc:
            raise ValueError(f"{src} is not a readable Parquet file ({exc})") from None
        _check_columns(pf.schema_arrow.names, column, id_column, src)
        return InputPlan(str(src), fmt, st.st_size, st.st_mtime, str(src), column, id_column,
                         int(pf.metadata.num_rows))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    staged, stamp_path = out_dir / STAGED, out_dir / (STAGED + ".json")
    stamp = {"source": str(src), "size": st.st_size, "mtime": st.st_mtime, "column": column,
             "id_column": id_column}
    try:
        old = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        old = None
    if old is not None and staged.is_file() and {k: old.get(k) for k in stamp} == stamp:
        rows = int(old["rows"])
    else:
        logger.info("staging %s (%s) into %s", src, fmt, staged)
        rows = _stage(src, fmt, column, id_column, staged)
        atomic_write_text(stamp_path, json.dumps({**stamp, "rows": rows}))
    return InputPlan(str(src), fmt, st.st_size, st.st_mtime, str(staged), column, id_column,
                     rows)


def read_rows(path: str, start: int, stop: int, text_column: str, id_column: str | None
              ) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` of rows ``[start, stop)`` of a Parquet file (reads only the row
    groups that overlap). Without an id column the id is the row number."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    cols = [text_column] + ([id_column] if id_column and id_column != text_column else [])
    groups, first, pos = [], None, 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if pos + n > start and pos < stop:
            groups.append(g)
            first = pos if first is None else first
        pos += n
    if not groups or first is None:
        return [], []
    t = pf.read_row_groups(groups, columns=cols).slice(start - first, stop - start)
    texts = t.column(text_column).to_pylist()
    for j, x in enumerate(texts):
        if not isinstance(x, str) or not x.strip():
            raise ValueError(f"row {start + j} of {path} has no text in column "
                             f"{text_column!r} (got {x!r}); drop or fill empty rows first")
    if id_column:
        ids = [str(x) for x in t.column(id_column).to_pylist()]
    else:
        ids = [str(i) for i in range(start, start + len(texts))]
    return ids, texts


# ---------------------------------------------------------------------------
# one shard (runs in a Ray actor or in this process)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    out: str
    path: str
    text_column: str
    id_column: str | None
    role: str
    batch_size: int
    use_cache: bool
    keep_text: bool
    fingerprint: str


def _embed_shard(enc: Any, job: _Job, index: int, start: int, stop: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    ids, texts = read_rows(job.path, start, stop, job.text_column, job.id_column)
    if len(ids) != stop - start:
        raise ShardError(f"{job.path} ended at row {start + len(ids)}, expected {stop}; the "
                         f"input changed during the run: rerun embed-corpus")
    vecs = np.asarray(enc.encode(texts, role=job.role, batch_size=job.batch_size,
                                 show_progress=False, use_cache=job.use_cache), np.float32)
    data = shard_table_bytes(ids, vecs, start=start, fingerprint=job.fingerprint,
                             texts=texts if job.keep_text else None)
    # same name for every attempt: a retry overwrites, a crash leaves only a temp file
    atomic_write_bytes(Path(job.out) / shard_name(index), data)
    return {"index": index, "rows": len(ids), "sha256": hashlib.sha256(data).hexdigest(),
            "seconds": time.perf_counter() - t0, "pid": os.getpid()}


class ShardEmbedder:
    """Ray Data callable class: loads the encoder once per actor, embeds shard specs.

    Each input row is one shard spec ``{"index", "start", "stop"}``; each output row
    reports the shard written (``index``, ``rows``, ``sha256``, ``seconds``, ``pid``).
    On start the actor records its process id in ``OUT/.workers/`` (for operators and
    the fault-tolerance test).
    """

    def __init__(self, encoder_name: str, job: dict[str, Any]) -> None:
        self.job = _Job(**job)
        self.encoder = resolve_encoder(encoder_name)
        if self.encoder.fingerprint != self.job.fingerprint:
            raise RuntimeError(
                f"worker on {socket.gethostname()} has encoder {encoder_name!r} with "
                f"fingerprint {self.encoder.fingerprint}, the driver has "
                f"{self.job.fingerprint}; install the same embedsuite and model everywhere")
        wdir = Path(self.job.out) / WORKERS
        wdir.mkdir(parents=True, exist_ok=True)
        (wdir / f"{socket.gethostname()}-{os.getpid()}").write_text(str(os.getpid()))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [_embed_shard(self.encoder, self.job, int(i), int(a), int(b))
                for i, a, b in zip(batch["index"], batch["start"], batch["stop"], strict=True)]
        return {k: np.asarray([r[k] for r in rows]) for k in
                ("index", "rows", "sha256", "seconds", "pid")}


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------
def _job_record(plan: InputPlan, enc_name: str, fingerprint: str, dim: int, role: str,
                shard_rows: int, keep_text: bool) -> dict[str, Any]:
    return {"format": FORMAT, "version": 1, "encoder": enc_name, "fingerprint": fingerprint,
            "dim": dim, "role": role, "shard_rows": shard_rows, "keep_text": keep_text,
            "total_rows": plan.rows,
            "input": {"path": plan.source, "format": plan.format, "size": plan.size,
                      "mtime": plan.mtime, "column": plan.text_column,
                      "id_column": plan.id_column}}


def _check_job(out: Path, record: dict[str, Any], overwrite: bool) -> None:
    path = out / JOB
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    if old is not None and old != record and not overwrite:
        diff = sorted(k for k in record if old.get(k) != record[k])
        raise ShardError(
            f"{out} holds shards of another embed-corpus job (differs in: {', '.join(diff)}); "
            f"use a new --out, or pass overwrite=True / --overwrite to replace them")
    if old is not None and old != record:
        for p in out.glob("part-*.parquet"):
            p.unlink()
        (out / MANIFEST).unlink(missing_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1))


def _finished(out: Path, index: int, start: int, rows: int, fingerprint: str) -> bool:
    info = shard_info(out / shard_name(index))
    return (info is not None and info.get("start") == start and info.get("rows") == rows
            and info.get("fingerprint") == fingerprint)


def _run_local(enc: Any, job: _Job, specs: list[dict[str, int]], show_progress: bool
               ) -> None:
    from tqdm.auto import tqdm

    for s in tqdm(specs, desc="shards", unit="shard", disable=not show_progress):
        _embed_shard(enc, job, s["index"], s["start"], s["stop"])


def _run_ray(enc_name: str, job: _Job, specs: list[dict[str, int]], *, concurrency: int,
             cpus_per_worker: float, ray_address: str | None, num_cpus: int | None,
             max_task_retries: int | None, show_progress: bool) -> None:
    from tqdm.auto import tqdm

    ray = require_ray()
    started = False
    if not ray.is_initialized():
        if ray_address:
            ray.init(address=ray_address, log_to_driver=False)
        else:
            # enough CPUs for every actor: the pool would otherwise wait for them forever
            need = math.ceil(concurrency * cpus_per_worker)
            if num_cpus is not None and num_cpus < need:
                raise ValueError(f"{concurrency} workers of {cpus_per_worker} CPU need "
                                 f"{need} CPUs, num_cpus is {num_cpus}; lower --concurrency "
                                 f"or raise --num-cpus")
            ray.init(num_cpus=num_cpus or max(need, os.cpu_count() or 1),
                     include_dashboard=False, log_to_driver=False)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        # Ray Data's actor pools restart dead actors and retry their calls forever by
        # default (max_restarts=-1, max_task_retries=-1); only a finite retry budget
        # is passed on (as a deprecated free remote arg, hence only when asked for)
        extra: dict[str, Any] = {}
        if max_task_retries is not None:
            extra = {"max_restarts": -1, "max_task_retries": int(max_task_retries)}
        ds = ray.data.from_items(specs, override_num_blocks=len(specs))
        ds = ds.map_batches(
            ShardEmbedder, fn_constructor_kwargs={"encoder_name": enc_name, "job": asdict(job)},
            batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=max(1, min(concurrency, len(specs)))),
            num_cpus=cpus_per_worker, **extra)
        with tqdm(total=len(specs), desc="shards", unit="shard",
                  disable=not show_progress) as bar:
            for _ in ds.iter_rows():
                bar.update(1)
    finally:
        if started:
            ray.shutdown()


def embed_corpus(
    input: str | os.PathLike[str],
    *,
    encoder: Any,
    out: str | os.PathLike[str],
    column: str = "text",
    id_column: str | None = None,
    role: str = "passage",
    batch_size: int = 64,
    concurrency: int = 2,
    shard_rows: int = 10_000,
    ray_address: str | None = None,
    show_progress: bool = False,
    engine: str = "ray",
    num_cpus: int | None = None,
    cpus_per_worker: float = 1.0,
    max_task_retries: int | None = None,
    keep_text: bool = False,
    use_cache: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Embed one text column of a Parquet / JSONL / CSV file into Parquet shards.

    Args:
        input: The corpus (``.parquet``, ``.jsonl``/``.ndjson``, ``.csv``).
        encoder: An encoder name (``e5-small``, a model folder, or
            ``"package.module:factory"``, see :func:`resolve_encoder`); with
            ``engine="local"`` also an encoder object.
        out: The shards folder (on a cluster: a path every node sees).
        column: The text column.
        id_column: A column of row ids (default: the row number).
        role: Encoder role (``"passage"`` for documents, ``"query"`` for queries).
        batch_size: Encoder batch size.
        concurrency: Ray actors (each loads the encoder once).
        shard_rows: Rows per shard (the unit of work, retry and resume).
        ray_address: Join this Ray cluster (``"auto"``, ``"ray://host:10001"``, ...);
            ``None`` starts a local Ray instance for the run.
        show_progress: A progress bar over shards.
        engine: ``"ray"`` or ``"local"`` (this process, no Ray needed).
        num_cpus: CPUs of the local Ray instance (default: all cores).
        cpus_per_worker: CPUs reserved per actor (Ray also sets its thread count).
        max_task_retries: Retries of a shard whose actor died (``None``: Ray Data's
            default, unlimited; dead actors are always restarted).
        keep_text: Also store the texts in the shards (for heads that show them).
        use_cache: Use the encoder's embedding cache (off: the shards are the cache).
        overwrite: Replace shards of a different earlier job in ``out``.

    Returns:
        A summary: ``out``, ``rows``, ``shards``, ``embedded`` (shards done now),
        ``skipped`` (already finished), ``seconds``, ``rows_per_s``, ``manifest``.

    Raises:
        FileNotFoundError, ValueError: Bad input or column (the columns found are listed).
        ImportError: ``engine="ray"`` without Ray installed.
        ShardError: ``out`` holds another job's shards, or a shard is missing at the end.
    """
    t0 = time.perf_counter()
    role = check_role(role)
    if engine not in ("ray", "local"):
        raise ValueError(f"engine must be 'ray' or 'local', got {engine!r}")
    for name, v in (("batch_size", batch_size), ("concurrency", concurrency),
                    ("shard_rows", shard_rows)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if engine == "ray":
        require_ray()
        if not isinstance(encoder, (str, os.PathLike)):
            raise TypeError("with engine='ray' give the encoder by name (each worker loads "
                            "its own copy); encoder objects work with engine='local'")
    enc = resolve_encoder(encoder) if isinstance(encoder, (str, os.PathLike)) else encoder
    enc_name = str(encoder) if isinstance(encoder, (str, os.PathLike)) else enc.name
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_input(input, out_dir, column=column, id_column=id_column)
    if plan.rows == 0:
        raise ValueError(f"{plan.source} has no rows")
    fp = enc.fingerprint
    record = _job_record(plan, enc_name, fp, int(enc.dim), role, shard_rows, keep_text)
    _check_job(out_dir, record, overwrite)
    n_shards = -(-plan.rows // shard_rows)
    bounds = [(i, i * shard_rows, min(plan.rows, (i + 1) * shard_rows)) for i in range(n_shards)]
    todo = [{"index": i, "start": a, "stop": b} for i, a, b in bounds
            if not _finished(out_dir, i, a, b - a, fp)]
    (out_dir / MANIFEST).unlink(missing_ok=True)  # the folder is being changed
    logger.info("%s: %d rows in %d shards, %d to embed (%s)", plan.source, plan.rows,
                n_shards, len(todo), engine)
    job = _Job(str(out_dir), plan.path, plan.text_column, plan.id_column, role, batch_size,
               use_cache, keep_text, fp)
    if todo:
        if engine == "local":
            _run_local(enc, job, todo, show_progress)
        else:
            _run_ray(enc_name, job, todo, concurrency=concurrency,
                     cpus_per_worker=cpus_per_worker, ray_address=ray_address,
                     num_cpus=num_cpus, max_task_retries=max_task_retries,
                     show_progress=show_progress)
    shards = []
    for i, a, b in bounds:
        p = out_dir / shard_name(i)
        if not _finished(out_dir, i, a, b - a, fp):
            raise ShardError(f"shard {p.name} (rows {a}-{b}) is missing or incomplete after "
                             f"the run; rerun embed-corpus with the same --out")
        data = p.read_bytes()
        shards.append({"name": p.name, "index": i, "start": a, "rows": b - a,
                       "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    seconds = time.perf_counter() - t0
    manifest = {**record, "shards": shards, "engine": engine, "seconds": round(seconds, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1))
    for tmp in out_dir.glob(".part-*.tmp"):  # left by killed workers
        tmp.unlink(missing_ok=True)
    embedded = sum(s["stop"] - s["start"] for s in todo)
    return {"out": str(out_dir), "rows": plan.rows, "shards": n_shards, "embedded": len(todo),
            "skipped": n_shards - len(todo), "seconds": round(seconds, 3),
            "rows_per_s": round(embedded / seconds, 1) if embedded else None,
            "manifest": str(out_dir / MANIFEST)}
