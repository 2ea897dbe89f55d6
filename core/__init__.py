"""embedsuite core: one shared, cached text encoder and the task heads built on it."""

from __future__ import annotations

__version__ = "0.1.0"
