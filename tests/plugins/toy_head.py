"""A toy fifth head: nearest class centroid of the shared encoder's sentence vectors.

Everything a new head needs: subclass :class:`BaseHead`, store the arguments in
``__init__``, set fitted attributes in ``fit``, describe the saved state in
``_state``/``_restore``, register the kind. Nothing else in the package is edited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from embedsuite.encoders.base import Encoder
from embedsuite.heads.base import HEADS, BaseHead

KIND = "toy-centroid"


class ToyCentroidHead(BaseHead):
    """Label of the closest class centroid (cosine)."""

    kinds: ClassVar[tuple[str, ...]] = (KIND,)
    what: ClassVar[str] = "toy head"
    _fitted: ClassVar[tuple[str, ...]] = ("classes_", "centroids_")

    classes_: list[str]
    centroids_: np.ndarray

    def __init__(self, encoder: Encoder | None = None, *, role: str = "query") -> None:
        self.encoder = encoder
        self.role = role

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> ToyCentroidHead:
        x = self._resolve_encoder().encode(list(texts), role=self.role)  # type: ignore[arg-type]
        classes = sorted(set(labels))
        y = np.array([classes.index(v) for v in labels])
        cents = np.stack([x[y == k].mean(0) for k in range(len(classes))])
        self.centroids_ = (cents / np.linalg.norm(cents, axis=1, keepdims=True)).astype(
            np.float32)
        self.classes_ = classes
        return self

    def predict(self, texts: str | Sequence[str]) -> dict[str, Any] | list[dict[str, Any]]:
        self._check_fitted()
        single = isinstance(texts, str)
        items = [texts] if isinstance(texts, str) else list(texts)
        sims = self.active_encoder.encode(items, role=self.role) @ self.centroids_.T  # type: ignore[arg-type]
        out = [{"label": self.classes_[int(s.argmax())], "score": float(s.max())} for s in sims]
        return out[0] if single else out

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
        return {"labels": self.classes_}, {"centroids": self.centroids_}, {}

    def _restore(self, config: dict[str, Any], tensors: dict[str, np.ndarray],
                 sidecars: dict[str, np.ndarray]) -> None:
        self.classes_ = [str(c) for c in config["labels"]]
        self.centroids_ = np.asarray(tensors["centroids"], np.float32)


def register() -> None:
    """Register the kind (a module in ``embedsuite/heads`` would do this at import)."""
    if KIND not in HEADS.names():
        HEADS.register(KIND, ToyCentroidHead)
