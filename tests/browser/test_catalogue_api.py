"""The bad-input catalogue through the app's API (gradio_client against the running app).

Each row sends one input of the catalogue (``tests/test_catalogue.py``) to one endpoint
and expects either the ``gr.Error`` text (gradio_client raises ``AppError`` with it) or
a well-formed result; the last test checks that the app still answers. The 10,000-text
and 1 MB rows become the app's limits here (at most 256 lines and 20,000 characters per
text), so the limit messages are checked instead. Damaged head folders, heads of
another encoder and SQuAD JSON have no way into the app (it loads only its shipped
heads and reads no JSON uploads): they are covered through the Python API only.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from embedsuite.app.ui import MAX_BATCH, MAX_TEXT_CHARS

pytestmark = [pytest.mark.browser, pytest.mark.integration]  # starts the app

MB_TEXT = "word " * 200_000
TOO_MANY = "\n".join(f"text number {i}" for i in range(MAX_BATCH + 1))
CONTROL = "tab\tbell\x07 escape\x1b[31m red"
SURROGATE = "bad \ud800 text"
RTL = "مرحبا بالعالم שלום עולם hello 世界"
EMOJI = "I love it 😀🎉👍🏽"
DOC = "The Eiffel Tower was completed in 1889. It is in Paris."
LINE_LIMIT = f"the app takes at most {MAX_TEXT_CHARS:,} per text"
BATCH_LIMIT = f"{MAX_BATCH + 1} lines given; the app takes at most {MAX_BATCH} at once"
SURR = "holds an invalid character U+D800 (a lone surrogate)"
DEFAULT = "default (SST-2)"
CANDS = "I lost my keys.\nThe museum is closed on Mondays."


@dataclass(frozen=True)
class ApiCase:
    """``client.predict(*args, api_name=api)`` raises with ``message``, or ``check`` accepts
    its result. ``files`` names arguments to upload (index -> file content)."""

    id: str
    api: str
    args: tuple[Any, ...]
    message: str = ""
    check: Callable[[Any], None] | None = None
    files: tuple[tuple[int, bytes], ...] = ()
    raw: bool = False  # sent as raw JSON: gradio_client cannot encode a lone surrogate


def _sentiment_rows(n: int) -> Callable[[Any], None]:
    def check(out: Any) -> None:
        table, _bars = out
        assert len(table["data"]) == n
        for _text, label, score in table["data"]:
            assert label in ("positive", "negative") and 0.0 <= float(score) <= 1.0
    return check


def _similarity(out: Any) -> None:
    _summary, _plot, table = out
    assert len(table["data"]) >= 1


def _hits(out: Any) -> None:
    assert len(out["data"]) >= 1


def _recs(out: Any) -> None:
    table, _map = out
    assert len(table["data"]) >= 1


def _qa(doc: str) -> Callable[[Any], None]:
    def check(out: Any) -> None:
        _marked, summary, table = out
        assert isinstance(summary, str) and summary
        for row in table["data"]:
            assert str(row[1]) in doc  # every answer is a piece of the document
    return check


def _trained(out: Any) -> None:
    summary, report, _fig, _zip = out  # the head itself is session state, not API output
    assert "Held-out accuracy" in summary
    assert set(report["classes"]) == {"pos", "neg"}


def _loaded(out: Any) -> None:
    status, _map = out  # the pickers change in a step of their own, after success
    assert "2 items" in str(status)  # the status names the catalogue and its size


def _ok(ok: Callable[..., Any], text: str) -> Callable[[Any], None]:
    """``ok`` itself, or for QA (``_qa``) the check against the document ``text``."""
    return ok(text) if ok is _qa else ok


def _text_cases(api: str, before: tuple[Any, ...], after: tuple[Any, ...], empty: str,
                ok: Callable[[Any], None], many: bool = True) -> list[ApiCase]:
    """The text rows of one endpoint taking a text box (args = before + text + after)."""
    def a(text: Any) -> tuple[Any, ...]:
        return (*before, text, *after)

    rows = [
        ApiCase(f"{api}/empty", api, a(""), empty),
        ApiCase(f"{api}/whitespace", api, a("  \n\t "), empty),
        ApiCase(f"{api}/none", api, a(None), empty),
        ApiCase(f"{api}/1mb", api, a(MB_TEXT), LINE_LIMIT if many else "characters"),
        ApiCase(f"{api}/control", api, a(CONTROL), check=_ok(ok, CONTROL)),
        ApiCase(f"{api}/surrogate", api, a(SURROGATE), SURR, raw=True),
        ApiCase(f"{api}/rtl-mixed", api, a(RTL), check=_ok(ok, RTL)),
        ApiCase(f"{api}/emoji", api, a(EMOJI), check=_ok(ok, EMOJI)),
    ]
    if many:
        rows.append(ApiCase(f"{api}/10k", api, a(TOO_MANY), BATCH_LIMIT))
    return rows


BINARY = bytes(range(256)) * 20
CASES: list[ApiCase] = [
    *_text_cases("sentiment", (), (DEFAULT,), "No texts given", _sentiment_rows(1)),
    ApiCase("sentiment/number", "sentiment", (42, DEFAULT), check=_sentiment_rows(1)),
    *_text_cases("similarity", (), ("query",), "No texts given", _similarity),
    *_text_cases("translation_search", (), (CANDS, 2, "margin"), "No sentence given: type the "
                 "sentence whose translation you look for", _hits),
    ApiCase("translation_search/one-candidate", "translation_search",
            ("Das Museum ist zu.", "The museum is closed.", 2, "margin"),
            "Give at least 2 candidate sentences (one per line)"),
    *_text_cases("recommend_text", (), (5, 0.0), "Type a wish first", _recs, many=False),
    ApiCase("recommend/unknown-history", "recommend", (["b001", "zz-unknown"], [], 5, 0.0),
            "history item(s) ['zz-unknown'] are not in the catalogue"),
    ApiCase("recommend/empty-history", "recommend", ([], [], 5, 0.0),
            "Pick at least one liked item"),
    ApiCase("recommend/liked-and-disliked", "recommend", (["b001"], ["b001"], 5, 0.0),
            "is both liked and disliked"),
    *_text_cases("qa_answer/context", (), ("When was it completed?", 3, 0.0),
                 "document is empty or whitespace only", _qa, many=False),
    ApiCase("qa_answer/question-empty", "qa_answer", (DOC, " ", 3, 0.0),
            "question is empty or whitespace only"),
    ApiCase("qa_answer/no-answer", "qa_answer", (DOC, "What is the capital of Peru?", 3, 0.0),
            check=_qa(DOC)),
    ApiCase("qa_answer/context-shorter", "qa_answer",
            ("Paris.", "In which city of France is the famous iron tower of 1889?", 3, 0.0),
            check=_qa("Paris.")),
    ApiCase("qa_answer/question-too-long", "qa_answer", (DOC, "why " * 200, 3, 0.0),
            "keep it under 500"),
    # uploads
    ApiCase("sentiment_train/missing-column", "sentiment_train", (None, "linear"),
            "needs the columns 'text' and 'label' in its header row; found 'text'",
            files=((0, b"text\ngreat\nbad\n"),)),
    ApiCase("sentiment_train/misnamed-columns", "sentiment_train", (None, "linear"),
            "found 'sentence', 'sentiment'", files=((0, b"sentence,sentiment\ngreat,pos\n"),)),
    ApiCase("sentiment_train/binary", "sentiment_train", (None, "linear"),
            "is a binary file, not a CSV", files=((0, BINARY),)),
    ApiCase("sentiment_train/one-class", "sentiment_train", (None, "linear"),
            "The CSV has only one class ('pos')",
            files=((0, b"text,label\ngood film,pos\nnice film,pos\ngreat,pos\n"),)),
    ApiCase("sentiment_train/extra-columns", "sentiment_train", (None, "linear"),
            check=_trained, files=((0, b"id,Text,Label,notes\n1,great film,pos,x\n"
                                       b"2,lovely story,pos,x\n3,awful film,neg,x\n"
                                       b"4,dull story,neg,x\n"),)),
    ApiCase("recommend_load_catalogue/missing-column", "recommend_load_catalogue", (None,),
            "lacks the column(s) ['description']", files=((0, b"id,title\n1,Film\n2,Pasta\n"),)),
    ApiCase("recommend_load_catalogue/binary", "recommend_load_catalogue", (None,),
            "is a binary file, not a CSV", files=((0, BINARY),)),
    ApiCase("recommend_load_catalogue/not-utf8", "recommend_load_catalogue", (None,),
            "is not UTF-8 text", files=((0, "id,title,description\n1,café,crème\n".encode(
                "latin-1")),)),
    ApiCase("recommend_load_catalogue/duplicate-ids", "recommend_load_catalogue", (None,),
            "duplicate id '1'; ids must be unique",
            files=((0, b"id,title,description\n1,Film,x\n1,Pasta,y\n"),)),
    ApiCase("qa_load_text/binary", "qa_load_text", (None,), "is a binary file, not text",
            files=((0, b"PK\x03\x04\x00\x00zipzipzip"),)),
    ApiCase("qa_load_text/whitespace", "qa_load_text", (None,), "is empty; expected some text",
            files=((0, b"\n \n\t\n"),)),
]
# Loading a good catalogue changes the session's catalogue: it runs last, on its own client.
LAST = ApiCase("recommend_load_catalogue/extra-columns", "recommend_load_catalogue", (None,),
               check=_loaded, files=((0, b"id,title,description,year\n1,Film,space,1999\n"
                                         b"2,Pasta,food,2001\n"),))


@pytest.fixture(scope="module")
def client(app_url: str):  # type: ignore[no-untyped-def]
    from gradio_client import Client

    return Client(app_url, verbose=False)


def _call(client: Any, case: ApiCase, tmp_path: Path) -> Any:
    from gradio_client import handle_file

    args = list(case.args)
    for i, content in case.files:
        f = tmp_path / f"upload-{i}{'.txt' if case.api.startswith('qa_') else '.csv'}"
        f.write_bytes(content)
        args[i] = handle_file(str(f))
    return client.predict(*args, api_name=f"/{case.api.split('/')[0]}")


def _raw_error(app_url: str, case: ApiCase) -> str:
    """POST the arguments as JSON (``\\ud800`` escapes kept) and return the error event's text."""
    api = case.api.split("/")[0]
    body = json.dumps({"data": list(case.args)}).encode("ascii")
    req = urllib.request.Request(f"{app_url}/gradio_api/call/{api}", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        event = json.loads(r.read())["event_id"]
    with urllib.request.urlopen(f"{app_url}/gradio_api/call/{api}/{event}", timeout=120) as r:
        stream = r.read().decode("utf-8")
    assert "event: error" in stream, f"expected an error event, got {stream[:300]!r}"
    return stream


def _run(client: Any, case: ApiCase, tmp_path: Path, app_url: str = "") -> None:
    from gradio_client.exceptions import AppError

    if case.raw:
        text = _raw_error(app_url, case)
        assert case.message in text, f"{text!r} lacks {case.message!r}"
    elif case.check is None:
        with pytest.raises(AppError) as info:
            out = _call(client, case, tmp_path)
            pytest.fail(f"expected an error message, got {out!r:.300}")
        assert case.message in str(info.value), f"{str(info.value)!r} lacks {case.message!r}"
        assert "Traceback" not in str(info.value)
    else:
        case.check(_call(client, case, tmp_path))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_catalogue_api(case: ApiCase, client: Any, tmp_path: Path, app_url: str) -> None:
    _run(client, case, tmp_path, app_url)


def test_good_catalogue_upload(app_url: str, tmp_path: Path) -> None:
    from gradio_client import Client

    _run(Client(app_url, verbose=False), LAST, tmp_path)


def test_app_still_answers(client: Any) -> None:
    table, _ = client.predict("Still here after all that?", DEFAULT, api_name="/sentiment")
    assert table["data"][0][0] == "Still here after all that?"
    hits = client.predict("Das Museum ist montags geschlossen.", CANDS, 1, "margin",
                          api_name="/translation_search")
    assert hits["data"][0][2] == "The museum is closed on Mondays."
