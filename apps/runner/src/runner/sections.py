"""The experiment file's tables as frozen attrs classes: ``[data]``, ``[models]``, ``[features]``, ``[wire]``
(with the migration of its old flat keys), ``[eval]`` and the :class:`Experiment` that holds them with
the packages' ``[codec]``, ``[pretrain]`` and ``[train]``. Each validates its own values; the
:class:`Experiment` checks what involves two tables. :mod:`runner.config` reads a file into them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from latentwire_core._validators import non_negative, one_of, positive, registered
from latentwire_core.config import (
    ADAPTERS,
    CALIBRATIONS,
    INJECT,
    InterlinguaConfig,
    LatentWireConfig,
    WireCodecConfig,
    encoder_kind,
)
from latentwire_core.tasks import COMPRESS, TASKS
from latentwire_eval.methods import METHODS, check_methods
from latentwire_hf.config import LMPoolConfig, PretrainConfig, TrainConfig

__all__ = [
    "LEGACY_WIRE_KEYS",
    "RENAMED_WIRE_TABLES",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "Experiment",
    "FeaturesConfig",
    "ModelsConfig",
    "WireSection",
    "legacy_wire_key",
    "migrate_wire",
    "wire_key_now",
]


class ConfigError(ValueError):
    """A bad experiment file: the message names the file and the key."""


def _task(_i: Any, a: attrs.Attribute[Any], v: str) -> None:
    if v not in TASKS:
        raise ValueError(f"{a.name} must be one of {sorted(TASKS)}, got {v!r}")


def _task_or_empty(i: Any, a: attrs.Attribute[Any], v: str) -> None:
    if v:
        _task(i, a, v)


def _layer_indices(_i: Any, a: attrs.Attribute[Any], v: tuple[int, ...]) -> None:
    if any(i < 0 for i in v) or len(set(v)) != len(v):
        raise ValueError(f"{a.name} must be distinct layer indices >= 0, got {list(v)}")


def _methods(_i: Any, a: attrs.Attribute[Any], v: tuple[str, ...]) -> None:
    bad = [m for m in v if m not in METHODS]
    if bad or not v:
        raise ValueError(f"{a.name} must be a non-empty list of {METHODS.names()}, got {list(v)!r}")


@attrs.frozen(kw_only=True)
class DataConfig:
    task: str = attrs.field(default="sst2", validator=_task)
    data_dir: str = ""  # empty: $LATENTWIRE_DATA, else the datasets hub
    train_limit: int = attrs.field(default=2000, validator=positive)
    eval_limit: int = attrs.field(default=400, validator=positive)
    on_error: str = attrs.field(default="raise", validator=one_of("raise", "skip"))
    # draw eval_limit examples across the whole split with the seed, or take the file's first ones
    eval_sampling: str = attrs.field(default="seeded", validator=one_of("seeded", "prefix"))
    # "eval": the task's evaluation split (SST-2 / SQuAD dev); "validation": held-out training
    # examples after the first train_limit (disjoint in ids, texts and articles), for choosing
    # hyper-parameters or a wire without fitting the evaluation split
    eval_split: str = attrs.field(default="eval", validator=one_of("eval", "validation"))
    min_eval: int = attrs.field(default=1, validator=positive)  # refuse a run that gets fewer eval examples
    min_train: int = attrs.field(default=1, validator=positive)  # ... or fewer training examples


@attrs.frozen(kw_only=True)
class ModelsConfig:
    names: tuple[str, ...] = ("smollm2-135m", "gemma3-270m")
    device: str = attrs.field(default="auto", validator=one_of("auto", "cpu", "cuda"))

    def __attrs_post_init__(self) -> None:
        if not self.names:
            raise ValueError("names must list at least one model")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"names has duplicates: {list(self.names)}")


@attrs.frozen(kw_only=True)
class FeaturesConfig:
    source: str = "minilm-l6"
    layer: int = -1
    max_length: int = attrs.field(default=256, validator=positive)


@attrs.frozen(kw_only=True)
class WireSection:
    """``[wire]``: what is compressed, the shared encoder, the readers' adapters and calibration.

    ``[wire.encoder]`` is core's :class:`~latentwire_core.config.InterlinguaConfig` (``kind``,
    ``n_tokens``, ``ratio``, ``d_z``, ``n_heads``, ``mlp_ratio``, ``dropout``); its ``d_in`` is not a
    key: :meth:`to_core` sets it to the ``[features]`` width. ``ratio = x > 0`` gives each example
    ``M = ceil(n / x)`` soft tokens for its ``n`` compressed tokens, at most ``n_tokens``; ``ratio =
    0`` keeps M fixed at ``n_tokens``. An encoder kind with options of its own reads them from the table
    named after it: ``[wire.lm_pool]`` is ``latentwire_hf``'s :class:`~latentwire_hf.config.LMPoolConfig`
    (``[wire.lm_encoder]`` in older files), read when ``encoder.kind = "lm_pool"``: it trains ``n_layers``
    layers of the ``[features]`` LM above its frozen first ``features.layer`` layers. What a check needs
    to know of a kind (fixed M, LM features) is its :class:`~latentwire_core.config.EncoderKind`.
    ``compress = "context"`` keeps a QA question in plain text and puts only the context on the wire.
    """

    compress: str = attrs.field(default="source", validator=one_of(*COMPRESS))
    encoder: InterlinguaConfig = attrs.field(factory=InterlinguaConfig)
    lm_pool: LMPoolConfig = attrs.field(factory=LMPoolConfig)
    adapter: str = attrs.field(default="mlp", validator=registered(ADAPTERS))
    # the MLP adapter's hidden width as a multiple of the reader's width, and a LayerNorm on its output
    adapter_hidden_mult: int = attrs.field(default=2, validator=positive)
    adapter_out_norm: bool = False
    calibration: str = attrs.field(default="rms", validator=registered(CALIBRATIONS))
    # a trained run folder (or saved wire): its encoder and its readers' adapters are loaded and
    # frozen; only the readers new to this run are trained (adding a reader with the encoder frozen)
    init_from: str = ""
    # where the readers receive the slots: "embeddings" (soft input tokens), "kv" (deep prefix: every
    # layer's keys and values per slot) or "coprocessor" (a deep prefix a gated network rewrites after
    # reading the reader's cached prompt); the message on the wire is the same Z
    inject: str = attrs.field(default="embeddings", validator=one_of(*INJECT))
    # reader-anchored start: a fresh wire's adapters begin as the least-squares map from the slots to each
    # reader's mean_pool group means on training texts, their residual at zero (latentwire_core.anchor)
    anchor: bool = False
    # latent refiner: gated Transformer blocks over the received Z, before the adapters (0: none)
    refiner_layers: int = attrs.field(default=0, validator=non_negative)
    # latent adapters: gated cross-attention from these decoder layers of each reader (indices in that
    # reader) to its slot; [] for none (latentwire_core.latent_adapters)
    latent_adapter_layers: tuple[int, ...] = attrs.field(default=(), validator=_layer_indices)

    def __attrs_post_init__(self) -> None:
        if self.anchor and self.adapter_out_norm:
            raise ValueError("anchor = true needs adapter_out_norm = false (a norm would undo the fit)")
        if self.anchor and (
            self.inject != "embeddings" or self.adapter not in ("linear", "mlp") or self.init_from
        ):
            raise ValueError(
                "anchor = true needs inject = 'embeddings', adapter = 'linear' or 'mlp' and no init_from "
                f"(got inject = {self.inject!r}, adapter = {self.adapter!r}, init_from = {self.init_from!r}): "
                "it fits each reader's adapter to that reader's mean_pool input embeddings on a fresh wire"
            )
        if self.latent_adapter_layers and self.inject != "embeddings":
            raise ValueError(
                "latent_adapter_layers needs inject = 'embeddings' (the adapters read the slot's soft tokens)"
            )
        if self.inject in ("kv", "coprocessor") and self.adapter != "linear":
            raise ValueError(
                f"inject = {self.inject!r} needs adapter = 'linear', got {self.adapter!r} (a reader's deep prefix has "
                "thousands of numbers per slot; an MLP at that width would hold hundreds of millions of weights)"
            )
        if self.init_from and not (Path(self.init_from) / "wire.json").is_file():
            raise ValueError(
                f"init_from: {self.init_from}/wire.json not found (a run folder or a saved wire)"
            )
        if self.lm_pool.standardize and self.encoder.kind != "lm_pool":
            raise ValueError(f"lm_pool.standardize needs encoder.kind = 'lm_pool', got {self.encoder.kind!r}")
        if self.encoder.ratio > 0 and encoder_kind(self.encoder.kind).fixed_m:
            raise ValueError(
                f"encoder.ratio needs a pooling encoder (chunk_mean or lm_pool); the {self.encoder.kind} has "
                "fixed M"
            )

    def to_core(self, d_in: int, *, content_tokens: bool = False) -> LatentWireConfig:
        return LatentWireConfig(
            interlingua=attrs.evolve(self.encoder, d_in=d_in),
            adapter_kind=self.adapter,
            adapter_hidden_mult=self.adapter_hidden_mult,
            adapter_out_norm=self.adapter_out_norm,
            calibration=self.calibration,
            content_tokens=content_tokens,
            inject=self.inject,
            refiner_layers=self.refiner_layers,
            latent_adapter_layers=self.latent_adapter_layers,
        )


# The flat [wire] layout of older run folders and experiment files, and where
# each of its keys lives now. migrate_wire reads it into today's nested tables.
LEGACY_WIRE_KEYS: dict[str, tuple[str, str]] = {
    "encoder": ("encoder", "kind"),  # a string then; a table now
    "n_tokens": ("encoder", "n_tokens"),
    "ratio": ("encoder", "ratio"),
    "d_z": ("encoder", "d_z"),
    "n_heads": ("encoder", "n_heads"),
    "dropout": ("encoder", "dropout"),
    "encoder_layers": ("lm_pool", "n_layers"),
    "encoder_train": ("lm_pool", "train"),
    "encoder_causal": ("lm_pool", "causal"),
    "encoder_standardize": ("lm_pool", "standardize"),
    "lora_rank": ("lm_pool", "lora_rank"),
}

RENAMED_WIRE_TABLES = {"lm_encoder": "lm_pool"}
"""``[wire]`` sub-tables renamed since (the lm_pool encoder's options are now its own table)."""


def legacy_wire_key(key: str, value: Any) -> bool:
    return (key in LEGACY_WIRE_KEYS and not (key == "encoder" and isinstance(value, dict))) or (
        key in RENAMED_WIRE_TABLES
    )


def wire_key_now(key: str) -> tuple[str, ...]:
    """Where an older ``[wire]`` key (see :func:`legacy_wire_key`) lives today, as a key path under
    ``[wire]``: a flat key's ``(table, field)``, a renamed table's new name."""
    return (RENAMED_WIRE_TABLES[key],) if key in RENAMED_WIRE_TABLES else LEGACY_WIRE_KEYS[key]


def migrate_wire(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``data`` (a parsed experiment file) with a flat ``[wire]`` table moved into ``[wire.encoder]``
    and ``[wire.lm_pool]``, a renamed table (``[wire.lm_encoder]``) read under its new name, and one line
    per moved key (none when it is already in today's layout).

    Raises:
        ConfigError: a key is given in both layouts with different values.
    """
    wire = data.get("wire")
    if not isinstance(wire, dict) or not any(legacy_wire_key(k, v) for k, v in wire.items()):
        return data, []
    out = {k: v for k, v in wire.items() if not legacy_wire_key(k, v)}
    moved = []
    for key, value in wire.items():
        if not legacy_wire_key(key, value) or key in RENAMED_WIRE_TABLES:
            continue
        table, field = LEGACY_WIRE_KEYS[key]
        sub = out.setdefault(table, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"[wire].{table} must be a table, got {sub!r}")
        if field in sub and sub[field] != value:
            raise ConfigError(
                f"[wire].{key} = {value!r} and [wire.{table}].{field} = {sub[field]!r}: "
                f"the same setting twice; keep [wire.{table}].{field}"
            )
        out[table] = {**sub, field: value}
        moved.append(f"[wire].{key} -> [wire.{table}].{field}")
    for old, new in RENAMED_WIRE_TABLES.items():
        if old not in wire:
            continue
        if not isinstance(wire[old], dict):
            raise ConfigError(f"[wire].{old} must be a table, got {wire[old]!r}")
        sub = out.setdefault(new, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"[wire].{new} must be a table, got {sub!r}")
        for field, value in wire[old].items():
            if field in sub and sub[field] != value:
                raise ConfigError(
                    f"[wire.{old}].{field} = {value!r} and [wire.{new}].{field} = {sub[field]!r}: the same "
                    f"setting twice; keep [wire.{new}].{field}"
                )
        out[new] = {**wire[old], **sub}
        moved.append(f"[wire.{old}] -> [wire.{new}]")
    return {**data, "wire": out}, moved


@attrs.frozen(kw_only=True)
class EvalConfig:
    methods: tuple[str, ...] = attrs.field(default=("text", "latent", "token_budget"), validator=_methods)
    batch_size: int = attrs.field(default=16, validator=positive)
    bootstrap_resamples: int = attrs.field(default=2000, validator=positive)
    max_text_tokens: int = attrs.field(default=512, validator=positive)
    gold_scores: bool = True  # NLL per gold token and first-token acc@1/@5 (one extra forward)
    kshot: int = attrs.field(default=4, validator=positive)  # demonstrations for text_kshot (from train)
    pca_rank: int = attrs.field(
        default=0, validator=non_negative
    )  # 0: the latent's d_z (same numbers on the wire)
    pca_fit_examples: int = attrs.field(default=1000, validator=positive)
    llmlingua_scorer: str = "smollm2-135m"  # a causal LM folder or registry name, scored locally
    lm_coder: str = "smollm2-135m"  # lm_coded_text: the LM both ends code the text under
    lm_coder_verify: int = attrs.field(default=8, validator=non_negative)  # examples decoded back as a check
    # keep frozen results of all-token prompts across runs (latentwire_eval.gencache): readers' answers
    # and label scores for the text baselines, LLMLingua's compressions
    cache_generations: bool = True
    # a transfer evaluation: score the wire trained on [data].task on this task's evaluation (or
    # validation) split instead; empty: [data].task. A task without contexts sends its whole source
    # where [wire].compress = "context" (Experiment.eval_compress).
    task: str = attrs.field(default="", validator=_task_or_empty)


@attrs.frozen(kw_only=True)
class Experiment:
    name: str
    # the seed reaches torch.manual_seed, numpy and derived seeds (seed * 100_003 + epoch): a negative one
    # would fail only later, in evaluation, after training
    seed: int = attrs.field(
        default=0, validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.lt(2**31))
    )
    runs_dir: str = "runs"
    data: DataConfig = attrs.field(factory=DataConfig)
    models: ModelsConfig = attrs.field(factory=ModelsConfig)
    features: FeaturesConfig = attrs.field(factory=FeaturesConfig)
    wire: WireSection = attrs.field(factory=WireSection)
    codec: WireCodecConfig = attrs.field(factory=WireCodecConfig)
    pretrain: PretrainConfig = attrs.field(factory=PretrainConfig)
    train: TrainConfig = attrs.field(factory=TrainConfig)
    eval: EvalConfig = attrs.field(factory=EvalConfig)

    def __attrs_post_init__(self) -> None:
        if (
            not self.name
            or "/" in self.name
            or "\\" in self.name
            or self.name.startswith(".")
            or not self.name.isprintable()
            or len(self.name.encode()) > 200
        ):
            raise ValueError(
                f"name must be a plain folder name (printable, no '/', not starting with '.', at most 200 "
                f"bytes), got {self.name!r}"
            )
        problems = check_methods(
            self.eval.methods,
            task_kind=TASKS[self.eval_task].kind,
            n_readers=len(self.models.names),
            transfer=self.eval_task != self.data.task,
        )
        if problems:
            raise ValueError("eval.methods: " + "; ".join(problems))
        if self.wire.compress == "context" and not TASKS[self.data.task].has_context:
            raise ValueError(
                f"wire.compress = 'context' needs a QA task with contexts, not {self.data.task!r}"
            )
        kind = self.wire.encoder.kind
        if encoder_kind(kind).needs_lm_features:
            if self.features.source in ("minilm-l6", "bytes") or self.features.source.startswith(
                "sentence-transformers/"
            ):
                raise ValueError(f"wire.encoder.kind = '{kind}' needs [features].source to be a causal LM")
            if self.features.layer < 0:
                raise ValueError(
                    f"wire.encoder.kind = '{kind}' needs [features].layer >= 0 (the frozen lower layers)"
                )
        if self.train.kd_weight > 0 and self.train.max_text_tokens < self.eval.max_text_tokens:
            raise ValueError(
                f"train.max_text_tokens ({self.train.max_text_tokens}) < eval.max_text_tokens "
                f"({self.eval.max_text_tokens}): the KD teacher must see at least what the text baseline sees"
            )

    @property
    def eval_task(self) -> str:
        """The task evaluated: ``[eval].task``, else ``[data].task``."""
        return self.eval.task or self.data.task

    @property
    def eval_compress(self) -> str:
        """What of an evaluation example goes on the wire: ``[wire].compress``, except that a transfer
        evaluation on a task without contexts sends the whole source (a reconstruct span)."""
        if self.wire.compress == "context" and not TASKS[self.eval_task].has_context:
            return "source"
        return self.wire.compress
