"""Evaluation rows and examples the eval tests share (a fake reader's SST-2 sentences, two readers' rows)."""

from __future__ import annotations

import pandas as pd

from latentwire_core.tasks import Example
from latentwire_eval.methods import NO_READER


def qa_examples(n: int = 6) -> list[Example]:
    """``n`` SQuAD-shaped questions, each its own context; every other one shares a group (article)."""
    return [
        Example(
            id=f"q{i}",
            task="squad",
            source=f"Question: who {i}?\nContext: Ann {i} met Bob {i} in town {i}.",
            question=f"who {i}?",
            context=f"Ann {i} met Bob {i} in town {i}.",
            answers=(f"Bob {i}",),
            group=f"g{i % 2}",
        )
        for i in range(n)
    ]


def sst_examples(n: int, offset: int = 0) -> list[Example]:
    return [
        Example(
            id=f"s{i + offset}",
            task="sst2",
            source=f"movie {i} was {'good' if i % 2 else 'bad'}",
            label=i % 2,
        )
        for i in range(n)
    ]


def _row(
    example: str, model: str, method: str, accuracy: float, confidence: float, **extra: object
) -> dict[str, object]:
    base: dict[str, object] = {
        "example_id": example,
        "model": model,
        "method": method,
        "accuracy": accuracy,
        "confidence": confidence,
        "slot_tokens": 0,
        "wire_bytes": 0,
        "prompt_utf8_bytes": 50,
        "latency_s": 0.1,
        "output": "x",
    }
    return base | extra


def two_reader_rows() -> pd.DataFrame:
    """40 SST-2 examples: readers ``a`` and ``b`` on ``latent`` and ``text``, and a ``linear_probe`` reference."""
    rows = []
    for i in range(40):
        gold = str(i % 2)
        for model, right, conf in (("a", i % 3 != 0, 0.9 if i % 3 else 0.6), ("b", i % 3 == 0, 0.8)):
            rows.append(
                _row(f"e{i}", model, "latent", float(right), conf, slot_tokens=8, wire_bytes=100, gold=gold)
            )
            rows.append(_row(f"e{i}", model, "text", float(i % 2 == 0), 0.5, slot_tokens=20, gold=gold))
        rows.append(_row(f"e{i}", NO_READER, "linear_probe", 1.0, 0.9, latency_s=0.0, gold=gold))
    return pd.DataFrame(rows)
