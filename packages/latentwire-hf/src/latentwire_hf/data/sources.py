"""Where each task's examples come from: one :class:`Source` record per task with offline files (its
files, parser, split policy and hub dataset), the tasks generated here (``recall``, ``reconstruct``), and
the JSON Lines tasks a :class:`~latentwire_core.tasks.TaskSpec` declares with its own files.

Every loader reads the real files of docs/design.md "Models and data that work with no network" in
place (never copied); without a data folder the ``datasets`` hub is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from latentwire_core.synthetic import recall_split, span_windows
from latentwire_core.tasks import Example, TaskSpec, get_task
from latentwire_hf.data.readers import (
    DataError,
    LoadReport,
    OnError,
    Reader,
    Split,
    agnews_example,
    gsm8k_example,
    hotpot_example,
    parse_agnews,
    parse_hotpot,
    parse_jsonl,
    parse_squad,
    parse_sst2,
    parse_trec,
    row_example,
    squad_example,
    sst2_example,
    trec_example,
    xsum_example,
)
from latentwire_hf.data.splits import carve

__all__ = ["SOURCES", "Source", "bundled", "from_hub", "offline"]


@attrs.frozen(kw_only=True)
class Source:
    """A task's offline files and hub dataset.

    Args:
        train, eval: file paths under the data folder (the same file when ``carve`` splits one).
        parse: ``(reader, split) -> examples`` of one file.
        carve: the share of a single-split file that trains (seed 0; the rest evaluates), or ``None``.
        hub: ``(dataset, config, train split, eval split)`` of the ``datasets`` hub.
        hub_row: ``(row, index) -> Example`` for a hub row.
    """

    train: str
    eval: str
    parse: Callable[[Reader, Split], Iterable[Example]]
    hub: tuple[str, str | None, str, str]
    hub_row: Callable[[dict[str, Any], int], Example]
    carve: float | None = None


def _squad_v2(r: Reader, split: Split) -> Iterable[Example]:
    """Half of dev offline: the first 12 articles train, the rest evaluate (no context in both)."""
    return parse_squad(r, "squad_v2", slice(0, 12) if split == "train" else slice(12, None))


SOURCES: dict[str, Source] = {
    "sst2": Source(
        train="sst2/train.tsv",
        eval="sst2/dev.tsv",
        parse=lambda r, _: parse_sst2(r),
        hub=("glue", "sst2", "train", "validation"),
        hub_row=lambda row, i: sst2_example(row, f"sst2-{i}"),
    ),
    "agnews": Source(  # only the official test split exists offline: split it (seed 0), documented
        train="agnews/test.csv",
        eval="agnews/test.csv",
        carve=0.8,
        parse=lambda r, _: parse_agnews(r),
        hub=("ag_news", None, "train", "test"),
        hub_row=lambda row, i: agnews_example(row, f"agnews-{i}"),
    ),
    "trec": Source(
        train="trec/train_5500.label",
        eval="trec/TREC_10.label",
        parse=lambda r, _: parse_trec(r),
        hub=("trec", None, "train", "test"),
        hub_row=lambda row, i: trec_example(row, f"trec-{i}"),
    ),
    "squad": Source(
        train="squad/train-v1.1-44articles.json",
        eval="squad/dev-v1.1.json",
        parse=lambda r, _: parse_squad(r, "squad"),
        hub=("squad", None, "train", "validation"),
        hub_row=lambda row, _: squad_example(row, "squad"),
    ),
    "squad_v2": Source(
        train="squad_v2/dev-v2.0-half.json",
        eval="squad_v2/dev-v2.0-half.json",
        parse=_squad_v2,
        hub=("squad_v2", None, "train", "validation"),
        hub_row=lambda row, _: squad_example(row, "squad_v2"),
    ),
    "hotpotqa": Source(
        train="hotpotqa/dev-distractor-100.json",
        eval="hotpotqa/dev-distractor-100.json",
        carve=0.7,
        parse=lambda r, _: parse_hotpot(r),
        hub=("hotpot_qa", "distractor", "train", "validation"),
        hub_row=lambda row, _: hotpot_example(row, str(row["id"])),
    ),
    "gsm8k": Source(
        train="gsm8k/train.jsonl",
        eval="gsm8k/test.jsonl",
        parse=lambda r, _: parse_jsonl(r, gsm8k_example),
        hub=("gsm8k", "main", "train", "test"),
        hub_row=gsm8k_example,
    ),
    "xsum": Source(
        train="xsum/test-1000-a.jsonl",
        eval="xsum/test-1000-b.jsonl",
        parse=lambda r, _: parse_jsonl(r, xsum_example),
        hub=("xsum", None, "train", "test"),
        hub_row=xsum_example,
    ),
}


def offline(task: str, split: Split, root: Path, on_error: OnError, report: LoadReport) -> list[Example]:
    """``task``'s ``split`` from the data folder ``root``."""
    spec = get_task(task)
    if spec.data is not None:  # a JSON Lines task declared by its TaskSpec
        path = spec.data.train if split == "train" else spec.data.eval
        return list(
            parse_jsonl(Reader(root / path, on_error, report), lambda row, n: row_example(task, row, n))
        )
    src = SOURCES[task]
    reader = Reader(root / (src.train if split == "train" else src.eval), on_error, report)
    items = list(src.parse(reader, split))
    return carve(items, split, frac=src.carve, seed=0) if src.carve is not None else items


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host answers on its HTTPS port within ``timeout`` seconds (``datasets`` itself
    retries an unreachable hub for about 25 s before failing with a message that names no setting)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def from_hub(task: str, split: Split) -> list[Example]:  # pragma: no cover - needs a reachable hub
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise DataError(
            f"no data directory for {task!r} (set LATENTWIRE_DATA or [data].data_dir) and the hub is offline"
        )
    if not _hub_reachable():
        raise DataError(
            f"no data directory for {task!r} and the datasets hub (huggingface.co) is unreachable: set "
            "LATENTWIRE_DATA or [data].data_dir to the offline data folder"
        )
    import datasets

    spec = get_task(task)
    if spec.data is not None and spec.data.hub is None:
        raise DataError(f"{task}: no data folder (set LATENTWIRE_DATA) and no hub dataset declared")
    name, config, tr, ev = spec.data.hub if spec.data is not None and spec.data.hub else SOURCES[task].hub
    ds = datasets.load_dataset(name, config, split=tr if split == "train" else ev)
    if spec.data is not None:
        return [row_example(task, row, i) for i, row in enumerate(ds)]
    return [SOURCES[task].hub_row(row, i) for i, row in enumerate(ds)]


def bundled(
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

    def rd(rel: str) -> Reader:
        return Reader(root / rel, on_error, report)

    if split == "eval":
        texts = [e.context for e in parse_squad(rd("squad/dev-v1.1.json"), "squad")]
        spans = [w[0] for w in (span_windows(t, words) for t in dict.fromkeys(texts)) if w]
    else:
        texts = [e.context for e in parse_squad(rd("squad/train-v1.1-44articles.json"), "squad")]
        xsum = root / "xsum" / "test-1000-a.jsonl"
        if xsum.is_file():  # the tiny test slices have no XSum
            texts += [e.source for e in parse_jsonl(rd("xsum/test-1000-a.jsonl"), xsum_example)]
        spans = [s for t in dict.fromkeys(texts) for s in span_windows(t, words)]
    return [
        Example(id=f"{spec.name}-{split}-{i}", task=spec.name, source=s, answers=(s,))
        for i, s in enumerate(dict.fromkeys(spans))
    ]
