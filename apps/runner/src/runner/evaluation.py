"""What the evaluate stage adds to the evaluation pipeline (latentwire_eval.pipeline) that only a run has:
each example's budget M_i from its wire, model folders for the methods that load a model by name, the
wire's summary and the soft tokens' norm diagnostics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentwire_core import LatentWire, QuantWireCodec
from latentwire_core.message import FORMAT_VERSION, HEADER_BYTES, frame_bytes, receive
from latentwire_core.tasks import Example, compressed_text
from latentwire_eval.diagnostics import embedding_diagnostics
from latentwire_eval.pipeline import PRECISIONS
from latentwire_hf.models import KNOWN_MODELS, cache_root, load_causal_lm
from runner.config import Experiment, WireSection

__all__ = [
    "embedding_report",
    "example_budgets",
    "resolve_model",
    "wire_summary",
]


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
        "message_format": FORMAT_VERSION if exp.codec.frame == "v1" else 2,
        # of every message's bytes above: the frame (v1: header + CRC32; v2: marker, fingerprint prefix, M, CRC-16)
        "header_bytes": HEADER_BYTES if exp.codec.frame == "v1" else frame_bytes("v2", round(mean_m)),
    }


@torch.no_grad()
def embedding_report(
    evaluation: Sequence[Example],
    wire: LatentWire,
    codec: QuantWireCodec,
    budgets: Mapping[str, int],
    *,
    features: Any,
    readers: Mapping[str, Any],
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
    msgs = wire.send(feats, mask, codec, fingerprint, counts)  # the message path, as a reader gets it
    rx = receive(msgs, d_z=wire.cfg.interlingua.d_z, codec=codec)
    out: dict[str, Any] = {"n_examples": len(chunk), "calibration": wire.cfg.calibration}
    for name, lm in readers.items():
        refine = wire.refiner if wire.refiner is not None else (lambda z: z)
        raw = [wire.adapters(refine(r[None].to(device)), name)[0] for r in rx]
        soft = [wire.to_model(r[None].to(device), name)[0] for r in rx]
        out[name] = {
            "received": embedding_diagnostics(soft, lm.embed, lm.vocab_size, lm.decode, seed=seed),
            "before_calibration": embedding_diagnostics(raw, lm.embed, lm.vocab_size, lm.decode, seed=seed),
        }
    return out
