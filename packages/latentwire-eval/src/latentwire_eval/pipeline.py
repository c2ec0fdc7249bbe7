"""The evaluation pipeline: every method on every reader, then the references and the combined methods, the
latent's message sizes, and the metrics with their CIs and paired tests.

    preds, metrics = evaluate(ctx, evaluation, readers, ["text", "no_context", "latent", "latent_shuffled"])

The runner's evaluate stage is this call plus what only a run has (its wire's summary and the soft
tokens' diagnostics). A ``partial_dir`` keeps each finished (reader, method) as a parquet file, so an
interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from latentwire_core.codec import QuantWireCodec
from latentwire_core.config import WireCodecConfig
from latentwire_core.logs import get_logger
from latentwire_core.message import message_bytes
from latentwire_core.names import name_key
from latentwire_core.ports import FrozenLM
from latentwire_core.tasks import Example, TaskSpec
from latentwire_eval.analysis import compute_metrics
from latentwire_eval.evaluate import evaluate_method
from latentwire_eval.gencache import GenerationCache
from latentwire_eval.methods import METHODS, EvalContext
from latentwire_eval.metrics import metric_fns

__all__ = ["PRECISIONS", "add_wire_bytes", "evaluate", "squad_v2_references"]

PRECISIONS = ("fp16", "int8", "int4")
"""The codec precisions whose message size every latent row records (``latent_wire_bytes_<p>``)."""

log = get_logger("eval")


def evaluate(
    ctx: EvalContext,
    evaluation: Sequence[Example],
    readers: Mapping[str, FrozenLM],
    methods: Sequence[str],
    *,
    batch_size: int = 16,
    gold_scores: bool = True,
    n_resamples: int = 2000,
    partial_dir: Path | None = None,
    generation_cache: Callable[[str], GenerationCache | None] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score ``methods`` on ``evaluation`` for every reader; returns ``(predictions, metrics)``.

    Args:
        ctx: what the methods may use (the training split, budgets, the wire, its codec, ...).
        evaluation: the examples scored, in order.
        readers: reader name (the wire's adapter name; rows carry the model's own ``name``) -> model.
        methods: names from :data:`~latentwire_eval.methods.METHODS` (validate them first with
            :func:`~latentwire_eval.methods.check_methods`).
        batch_size, gold_scores: as :func:`~latentwire_eval.evaluate.evaluate_method` takes them.
        n_resamples: bootstrap resamples of every CI and paired test (seeded by ``ctx.seed``).
        partial_dir: where each finished (reader, method) is kept; ``None``: nothing is kept.
        generation_cache: reader name -> its cache of frozen answers (:mod:`.gencache`), or ``None``.
    """
    kinds = {m: METHODS.get(m) for m in methods}
    per_reader = [m for m, k in kinds.items() if k.scope == "reader"]
    confidence_of = {k.confidence_of for k in kinds.values() if k.confidence_of}
    if partial_dir is not None:
        partial_dir.mkdir(parents=True, exist_ok=True)
    frames: list[pd.DataFrame] = []
    bar = tqdm(total=len(readers) * len(per_reader) * len(evaluation), desc="evaluate", leave=False)
    for name, lm in readers.items():
        for method_name in per_reader:
            out = partial_dir / f"{name_key(name)}__{method_name}.parquet" if partial_dir else None
            done = _finished(out)
            if done is not None:  # finished before an interruption
                frames.append(done)
                bar.update(len(evaluation))
                continue
            method = kinds[method_name](ctx, name, lm)
            method.fit()
            res = evaluate_method(
                method.prompt,
                evaluation,
                method.slots,
                method=method_name,
                batch_size=batch_size,
                gold_scores=gold_scores,
                own_confidence=method_name in confidence_of,
                progress=bar.update,
                encoded=method.read,
                cache=generation_cache(name) if generation_cache else None,
                replayed=method.replayed_seconds,
            )
            df = pd.DataFrame(res)
            if out is not None:
                df.to_parquet(out.with_suffix(".tmp"), index=False)
                os.replace(out.with_suffix(".tmp"), out)
            frames.append(df)
            log.info(
                "evaluated",
                model=name,
                method=method_name,
                n=len(df),
                **{k: round(float(df[k].mean()), 4) for k in ("accuracy", "em", "f1") if k in df},
            )
    bar.close()
    frames += [k.reference_rows(ctx, evaluation) for k in kinds.values() if k.scope == "reference"]
    preds = pd.concat(frames, ignore_index=True)
    combined = [k.combine(preds, ctx.task) for k in kinds.values() if k.scope == "combined"]
    if combined:
        preds = pd.concat([preds, *combined], ignore_index=True)
    if ctx.codec is not None:
        add_wire_bytes(preds, ctx.budgets, ctx.codec.cfg, d_z=int(ctx.options.get("d_z", 0)))
    metrics = compute_metrics(
        preds,
        task=ctx.task,
        eval_labels=[e.label for e in evaluation],
        n_resamples=n_resamples,
        seed=ctx.seed,
    )
    if ctx.task.scoring == "squad_v2":
        metrics |= squad_v2_references(ctx.task, evaluation)
    return preds, metrics


def _finished(path: Path | None) -> pd.DataFrame | None:
    """A (reader, method) kept by an interrupted evaluation; a torn file is removed and redone."""
    if path is None or not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises its own kinds for a torn file
        log.warning("partial_result_unreadable_redoing", file=str(path), error=f"{type(e).__name__}: {e}")
        path.unlink()
        return None


def add_wire_bytes(
    preds: pd.DataFrame, budgets: Mapping[str, int], codec: WireCodecConfig, *, d_z: int
) -> None:
    """Columns ``n_tokens`` (each example's M_i) and the latent's whole message at every precision."""
    m_i = preds["example_id"].map(budgets)
    preds["n_tokens"] = m_i
    for prec in PRECISIONS:  # the latent's wire at every precision, scales included
        c = QuantWireCodec(attrs.evolve(codec, precision=prec))
        sizes = {m: message_bytes(c, n_tokens=int(m), d_z=d_z) for m in set(budgets.values())}
        preds[f"latent_wire_bytes_{prec}"] = m_i.map(sizes)


def squad_v2_references(task: TaskSpec, evaluation: Sequence[Example]) -> dict[str, Any]:
    """How the no-answer phrase is scored, and the reference every v2 number must beat: abstain always."""
    fns = metric_fns(task)
    return {
        "no_answer_phrase": (
            f"predictions equal to {task.no_answer!r} (normalised) are scored as the empty answer"
        ),
        "always_abstain": {
            name: float(np.mean([fn("", task.golds(e)) for e in evaluation])) for name, fn in fns.items()
        }
        | {"n": len(evaluation), "no_answer_share": float(np.mean([not e.answers for e in evaluation]))},
    }
