"""SQuAD v1.1 JSON (Rajpurkar et al. 2016) and files in its format."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["QAExample", "load_squad"]


@dataclass
class QAExample:
    """One SQuAD question: its id, the question, the context, the gold answers."""

    id: str
    question: str
    context: str
    answers: list[tuple[str, int]]  # (text, char start)
    title: str = ""


def load_squad(path: str | os.PathLike[str], limit: int | None = None) -> list[QAExample]:
    """Read a SQuAD v1.1 JSON file into :class:`QAExample` rows (file order).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not SQuAD v1.1 JSON.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found; expected a SQuAD v1.1 JSON file")
    shape = ("{'data': [{'title': str, 'paragraphs': [{'context': str, 'qas': [{'id', "
             "'question': str, 'answers': [{'text': str, 'answer_start': int}]}]}]}]}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))["data"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{p} is not SQuAD v1.1 JSON; expected {shape}") from None
    out: list[QAExample] = []
    where = "data"
    try:  # every step is checked so that a wrong shape names where it went wrong
        if not isinstance(data, list):
            raise TypeError
        for i, art in enumerate(data):
            where = f"data[{i}]"
            pars = art["paragraphs"]
            if not isinstance(pars, list):
                raise TypeError
            for j, par in enumerate(pars):
                where = f"data[{i}]['paragraphs'][{j}]"
                ctx = par["context"]
                if not isinstance(ctx, str) or not isinstance(par["qas"], list):
                    raise TypeError
                for m, qa in enumerate(par["qas"]):
                    where = f"data[{i}]['paragraphs'][{j}]['qas'][{m}]"
                    if not isinstance(qa["question"], str):
                        raise TypeError
                    answers = [(str(a["text"]), int(a["answer_start"]))
                               for a in qa.get("answers", [])]
                    out.append(QAExample(str(qa["id"]), qa["question"], ctx, answers,
                                         str(art.get("title", ""))))
                    if limit is not None and len(out) >= limit:
                        return out
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError(
            f"{p} is not SQuAD v1.1 JSON: {where} has the wrong shape or lacks a key; "
            f"expected {shape}"
        ) from None
    return out
