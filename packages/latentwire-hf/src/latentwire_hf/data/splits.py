"""The split policy: carving a split from a file that has only one, keeping train and evaluation
disjoint, and drawing the evaluated examples."""

from __future__ import annotations

import random

from latentwire_core.tasks import Example
from latentwire_hf.data.readers import DataError, Split

__all__ = ["carve", "check_disjoint", "draw"]


def carve(items: list[Example], split: Split, *, frac: float, seed: int) -> list[Example]:
    """``split``'s part of a file that has one split only: a seeded ``frac`` of it trains, the rest evaluates."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    cut = int(len(items) * frac)
    keep = order[:cut] if split == "train" else order[cut:]
    return [items[i] for i in sorted(keep)]


def check_disjoint(train: list[Example], evaluation: list[Example]) -> None:
    """Raise if any example id or source text appears in both splits."""
    ids = {e.id for e in train} & {e.id for e in evaluation}
    texts = {e.source for e in train} & {e.source for e in evaluation}
    if ids or texts:
        sample = sorted(ids)[:3] or [t[:60] for t in sorted(texts)[:3]]
        raise DataError(f"train and eval overlap in {len(ids)} ids / {len(texts)} texts, e.g. {sample}")


def draw(examples: list[Example], limit: int | None, sampling: str, seed: int) -> list[Example]:
    """``limit`` examples: the first ones (``prefix``) or drawn with ``seed``, kept in file order."""
    if limit is None or limit >= len(examples):
        return examples
    if sampling == "prefix":
        return examples[:limit]
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]
