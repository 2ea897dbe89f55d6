"""Server hardening: exposure, logins, the results folder, the encoder allow-list, bounded
resources, session folders and cancelled timeouts (unit level, fake encoders)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from embedsuite.app.server import check_exposure, is_loopback, read_auth
from embedsuite.app.tabs.compare import load_results, resolve_results, result_folders
from embedsuite.app.ui import AppContext, RequestTimeoutError, run_with_timeout
from embedsuite.encoders import ENCODERS
from embedsuite.testing import FakeEncoder


@pytest.fixture
def fakes(tmp_cache) -> Iterator[None]:  # type: ignore[no-untyped-def]
    names = ("srv-a", "srv-b", "srv-c", "srv-d")
    for n in names:
        ENCODERS.register(n, lambda n=n: FakeEncoder(name=n, cache=tmp_cache))
    yield
    for n in names:
        ENCODERS.unregister(n)


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "example.org", ""))


def test_exposure_needs_a_password_a_key_or_insecure(caplog: pytest.LogCaptureFixture) -> None:
    check_exposure("127.0.0.1", auth=[], api_key=None, insecure=False)
    with pytest.raises(ValueError, match=r"--host 0\.0\.0\.0 opens the server.*--insecure"):
        check_exposure("0.0.0.0", auth=[], api_key=None, insecure=False)
    with caplog.at_level(logging.WARNING):
        check_exposure("0.0.0.0", auth=[], api_key=None, insecure=True)
        check_exposure("0.0.0.0", auth=[], api_key="k", insecure=False)
        check_exposure("0.0.0.0", auth=[("u", "p")], api_key="k", insecure=False)
    text = caplog.text
    assert "no authentication (--insecure)" in text and "the UI is open" in text
    assert text.count("serving on 0.0.0.0") == 2


def test_read_auth(tmp_path: Path) -> None:
    assert read_auth("ann:pw:with:colons", None) == [("ann", "pw:with:colons")]
    f = tmp_path / "logins.txt"
    f.write_text("# team\nbob:one\n\n carl:two\n", encoding="utf-8")
    assert read_auth(None, f) == [("bob", "one"), ("carl", "two")]
    with pytest.raises(ValueError, match="expected USER:PASSWORD.*without a colon"):
        read_auth("nocolon", None)
    with pytest.raises(ValueError, match="an empty part"):
        read_auth("ann:", None)
    with pytest.raises(ValueError, match="not found"):
        read_auth(None, tmp_path / "missing.txt")
    assert read_auth(None, None) == []


def test_results_folder_cannot_be_escaped(tmp_path: Path) -> None:
    root = tmp_path / "results"
    (root / "run1").mkdir(parents=True)
    (root / "run1" / "results.json").write_text("[]", encoding="utf-8")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "results.json").write_text("[]", encoding="utf-8")
    (root / "link").symlink_to(secret)
    assert resolve_results(root, "run1") == (root / "run1").resolve()
    assert result_folders(root) == ["run1"]  # the symlink out is not offered
    assert load_results("run1", root)[2] == []
    messages = set()
    for attempt in ("..", "../secret", str(secret), "/etc", "link", "run1/../../secret",
                    "missing", "/nonexistent/path"):
        with pytest.raises(FileNotFoundError) as info:
            load_results(attempt, root)
        messages.add(str(info.value).replace(repr(attempt), "<NAME>"))
    assert len(messages) == 1, messages  # one message: nothing tells which paths exist
    assert str(tmp_path) not in messages.pop()
    with pytest.raises(ValueError, match="Give the name"):
        resolve_results(root, "  ")


def test_encoder_allow_list_and_lru(fakes: None) -> None:
    ctx = AppContext(encoder_name="srv-a", allowed_encoders=("srv-b", "srv-c", "srv-d"),
                     max_encoders=2)
    assert ctx.allowed() == ["srv-a", "srv-b", "srv-c", "srv-d"]
    with pytest.raises(ValueError, match="does not offer the encoder 'e5-small'; it offers "
                                         "srv-a, srv-b, srv-c, srv-d"):
        ctx.encoder_for("e5-small")
    b = ctx.encoder_for("srv-b")
    assert ctx.encoder_for("srv-b") is b
    ctx.encoder_for("srv-c")
    ctx.encoder_for("srv-b")  # srv-b used last: srv-c is the least recently used
    ctx.encoder_for("srv-d")
    assert list(ctx._extra) == ["srv-b", "srv-d"]
    assert ctx.encoder_for("srv-a").name == "srv-a"  # the shared encoder is always there
    default = AppContext(encoder_name="e5-small")
    assert default.allowed() == ["e5-small", "e5-small-int8"]


def test_resources_are_bounded_by_count_and_bytes() -> None:
    ctx = AppContext(max_resources=2, max_resource_bytes=3_000_000)
    ctx.resource("sentiment:default", lambda: np.zeros(10_000_000, np.uint8))  # pinned
    for k in ("a", "b", "c"):
        ctx.resource(k, lambda: np.zeros(1_000_000, np.uint8))
    assert list(ctx.resources) == ["sentiment:default", "b", "c"]
    ctx.resource("b", lambda: None)  # a hit refreshes b
    ctx.resource("big", lambda: {"arr": np.zeros(2_500_000, np.uint8)})
    assert list(ctx.resources) == ["sentiment:default", "big"]


def test_session_folders_are_removed_when_the_session_ends() -> None:
    ctx = AppContext()
    a1, a2 = ctx.session_dir("s1"), ctx.session_dir("s1", "sentiment-")
    b = ctx.session_dir("s2")
    (a1 / "head.zip").write_bytes(b"x")
    assert ctx.end_session("s1") == 2
    assert not a1.exists() and not a2.exists() and b.is_dir()
    assert ctx.end_session("s1") == 0
    root = b.parent
    ctx.close()
    assert not root.exists()


class _Slow(FakeEncoder):
    def __init__(self, cache: object) -> None:
        super().__init__(dim=8, cache=cache)  # type: ignore[arg-type]
        self.batches = 0

    def _encode_batch(self, texts: list[str], role: object) -> np.ndarray:
        self.batches += 1
        time.sleep(0.05)
        return super()._encode_batch(texts, role)  # type: ignore[arg-type]


def test_a_timed_out_request_stops_within_one_batch(tmp_cache,  # type: ignore[no-untyped-def]
                                                    ) -> None:
    enc = _Slow(tmp_cache)
    done = threading.Event()

    def work() -> None:
        try:
            enc.encode([f"text {i}" for i in range(2_000)], batch_size=4)
        finally:
            done.set()

    with pytest.raises(RequestTimeoutError, match="longer than 0.3 s"):
        run_with_timeout(work, (), {}, 0.3, False)
    assert done.wait(2.0), "the timed-out work kept running"
    at_stop = enc.batches
    assert at_stop < 20
    time.sleep(0.2)
    assert enc.batches == at_stop


def test_a_slow_resource_does_not_hold_up_the_others() -> None:
    ctx = AppContext()
    ctx.resource("ready", lambda: "here")
    started, release = threading.Event(), threading.Event()
    made: list[str] = []

    def slow() -> str:
        started.set()
        release.wait(5)
        made.append("slow")
        return "loaded"

    loader = threading.Thread(target=ctx.resource, args=("slow", slow))
    loader.start()
    assert started.wait(5)
    t0 = time.monotonic()
    assert ctx.resource("ready", lambda: "never") == "here"  # not blocked by the load
    assert time.monotonic() - t0 < 1.0
    waiter = threading.Thread(target=lambda: made.append(ctx.resource("slow", slow)))
    waiter.start()  # a second caller of the same key waits for the first load
    release.set()
    loader.join(5)
    waiter.join(5)
    assert made == ["slow", "loaded"]  # made once, the second caller got the same value
