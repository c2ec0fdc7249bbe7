"""The general-text corpus for content pretraining: every offline text that no task evaluates on.

Parts (each read in place from the data folder, never copied into the project): SQuAD training contexts,
XSum's training documents, HotpotQA paragraphs (distractor and fullwiki files), GSM8K training problems,
SST-2 and TREC training sentences, AG News' training carve. Every text any registered task evaluates on
(its sources, contexts, questions and gold answers, the ``reconstruct_*`` spans included) is an
*evaluation text*; a corpus text that shares a word 13-gram with one (the contamination test of GPT-3,
Brown et al. 2020, §4), or equals a shorter one after normalisation, is dropped and counted. A seeded
hash puts one text in a hundred into a validation part (curves, bake-offs), never trained on.

:func:`build_corpus` returns the texts; :func:`write_corpus` writes ``corpus.jsonl`` and ``counts.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from latentwire_core.logs import get_logger
from latentwire_core.tasks import TASKS, Example
from latentwire_hf.data.load import load_examples
from latentwire_hf.data.readers import (
    DataError,
    LoadReport,
    Reader,
    parse_agnews,
    parse_jsonl,
    parse_squad,
    parse_sst2,
    parse_trec,
    xsum_example,
)
from latentwire_hf.data.splits import carve

__all__ = [
    "CORPUS_PARTS",
    "NGRAM",
    "Corpus",
    "CorpusText",
    "build_corpus",
    "evaluation_keys",
    "evaluation_texts",
    "ngram_keys",
    "read_corpus",
    "write_corpus",
]

log = get_logger(__name__)
NGRAM = 13  # words; GPT-3's contamination n-gram
VALIDATION_EVERY = 100  # one text in this many (by a hash of its words) is validation
_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngram_keys(text: str, n: int = NGRAM) -> set[str]:
    """The text's lower-cased word ``n``-grams (punctuation ignored); a text shorter than ``n`` words
    gives its whole normalised form as one key (prefixed ``=``), matched against whole texts only."""
    w = _words(text)
    if len(w) < n:
        return {"=" + " ".join(w)} if w else set()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


@attrs.frozen
class CorpusText:
    text: str
    part: str
    split: str  # "train" | "validation"


@attrs.frozen
class Corpus:
    """The kept texts and what was dropped; ``counts`` as ``counts.json`` stores them."""

    texts: tuple[CorpusText, ...]
    dropped: Mapping[str, int]  # part -> texts dropped for sharing an n-gram with an evaluation text
    eval_keys: int
    missing: tuple[str, ...] = ()  # parts whose files were absent

    def split(self, split: str) -> list[str]:
        return [t.text for t in self.texts if t.split == split]

    def counts(
        self, tokenizers: Mapping[str, Callable[[Sequence[str]], list[list[int]]]] = {}
    ) -> dict[str, Any]:
        """Texts, words (whitespace) and tokens per reader, per part and split."""
        out: dict[str, Any] = {
            "ngram": NGRAM,
            "eval_keys": self.eval_keys,
            "missing_parts": list(self.missing),
            "parts": {},
        }
        for t in self.texts:
            row = out["parts"].setdefault(t.part, {"train": [0, 0], "validation": [0, 0]})
            row[t.split][0] += 1
            row[t.split][1] += len(t.text.split())
        out["parts"] = {
            p: {
                "texts": {s: v[0] for s, v in row.items()},
                "words": {s: v[1] for s, v in row.items()},
                "dropped_for_overlap": int(self.dropped.get(p, 0)),
            }
            for p, row in sorted(out["parts"].items())
        }
        for split in ("train", "validation"):
            texts = self.split(split)
            out[split] = {"texts": len(texts), "words": sum(len(t.split()) for t in texts), "tokens": {}}
            for name, tok in tokenizers.items():
                n = 0
                for i in range(0, len(texts), 512):
                    n += sum(len(ids) for ids in tok(texts[i : i + 512]))
                out[split]["tokens"][name] = n
        return out


# --- the parts ------------------------------------------------------------------------------------------


def _hotpot_paragraphs(rows: Iterable[Any]) -> Iterator[str]:
    for row in rows:
        ctx = row.get("context") if isinstance(row, dict) else None
        if isinstance(ctx, dict):  # the distractor layout: {"title": [...], "sentences": [[...]]}
            pairs: Iterable[Any] = zip(ctx.get("title", []), ctx.get("sentences", []), strict=False)
        else:  # the original layout: [[title, [sentences]], ...]
            pairs = ctx or []
        for title, sents in pairs:
            body = "".join(sents).strip()
            if body:
                yield f"{title}: {body}"


def _jsonl_rows(r: Reader) -> Iterator[Any]:
    for n, line in r.lines():
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                r.bad(n, f"not JSON ({e.msg})")


def _parts(root: Path, report: LoadReport) -> dict[str, Callable[[], Iterable[str]]]:
    def rd(rel: str) -> Reader:
        return Reader(root / rel, "raise", report)

    def examples(xs: Iterable[Example], field: str) -> Iterator[str]:
        return (getattr(e, field) for e in xs)

    return {
        "squad_train": lambda: examples(
            parse_squad(rd("squad/train-v1.1-44articles.json"), "squad"), "context"
        ),
        "xsum_train": lambda: examples(parse_jsonl(rd("xsum/test-1000-a.jsonl"), xsum_example), "source"),
        "hotpotqa": lambda: [
            *_hotpot_paragraphs(rd("hotpotqa/dev-distractor-100.json").json()),
            *_hotpot_paragraphs(_jsonl_rows(rd("hotpotqa/dev-fullwiki-500.jsonl"))),
        ],
        "gsm8k_train": lambda: (
            json.loads(line)["question"] for _, line in rd("gsm8k/train.jsonl").lines() if line
        ),
        "sst2_train": lambda: examples(parse_sst2(rd("sst2/train.tsv")), "source"),
        "trec_train": lambda: examples(parse_trec(rd("trec/train_5500.label")), "source"),
        "agnews_train": lambda: examples(
            carve(list(parse_agnews(rd("agnews/test.csv"))), "train", frac=0.8, seed=0), "source"
        ),
    }


CORPUS_PARTS = (
    "squad_train",
    "xsum_train",
    "hotpotqa",
    "gsm8k_train",
    "sst2_train",
    "trec_train",
    "agnews_train",
)


def evaluation_texts(root: Path, tasks: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Every text each task's evaluation split reads: sources, contexts, questions, gold answers.

    A task whose evaluation files are absent from ``root`` is skipped (logged); generated tasks
    (``recall``) give their generated contexts.
    """
    out: dict[str, list[str]] = {}
    for task in tasks if tasks is not None else sorted(TASKS):
        try:
            exs = load_examples(task, "eval", data_dir=root)
        except DataError as e:
            log.info("corpus_eval_task_unavailable", task=task, reason=str(e)[:200])
            continue
        texts: list[str] = []
        for ex in exs:
            texts += [t for t in (ex.source, ex.context, ex.question, *ex.answers) if t and t.strip()]
        out[task] = list(dict.fromkeys(texts))
    return out


