"""What a long content-pretraining run on general text adds to the pretraining stage: the corpus and its
held-out spans, the count of tokens seen, and the snapshot that lets the run continue on a new machine.

:class:`SnapshotKeeper` is the trainer's ``after_save`` hook: at every checkpoint it writes the wire in
bf16 with the step, the data position, the tokens encoded so far, the CPU / GPU seconds of every sitting
and the curves (:mod:`latentwire_hf.snapshot`). Committing that folder is the operator's (or the device
job's) part: ``git add wires/<name> && git commit``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from latentwire_core.logs import get_logger
from latentwire_core.synthetic import span_windows
from latentwire_hf.data.corpus import build_corpus
from latentwire_hf.data.readers import DataError
from latentwire_hf.pretrained import WireSpec
from latentwire_hf.snapshot import Snapshot, git_commit, write_snapshot

__all__ = ["SnapshotKeeper", "encoded_tokens", "general_corpus", "heldout_spans", "seconds_key"]

log = get_logger(__name__)


def general_corpus(
    data_dir: Path | None, out: Path, tokenizers: Mapping[str, Callable[[Sequence[str]], list[list[int]]]]
) -> tuple[list[str], list[str], dict[str, Any]]:
    """``(train texts, validation texts, counts)`` of the general corpus; its counts go to ``out``."""
    if data_dir is None:
        raise DataError(
            "[pretrain] corpus = 'general' reads the offline data folder: set LATENTWIRE_DATA or [data].data_dir"
        )
    corpus = build_corpus(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = corpus.counts(tokenizers)
    (out / "corpus_counts.json").write_text(json.dumps(counts, indent=1))
    return corpus.split("train"), corpus.split("validation"), counts


def heldout_spans(texts: Sequence[str], *, words: int, n: int, seed: int = 0) -> list[str]:
    """``n`` spans of ``words`` words: every window of the validation texts, drawn with ``seed``."""
    spans = [w for t in texts for w in span_windows(t, words)]
    if len(spans) < n:
        raise DataError(
            f"held-out curves: the validation texts give {len(spans)} spans of {words} words, need {n}"
        )
    return random.Random(f"heldout|{seed}").sample(spans, n)


def encoded_tokens(trainer: Any, objective: Any, features: Any, step: int) -> int:
    """Tokens the encoder read at ``step`` (the feature mask of that step's windows, from the cache),
    times the processes that each drew as many."""
    objective.set_step(step)
    try:
        texts = [objective.items[objective.item_index(i)].encoded for i in trainer.batch_indices(step)]
    finally:
        objective.set_step(trainer.step)
    _, mask = features.features(texts)
    return int(mask.sum()) * int(trainer.acc.num_processes)


def seconds_key() -> str:
    """``gpu_seconds`` on a CUDA machine, else ``cpu_seconds``: what a sitting's training time counts as."""
    return "gpu_seconds" if torch.cuda.is_available() else "cpu_seconds"


class SnapshotKeeper:
    """Writes the run's snapshot after each checkpoint (the trainer's ``after_save`` hook).

    Args:
        dest: the snapshot folder (``wires/<name>``).
        spec: the wire's description.
        prior: the snapshot this run started from (its seconds and tokens are carried on), or None.
        tokens_per_step: ``step -> encoded tokens of that step's batch`` (the data position's cost).
        curves: file name in ``dest`` -> the run file it copies.
        extra: constant fields of ``snapshot.json`` (the run, the experiment file).
    """

    def __init__(
        self,
        *,
        dest: Path,
        spec: WireSpec,
        prior: Snapshot | None,
        tokens_per_step: Callable[[int], int],
        curves: dict[str, Path],
        extra: dict[str, Any],
        start_step: int,
        start_seconds: float,
    ) -> None:
        self.dest, self.spec, self.curves, self.extra = dest, spec, curves, extra
        self.tokens_per_step = tokens_per_step
        meta = prior.meta if prior is not None else {}
        self.base = {k: float(meta.get(k, 0.0)) for k in ("cpu_seconds", "gpu_seconds")}
        self.tokens = int(meta.get("tokens_encoded", 0))
        self.counted_to = int(meta.get("step", 0))
        self.start_seconds = start_seconds
        # one entry per process that trained (a new machine, or a resume on the same one)
        self.sittings = [
            *meta.get("sittings", []),
            {"from_step": start_step, "device": seconds_key(), "commit": git_commit()},
        ]

    def count_to(self, step: int) -> int:
        """Encoded tokens of every step up to ``step`` (each step counted once across sittings)."""
        for s in range(self.counted_to, step):
            self.tokens += self.tokens_per_step(s)
        self.counted_to = max(self.counted_to, step)
        return self.tokens

    def __call__(self, trainer: Any) -> None:
        seconds = dict(self.base)
        seconds[seconds_key()] += max(0.0, float(trainer.train_seconds) - self.start_seconds)
        state = {
            **self.extra,
            "tokens_encoded": self.count_to(int(trainer.step)),
            "windows_seen": int(trainer.step) * trainer.cfg.batch_size * trainer.cfg.grad_accum,
            "batch_size": trainer.cfg.batch_size * trainer.cfg.grad_accum,
            "data_position": {"seed": trainer.cfg.seed, "next_step": int(trainer.step)},
            **{k: round(v, 1) for k, v in seconds.items()},
            "sittings": self.sittings,
            "commit": self.sittings[-1]["commit"],  # the code this sitting loaded, not a later checkout
        }
        write_snapshot(
            self.dest,
            wire=trainer.acc.unwrap_model(trainer.wire),
            spec=self.spec,
            step=int(trainer.step),
            state=state,
            curves=self.curves,
        )
        log.info(
            "snapshot_written", path=str(self.dest), step=int(trainer.step), tokens=state["tokens_encoded"]
        )
