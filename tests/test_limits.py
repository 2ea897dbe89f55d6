"""The app's resource limits (text length, batch, upload size, request time), each
answered with a clear message; tested on the handlers, without a browser."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr
import pytest

import embedsuite.app.tabs.qa as qa_tab
import embedsuite.app.tabs.recommend as rec_tab
import embedsuite.app.tabs.sentiment as sent_tab
from embedsuite.app import ui
from embedsuite.app.tabs.encoder import split_lines
from embedsuite.app.ui import MAX_BATCH, MAX_TEXT_CHARS, request_timeout, ui_errors


# -- text length and batch ------------------------------------------------------------------
def test_text_length_limit_message() -> None:
    ok = split_lines("x" * MAX_TEXT_CHARS)
    assert ok == ["x" * MAX_TEXT_CHARS]
    with pytest.raises(ValueError, match=rf"Line 2 has {MAX_TEXT_CHARS + 1:,} characters; the "
                                         rf"app takes at most {MAX_TEXT_CHARS:,} per text"):
        split_lines("short\n" + "x" * (MAX_TEXT_CHARS + 1))


def test_batch_limit_message() -> None:
    assert len(split_lines("\n".join(["a"] * MAX_BATCH))) == MAX_BATCH
    with pytest.raises(ValueError, match=rf"{MAX_BATCH + 1} lines given; the app takes at most "
                                         rf"{MAX_BATCH} at once\. Use the command line"):
        split_lines("\n".join(["a"] * (MAX_BATCH + 1)))


def test_qa_document_and_question_limits() -> None:
    with pytest.raises(ValueError, match="the tab reads at most"):
        qa_tab._check_inputs("x " * qa_tab.MAX_DOC_CHARS, "What?")
    with pytest.raises(ValueError, match=f"keep it under {qa_tab.MAX_QUESTION_CHARS}"):
        qa_tab._check_inputs("A text.", "why " * qa_tab.MAX_QUESTION_CHARS)


def test_limits_can_be_raised_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSUITE_MAX_BATCH", "1_000")
    assert ui._env_limit("MAX_BATCH", 256) == 1000
    monkeypatch.setenv("EMBEDSUITE_MAX_BATCH", "lots")
    assert ui._env_limit("MAX_BATCH", 256) == 256
    monkeypatch.setenv("EMBEDSUITE_MAX_BATCH", "-3")
    assert ui._env_limit("MAX_BATCH", 256) == 256


# -- upload size ------------------------------------------------------------------------------
@pytest.mark.parametrize(("module", "reader", "message"), [
    (sent_tab, sent_tab.parse_csv, r"The file has 0\.0 MB; the app takes at most 0 MB"),
    (rec_tab, rec_tab.read_catalogue_csv, r"has 42 bytes; the app takes catalogues up to 10 "
                                          r"bytes\. Use the Python API"),
    (qa_tab, qa_tab.read_upload, r"The file has 42 bytes; the app takes at most 10"),
])
def test_upload_size_limit_message(module: object, reader: object, message: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "upload.csv"
    f.write_text("id,title,description\na,b,c\nd,e,f\nxyz_1234\n")
    assert f.stat().st_size == 42
    monkeypatch.setattr(module, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(ValueError, match=message):
        reader(f)  # type: ignore[operator]


# -- request time -----------------------------------------------------------------------------
def test_request_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBEDSUITE_REQUEST_TIMEOUT", raising=False)
    monkeypatch.delenv("EMBEDSUITE_LONG_REQUEST_TIMEOUT", raising=False)
    assert request_timeout() == ui.DEFAULT_REQUEST_TIMEOUT_S == 60
    assert request_timeout(long=True) == ui.DEFAULT_LONG_REQUEST_TIMEOUT_S
    monkeypatch.setenv("EMBEDSUITE_REQUEST_TIMEOUT", "2.5")
    assert request_timeout() == 2.5
    for off in ("0", "none", "off"):
        monkeypatch.setenv("EMBEDSUITE_REQUEST_TIMEOUT", off)
        assert request_timeout() is None
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("EMBEDSUITE_REQUEST_TIMEOUT", bad)
        assert request_timeout() == 60


def test_request_timeout_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSUITE_REQUEST_TIMEOUT", "0.2")
    release = threading.Event()

    @ui_errors
    def slow(text: str) -> str:
        release.wait(10)
        return text

    try:
        with pytest.raises(gr.Error) as info:
            slow("hello")
    finally:
        release.set()
    msg = str(info.value.message)
    assert msg.startswith("The request took longer than 0.2 s, the app's time limit")
    assert "Send fewer or shorter texts" in msg
    assert "higher EMBEDSUITE_REQUEST_TIMEOUT" in msg


def test_long_requests_have_their_own_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSUITE_REQUEST_TIMEOUT", "0.05")
    monkeypatch.setenv("EMBEDSUITE_LONG_REQUEST_TIMEOUT", "0.2")
    release = threading.Event()

    @ui_errors(long=True)
    def train(n: int) -> int:
        release.wait(10)
        return n

    try:
        with pytest.raises(gr.Error, match="higher EMBEDSUITE_LONG_REQUEST_TIMEOUT"):
            train(1)
    finally:
        release.set()
    release.set()
    assert train(3) == 3  # within the limit: the result comes back


def test_within_the_limit_results_and_errors_pass_through(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("EMBEDSUITE_REQUEST_TIMEOUT", "30")

    @ui_errors
    def handler(text: str, *, times: int = 1) -> str:
        if not text:
            raise ValueError("No text given: type at least one line of text.")
        return text * times

    assert handler("ab", times=2) == "abab"
    with pytest.raises(gr.Error, match="No text given"):
        handler("")
    monkeypatch.setenv("EMBEDSUITE_REQUEST_TIMEOUT", "0")  # no limit: runs in the caller
    assert handler("x") == "x"


def test_decode_upload_names_what_came_and_how_to_fix_it() -> None:
    from embedsuite.data.uploads import decode_upload

    hints = {"binary_hint": "not a CSV: upload a UTF-8 CSV.", "utf8_hint": "; save it as UTF-8"}
    assert decode_upload("\ufeffcafé,東京".encode(), "a.csv", **hints) == "café,東京"
    with pytest.raises(ValueError, match=r"^a\.csv is not UTF-8 text \(it is UTF-16\); save it "
                                         r"as UTF-8$"):
        decode_upload("text,label\n".encode("utf-16"), "a.csv", **hints)
    with pytest.raises(ValueError, match=r"^a\.csv is not UTF-8 text \(it is UTF-32\)"):
        decode_upload("text,label\n".encode("utf-32"), "a.csv", **hints)
    with pytest.raises(ValueError, match=r"^a\.csv is a binary file, not a CSV: upload a UTF-8 "
                                         r"CSV\.$"):
        decode_upload(b"PK\x03\x04\x00\x00zip", "a.csv", **hints)
    with pytest.raises(ValueError, match=r"^a\.csv is not UTF-8 text; save it as UTF-8$"):
        decode_upload("café".encode("latin-1"), "a.csv", **hints)


@pytest.mark.parametrize("read", [
    lambda p: sent_tab.parse_csv(p),
    lambda p: rec_tab.read_catalogue_csv(p),
    lambda p: qa_tab.read_upload(p),
])
def test_every_upload_reader_names_utf16(read: object, tmp_path: Path) -> None:
    f = tmp_path / "notepad.csv"
    f.write_bytes("id,title,description\n1,a,b\n".encode("utf-16"))
    with pytest.raises(ValueError, match=r"notepad\.csv is not UTF-8 text \(it is UTF-16\)"):
        read(f)  # type: ignore[operator]
