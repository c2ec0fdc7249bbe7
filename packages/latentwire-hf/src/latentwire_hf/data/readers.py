"""Reading the offline files: one row -> :class:`Example` function per task (shared with the hub), and
one parser per file format that checks it and names the file and line of a malformed row.

A malformed row raises :class:`DataError`, or with ``on_error="skip"`` is logged and counted in
:class:`LoadReport` (never silently dropped).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from latentwire_core.logs import get_logger
from latentwire_core.tasks import Example, get_task, qa_source

__all__ = [
    "DataError",
    "LoadReport",
    "OnError",
    "Reader",
    "Split",
    "read_squad",
    "row_example",
]

log = get_logger("latentwire_hf.data")
Split = Literal["train", "eval"]
OnError = Literal["raise", "skip"]


class DataError(ValueError):
    """A malformed dataset row or a missing file; the message names file and line."""


@attrs.define
class LoadReport:
    skipped: list[str] = attrs.field(factory=list)  # "file:line: problem"
    n_rows: int = 0
    dropped_overlap: int = 0  # train examples removed because they also occur in eval


# --- one row -> Example function per task, shared by the offline files and the hub ------------------
# Each takes a row in the hub's schema; the offline parsers first check their file's format, then
# hand the same fields over. A missing or malformed field raises KeyError / TypeError / ValueError.


def sst2_example(row: dict[str, Any], id: str) -> Example:
    return Example(id=id, task="sst2", source=str(row["sentence"]).strip(), label=int(row["label"]))


def agnews_example(row: dict[str, Any], id: str) -> Example:
    """``label`` 0-3 (world, sports, business, technology)."""
    return Example(id=id, task="agnews", source=str(row["text"]), label=int(row["label"]))


def trec_example(row: dict[str, Any], id: str) -> Example:
    return Example(id=id, task="trec", source=str(row["text"]), label=int(row["coarse_label"]))


def squad_example(row: dict[str, Any], task: str) -> Example:
    """``{"id", "question", "context", "answers": {"text": [...]}, "title"}`` (v1.1 or v2.0).

    Every gold text is kept (duplicates and empty ones dropped: scores take the max); an unanswerable
    v2 question has none (scored against "" as evaluate-v2.0.py does).
    """
    q, c = str(row["question"]).strip(), str(row["context"])
    answers = tuple(dict.fromkeys(a for a in row["answers"]["text"] if a))
    return Example(
        id=str(row["id"]),
        task=task,
        source=qa_source(q, c),
        question=q,
        context=c,
        answers=answers,
        group=str(row.get("title", "")),
    )


def hotpot_example(row: dict[str, Any], id: str) -> Example:
    """``{"question", "answer", "context": {"title": [...], "sentences": [[...], ...]}}``."""
    titles, sents = row["context"]["title"], row["context"]["sentences"]
    ctx = "\n".join(f"{t}: {''.join(s)}" for t, s in zip(titles, sents, strict=True))
    q, a = row["question"].strip(), row["answer"].strip()
    return Example(id=id, task="hotpotqa", source=qa_source(q, ctx), question=q, context=ctx, answers=(a,))


def gsm8k_example(row: dict[str, Any], n: int) -> Example:
    q, a = row["question"].strip(), row["answer"]
    if "####" not in a:
        raise ValueError("answer lacks '#### N'")
    final = a.split("####")[-1].strip().replace(",", "")
    return Example(id=f"gsm8k-{n}-{q[:24]}", task="gsm8k", source=q, question=q, answers=(final,))


def xsum_example(row: dict[str, Any], n: int) -> Example:
    doc, summ = row["document"].strip(), row["summary"].strip()
    if not doc or not summ:
        raise ValueError("empty document or summary")
    return Example(id=f"xsum-{row.get('id', n)}", task="xsum", source=doc, context=doc, answers=(summ,))


class Reader:
    """One offline file: its lines or its JSON, and what to do with a malformed row."""

    def __init__(self, path: Path, on_error: OnError, report: LoadReport) -> None:
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        self.path, self.on_error, self.report = path, on_error, report

    def bad(self, line: int | str, problem: str) -> None:
        msg = f"{self.path}:{line}: {problem}"
        if self.on_error == "raise":
            raise DataError(msg)
        self.report.skipped.append(msg)
        log.warning("bad_row_skipped", where=f"{self.path}:{line}", problem=problem)

    def lines(self, *, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
        """``(line number, text)`` per line; a line that is not valid ``encoding`` is a bad row."""
        with self.path.open("rb") as f:
            for n, raw in enumerate(f, start=1):
                try:
                    yield n, raw.decode(encoding).rstrip("\r\n")
                except UnicodeDecodeError as e:
                    self.bad(n, f"not valid {encoding} (byte {e.start}: {raw[e.start : e.start + 4]!r})")

    def json(self) -> Any:
        """The whole file as JSON; bad bytes or syntax raise a DataError naming the line."""
        raw = self.path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise DataError(f"{self.path}:{line}: not valid UTF-8 (byte offset {e.start})") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{self.path}:{e.lineno}: not JSON ({e.msg})") from None
        except RecursionError:
            raise DataError(
                f"{self.path}: JSON nested too deeply to read (a malformed or hostile file)"
            ) from None


def parse_sst2(r: Reader) -> Iterator[Example]:
    lines = r.lines()
    first = next(lines, None)
    header = first[1].split("\t") if first else []
    if header[:2] != ["sentence", "label"]:
        raise DataError(f"{r.path}:1: expected header 'sentence\\tlabel', got {header!r}")
    for n, line in lines:
        parts = line.split("\t")
        if len(parts) != 2 or parts[1].strip() not in ("0", "1") or not parts[0].strip():
            r.bad(n, f"expected '<sentence>\\t<0|1>', got {line.strip()[:80]!r}")
            continue
        yield sst2_example({"sentence": parts[0], "label": parts[1]}, f"sst2-{r.path.stem}-{n}")


def parse_agnews(r: Reader) -> Iterator[Example]:
    for n, line in r.lines():
        row = next(csv.reader([line]), [])
        if len(row) != 3 or row[0] not in ("1", "2", "3", "4"):
            r.bad(n, f'expected \'"class","title","description"\' with class 1-4, got {row[:1]!r}')
            continue
        text = f"{row[1]}. {row[2]}".replace("\\", " ")
        yield agnews_example({"text": text, "label": int(row[0]) - 1}, f"agnews-{n}")


_TREC = ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"]


def parse_trec(r: Reader) -> Iterator[Example]:
    with r.path.open(encoding="latin-1") as f:
        for n, line in enumerate(f, start=1):
            head, _, question = line.strip().partition(" ")
            coarse = head.split(":")[0]
            if coarse not in _TREC or not question:
                r.bad(n, f"expected 'COARSE:fine question', got {line.strip()[:80]!r}")
                continue
            yield trec_example(
                {"text": question, "coarse_label": _TREC.index(coarse)}, f"trec-{r.path.stem}-{n}"
            )


def parse_squad(r: Reader, task: str, articles: slice | None = None) -> Iterator[Example]:
    doc = r.json()
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise DataError(
            f"{r.path}: not SQuAD JSON ('data' must be a list of articles, got {type(data).__name__})"
        )
    for a_i, article in enumerate(data[articles] if articles else data):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs", []), list):
            r.bad(f"data[{a_i}]", "an article must be an object with a 'paragraphs' list")
            continue
        title = str(article.get("title", f"article-{a_i}"))
        for p_i, para in enumerate(article.get("paragraphs", [])):
            where_p = f"data[{a_i}].paragraphs[{p_i}]"
            if not isinstance(para, dict) or not isinstance(para.get("qas", []), list):
                r.bad(where_p, "a paragraph must be an object with a 'qas' list")
                continue
            ctx = para.get("context", "")
            for q_i, qa in enumerate(para.get("qas", [])):
                where = f"{where_p}.qas[{q_i}]"
                if not isinstance(qa, dict):
                    r.bad(where, f"a question must be an object, got {type(qa).__name__}")
                    continue
                where += f" (id {qa.get('id')})"
                raw = qa.get("answers", [])
                if not isinstance(raw, list) or not all(
                    isinstance(a, dict) and isinstance(a.get("text"), str) for a in raw
                ):
                    r.bad(where, f"'answers' must be a list of {{'text': str}} objects, got {raw!r:.60}")
                    continue
                impossible = bool(qa.get("is_impossible", False))
                q = qa.get("question")
                if not isinstance(q, str) or not q.strip() or not isinstance(ctx, str) or not ctx:
                    r.bad(where, "question and context must be non-empty strings")
                    continue
                if not any(a["text"] for a in raw) and not impossible:
                    r.bad(where, "an answer (or is_impossible) is required")
                    continue
                texts = [] if impossible else [a["text"] for a in raw]
                yield squad_example(
                    {
                        "id": qa.get("id", where),
                        "question": q,
                        "context": ctx,
                        "answers": {"text": texts},
                        "title": title,
                    },
                    task,
                )


def read_squad(path: Path, task: str = "squad", *, on_error: OnError = "raise") -> list[Example]:
    """Every question of a SQuAD-format JSON file (v1.1 or v2.0) as examples, in file order.

    Args:
        path: the JSON file.
        task: ``squad`` or ``squad_v2`` (sets ``Example.task``; v2 unanswerable questions get no answers).
        on_error: ``raise`` on a malformed record, or ``skip`` it.
    """
    return list(parse_squad(Reader(path, on_error, LoadReport()), task))


def parse_hotpot(r: Reader) -> Iterator[Example]:
    rows = r.json()
    if not isinstance(rows, list):
        raise DataError(f"{r.path}: expected a JSON list of examples, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        try:
            yield hotpot_example(row, f"hotpot-{i}")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            r.bad(f"item {i}", f"missing or malformed field ({e})")


def parse_jsonl(r: Reader, make: Callable[[dict[str, Any], int], Example]) -> Iterator[Example]:
    for n, line in r.lines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError(f"expected an object, got {type(row).__name__}")
            yield make(row, n)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
            r.bad(n, f"{type(e).__name__}: {e}")


def row_example(task: str, row: dict[str, Any], n: int) -> Example:
    """A row of a task declared with :class:`~latentwire_core.tasks.TaskData` (JSON Lines or hub)."""
    spec = get_task(task)
    assert spec.data is not None
    f = dict(spec.data.fields)

    def get(name: str) -> Any:
        return row[f[name]] if name in f else None

    q, c = str(get("question") or "").strip(), str(get("context") or "")
    raw = get("answers")
    answers = tuple(dict.fromkeys([raw] if isinstance(raw, str) else list(raw or ())))
    if not all(isinstance(a, str) for a in answers):
        raise TypeError(f"answers must be strings, got {raw!r:.60}")
    source = str(get("source")).strip() if "source" in f else qa_source(q, c)
    if not source:
        raise ValueError("empty source")
    label = get("label")
    return Example(
        id=str(get("id")) if "id" in f else f"{task}-{n}",
        task=task,
        source=source,
        question=q,
        context=c,
        answers=answers,
        label=None if label is None else int(label),
    )
