"""What every head shares: the estimator contract, the saved-folder format, the registry.

A saved head is a folder holding ``config.json`` (head kind, its parameters,
labels, the encoder's name and fingerprint, a SHA-256 of the weights file) and
``model.safetensors``. Nothing is ever unpickled: loading a folder only parses
JSON and safetensors, and a weights file whose digest does not match the
config is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from embedsuite.atomic import atomic_dir, recover_dir
from embedsuite.encoders.base import Encoder
from embedsuite.errors import EncoderMismatchError, HeadFormatError, NotFittedError
from embedsuite.registry import Registry
from embedsuite.validation import saved_head_errors

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "HEADS",
    "check_encoder_match",
    "check_fitted",
    "load_head",
    "load_head_of_kind",
    "read_head_folder",
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
) -> Path:
    """Save a head atomically as ``config.json`` + ``model.safetensors``.

    Args:
        path: The folder (replaced atomically if it exists).
        kind: The head's registry name.
        config: JSON-ready parameters and fitted metadata (labels, ...).
        tensors: Named arrays (the weights).
        encoder: The encoder the head was trained on (name and fingerprint are recorded).
    """
    from safetensors.numpy import save_file

    target = Path(path)
    with atomic_dir(target) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                  str(tmp / WEIGHTS_NAME), metadata={"format": "np", "head": kind})
        full = {
            "format_version": FORMAT_VERSION,
            "head": kind,
            "encoder": None if encoder is None else {"name": encoder.name,
                                                     "fingerprint": encoder.fingerprint,
                                                     "dim": encoder.dim},
            "weights_sha256": _sha256(tmp / WEIGHTS_NAME),
            **dict(config),
        }
        (tmp / CONFIG_NAME).write_text(json.dumps(full, indent=2, ensure_ascii=False))
    return target


def read_head_folder(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a saved head folder (no code is executed, nothing unpickled).

    Raises:
        HeadFormatError: Missing folder or files, bad JSON, unknown format, or a
            weights file that does not match the digest recorded in ``config.json``.
    """
    from safetensors.numpy import load_file

    folder = recover_dir(path)
    how = "save a head with head.save(folder) and pass that folder"
    if not folder.is_dir():
        raise HeadFormatError(f"{folder} is not a folder; expected a saved head folder ({how})")
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise HeadFormatError(
                f"{folder} has no {p.name}; a saved head holds {CONFIG_NAME} and "
                f"{WEIGHTS_NAME} ({how})"
            )
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HeadFormatError(f"{cfg_path} is not valid JSON ({exc}); re-save the head") from None
    if not isinstance(config, dict) or "head" not in config:
        raise HeadFormatError(f"{cfg_path} has no 'head' entry; it was not written by embedsuite")
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
    return config, tensors


def check_encoder_match(config: Mapping[str, Any], encoder: Encoder | None, where: str) -> None:
    """Refuse a head trained on another encoder than ``encoder``.

    Raises:
        EncoderMismatchError: Names or fingerprints differ.
    """
    saved = config.get("encoder")
    if saved is None or encoder is None:
        return
    if saved.get("fingerprint") != encoder.fingerprint:
        raise EncoderMismatchError(
            f"{where} was trained on encoder {saved.get('name')!r} "
            f"(fingerprint {saved.get('fingerprint')}) but is being loaded beside "
            f"{encoder.name!r} (fingerprint {encoder.fingerprint}); load it with "
            f"get_encoder({saved.get('name')!r}) or re-train it on this encoder"
        )


def load_head_of_kind(cls: Any, path: str | os.PathLike[str], encoder: Encoder | None,
                      kinds: str | tuple[str, ...], what: str) -> Any:
    """Load a saved head that must be one of ``kinds``, beside ``encoder``.

    Args:
        cls: The head class (its ``_load(config, tensors, encoder)`` builds the head).
        path: The saved folder.
        encoder: The shared encoder (default: the one named in the config).
        kinds: The accepted head kind(s).
        what: How messages name the head ("QA head", ...).

    Raises:
        HeadFormatError: Not a saved head, or another kind of head.
        EncoderMismatchError: Trained on another encoder.
    """
    config, tensors = read_head_folder(path)
    accepted = (kinds,) if isinstance(kinds, str) else kinds
    if config.get("head") not in accepted:
        raise HeadFormatError(
            f"{path} holds a {config.get('head')!r} head, not a {what} ({', '.join(accepted)}); "
            f"load it with embedsuite.heads.load_head instead"
        )
    if encoder is None and config.get("encoder"):
        from embedsuite.encoders import get_encoder

        encoder = get_encoder(config["encoder"]["name"])
    check_encoder_match(config, encoder, f"the {what} in {path}")
    with saved_head_errors(path, what):
        return cls._load(config, tensors, encoder)


def load_head(path: str | os.PathLike[str], encoder: Encoder | None = None) -> Any:
    """Load any saved head; its kind is read from ``config.json``.

    Args:
        path: The saved folder.
        encoder: The shared encoder to attach (default: the one named in the config).
    """
    from embedsuite.heads import discover_heads

    config, tensors = read_head_folder(path)
    discover_heads()
    cls = HEADS.get(config["head"])
    if encoder is None and config.get("encoder"):
        from embedsuite.encoders import get_encoder

        encoder = get_encoder(config["encoder"]["name"])
    check_encoder_match(config, encoder, f"the head in {path}")
    with saved_head_errors(path, "head"):
        return cls._load(config, tensors, encoder)
