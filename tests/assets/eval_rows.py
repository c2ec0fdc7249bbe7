"""Evaluation rows and examples the eval tests share (a fake reader's SST-2 sentences, two readers' rows)."""

from __future__ import annotations

import pandas as pd

from latentwire_core.tasks import Example
from latentwire_eval.methods import NO_READER


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


def two_reader_rows() -> pd.DataFrame:
    """40 SST-2 examples: readers ``a`` and ``b`` on ``latent`` and ``text``, and a ``linear_probe`` reference."""
    rows = []
    for i in range(40):
        gold = i % 2
        for model, right, conf in (("a", i % 3 != 0, 0.9 if i % 3 else 0.6), ("b", i % 3 == 0, 0.8)):
            rows.append(
                {
                    "example_id": f"e{i}",
                    "model": model,
                    "method": "latent",
                    "accuracy": float(right),
                    "confidence": conf,
                    "slot_tokens": 8,
                    "wire_bytes": 100,
                    "prompt_utf8_bytes": 50,
                    "latency_s": 0.1,
                    "output": "x",
                    "gold": str(gold),
                }
            )
            rows.append(
                {
                    "example_id": f"e{i}",
                    "model": model,
                    "method": "text",
                    "accuracy": float(i % 2 == 0),
                    "confidence": 0.5,
                    "slot_tokens": 20,
                    "wire_bytes": 0,
                    "prompt_utf8_bytes": 50,
                    "latency_s": 0.1,
                    "output": "x",
                    "gold": str(gold),
                }
            )
        rows.append(
            {
                "example_id": f"e{i}",
                "model": NO_READER,
                "method": "linear_probe",
                "accuracy": 1.0,
                "confidence": 0.9,
                "slot_tokens": 0,
                "wire_bytes": 0,
                "prompt_utf8_bytes": 50,
                "latency_s": 0.0,
                "output": "x",
                "gold": str(gold),
            }
        )
    return pd.DataFrame(rows)
