"""Datasets as one :class:`Example` schema, from the offline files or the ``datasets`` hub.

Every loader reads the real files of docs/design.md "Models and data that work with no network" in place (never copied).
A malformed row raises :class:`DataError` naming the file and line, or with
``on_error="skip"`` is logged and counted in :class:`LoadReport` (never silently dropped).
Train and evaluation examples never overlap (checked on ids and source texts).
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from latentwire_core.logs import get_logger
from latentwire_core.synthetic import recall_split, span_windows
from latentwire_core.tasks import Example, TaskSpec, get_task, qa_source

__all__ = [
    "DataError",
    "Example",
    "LoadReport",
    "data_dir_from_env",
    "load_examples",
    "read_squad",
]

log = get_logger(__name__)
Split = Literal["train", "eval"]
OnError = Literal["raise", "skip"]


class DataError(ValueError):
    """A malformed dataset row or a missing file; the message names file and line."""


@attrs.define
class LoadReport:
    skipped: list[str] = attrs.field(factory=list)  # "file:line: problem"
    n_rows: int = 0
    dropped_overlap: int = 0  # train examples removed because they also occur in eval


def data_dir_from_env() -> Path | None:
    env = os.environ.get("LATENTWIRE_DATA")
    return Path(env) if env else None


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


class _Reader:
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


def _sst2(r: _Reader) -> Iterator[Example]:
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


def _agnews(r: _Reader) -> Iterator[Example]:
    for n, line in r.lines():
        row = next(csv.reader([line]), [])
        if len(row) != 3 or row[0] not in ("1", "2", "3", "4"):
            r.bad(n, f'expected \'"class","title","description"\' with class 1-4, got {row[:1]!r}')
            continue
        text = f"{row[1]}. {row[2]}".replace("\\", " ")
        yield agnews_example({"text": text, "label": int(row[0]) - 1}, f"agnews-{n}")


_TREC = ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"]


def _trec(r: _Reader) -> Iterator[Example]:
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


def _squad(r: _Reader, task: str, articles: slice | None = None) -> Iterator[Example]:
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
    return list(_squad(_Reader(path, on_error, LoadReport()), task))


def _hotpot(r: _Reader) -> Iterator[Example]:
    rows = r.json()
    if not isinstance(rows, list):
        raise DataError(f"{r.path}: expected a JSON list of examples, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        try:
            yield hotpot_example(row, f"hotpot-{i}")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            r.bad(f"item {i}", f"missing or malformed field ({e})")


def _jsonl(r: _Reader, make: Callable[[dict[str, Any], int], Example]) -> Iterator[Example]:
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


def _split(items: list[Example], split: Split, *, frac: float, seed: int) -> list[Example]:
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    cut = int(len(items) * frac)
    keep = order[:cut] if split == "train" else order[cut:]
    return [items[i] for i in sorted(keep)]


def _reconstruct(
    spec: TaskSpec, split: Split, root: Path | None, on_error: OnError, report: LoadReport
) -> list[Example]:
    """Spans of real text for ``reconstruct_<N>``: every window of SQuAD training contexts and XSum
    training documents (``train``), or the first window of each SQuAD dev context (``eval``).

    Only evaluation-split text makes evaluation spans; the answer is the span itself.
    """
    assert spec.bundle is not None
    words = spec.bundle[1]
    if root is None:
        raise DataError(
            f"{spec.name}: needs the SQuAD (and XSum) files; set LATENTWIRE_DATA or [data].data_dir"
        )

    def rd(rel: str) -> _Reader:
        return _Reader(root / rel, on_error, report)

    if split == "eval":
        texts = [e.context for e in _squad(rd("squad/dev-v1.1.json"), "squad")]
        spans = [w[0] for w in (span_windows(t, words) for t in dict.fromkeys(texts)) if w]
    else:
        texts = [e.context for e in _squad(rd("squad/train-v1.1-44articles.json"), "squad")]
        xsum = root / "xsum" / "test-1000-a.jsonl"
        if xsum.is_file():  # the tiny test slices have no XSum
            texts += [e.source for e in _jsonl(rd("xsum/test-1000-a.jsonl"), xsum_example)]
        spans = [s for t in dict.fromkeys(texts) for s in span_windows(t, words)]
    return [
        Example(id=f"{spec.name}-{split}-{i}", task=spec.name, source=s, answers=(s,))
        for i, s in enumerate(dict.fromkeys(spans))
    ]


def _bundled(
    task: str, split: Split, root: Path | None, on_error: OnError, report: LoadReport
) -> list[Example]:
    """A task generated here (``TaskSpec.bundle``): recall needs no file, reconstruct reads real text."""
    spec = get_task(task)
    assert spec.bundle is not None
    kind, size = spec.bundle
    if kind == "recall":
        train, evaluation = recall_split(k=size)
        return train if split == "train" else evaluation
    if kind == "reconstruct":
        return _reconstruct(spec, split, root, on_error, report)
    raise KeyError(f"{task}: unknown bundle kind {kind!r}")


def _offline(task: str, split: Split, root: Path, on_error: OnError, report: LoadReport) -> list[Example]:
    def rd(rel: str) -> _Reader:
        return _Reader(root / rel, on_error, report)

    spec = get_task(task)
    if spec.data is not None:  # a JSON Lines task declared by its TaskSpec
        path = spec.data.train if split == "train" else spec.data.eval
        return list(_jsonl(rd(path), lambda row, n: row_example(task, row, n)))
    if task == "sst2":
        return list(_sst2(rd("sst2/train.tsv" if split == "train" else "sst2/dev.tsv")))
    if task == "agnews":  # only the official test split exists offline: split it (seed 0), documented
        return _split(list(_agnews(rd("agnews/test.csv"))), split, frac=0.8, seed=0)
    if task == "trec":
        return list(_trec(rd("trec/train_5500.label" if split == "train" else "trec/TREC_10.label")))
    if task == "squad":
        path = "squad/train-v1.1-44articles.json" if split == "train" else "squad/dev-v1.1.json"
        return list(_squad(rd(path), "squad"))
    if task == "squad_v2":  # half of dev offline: first 12 articles train, the rest eval (no shared context)
        arts = slice(0, 12) if split == "train" else slice(12, None)
        return list(_squad(rd("squad_v2/dev-v2.0-half.json"), "squad_v2", arts))
    if task == "hotpotqa":
        return _split(list(_hotpot(rd("hotpotqa/dev-distractor-100.json"))), split, frac=0.7, seed=0)
    if task == "gsm8k":
        return list(_jsonl(rd(f"gsm8k/{'train' if split == 'train' else 'test'}.jsonl"), gsm8k_example))
    if task == "xsum":
        return list(_jsonl(rd(f"xsum/test-1000-{'a' if split == 'train' else 'b'}.jsonl"), xsum_example))
    raise KeyError(task)


_HUB = {
    "sst2": ("glue", "sst2", "train", "validation"),
    "agnews": ("ag_news", None, "train", "test"),
    "trec": ("trec", None, "train", "test"),
    "squad": ("squad", None, "train", "validation"),
    "squad_v2": ("squad_v2", None, "train", "validation"),
    "hotpotqa": ("hotpot_qa", "distractor", "train", "validation"),
    "gsm8k": ("gsm8k", "main", "train", "test"),
    "xsum": ("xsum", None, "train", "test"),
}


def _from_hub(task: str, split: Split) -> list[Example]:  # pragma: no cover - needs a reachable hub
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise DataError(
            f"no data directory for {task!r} (set LATENTWIRE_DATA or [data].data_dir) and the hub is offline"
        )
    import datasets

    spec = get_task(task)
    if spec.data is not None and spec.data.hub is None:
        raise DataError(f"{task}: no data folder (set LATENTWIRE_DATA) and no hub dataset declared")
    name, config, tr, ev = spec.data.hub if spec.data is not None and spec.data.hub else _HUB[task]
    ds = datasets.load_dataset(name, config, split=tr if split == "train" else ev)
    make: dict[str, Callable[[dict[str, Any], int], Example]] = {
        "sst2": lambda row, i: sst2_example(row, f"sst2-{i}"),
        "agnews": lambda row, i: agnews_example(row, f"agnews-{i}"),
        "trec": lambda row, i: trec_example(row, f"trec-{i}"),
        "squad": lambda row, i: squad_example(row, "squad"),
        "squad_v2": lambda row, i: squad_example(row, "squad_v2"),
        "hotpotqa": lambda row, i: hotpot_example(row, str(row["id"])),
        "gsm8k": gsm8k_example,
        "xsum": xsum_example,
    }
    if spec.data is not None:
        return [row_example(task, row, i) for i, row in enumerate(ds)]
    return [make[task](row, i) for i, row in enumerate(ds)]


def load_examples(
    task: str,
    split: Split,
    *,
    data_dir: Path | None = None,
    limit: int | None = None,
    on_error: OnError = "raise",
    report: LoadReport | None = None,
) -> list[Example]:
    """Load ``task``'s ``split`` (``train`` or ``eval``).

    Args:
        data_dir: folder laid out like ``shared/data``; defaults to ``$LATENTWIRE_DATA``;
            without one, the ``datasets`` hub is used.
        limit: keep the first ``limit`` examples (a deterministic prefix).
        on_error: ``raise`` on the first malformed row, or ``skip`` it (logged, counted in ``report``).

    Raises:
        DataError: a missing file or (``on_error="raise"``) a malformed row.
        KeyError: an unknown task.
    """
    get_task(task)
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    report = report if report is not None else LoadReport()
    root = data_dir or data_dir_from_env()
    if get_task(task).bundle is not None:
        items = _bundled(task, split, root, on_error, report)
    else:
        items = _offline(task, split, root, on_error, report) if root is not None else _from_hub(task, split)
    report.n_rows += len(items)
    return items[:limit] if limit is not None else items


def check_disjoint(train: list[Example], evaluation: list[Example]) -> None:
    """Raise if any example id or source text appears in both splits."""
    ids = {e.id for e in train} & {e.id for e in evaluation}
    texts = {e.source for e in train} & {e.source for e in evaluation}
    if ids or texts:
        sample = sorted(ids)[:3] or [t[:60] for t in sorted(texts)[:3]]
        raise DataError(f"train and eval overlap in {len(ids)} ids / {len(texts)} texts, e.g. {sample}")


def load_train_eval(
    task: str,
    *,
    data_dir: Path | None = None,
    train_limit: int | None = None,
    eval_limit: int | None = None,
    on_error: OnError = "raise",
    eval_sampling: Literal["seeded", "prefix"] = "seeded",
    seed: int = 0,
    eval_split: Literal["eval", "validation"] = "eval",
) -> tuple[list[Example], list[Example], LoadReport]:
    """Both splits, with train examples that also occur in eval (same id or text) removed.

    ``eval_limit`` examples are drawn from the whole evaluation split with ``seed``
    (``seeded``, the default: a SQuAD prefix would cover 6 of 48 articles) and kept in
    file order, or taken as the file's first ones (``prefix``).

    Some official splits share texts (TREC train/test share 10 questions; the two
    offline XSum subsets share 90 articles), so leakage is removed here, counted in
    the report and logged, before ``train_limit`` is applied.

    ``eval_split = "validation"`` evaluates on a validation split carved from train instead (for
    choosing hyper-parameters, checkpoints or a wire without looking at the evaluation split): the
    training examples are the same ``train_limit`` ones, and the validation examples are drawn (as
    above) from the training examples after them, minus any that share an id, a text or a group
    (a SQuAD article) with the training ones.
    """
    if eval_split not in ("eval", "validation"):
        raise ValueError(f"eval_split must be 'eval' or 'validation', got {eval_split!r}")
    report = LoadReport()
    full_eval = load_examples(task, "eval", data_dir=data_dir, on_error=on_error, report=report)
    ids, texts = {e.id for e in full_eval}, {e.source for e in full_eval}
    train_all = load_examples(task, "train", data_dir=data_dir, on_error=on_error, report=report)
    pool = [e for e in train_all if e.id not in ids and e.source not in texts]
    report.dropped_overlap = len(train_all) - len(pool)
    if report.dropped_overlap:
        log.info("train_eval_overlap_removed", task=task, dropped=report.dropped_overlap)
    train = pool[:train_limit] if train_limit is not None else pool
    if eval_split == "validation":
        held = pool[len(train) :]
        t_ids, t_texts = {e.id for e in train}, {e.source for e in train}
        t_groups = {e.group for e in train if e.group}
        full_eval = [
            e
            for e in held
            if e.id not in t_ids and e.source not in t_texts and not (e.group and e.group in t_groups)
        ]
        log.info("validation_from_train", task=task, held_out=len(held), usable=len(full_eval))
    evaluation = _draw(full_eval, eval_limit, eval_sampling, seed)
    check_disjoint(train, evaluation)
    return train, evaluation, report


def _draw(examples: list[Example], limit: int | None, sampling: str, seed: int) -> list[Example]:
    """``limit`` examples: the first ones (``prefix``) or drawn with ``seed``, kept in file order."""
    if limit is None or limit >= len(examples):
        return examples
    if sampling == "prefix":
        return examples[:limit]
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]
