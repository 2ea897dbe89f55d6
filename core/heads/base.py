"""What every head shares: :class:`BaseHead`, the saved-folder format, the registry.

A saved head is a folder holding ``config.json`` (head kind, ``head_version``, its
parameters, labels, the encoder's name and fingerprint, a SHA-256 of every data file),
``model.safetensors`` and, for large state (candidate texts, item ids), sidecar ``.npy``
files. Nothing is ever unpickled: loading a folder only parses JSON, safetensors and
``.npy`` without pickle, and a file whose digest does not match the config is refused.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import itertools
import json
import logging
import os
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from embedsuite.atomic import atomic_dir, recover_dir
from embedsuite.encoders.base import Encoder
from embedsuite.errors import EncoderMismatchError, HeadFormatError, NotFittedError
from embedsuite.registry import Registry, did_you_mean
from embedsuite.validation import saved_head_errors

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "HEADS",
    "BaseHead",
    "check_encoder_match",
    "check_fitted",
    "discover_heads",
    "load_head",
    "load_head_of_kind",
    "pack_strings",
    "read_head_folder",
    "read_sidecars",
    "unpack_strings",
    "write_head_folder",
]

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

#: head kind -> class; a class registers itself with ``@HEADS.register("kind")``
#: and implements ``_load(config, tensors, encoder)`` as a classmethod.
HEADS: Registry[Any] = Registry("head")


def check_fitted(estimator: object, attributes: str | list[str]) -> None:
    """Raise :class:`NotFittedError` unless every fitted attribute is set (sklearn style)."""
    names = [attributes] if isinstance(attributes, str) else attributes
    if any(getattr(estimator, a, None) is None for a in names):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            f"appropriate arguments (or load a saved head) before using this estimator."
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_head_folder(
    path: str | os.PathLike[str],
    kind: str,
    config: Mapping[str, Any],
    tensors: Mapping[str, np.ndarray],
    encoder: Encoder | None,
    sidecars: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Save a head atomically as ``config.json`` + ``model.safetensors`` (+ sidecars).

    Args:
        path: The folder (replaced atomically if it exists).
        kind: The head's registry name.
        config: JSON-ready parameters and fitted metadata (labels, ...).
        tensors: Named arrays (the weights).
        encoder: The encoder the head was trained on (name and fingerprint are recorded).
        sidecars: Large arrays (packed texts, ids) saved as ``<name>.npy`` beside the
            weights, each with its digest in ``config.json``; see :func:`read_sidecars`.
    """
    from safetensors.numpy import save_file

    target = Path(path)
    with atomic_dir(target) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                  str(tmp / WEIGHTS_NAME), metadata={"format": "np", "head": kind})
        digests = {}
        for name, arr in (sidecars or {}).items():
            if not name.isidentifier():
                raise ValueError(f"sidecar names must be identifiers, got {name!r}")
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            digests[name] = _sha256(tmp / f"{name}.npy")
        full = {
            "format_version": FORMAT_VERSION,
            "head": kind,
            "encoder": None if encoder is None else {"name": encoder.name,
                                                     "fingerprint": encoder.fingerprint,
                                                     "dim": encoder.dim},
            "weights_sha256": _sha256(tmp / WEIGHTS_NAME),
            **({"sidecars": digests} if digests else {}),
            **dict(config),
        }
        (tmp / CONFIG_NAME).write_text(json.dumps(full, indent=2, ensure_ascii=False))
    return target


def read_sidecars(path: str | os.PathLike[str], config: Mapping[str, Any], *,
                  mmap: bool = True) -> dict[str, np.ndarray]:
    """The sidecar arrays named in ``config["sidecars"]``, digest-checked, memory-mapped.

    Raises:
        HeadFormatError: A sidecar is missing, damaged, or holds pickled objects.
    """
    folder = Path(path)
    out: dict[str, np.ndarray] = {}
    for name, digest in dict(config.get("sidecars") or {}).items():
        f = folder / f"{name}.npy"
        if not f.is_file():
            raise HeadFormatError(f"{folder} has no {f.name}, which its {CONFIG_NAME} lists; "
                                  f"restore the folder or re-save the head")
        if _sha256(f) != digest:
            raise HeadFormatError(f"{f} does not match the digest in {CONFIG_NAME}: the file "
                                  f"was changed or damaged; re-save or restore the head")
        try:
            out[name] = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise HeadFormatError(f"{f} is not a plain .npy array ({exc})") from None
    return out