def _validation(text: str) -> bool:
    digest = hashlib.sha256(" ".join(text.split()).encode()).digest()
    return int.from_bytes(digest[:4], "big") % VALIDATION_EVERY == 0


def evaluation_keys(root: Path, tasks: Iterable[str] | None = None) -> set[str]:
    """The n-gram keys (:func:`ngram_keys`) of every evaluation text of ``tasks`` (default: all)."""
    keys: set[str] = set()
    for texts in evaluation_texts(root, tasks).values():
        for t in texts:
            keys |= ngram_keys(t)
    return keys


def build_corpus(
    root: Path,
    *,
    parts: Sequence[str] = CORPUS_PARTS,
    tasks: Iterable[str] | None = None,
    keys: set[str] | None = None,
) -> Corpus:
    """Read ``parts`` from the data folder ``root`` and drop every text that overlaps an evaluation text.

    A part whose file is absent is left out (logged, listed in ``Corpus.missing``); ``keys`` are
    precomputed :func:`evaluation_keys` (default: computed here for ``tasks``).

    Raises:
        DataError: a part's file is malformed (named).
        ValueError: an unknown part name, or no part could be read.
    """
    available = _parts(root, LoadReport())
    unknown = [p for p in parts if p not in available]
    if unknown:
        raise ValueError(f"unknown corpus parts {unknown}; known: {list(available)}")
    keys = evaluation_keys(root, tasks) if keys is None else keys
    kept: dict[str, CorpusText] = {}
    dropped: dict[str, int] = {}
    missing: list[str] = []
    for part in parts:
        try:
            texts = list(available[part]())
        except DataError as e:
            if "file not found" not in str(e):
                raise
            log.warning("corpus_part_missing", part=part, reason=str(e))
            missing.append(part)
            continue
        for text in texts:
            text = text.strip()
            norm = " ".join(text.split())
            if not norm or norm in kept:
                continue
            mine = ngram_keys(text)
            whole = "=" + " ".join(_words(text))
            if mine & keys or whole in keys:
                dropped[part] = dropped.get(part, 0) + 1
                continue
            kept[norm] = CorpusText(
                text=norm, part=part, split="validation" if _validation(norm) else "train"
            )
    if not kept:
        raise ValueError(f"no corpus text could be read from {root} (parts missing: {missing})")
    log.info(
        "corpus_built", texts=len(kept), dropped=sum(dropped.values()), eval_keys=len(keys), missing=missing
    )
    return Corpus(texts=tuple(kept.values()), dropped=dropped, eval_keys=len(keys), missing=tuple(missing))


def write_corpus(
    corpus: Corpus,
    out: Path,
    tokenizers: Mapping[str, Callable[[Sequence[str]], list[list[int]]]] = {},
) -> dict[str, Any]:
    """``out/corpus.jsonl`` (one ``{"text", "part", "split"}`` per line) and ``out/counts.json``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "corpus.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        for t in corpus.texts:
            f.write(json.dumps(attrs.asdict(t), ensure_ascii=False) + "\n")
    tmp.replace(out / "corpus.jsonl")
    counts = corpus.counts(tokenizers)
    (out / "counts.json").write_text(json.dumps(counts, indent=1))
    return counts


def read_corpus(path: Path, split: str = "train") -> list[str]:
    """The ``split`` texts of a written ``corpus.jsonl``."""
    if not path.is_file():
        raise DataError(f"{path}: no corpus here (build it with latentwire_hf.data.corpus.write_corpus)")
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [r["text"] for r in rows if r["split"] == split]
