"""Loading a task's examples as one :class:`Example` schema: one split, or both with train and evaluation
disjoint (checked on ids and source texts) and the evaluated ones drawn with the seed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from latentwire_core.logs import get_logger
from latentwire_core.tasks import Example, get_task
from latentwire_hf.data.readers import LoadReport, OnError, Split
from latentwire_hf.data.sources import bundled, from_hub, offline
from latentwire_hf.data.splits import check_disjoint, draw

__all__ = ["data_dir_from_env", "load_examples", "load_train_eval"]

log = get_logger("latentwire_hf.data")


def data_dir_from_env() -> Path | None:
    """``$LATENTWIRE_DATA``, else ``../shared/data`` beside the working folder when it exists (where the
    README's commands find the offline files), else None (the ``datasets`` hub)."""
    env = os.environ.get("LATENTWIRE_DATA")
    if env:
        return Path(env)
    beside = Path.cwd().parent / "shared" / "data"
    return beside if beside.is_dir() else None


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
        items = bundled(task, split, root, on_error, report)
    else:
        items = offline(task, split, root, on_error, report) if root is not None else from_hub(task, split)
    report.n_rows += len(items)
    return items[:limit] if limit is not None else items


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
    evaluation = draw(full_eval, eval_limit, eval_sampling, seed)
    check_disjoint(train, evaluation)
    return train, evaluation, report