def pack_strings(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Strings as two arrays, UTF-8 bytes and ``n + 1`` offsets (no pickle, any size)."""
    data = [t.encode("utf-8", "surrogatepass") for t in texts]
    offsets = np.zeros(len(data) + 1, np.int64)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    return {"bytes": np.frombuffer(b"".join(data), np.uint8), "offsets": offsets}


def unpack_strings(blob: np.ndarray, offsets: np.ndarray) -> list[str]:
    """The strings packed by :func:`pack_strings`.

    Raises:
        HeadFormatError: Offsets that do not fit the bytes.
    """
    off = np.asarray(offsets, np.int64)
    raw = bytes(np.asarray(blob, np.uint8))
    if off.ndim != 1 or len(off) == 0 or off[0] != 0 or off[-1] != len(raw) or \
            np.any(np.diff(off) < 0):
        raise HeadFormatError("packed strings: the offsets do not fit the bytes; the sidecar "
                              "files were edited or damaged, re-save the head")
    bounds = off.tolist()
    return [raw[a:b].decode("utf-8", "surrogatepass") for a, b in itertools.pairwise(bounds)]


def read_head_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the ``config.json`` of a saved head (its kind, parameters), weights unread.

    Raises:
        HeadFormatError: No folder, no readable ``config.json``, or no ``head`` entry.
    """
    folder = recover_dir(path)
    how = "save a head with head.save(folder) and pass that folder"
    if not folder.is_dir():
        raise HeadFormatError(f"{folder} is not a folder; expected a saved head folder ({how})")
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise HeadFormatError(f"{folder} has no {CONFIG_NAME}; a saved head holds "
                              f"{CONFIG_NAME} and {WEIGHTS_NAME} ({how})")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HeadFormatError(f"{cfg_path} is not valid JSON ({exc}); re-save the head") from None
    if not isinstance(config, dict) or "head" not in config:
        raise HeadFormatError(f"{cfg_path} has no 'head' entry; it was not written by embedsuite")
    return config


def read_head_folder(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a saved head folder (no code is executed, nothing unpickled).

    Raises:
        HeadFormatError: Missing folder or files, bad JSON, unknown format, or a
            weights file that does not match the digest recorded in ``config.json``.
    """
    config = read_head_config(path)
    return config, _read_weights(path, config)


def _read_weights(path: str | os.PathLike[str], config: Mapping[str, Any]
                  ) -> dict[str, np.ndarray]:
    """The verified weights of a head folder whose ``config.json`` was read already."""
    from safetensors.numpy import load_file

    folder = recover_dir(path)
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not w_path.is_file():
        raise HeadFormatError(
            f"{folder} has no {WEIGHTS_NAME}; a saved head holds {CONFIG_NAME} and "
            f"{WEIGHTS_NAME} (save a head with head.save(folder) and pass that folder)")
    if config.get("format_version") != FORMAT_VERSION:
        raise HeadFormatError(
            f"{cfg_path} has format_version {config.get('format_version')!r}, expected "
            f"{FORMAT_VERSION}; re-save the head with this version of embedsuite"
        )
    digest = _sha256(w_path)
    if digest != config.get("weights_sha256"):
        raise HeadFormatError(
            f"{w_path} does not match the digest in {CONFIG_NAME} (expected "
            f"{str(config.get('weights_sha256'))[:12]}..., got {digest[:12]}...): the weights "
            f"were changed or damaged; re-train or restore the head"
        )
    try:
        tensors = load_file(str(w_path))
    except Exception as exc:
        raise HeadFormatError(f"{w_path} is not a valid safetensors file ({exc})") from None
    return tensors


def check_encoder_match(config: Mapping[str, Any], encoder: Encoder | None, where: str) -> None:
    """Refuse a head trained on an encoder whose vectors ``encoder`` does not give.

    The same fingerprint passes. Another member of the same encoder family
    (:mod:`embedsuite.encoders.families`, e.g. ``e5-small`` and ``e5-small-int8``) passes
    too, with its measured quality cost logged. Anything else is refused.

    Raises:
        EncoderMismatchError: Another model, or another build of the same one.
    """
    from embedsuite.encoders.families import pairing_cost

    saved = config.get("encoder")
    if saved is None or encoder is None:
        return
    if saved.get("fingerprint") == encoder.fingerprint:
        return
    name = str(saved.get("name"))
    if saved.get("dim") in (None, encoder.dim) and name != encoder.name:
        cost = pairing_cost(name, encoder.name)
        if cost is not None:
            logger.info("%s was trained on %r and reads %r, a member of the same encoder "
                        "family; quality cost %s", where, name, encoder.name, cost)
            return
    if name == encoder.name:
        raise EncoderMismatchError(
            f"{where} was trained on encoder {name!r}, but on another build of it (its weights "
            f"changed since), so its numbers would not fit. Re-train the head on this build, "
            f"or use the encoder build it was trained on "
            f"(fingerprint {saved.get('fingerprint')}, this one {encoder.fingerprint})")
    raise EncoderMismatchError(
        f"{where} was trained on encoder {name!r}, which is another model than {encoder.name!r}: "
        f"a head can only read the vectors of the encoder it was trained on (or of its family, "
        f"such as e5-small and e5-small-int8). Load it beside {name!r} "
        f"(get_encoder({name!r}), or --encoder {name}), or train a new head on {encoder.name!r}")


def discover_heads() -> list[str]:
    """Import every module of ``embedsuite.heads`` so that all head kinds are registered."""
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"embedsuite.heads.{mod.name}")
    return HEADS.names()


def _open(path: str | os.PathLike[str], config: dict[str, Any], encoder: Encoder | None,
          where: str) -> tuple[dict[str, np.ndarray], Encoder | None]:
    """The verified weights of a folder whose config was read, and the encoder to use."""
    tensors = _read_weights(path, config)
    if encoder is None and config.get("encoder"):
        from embedsuite.encoders import get_encoder

        encoder = get_encoder(config["encoder"]["name"])
    check_encoder_match(config, encoder, where)
    return tensors, encoder


def load_head_of_kind(cls: Any, path: str | os.PathLike[str], encoder: Encoder | None,
                      kinds: str | tuple[str, ...], what: str) -> Any:
    """Load a saved head that must be one of ``kinds``, beside ``encoder``.

    Args:
        cls: The head class (its ``_load(config, tensors, encoder, folder=...)`` builds it).
        path: The saved folder.
        encoder: The shared encoder (default: the one named in the config).
        kinds: The accepted head kind(s).
        what: How messages name the head ("QA head", ...).

    Raises:
        HeadFormatError: Not a saved head, or another kind of head.
        EncoderMismatchError: Trained on another encoder.
    """
    config = read_head_config(path)
    accepted = (kinds,) if isinstance(kinds, str) else kinds
    if config.get("head") not in accepted:
        raise HeadFormatError(
            f"{path} holds a {config.get('head')!r} head, not a {what} ({', '.join(accepted)}); "
            f"load it with embedsuite.heads.load_head instead"
        )
    tensors, encoder = _open(path, config, encoder, f"the {what} in {path}")
    with saved_head_errors(path, what):
        return cls._load(config, tensors, encoder, folder=Path(path))


def load_head(path: str | os.PathLike[str], encoder: Encoder | None = None) -> Any:
    """Load any saved head; its kind is read from ``config.json``.

    Args:
        path: The saved folder.
        encoder: The shared encoder to attach (default: the one named in the config).
    """
    config = read_head_config(path)
    discover_heads()
    cls = HEADS.get(config["head"])
    tensors, encoder = _open(path, config, encoder, f"the head in {path}")
    with saved_head_errors(path, "head"):
        return cls._load(config, tensors, encoder, folder=Path(path))


H = TypeVar("H", bound="BaseHead")


class BaseHead:
    """The estimator contract every head shares (scikit-learn's ``BaseEstimator`` rules).

    - ``__init__`` only stores its arguments; :meth:`get_params` reads them from the
      signature, :meth:`set_params` checks them, :func:`sklearn.base.clone` gives an
      unfitted copy that shares the encoder (:meth:`__sklearn_clone__`).
    - The encoder is resolved (the given one, else the default) into a private attribute
      at fit or load time; :attr:`active_encoder` is the one in use.
    - Fitted state (attributes ending in ``_``, listed in ``_fitted``) exists only after
      ``fit`` or ``load``; :meth:`__sklearn_is_fitted__` answers ``check_is_fitted``.
    - One save/load template: :meth:`save` writes ``config.json`` (``head_version`` and
      ``params`` plus :meth:`_state`'s config), ``model.safetensors`` and sidecars;
      :meth:`load` reads them, runs ``_migrations`` up to ``head_version``, builds the
      head from ``params`` and hands the rest to :meth:`_restore`.

    Subclasses set ``kinds`` (registry names; the first is the default kind), ``what``
    (how messages name it), ``_fitted``, ``head_version`` and, for older formats,
    ``_migrations`` (version ``n`` -> a function turning an ``n`` config into ``n + 1``).
    """

    kinds: ClassVar[tuple[str, ...]] = ()
    what: ClassVar[str] = "head"
    head_version: ClassVar[int] = 1
    _fitted: ClassVar[tuple[str, ...]] = ()
    #: constructor arguments that are run-time choices, not part of a saved head
    _runtime_params: ClassVar[tuple[str, ...]] = ("encoder",)
    _migrations: ClassVar[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {}

    encoder: Encoder | None

    # -- parameters ------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [n for n, p in sig.parameters.items() if n != "self"
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (the encoder is shared, never copied: ``deep`` has no
        nested estimators to descend into)."""
        return {n: getattr(self, n) for n in self._param_names()}

    def set_params(self: H, **params: Any) -> H:
        """Set constructor arguments; unknown names raise with the close matches."""
        valid = self._param_names()
        for k in params:
            if k not in valid:
                hint = did_you_mean(k, valid, n=2, cutoff=0.6)
                raise ValueError(f"unknown parameter {k!r} for {type(self).__name__}.{hint} "
                                 f"Valid parameters: {', '.join(sorted(valid))}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __sklearn_clone__(self: H) -> H:
        """An unfitted copy with the same parameters, sharing the same encoder object."""
        return type(self)(**self.get_params())

    def __sklearn_is_fitted__(self) -> bool:
        return all(getattr(self, a, None) is not None for a in self._fitted)

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (``check_is_fitted`` reads them): text in, needs fit."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    input_tags=InputTags(two_d_array=False, string=True), requires_fit=True)

    def __repr__(self) -> str:
        defaults = {n: p.default for n, p in inspect.signature(type(self).__init__)
                    .parameters.items()}
        shown = []
        for k, v in self.get_params().items():
            if k == "encoder":
                if v is not None:
                    shown.append(f"encoder={getattr(v, 'name', type(v).__name__)!r}")
                continue
            try:
                same = bool(v == defaults.get(k))
            except Exception:  # arrays and other ambiguous comparisons
                same = False
            if not same:
                shown.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # -- encoder -----------------------------------------------------------------------------
    def _resolve_encoder(self) -> Encoder:
        """Fix the encoder for this fit (the given one, else the default) and return it."""
        enc = self.encoder
        if enc is None:
            from embedsuite.encoders import DEFAULT_ENCODER, get_encoder

            enc = get_encoder(DEFAULT_ENCODER)
        self._encoder = enc
        return enc

    @property
    def active_encoder(self) -> Encoder:
        """The encoder in use: the one fixed at fit/load time, else the given or default one."""
        enc = getattr(self, "_encoder", None)
        if enc is not None and (self.encoder is None or self.encoder is enc):
            return enc
        return self._resolve_encoder()

    def _check_fitted(self) -> None:
        check_fitted(self, list(self._fitted))

    @property
    def head_kind(self) -> str:
        """The registry name written to ``config.json``."""
        return self.kinds[0]

    # -- persistence -------------------------------------------------------------------------
    def _saved_params(self) -> dict[str, Any]:
        """The parameters a saved head records (run-time ones such as the encoder left out)."""
        out = {k: v for k, v in self.get_params().items() if k not in self._runtime_params}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The fitted state: (JSON-ready config entries, weight tensors, sidecar arrays)."""
        raise NotImplementedError

    def _restore(self, config: dict[str, Any], tensors: dict[str, np.ndarray],
                 sidecars: dict[str, np.ndarray]) -> None:
        """Set the fitted attributes from what :meth:`_state` saved."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save as a folder: ``config.json`` + ``model.safetensors`` (+ ``.npy`` sidecars),
        written atomically; returns the folder."""
        self._check_fitted()
        config, tensors, sidecars = self._state()
        full = {"head_version": self.head_version, "params": self._saved_params(), **config}
        return write_head_folder(path, self.head_kind, full, tensors, self.active_encoder,
                                 sidecars)

    @classmethod
    def _migrate(cls, config: dict[str, Any], where: str) -> dict[str, Any]:
        version = int(config.get("head_version", 1))
        if version > cls.head_version:
            raise HeadFormatError(
                f"{where} was saved by a newer embedsuite (head_version {version}; this one "
                f"reads up to {cls.head_version}); upgrade embedsuite to load it")
        while version < cls.head_version:
            step = cls._migrations.get(version)
            if step is None:
                raise HeadFormatError(f"{where}: no migration from head_version {version}; "
                                      f"re-train the head")
            config = step(dict(config))
            version += 1
            config["head_version"] = version
        return config

    @classmethod
    def _load(cls: type[H], config: dict[str, Any], tensors: dict[str, np.ndarray],
              encoder: Encoder | None, *, folder: Path | None = None) -> H:
        config = cls._migrate(config, f"the {cls.what} in {folder}")
        params = dict(config["params"])
        if "layers" in params and params["layers"] is not None:
            params["layers"] = tuple(params["layers"])
        head = cls(encoder, **params)  # type: ignore[call-arg]
        head._resolve_encoder()
        sidecars = read_sidecars(folder, config) if folder is not None else {}
        head._restore(config, tensors, sidecars)
        return head

    @classmethod
    def load(cls: type[H], path: str | os.PathLike[str], encoder: Encoder | None = None) -> H:
        """Load a saved head beside ``encoder`` (default: the encoder named in the folder).

        Raises:
            HeadFormatError: Not a saved head of this class, or a damaged one.
            EncoderMismatchError: Trained on another encoder.
        """
        return load_head_of_kind(cls, path, encoder, cls.kinds, cls.what)
