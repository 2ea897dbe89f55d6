"""The bad-input catalogue (issue #11), through the Python API.

One table, :data:`CASES`: each row names a target (the encoder layer, a head, or a
file parser), the input, and the exact expected outcome: either a result contract
(checked by a function) or an exception type plus a piece of its message that says
what was expected and how to fix it. ``docs/troubleshooting.md`` holds the same
table; a test keeps the two in step (regenerate the doc's table with
``python -m tests.test_catalogue --write``).

Unit rows use :class:`embedsuite.testing.FakeEncoder`; the rows whose target starts with
``e5`` run on the real encoder and are marked ``integration``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedsuite.cache import EmbeddingCache
from embedsuite.errors import EncoderMismatchError, HeadFormatError
from embedsuite.heads.qa import RESULT_KEYS as QA_KEYS
from embedsuite.heads.qa import ExtractiveQA
from embedsuite.heads.recommend import RESULT_KEYS as REC_KEYS
from embedsuite.heads.recommend import ContentRecommender
from embedsuite.heads.sentiment import SentimentClassifier
from embedsuite.heads.translation import TranslationRetriever
from embedsuite.testing import FakeEncoder

DOC = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"
START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"

MB_TEXT = "word " * 200_000 + "end"  # about 1 MB
MANY = [f"text number {i}" for i in range(10_000)]
CONTROL = "tab\tbell\x07 null\x00 escape\x1b[31m red"
SURROGATE = "bad \ud800 text"
RTL = "مرحبا بالعالم שלום עולם hello 世界"
EMOJI = "I love it 😀🎉👍🏽 👨‍👩‍👧"
CTX = "Anna lives in Lyon. Boris lives in Osaka. The weather is mild."
CATALOGUE = [{"id": "a", "text": "a space opera film with starships"},
             {"id": "b", "text": "a cooking show about Italian pasta"},
             {"id": "c", "text": "a documentary about the space race"},
             {"id": "d", "text": "a romantic comedy in Paris"}]


@dataclass
class Env:
    """The fitted heads every row runs against (built once per module)."""

    enc: FakeEncoder
    other: FakeEncoder
    sentiment: SentimentClassifier
    translation: TranslationRetriever
    recommend: ContentRecommender
    qa: ExtractiveQA
    tmp: Path

    def head(self, name: str) -> Any:
        return getattr(self, name)

    def file(self, name: str, content: bytes | str) -> Path:
        p = self.tmp / "files" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return p

    def saved(self, name: str) -> Path:
        """A fresh copy of the saved folder of head ``name`` (for damaging)."""
        src = self.tmp / "saved" / name
        if not src.exists():
            self.head(name).save(src)
        dst = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.tmp)) / "head"
        shutil.copytree(src, dst)
        return dst


@dataclass(frozen=True)
class Case:
    """One row: ``call(env)`` must return a result that ``check`` accepts, or raise
    ``error`` with ``message`` in its text."""

    id: str
    target: str
    input: str
    call: Callable[[Env], Any]
    error: type[BaseException] | None = None
    message: str = ""
    check: Callable[[Env, Any], None] | None = None
    outcome: str = ""

    def describe(self) -> str:
        if self.error is not None:
            return f"`{self.error.__name__}`: “…{self.message}…”"
        return self.outcome


# -- result contracts -----------------------------------------------------------------------
def _unit_vectors(env: Env, out: Any, n: int | None = None) -> None:
    arr = np.asarray(out)
    shape = (env.enc.dim,) if n is None else (n, env.enc.dim)
    assert arr.shape == shape and arr.dtype == np.float32
    assert np.all(np.isfinite(arr))
    if arr.size:
        np.testing.assert_allclose(np.linalg.norm(arr.reshape(-1, env.enc.dim), axis=1), 1,
                                   atol=1e-4)


def _sentiment(env: Env, out: Any, n: int | None = None) -> None:
    rows = [out] if n is None else out
    assert isinstance(rows, list) and len(rows) == (1 if n is None else n)
    for r in rows:
        assert set(r) == {"label", "score"}
        assert r["label"] in env.sentiment.classes_
        assert 0.0 <= r["score"] <= 1.0


def _translation(env: Env, out: Any, n: int | None = None) -> None:
    lists = [out] if n is None else out
    assert len(lists) == (1 if n is None else n)
    for hits in lists:
        assert hits and all(set(h) == {"text", "index", "score", "cosine", "margin"}
                            for h in hits)
        for h in hits:
            assert h["text"] == env.translation.texts_[h["index"]]
            assert np.isfinite(h["score"]) and np.isfinite(h["cosine"])
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def _recommend(env: Env, out: Any, n: int | None = None) -> None:
    lists = [out] if n is None else out
    assert len(lists) == (1 if n is None else n)
    ids = {it["id"] for it in CATALOGUE}
    for recs in lists:
        assert recs and all(set(r) == set(REC_KEYS) for r in recs)
        assert all(r["item_id"] in ids and np.isfinite(r["score"]) for r in recs)
        assert len({r["item_id"] for r in recs}) == len(recs)


def _qa(context: str) -> Callable[[Env, Any], None]:
    def check(env: Env, out: Any) -> None:
        rows = out if isinstance(out, list) else [out]
        for r in rows:
            assert set(r) == set(QA_KEYS)
            assert 0 <= r["start"] <= r["end"] <= len(context)
            assert context[r["start"]:r["end"]] == r["answer"]
            assert 0.0 <= r["score"] <= 1.0
    return check


def _many(fn: Callable[[Env, Any, int | None], None], n: int) -> Callable[[Env, Any], None]:
    return lambda env, out: fn(env, out, n)


# -- the table --------------------------------------------------------------------------------
EMPTY_MSG = "is empty or whitespace only; expected some text"
SURR_MSG = "holds an invalid character U+D800 (a lone surrogate) at position 4"
TEXT_INPUTS: list[tuple[str, str, object]] = [
    ("empty", "`\"\"`", ""),
    ("whitespace", "`\"  \\n\\t\"`", "  \n\t"),
    ("none", "`None`", None),
    ("number", "`42`", 42),
    ("none-in-list", "`[\"ok\", None]`", ["ok", None]),
    ("1mb", "a 1 MB text", MB_TEXT),
    ("10k", "10,000 texts in one call", MANY),
    ("control", "control characters (`\\x00`, `\\x07`, ANSI escapes)", CONTROL),
    ("surrogate", "an invalid surrogate `\"\\ud800\"`", SURROGATE),
    ("rtl-mixed", "right-to-left and mixed scripts", RTL),
    ("emoji", "emoji (with skin tones and ZWJ sequences)", EMOJI),
    ("empty-list", "`[]`", []),
]


def _text_rows(target: str, name: str, call: Callable[[Env, Any], Any],
               check: Callable[[Env, Any, int | None], None], what: str,
               empty_list: str | None = "`[]`") -> list[Case]:
    """The text-input rows of one API (``name`` is how messages name the argument)."""
    rows = []
    for key, shown, value in TEXT_INPUTS:
        def run(env: Env, v: object = value) -> Any:
            return call(env, v)

        cid = f"{target}/{key}"
        if key in ("empty", "whitespace"):
            rows.append(Case(cid, target, shown, run, ValueError, f"{name} {EMPTY_MSG}"))
        elif key == "none":
            rows.append(Case(cid, target, shown, run, TypeError,
                             f"{name} must be a str or a list of str, got NoneType"))
        elif key == "number":
            rows.append(Case(cid, target, shown, run, TypeError,
                             f"{name} must be a str or a list of str, got int"))
        elif key == "none-in-list":
            rows.append(Case(cid, target, shown, run, TypeError,
                             f"{name}[1] must be a str, got NoneType (None); convert it to text"))
        elif key == "surrogate":
            rows.append(Case(cid, target, shown, run, ValueError, f"{name} {SURR_MSG}"))
        elif key == "10k":
            rows.append(Case(cid, target, shown, run, check=_many(check, len(MANY)),
                             outcome=f"10,000 {what}"))
        elif key == "empty-list":
            if empty_list is None:
                continue
            rows.append(Case(cid, target, shown, run, check=_many(check, 0),
                             outcome=f"an empty list ({empty_list} in, `[]` out)"))
        elif key == "1mb":
            rows.append(Case(cid, target, shown, run, check=lambda e, o, c=check: c(e, o, None),
                             outcome=f"one {what[:-1] if what.endswith('s') else what} "
                                     f"(the text is cut at the encoder's token limit, "
                                     f"with a logged warning)"))
        else:
            rows.append(Case(cid, target, shown, run, check=lambda e, o, c=check: c(e, o, None),
                             outcome=f"one {what[:-1] if what.endswith('s') else what}"))
    return rows


EDITED_MSG = {
    "sentiment": "does not fit its config.json (KeyError: 'params'); the file was edited or "
                 "damaged. Re-save the head",
    "translation": "the saved translation index is inconsistent (texts and embeddings differ in "
                   "number or are missing); re-save it",
    "recommend": "does not fit its config.json (KeyError: 'params'); the file was edited or "
                 "damaged. Re-save the head",
    "qa": "does not fit its config.json (KeyError: 'params'); the file was edited or damaged. "
          "Re-save the head",
}


def _folder_rows(target: str, load: Callable[[Path, Any], Any], what: str) -> list[Case]:
    """Damaged saved folders of one head kind."""

    def missing(name: str) -> Callable[[Env], Any]:
        def run(env: Env) -> Any:
            d = env.saved(target)
            (d / name).unlink()
            return load(d, env.enc)
        return run

    def not_json(env: Env) -> Any:
        d = env.saved(target)
        (d / "config.json").write_text('{"head": "oops", ')
        return load(d, env.enc)

    def edited(env: Env) -> Any:
        d = env.saved(target)
        cfg = json.loads((d / "config.json").read_text())
        keep = {"head", "format_version", "weights_sha256", "encoder"}
        (d / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k in keep}))
        return load(d, env.enc)

    def tampered(env: Env) -> Any:
        d = env.saved(target)
        raw = bytearray((d / "model.safetensors").read_bytes())
        raw[-1] ^= 0xFF
        (d / "model.safetensors").write_bytes(bytes(raw))
        return load(d, env.enc)

    def other(env: Env) -> Any:
        return load(env.saved(target), env.other)

    t = f"{target} folder"
    return [
        Case(f"{target}/config-missing", t, f"a saved {what} without `config.json`",
             missing("config.json"), HeadFormatError,
             "has no config.json; a saved head holds config.json and model.safetensors"),
        Case(f"{target}/config-not-json", t, f"a {what} whose `config.json` is cut short",
             not_json, HeadFormatError, "is not valid JSON"),
        Case(f"{target}/config-edited", t, f"a {what} whose `config.json` lost its settings",
             edited, HeadFormatError, EDITED_MSG[target]),
        Case(f"{target}/weights-missing", t, f"a saved {what} without `model.safetensors`",
             missing("model.safetensors"), HeadFormatError, "has no model.safetensors"),
        Case(f"{target}/weights-tampered", t, f"a {what} whose weights file was changed",
             tampered, HeadFormatError,
             "does not match the digest in config.json"),
        Case(f"{target}/other-encoder", t, f"a {what} trained on another encoder",
             other, EncoderMismatchError, "was trained on encoder 'fake'"),
    ]


def _sent_csv(env: Env, content: bytes | str) -> Any:
    from embedsuite.app.tabs.sentiment import parse_csv

    return parse_csv(env.file("data.csv", content))


def _cat_csv(env: Env, content: bytes | str) -> Any:
    from embedsuite.app.tabs.recommend import read_catalogue_csv

    return read_catalogue_csv(env.file("catalogue.csv", content))


def _squad(env: Env, content: bytes | str) -> Any:
    from embedsuite.data.squad import load_squad

    return load_squad(env.file("squad.json", content))


def _qa_upload(env: Env, content: bytes | str) -> Any:
    from embedsuite.app.tabs.qa import read_upload

    return read_upload(env.file("doc.txt", content))


BINARY = bytes(range(256)) * 8
LATIN1 = "text,label\ncafé crème,pos\n".encode("latin-1")
GOOD_SENT = "text,label\ngreat,pos\nfine,pos\nbad,neg\nawful,neg\n"


def _parsed_sentiment(env: Env, out: Any) -> None:
    texts, labels, skipped = out
    assert texts == ["great", "fine", "bad", "awful"] and labels == ["pos", "pos", "neg", "neg"]
    assert skipped == 0


def _parsed_catalogue(env: Env, out: Any) -> None:
    assert [it["id"] for it in out] == ["1", "2"]
    assert out[0]["year"] == "1999" and out[1]["title"] == "Pasta"


SQUAD_OK = {"data": [{"title": "t", "paragraphs": [{"context": CTX, "qas": [
    {"id": "q1", "question": "Who lives in Lyon?",
     "answers": [{"text": "Anna", "answer_start": 0}]}]}]}]}


def _parsed_squad(env: Env, out: Any) -> None:
    assert len(out) == 1 and out[0].answers == [("Anna", 0)] and out[0].context == CTX


PARSER_ROWS: list[Case] = [
    # sentiment training CSV (app upload, `embedsuite train-sentiment`)
    Case("csv-sentiment/missing-column", "sentiment CSV", "a CSV without a `label` column",
         lambda e: _sent_csv(e, "text\ngreat\nbad\n"), ValueError,
         "The CSV needs the columns 'text' and 'label' in its header row; found 'text'"),
    Case("csv-sentiment/misnamed-columns", "sentiment CSV", "columns `sentence,sentiment`",
         lambda e: _sent_csv(e, "sentence,sentiment\ngreat,pos\n"), ValueError,
         "needs the columns 'text' and 'label' in its header row; found 'sentence', 'sentiment'"),
    Case("csv-sentiment/extra-columns", "sentiment CSV", "columns `id,Text,LABEL,notes`",
         lambda e: _sent_csv(e, "id,Text,LABEL,notes\n" + "\n".join(
             f"{i},{t},{y},x" for i, (t, y) in enumerate(
                 [("great", "pos"), ("fine", "pos"), ("bad", "neg"), ("awful", "neg")]))),
         check=_parsed_sentiment, outcome="parsed; extra columns ignored, names case-blind"),
    Case("csv-sentiment/binary", "sentiment CSV", "a `.csv` that is really binary",
         lambda e: _sent_csv(e, BINARY), ValueError, "is a binary file, not a CSV"),
    Case("csv-sentiment/not-utf8", "sentiment CSV", "a Latin-1 CSV",
         lambda e: _sent_csv(e, LATIN1), ValueError, "is not UTF-8 text: save it as a UTF-8 CSV"),
    Case("csv-sentiment/empty-file", "sentiment CSV", "an empty file",
         lambda e: _sent_csv(e, b""), ValueError, "data.csv is empty: it needs a header"),
    Case("csv-sentiment/one-class", "sentiment CSV", "every row has the same label",
         lambda e: _sent_csv(e, "text,label\ngood,pos\nnice,pos\n"), ValueError,
         "The CSV has only one class ('pos'); a classifier needs examples of at least two"),
    Case("csv-sentiment/ok", "sentiment CSV", "a good `text,label` CSV",
         lambda e: _sent_csv(e, GOOD_SENT), check=_parsed_sentiment, outcome="parsed"),
    # recommender catalogue CSV (app upload)
    Case("csv-catalogue/missing-column", "catalogue CSV", "a CSV without `description`",
         lambda e: _cat_csv(e, "id,title\n1,Film\n2,Pasta\n"), ValueError,
         "lacks the column(s) ['description']; expected a header line 'id,title,description'"),
    Case("csv-catalogue/misnamed-columns", "catalogue CSV", "columns `ident,name,desc`",
         lambda e: _cat_csv(e, "ident,name,desc\n1,Film,x\n"), ValueError,
         "lacks the column(s) ['id', 'title', 'description']"),
    Case("csv-catalogue/extra-columns", "catalogue CSV", "an extra `year` column",
         lambda e: _cat_csv(e, "id,title,description,year\n1,Film,space,1999\n2,Pasta,food,2001"
                               "\n"),
         check=_parsed_catalogue, outcome="parsed; extra columns kept as item metadata"),
    Case("csv-catalogue/binary", "catalogue CSV", "a `.csv` that is really binary",
         lambda e: _cat_csv(e, b"id,title\x00\x01\x02" + BINARY[:64].replace(b"\x80", b"")),
         ValueError, "is a binary file, not a CSV"),
    Case("csv-catalogue/not-utf8", "catalogue CSV", "a Latin-1 CSV",
         lambda e: _cat_csv(e, "id,title,description\n1,café,crème\n".encode("latin-1")),
         ValueError, "is not UTF-8 text; save the CSV as UTF-8"),
    Case("csv-catalogue/duplicate-ids", "catalogue CSV", "two rows with id `1`",
         lambda e: _cat_csv(e, "id,title,description\n1,Film,x\n1,Pasta,y\n"), ValueError,
         "line 3: duplicate id '1'; ids must be unique"),
    # QA training / evaluation data (SQuAD v1.1 JSON)
    Case("json-squad/not-squad", "SQuAD JSON", "`{\"questions\": []}`",
         lambda e: _squad(e, '{"questions": []}'), ValueError,
         "is not SQuAD v1.1 JSON; expected {'data': [{'title': str, 'paragraphs'"),
    Case("json-squad/wrong-inner-shape", "SQuAD JSON", "`{\"data\": [{\"title\": \"x\"}]}`",
         lambda e: _squad(e, '{"data": [{"title": "x"}]}'), ValueError,
         "is not SQuAD v1.1 JSON: data[0] has the wrong shape or lacks a key"),
    Case("json-squad/answer-not-a-dict", "SQuAD JSON", "answers given as plain strings",
         lambda e: _squad(e, json.dumps({"data": [{"paragraphs": [{"context": CTX, "qas": [
             {"id": 1, "question": "Who?", "answers": ["Anna"]}]}]}]})), ValueError,
         "data[0]['paragraphs'][0]['qas'][0] has the wrong shape or lacks a key"),
    Case("json-squad/list", "SQuAD JSON", "`[1, 2, 3]`",
         lambda e: _squad(e, "[1, 2, 3]"), ValueError, "is not SQuAD v1.1 JSON"),
    Case("json-squad/binary", "SQuAD JSON", "a `.json` that is really binary",
         lambda e: _squad(e, BINARY), ValueError, "is not SQuAD v1.1 JSON"),
    Case("json-squad/ok", "SQuAD JSON", "a SQuAD v1.1 file", lambda e: _squad(e, json.dumps(
        SQUAD_OK)), check=_parsed_squad, outcome="parsed"),
    # QA document upload (app)
    Case("txt-qa/binary", "QA text upload", "a `.txt` that is really binary",
         lambda e: _qa_upload(e, b"PK\x03\x04\x00\x00" + b"zip" * 10), ValueError,
         "is a binary file, not text: upload a UTF-8 .txt file"),
    Case("txt-qa/whitespace", "QA text upload", "a file of blank lines",
         lambda e: _qa_upload(e, "\n \n\t\n"), ValueError, "is empty; expected some text"),
]


def _fit_sentiment(e: Env, texts: Any, labels: Any) -> Any:
    return SentimentClassifier(e.enc).fit(texts, labels)


HEAD_ROWS: list[Case] = [
    # sentiment
    Case("sentiment/one-class", "SentimentClassifier", "`fit` with one label only",
         lambda e: _fit_sentiment(e, ["good", "nice", "fine"], ["pos", "pos", "pos"]),
         ValueError, "fit needs at least two classes, got only ['pos'] in 3 labels; add examples"),
    Case("sentiment/unknown-label", "SentimentClassifier", "`score` with a label never trained",
         lambda e: e.sentiment.score(["good film", "so-so"], ["pos", "neutral"]), ValueError,
         "labels hold ['neutral'], which the head was not trained on (its classes: ['neg', "
         "'pos']); map them"),
    Case("sentiment/label-none", "SentimentClassifier", "a label that is `None`",
         lambda e: _fit_sentiment(e, ["good", "bad"], ["pos", None]), TypeError,
         "labels[1] must be a non-empty str or an int, got NoneType"),
    Case("sentiment/label-count", "SentimentClassifier", "2 texts, 3 labels",
         lambda e: _fit_sentiment(e, ["good", "bad"], ["pos", "neg", "neg"]), ValueError,
         "got 2 texts but 3 labels; give exactly one label per text"),
    Case("sentiment/fit-one-str", "SentimentClassifier", "`fit(\"text\", labels)`",
         lambda e: _fit_sentiment(e, "good", ["pos"]), TypeError,
         "fit expects a list of texts, got a single str"),
    # translation
    Case("translation/one-candidate", "TranslationRetriever", "`index([\"only one\"])`",
         lambda e: TranslationRetriever(e.enc).index(["only one"]), ValueError,
         "candidates must hold at least 2 sentences, got 1"),
    Case("translation/candidates-str", "TranslationRetriever", "`index(\"a str\")`",
         lambda e: TranslationRetriever(e.enc).index("one\ntwo"), TypeError,  # type: ignore[arg-type]
         "candidates must be a list of str (at least 2 sentences), got one str"),
    Case("translation/mine-empty-side", "TranslationRetriever", "`mine([\"a\"], [])`",
         lambda e: e.translation.mine(["a cat"], []), ValueError,
         "both sides need at least one sentence, got 1 source and 0 target"),
    Case("translation/duplicate-candidates", "TranslationRetriever",
         "the same candidate twice", lambda e: TranslationRetriever(e.enc).index(
             ["the cat", "the cat", "a dog"]).search("the cat", top_k=3),
         check=lambda e, o: (None if [h["index"] for h in o][:2] in ([0, 1], [1, 0])
                             else pytest.fail(f"duplicates not ranked first: {o}")),
         outcome="both copies are found (ranked together)"),
    # recommend
    Case("recommend/duplicate-ids", "ContentRecommender", "two items with id `a`",
         lambda e: ContentRecommender(e.enc).fit([{"id": "a", "text": "x"},
                                                  {"id": "a", "text": "y"}]), ValueError,
         "duplicate item id 'a' in items; ids must be unique"),
    Case("recommend/unknown-history", "ContentRecommender", "a history naming unknown items",
         lambda e: e.recommend.recommend([("a", 5.0), ("zz", 4.0)]), KeyError,
         "history item(s) ['zz'] are not in the catalogue"),
    Case("recommend/history-none", "ContentRecommender", "`recommend(None)`",
         lambda e: e.recommend.recommend(None), TypeError,
         "history must be a list of item ids or (item_id, rating[, timestamp]) tuples, got "
         "NoneType"),
    Case("recommend/history-empty", "ContentRecommender", "`recommend([])`",
         lambda e: e.recommend.recommend([]), ValueError,
         "history is empty; give at least one (item_id, rating) or use recommend_for_text"),
    Case("recommend/history-nan-rating", "ContentRecommender", "a rating of `nan`",
         lambda e: e.recommend.recommend([("a", float("nan"))]), ValueError, "must be finite"),
    Case("recommend/one-item", "ContentRecommender", "a catalogue of one item",
         lambda e: ContentRecommender(e.enc).fit([{"id": "a", "text": "x"}]), ValueError,
         "a catalogue needs at least 2 items to recommend from, got 1"),
    Case("recommend/item-text-none", "ContentRecommender", "an item whose text is `None`",
         lambda e: ContentRecommender(e.enc).fit([{"id": "a", "text": None},
                                                  {"id": "b", "text": "y"}]), ValueError,
         "items[0] (id 'a') has no text: give 'text' or 'title' and/or 'description'"),
    Case("recommend/history-ok", "ContentRecommender", "a history of known items",
         lambda e: e.recommend.recommend([("a", 5.0), ("b", 1.0)], k=2),
         check=lambda e, o: _recommend(e, o), outcome="recommendations (history items left out)"),
    # QA
    Case("qa/no-answer", "ExtractiveQA", "a question the context does not answer",
         lambda e: e.qa.answer("What is the capital of Peru?", CTX),
         check=_qa(CTX), outcome="a span of the context with a low score, or `answer=\"\"` "
                                 "under the head's no-answer threshold"),
    Case("qa/context-shorter", "ExtractiveQA", "a context shorter than the question",
         lambda e: e.qa.answer("Who is the person that lives in the city of Lyon in France?",
                               "Anna."), check=_qa("Anna."),
         outcome="a span of the short context"),
    Case("qa/contexts-count", "ExtractiveQA", "2 questions, 3 contexts",
         lambda e: e.qa.answer(["Who?", "Where?"], [CTX, CTX, CTX]), ValueError,
         "context has 3 texts but question has 2; give one context per question"),
    Case("qa/answer-not-in-context", "ExtractiveQA", "`fit` with an answer not at its offset",
         lambda e: ExtractiveQA(e.enc, d_model=16).fit(["Who?"], [CTX], [("Boris", 0)]),
         ValueError, "answers[0] 'Boris' is not at character 0 of contexts[0]"),
    Case("qa/top-k-zero", "ExtractiveQA", "`top_k=0`",
         lambda e: e.qa.answer("Who?", CTX, top_k=0), ValueError,
         "top_k must be an int >= 1, got 0"),
]

TEXT_ROWS: list[Case] = [
    *_text_rows("encoder", "texts", lambda e, v: e.enc.encode(v), _unit_vectors,
                "L2-normalised vectors", "`(0, dim)`"),
    *_text_rows("encoder.tokens", "texts", lambda e, v: e.enc.encode_tokens(v),
                lambda e, o, n: _tokens(o, n), "token-embedding records"),
    *_text_rows("sentiment", "texts", lambda e, v: e.sentiment.predict(v), _sentiment,
                "`{label, score}` results"),
    *_text_rows("translation", "queries", lambda e, v: e.translation.search(v, top_k=2),
                _translation, "ranked candidate lists"),
    *_text_rows("recommend", "query", lambda e, v: e.recommend.recommend_for_text(v, k=2),
                _recommend, "recommendation lists"),
    *[c for c in _text_rows("qa.question", "question", lambda e, v: e.qa.answer(
        ["Who lives in Lyon?"] * len(v) if v is MANY else v, CTX),
                            lambda e, o, n: _qa(CTX)(e, o), "answers")
      if not c.id.endswith("/1mb")],
    *[c for c in _text_rows("qa.context", "context",
                            lambda e, v: e.qa.answer("Who lives in Lyon?", v, max_windows=4),
                            lambda e, o, n: None, "answers", None)
      if not c.id.endswith(("/10k", "/none-in-list"))],
]


def _tokens(out: Any, n: int | None) -> None:
    rows = [out] if n is None else out
    assert len(rows) == (1 if n is None else n)
    for te in rows:
        assert te.vectors.shape[0] == te.offsets.shape[0] and np.all(np.isfinite(te.vectors))
        for s, e in te.offsets:
            assert 0 <= s <= e <= len(te.text)


def _qa_context_check(case: Case) -> Case:
    """The context rows check the answer against the context they sent."""
    if case.error is not None:
        return case
    value = {k: v for k, _, v in TEXT_INPUTS}[case.id.split("/")[1]]
    return Case(case.id, case.target, case.input, case.call, check=_qa(str(value)),
                outcome=case.outcome)


TEXT_ROWS = [_qa_context_check(c) if c.target == "qa.context" else c for c in TEXT_ROWS]
# a list of contexts keeps the per-position message
TEXT_ROWS.append(Case("qa.context/none-in-list", "qa.context", "`[\"ok\", None]`",
                      lambda e: e.qa.answer(["Who?", "Who?"], ["Anna is here.", None]),
                      TypeError, "context[1] must be a str, got NoneType (None)"))

FOLDER_ROWS: list[Case] = [
    *_folder_rows("sentiment", lambda p, enc: SentimentClassifier.load(p, enc),
                  "sentiment head"),
    *_folder_rows("translation", lambda p, enc: TranslationRetriever.load(p, enc),
                  "translation index"),
    *_folder_rows("recommend", lambda p, enc: ContentRecommender.load(p, enc), "recommender"),
    *_folder_rows("qa", lambda p, enc: ExtractiveQA.load(p, enc), "QA head"),
]

E5_ROWS: list[Case] = [
    Case("e5/surrogate", "e5-small encoder", "an invalid surrogate `\"\\ud800\"`",
         lambda e: _e5().encode(SURROGATE), ValueError, f"texts {SURR_MSG}"),
    Case("e5/control", "e5-small encoder", "control characters",
         lambda e: _e5().encode(CONTROL), check=lambda e, o: _e5_vector(o),
         outcome="a unit vector"),
    Case("e5/only-control", "e5-small encoder", "only control characters `\"\\x00\\x07\"`",
         lambda e: _e5().encode("\x00\x07"), check=lambda e, o: _e5_vector(o),
         outcome="a unit vector (the tokenizer drops them)"),
    Case("e5/rtl-mixed", "e5-small encoder", "right-to-left and mixed scripts",
         lambda e: _e5().encode_tokens(RTL), check=lambda e, o: _tokens(o, None),
         outcome="token vectors with offsets inside the text"),
    Case("e5/emoji", "e5-small encoder", "emoji", lambda e: _e5().encode_tokens(EMOJI),
         check=lambda e, o: _tokens(o, None), outcome="token vectors with offsets inside the "
                                                       "text"),
    Case("e5/1mb", "e5-small encoder", "a 1 MB text", lambda e: _e5().encode(MB_TEXT),
         check=lambda e, o: _e5_vector(o), outcome="a unit vector of the first 512 tokens "
                                                   "(warning logged)"),
    Case("e5/qa-emoji-context", "e5-small + default QA head", "a context of emoji only",
         lambda e: _e5_qa().answer("Who is it?", "😀🎉👍🏽"), check=_qa("😀🎉👍🏽"),
         outcome="a span of the context"),
]


def _e5() -> Any:
    from embedsuite.encoders import get_encoder

    return get_encoder("e5-small")


def _e5_qa() -> ExtractiveQA:
    return ExtractiveQA.load_default(_e5())


def _e5_vector(out: Any) -> None:
    arr = np.asarray(out)
    assert arr.ndim == 1 and np.all(np.isfinite(arr))
    assert abs(float(np.linalg.norm(arr)) - 1) < 1e-3


CASES: list[Case] = [*TEXT_ROWS, *HEAD_ROWS, *PARSER_ROWS, *FOLDER_ROWS, *E5_ROWS]


# -- the fixture and the tests ----------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    tmp = tmp_path_factory.mktemp("catalogue")
    cache = EmbeddingCache(tmp / "cache.sqlite")
    enc = FakeEncoder(dim=32, cache=cache)
    other = FakeEncoder(dim=32, name="other", cache=cache)
    sentiment = SentimentClassifier(enc).fit(
        ["good film", "great film", "a lovely story", "bad film", "awful film", "a dull story"],
        ["pos", "pos", "pos", "neg", "neg", "neg"])
    translation = TranslationRetriever(enc).index(
        ["the cat sleeps", "a dog barks", "it rains today", "the museum is closed"])
    recommend = ContentRecommender(enc).fit(CATALOGUE)
    from tests.test_qa import _toy

    qs, cs, ans = _toy(16)
    qa = ExtractiveQA(enc, d_model=16).fit(qs, cs, ans, epochs=1, lr=3e-3)
    return Env(enc, other, sentiment, translation, recommend, qa, tmp)


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    return [pytest.mark.integration] if case.target.startswith("e5") else []


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_catalogue(case: Case, env: Env) -> None:
    if case.error is not None:
        with pytest.raises(case.error) as info:
            result = case.call(env)
            pytest.fail(f"expected {case.error.__name__}, got a result: {result!r:.200}")
        text = str(info.value.args[0]) if isinstance(info.value, KeyError) else str(info.value)
        assert case.message in text, f"message {text!r} lacks {case.message!r}"
    else:
        assert case.check is not None
        case.check(env, case.call(env))


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert all((c.error is None) != (c.check is None) for c in CASES)
    assert all(c.error is None or c.message for c in CASES)


def render_table() -> str:
    """The catalogue as a Markdown table (the doc's copy is kept equal to this)."""
    lines = ["| id | target | input | outcome |", "|---|---|---|---|"]
    for c in CASES:
        outcome = c.describe().replace("|", "\\|")
        lines.append(f"| `{c.id}` | {c.target} | {c.input} | {outcome} |")
    return "\n".join(lines)


def test_doc_holds_the_catalogue() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOC} lacks the {START} ... {END} block"
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == render_table(), (f"{DOC} is out of date with tests/test_catalogue.py; run "
                                     f"python -m tests.test_catalogue --write")


def write_doc() -> None:
    """Replace the table between the markers of ``docs/troubleshooting.md``."""
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{render_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_doc()
    else:
        sys.stdout.write(render_table() + "\n")
