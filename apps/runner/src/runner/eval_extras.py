"""What the evaluate stage needs beside the methods themselves: each example's budget M_i, model
folders for the methods that load a model by name, and what it adds to its predictions and metrics
beyond the methods' own scores: the latent's message size at every precision, the wire's summary,
the soft tokens' norm diagnostics and, for SQuAD v2, the abstain-always reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import torch

from latentwire_core import LatentWire, QuantWireCodec
from latentwire_core.config import WireCodecConfig
from latentwire_core.message import FORMAT_VERSION, HEADER_BYTES, message_bytes, receive
from latentwire_core.tasks import Example, TaskSpec, compressed_text
from latentwire_eval.diagnostics import embedding_diagnostics
from latentwire_eval.metrics import metric_fns
from latentwire_hf.models import KNOWN_MODELS, cache_root, load_causal_lm
from runner.config import Experiment, WireSection

__all__ = [
    "add_wire_bytes",
    "embedding_report",
    "example_budgets",
    "resolve_model",
    "squad_v2_references",
    "wire_summary",
]

PRECISIONS = ("fp16", "int8", "int4")


def example_budgets(
    examples: Sequence[Example], wire: LatentWire, features: Any, spec: WireSection
) -> dict[str, int]:
    """Soft tokens per example (``M_i``, the wire's own counts): the budget every method gets for it."""
    out: dict[str, int] = {}
    for i in range(0, len(examples), 64):
        chunk = examples[i : i + 64]
        _, mask = features.features([compressed_text(e, spec.compress) for e in chunk])
        out.update(zip([e.id for e in chunk], wire.counts(mask).tolist(), strict=True))
    return out


def resolve_model(name: str) -> Path:
    """A model folder for a name: a registry name is converted into the cache once; else the path."""
    folder = cache_root() / "models" / name
    if name in KNOWN_MODELS and not folder.is_dir():
        load_causal_lm(name)
    return folder if folder.is_dir() else Path(name)


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


def wire_summary(exp: Experiment, budgets: Mapping[str, int], preds: pd.DataFrame) -> dict[str, Any]:
    w, enc = exp.wire, exp.wire.encoder
    mean_m = float(np.mean(list(budgets.values())))
    return {
        "n_tokens": enc.n_tokens if enc.ratio <= 0 else mean_m,
        "ratio": enc.ratio,
        "compress": w.compress,
        "encoder": enc.kind,
        "d_z": enc.d_z,
        "precision": exp.codec.precision,
        "bytes": {p: float(preds[f"latent_wire_bytes_{p}"].mean()) for p in PRECISIONS},
        "message_format": FORMAT_VERSION,
        "header_bytes": HEADER_BYTES,  # of every message's bytes above: header + CRC32
    }


@torch.no_grad()
def embedding_report(
    evaluation: Sequence[Example],
    wire: LatentWire,
    codec: QuantWireCodec,
    budgets: Mapping[str, int],
    *,
    features: Any,
    lms: Mapping[str, Any],
    compress: str,
    device: str,
    seed: int,
    fingerprint: bytes,
) -> dict[str, Any]:
    """Per reader: soft-token RMS and nearest-vocabulary cosine, before and after calibration,
    on the first 64 evaluation examples as the reader receives them (after the codec)."""
    chunk = list(evaluation[:64])
    feats, mask = features.features([compressed_text(e, compress) for e in chunk])
    counts = [budgets[e.id] for e in chunk]
    rx = receive(wire.send(feats, mask, codec, fingerprint, counts))  # the message path, as a reader gets it
    out: dict[str, Any] = {"n_examples": len(chunk), "calibration": wire.cfg.calibration}
    for name, lm in lms.items():
        refine = wire.refiner if wire.refiner is not None else (lambda z: z)
        raw = [wire.adapters(refine(r[None].to(device)), name)[0] for r in rx]
        soft = [wire.to_model(r[None].to(device), name)[0] for r in rx]
        out[name] = {
            "received": embedding_diagnostics(soft, lm.embed, lm.vocab_size, lm.decode, seed=seed),
            "before_calibration": embedding_diagnostics(raw, lm.embed, lm.vocab_size, lm.decode, seed=seed),
        }
    return out


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
