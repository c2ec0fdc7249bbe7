"""What a run builds before its stages, from its experiment alone: its data (both splits, or a transfer
evaluation's), and its wire (the spec, the encoder's standardisation, the reader-anchored start, the
trained parts it starts from). :class:`runner.run.Run` caches these and writes what they return."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from latentwire_core import LatentWire
from latentwire_core.logs import get_logger
from latentwire_core.tasks import Example, compressed_text
from latentwire_hf.config import ModelShapeError
from latentwire_hf.data import DataError, LoadReport, load_train_eval
from latentwire_hf.frozen_lm import HFFrozenLM
from latentwire_hf.pretrained import WireSpec, spec_from_core
from runner.config import Experiment
from runner.folder import RunFolderError

__all__ = ["fit_anchor", "fit_standardization", "init_from", "load_run_data", "run_wire_spec"]

log = get_logger("runner")

FIT_TEXTS = 256
"""Distinct training texts the standardisation and the anchor are fitted on (the first ones, in order)."""


def load_run_data(exp: Experiment) -> tuple[list[Example], list[Example], LoadReport, int]:
    """``(train, evaluation, report, dropped)``: the splits ``[data]`` asks for; in a transfer evaluation
    (``[eval] task``) the other task's evaluation split without any text the wire trains on (``dropped``
    of them). Fewer usable examples than ``[data] min_train`` / ``min_eval`` is a :class:`DataError`."""
    d = exp.data
    data_dir = Path(d.data_dir) if d.data_dir else None

    def load(task: str, train_limit: int) -> tuple[list[Example], list[Example], LoadReport]:
        return load_train_eval(
            task,
            data_dir=data_dir,
            train_limit=train_limit,
            eval_limit=d.eval_limit,
            on_error="skip" if d.on_error == "skip" else "raise",
            eval_sampling="prefix" if d.eval_sampling == "prefix" else "seeded",
            seed=exp.seed,
            eval_split="validation" if d.eval_split == "validation" else "eval",
        )

    train, evaluation, report = load(d.task, d.train_limit)
    dropped = 0
    if exp.eval_task != d.task:  # a transfer evaluation: the other task's split, none of whose texts
        # the wire trained on
        _, evaluation, other = load(exp.eval_task, 0)
        report.skipped += other.skipped
        seen = {compressed_text(e, exp.wire.compress) for e in train}
        kept = [e for e in evaluation if compressed_text(e, exp.eval_compress) not in seen]
        dropped, evaluation = len(evaluation) - len(kept), kept
    for split, got, floor, limit, task in (
        ("eval", len(evaluation), d.min_eval, d.eval_limit, exp.eval_task),
        ("train", len(train), d.min_train, d.train_limit, d.task),
    ):
        if got < floor:
            raise DataError(
                f"{task}: the {split} split has {got} usable examples, below [data].min_{split} = "
                f"{floor} (asked for up to {limit}); nothing was run"
            )
        if got < limit:
            log.warning("fewer_examples_than_asked", task=task, split=split, got=got, asked=limit)
    return train, evaluation, report, dropped


def run_wire_spec(exp: Experiment, readers: Mapping[str, HFFrozenLM], features: Any) -> WireSpec:
    """The run's wire spec (what ``wire.json`` holds) for its loaded readers and feature source.

    Raises:
        ModelShapeError: a latent-adapter layer past a reader's depth.
    """
    w, f = exp.wire, exp.features
    for n, lm in readers.items():  # latent adapters: every chosen layer exists in every reader
        beyond = [i for i in w.latent_adapter_layers if i >= len(lm.decoder_layers)]
        if beyond:
            raise ModelShapeError(
                f"[wire] latent_adapter_layers {beyond}: {n} has {len(lm.decoder_layers)} decoder layers"
            )
    cfg = w.to_core(features.feature_dim, content_tokens=exp.pretrain.steps > 0)
    return spec_from_core(
        cfg,
        features={"source": f.source, "layer": f.layer, "max_length": f.max_length},
        lm_encoder=w.lm_pool.encoder_kwargs(f.layer) if w.encoder.kind == "lm_pool" else None,
        readers={n: (lm.d_model, lm.embed_rms) for n, lm in readers.items()},
        task=exp.data.task,
        compress=w.compress,
        codec=exp.codec,
        seed=exp.seed,
        kv={n: (lm.kv_width, lm.kv_rms) for n, lm in readers.items()}
        if w.inject in ("kv", "coprocessor")
        else None,
    )


def _fit_texts(exp: Experiment, train: Sequence[Example]) -> list[str]:
    return list(dict.fromkeys(compressed_text(e, exp.wire.compress) for e in train))[:FIT_TEXTS]


def fit_standardization(wire: LatentWire, exp: Experiment, train: Sequence[Example], features: Any) -> None:
    """``[wire.lm_pool] standardize``: set the encoder's per-dimension statistics from training texts
    (never an evaluation text). For a fresh wire only: a checkpoint or an ``init_from`` source carries its
    own."""
    encoder: Any = wire.encoder
    if not getattr(encoder, "standardize", False):
        return
    texts = _fit_texts(exp, train)
    n = encoder.fit_standardization(features.features(texts[i : i + 32]) for i in range(0, len(texts), 32))
    log.info("fitted_standardization", texts=len(texts), slots=n)


def fit_anchor(
    wire: LatentWire,
    exp: Experiment,
    train: Sequence[Example],
    features: Any,
    readers: Mapping[str, HFFrozenLM],
) -> dict[str, Any] | None:
    """``[wire] anchor``: fit each reader's adapter to its ``mean_pool`` group means on training texts (never
    an evaluation text); returns the fit per reader (its R^2 among it), or ``None`` without an anchor. For
    a fresh wire only: a checkpoint carries the fitted adapters."""
    if not exp.wire.anchor:
        return None
    from latentwire_core.anchor import anchor_wire

    fit: dict[str, Any] = anchor_wire(
        wire, features, dict(readers), _fit_texts(exp, train), max_text_tokens=exp.eval.max_text_tokens
    )
    return fit


def init_from(
    wire: LatentWire, exp: Experiment, spec: WireSpec, readers: Mapping[str, HFFrozenLM], *, load: bool
) -> dict[str, HFFrozenLM]:
    """``[wire] init_from``: load a trained wire's encoder and readers into ``wire`` (when ``load``: a fresh
    start) and freeze them; returns the readers this run trains (the new ones; all without ``init_from``).

    Raises:
        RunFolderError: the source's encoder differs from this run's, or it has every reader already.
    """
    src = exp.wire.init_from
    if not src:
        return dict(readers)
    from latentwire_hf.pretrained import PretrainedWire

    source = PretrainedWire.from_pretrained(Path(src))
    if source.spec.encoder_identity() != spec.encoder_identity():
        raise RunFolderError(
            f"init_from {src}: its encoder (interlingua, features, trunk) differs from this run's [wire]/[features]"
        )
    old = set(source.spec.readers)
    new = {n: lm for n, lm in readers.items() if n not in old}
    if not new:
        raise RunFolderError(f"init_from {src}: every reader of this run was trained there; nothing to add")
    if load:
        own, theirs = wire.state_dict(), source.wire.state_dict()
        keep = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
        wire.load_state_dict({**own, **keep})
        log.info("initialised_from_wire", source=src, tensors=len(keep), frozen_readers=sorted(old))
    for name, prm in wire.named_parameters():
        parts = name.split(".")
        prm.requires_grad_(not (parts[0] == "encoder" or any(r in parts for r in old)))
    return new
