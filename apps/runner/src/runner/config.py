"""The experiment TOML -> frozen attrs configs. Only the runner reads TOML.

Unknown keys, wrong types, out-of-range values and unknown model names fail before any
work, all of them at once, with a message naming the file and the key (``[train].lr``).
This module imports no torch, transformers or pandas (only the torch-free ``config``
modules of the packages), so a bad file is refused in well under two seconds.
"""

from __future__ import annotations

import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import attrs

from latentwire_core._validators import non_negative, one_of, positive
from latentwire_core.config import INTERLINGUAS, InterlinguaConfig, LatentWireConfig, WireCodecConfig
from latentwire_core.registry import UnknownNameError
from latentwire_core.tasks import COMPRESS, TASKS
from latentwire_hf.config import PretrainConfig, TrainConfig, resolve_model_name

__all__ = ["STAGES", "ConfigError", "Experiment", "load_experiment", "to_toml"]

STAGES = ("prepare", "pretrain", "train", "control", "evaluate", "report")

METHODS = (
    "text",
    "text_kshot",
    "text_soft_prompt",
    "no_context",
    "latent",
    "latent_shuffled",
    "token_budget",
    "mean_pool",
    "pca",
    "llmlingua",
    "linear_probe",
    "joint",
    "oracle",
)


class ConfigError(ValueError):
    """A bad experiment file: the message names the file and the key."""


def _task(_i: Any, a: attrs.Attribute[Any], v: str) -> None:
    if v not in TASKS:
        raise ValueError(f"{a.name} must be one of {sorted(TASKS)}, got {v!r}")


def _methods(_i: Any, a: attrs.Attribute[Any], v: tuple[str, ...]) -> None:
    bad = [m for m in v if m not in METHODS]
    if bad or not v:
        raise ValueError(f"{a.name} must be a non-empty list of {list(METHODS)}, got {list(v)!r}")


@attrs.frozen(kw_only=True)
class DataConfig:
    task: str = attrs.field(default="sst2", validator=_task)
    data_dir: str = ""  # empty: $LATENTWIRE_DATA, else the datasets hub
    train_limit: int = attrs.field(default=2000, validator=positive)
    eval_limit: int = attrs.field(default=400, validator=positive)
    on_error: str = attrs.field(default="raise", validator=one_of("raise", "skip"))
    # draw eval_limit examples across the whole split with the seed, or take the file's first ones
    eval_sampling: str = attrs.field(default="seeded", validator=one_of("seeded", "prefix"))
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


def _encoder(_i: Any, a: attrs.Attribute[Any], v: str) -> None:
    if v not in INTERLINGUAS:
        raise ValueError(f"{a.name} must be one of {INTERLINGUAS.names()}, got {v!r}")


@attrs.frozen(kw_only=True)
class WireSection:
    """``[wire]``: the encoder, M, what is compressed, the adapters and calibration.

    ``ratio = x > 0`` gives each example ``M = ceil(n / x)`` soft tokens for its ``n`` compressed
    tokens, at most ``n_tokens``; ``ratio = 0`` keeps M fixed at ``n_tokens``. ``compress =
    "context"`` keeps a QA question in plain text and puts only the context on the wire.
    ``encoder = "lm_pool"`` trains ``encoder_layers`` layers of the ``[features]`` LM above its
    frozen first ``features.layer`` layers (``encoder_train = "full"`` or ``"lora"``).
    """

    encoder: str = attrs.field(default="perceiver", validator=_encoder)
    n_tokens: int = attrs.field(
        default=8, validator=attrs.validators.and_(positive, attrs.validators.le(4096))
    )
    ratio: float = attrs.field(default=0.0, validator=non_negative)
    compress: str = attrs.field(default="source", validator=one_of(*COMPRESS))
    d_z: int = attrs.field(default=256, validator=attrs.validators.and_(positive, attrs.validators.le(16384)))
    n_heads: int = attrs.field(default=4, validator=positive)
    adapter: str = attrs.field(default="mlp", validator=one_of("linear", "mlp"))
    calibration: str = attrs.field(default="rms", validator=one_of("none", "rms", "learned"))
    dropout: float = attrs.field(default=0.0, validator=non_negative)
    encoder_layers: int = attrs.field(default=2, validator=positive)
    encoder_train: str = attrs.field(default="full", validator=one_of("full", "lora"))
    encoder_causal: bool = False
    # lm_pool: centre and scale each pooled dimension by training-text statistics, fitted once
    # before training (a mid-depth LM state is mostly one direction shared by every text)
    encoder_standardize: bool = False
    lora_rank: int = attrs.field(default=8, validator=positive)
    # a trained run folder (or saved wire): its encoder and its readers' adapters are loaded and
    # frozen; only the readers new to this run are trained (adding a reader with the encoder frozen)
    init_from: str = ""

    def __attrs_post_init__(self) -> None:
        if self.init_from and not (Path(self.init_from) / "wire.json").is_file():
            raise ValueError(
                f"init_from: {self.init_from}/wire.json not found (a run folder or a saved wire)"
            )
        if self.dropout >= 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.encoder == "perceiver" and self.d_z % self.n_heads:
            raise ValueError(f"d_z ({self.d_z}) must be divisible by n_heads ({self.n_heads})")
        if self.encoder_standardize and self.encoder != "lm_pool":
            raise ValueError(f"encoder_standardize needs encoder = 'lm_pool', got {self.encoder!r}")
        if self.ratio > 0 and self.encoder == "perceiver":
            raise ValueError(
                "ratio needs a pooling encoder (mean_pool or lm_pool); the perceiver has fixed M"
            )

    def to_core(self, d_in: int, *, content_tokens: bool = False) -> LatentWireConfig:
        return LatentWireConfig(
            interlingua=InterlinguaConfig(
                kind=self.encoder,
                d_in=d_in,
                d_z=self.d_z,
                n_tokens=self.n_tokens,
                ratio=self.ratio,
                n_heads=self.n_heads,
                dropout=self.dropout,
            ),
            adapter_kind=self.adapter,
            calibration=self.calibration,
            content_tokens=content_tokens,
        )


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
    # keep frozen readers' answers to all-token prompts (text baselines) across runs (latentwire_eval.gencache)
    cache_generations: bool = True


@attrs.frozen(kw_only=True)
class Experiment:
    name: str
    seed: int = 0
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
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"name must be a plain folder name, got {self.name!r}")
        kind = TASKS[self.data.task].kind
        if "linear_probe" in self.eval.methods and kind != "classification":
            raise ValueError(
                f"eval.methods: linear_probe needs a classification task, not {self.data.task!r}"
            )
        if self.wire.compress == "context" and self.data.task not in ("squad", "squad_v2", "hotpotqa"):
            raise ValueError(
                f"wire.compress = 'context' needs a QA task with contexts, not {self.data.task!r}"
            )
        if self.wire.encoder == "lm_pool":
            if self.features.source in ("minilm-l6",) or self.features.source.startswith(
                "sentence-transformers/"
            ):
                raise ValueError("wire.encoder = 'lm_pool' needs [features].source to be a causal LM")
            if self.features.layer < 0:
                raise ValueError(
                    "wire.encoder = 'lm_pool' needs [features].layer >= 0 (the frozen lower layers)"
                )
        if "latent_shuffled" in self.eval.methods and "latent" not in self.eval.methods:
            raise ValueError("eval.methods: latent_shuffled is a control of 'latent'; list both")
        if self.train.kd_weight > 0 and self.train.max_text_tokens < self.eval.max_text_tokens:
            raise ValueError(
                f"train.max_text_tokens ({self.train.max_text_tokens}) < eval.max_text_tokens "
                f"({self.eval.max_text_tokens}): the KD teacher must see at least what the text baseline sees"
            )
        if {"joint", "oracle"} & set(self.eval.methods) and (
            "latent" not in self.eval.methods or len(self.models.names) < 2
        ):
            raise ValueError("eval.methods: joint and oracle need 'latent' and at least two models")


def _check_type(value: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    if typ is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{where} must be true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{where} must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{where} must be a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise TypeError(f"{where} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"{where} must be a list, got {value!r}")
        (item,) = typing.get_args(typ)[:1]
        return tuple(_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(typ):
            if arm is type(None):
                continue
            try:
                return _check_type(value, arm, where)
            except TypeError:
                pass
        raise TypeError(f"{where} has the wrong type: {value!r}")
    return value


def structure(cls: type[Any], data: Any, where: str, file: str, errors: list[str] | None = None) -> Any:
    """Strictly build attrs ``cls`` from a TOML table, collecting every problem before failing.

    Unknown keys, wrong types and out-of-range values of all fields (nested tables included)
    are gathered; cross-field rules run once every field is valid. Raises :class:`ConfigError`
    listing them all (when ``errors`` is not given), or appends to ``errors`` and returns ``None``.
    """
    top = errors is None
    errs: list[str] = [] if errors is None else errors
    n0 = len(errs)
    label = f"[{where}]" if where else "[top level]"
    if not isinstance(data, dict):
        errs.append(f"{label} must be a table, got {data!r}")
        return _finish(top, errs, file)
    attrs.resolve_types(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    for key in sorted(set(data) - set(fields)):
        path = f"{where}.{key}" if where else key
        errs.append(f"unknown key '{path}'; allowed here: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        if name not in fields:
            continue
        f = fields[name]
        path = f"{where}.{name}" if where else name
        if attrs.has(f.type):
            kwargs[name] = structure(f.type, value, path, file, errs)
            continue
        try:
            kwargs[name] = _check_type(value, f.type, f"'{path}'")
        except TypeError as e:
            errs.append(str(e))
            continue
        if f.validator is not None:
            try:
                f.validator(None, f, kwargs[name])
            except (ValueError, TypeError) as e:
                errs.append(f"{label} {e}")
    if len(errs) > n0:
        return _finish(top, errs, file)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        errs.append(f"{label} {e}")
        return _finish(top, errs, file)


def _finish(top: bool, errs: list[str], file: str) -> None:
    if top:
        raise ConfigError(f"{file}: " + f"; {file}: ".join(errs))
    return None


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare string


def load_experiment(path: Path, overrides: typing.Sequence[str] = ()) -> Experiment:
    """Read ``path`` and apply ``--set key=value`` overrides (``train.lr=3e-4``)."""
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}); is it a TOML file?") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=3e-4")
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {p} is not a table")
        node[parts[-1]] = _parse_value(raw.strip())
    errors: list[str] = []
    for sec in ("train", "pretrain"):
        if isinstance(data.get(sec), dict) and "seed" in data[sec]:
            errors.append(f"'[{sec}].seed' is not settable; the top-level 'seed' seeds everything")
            data[sec] = {k: v for k, v in data[sec].items() if k != "seed"}
    if "name" not in data:
        errors.append("missing required key 'name'")
        data = {**data, "name": "unnamed"}  # so the other problems are reported too
    exp = structure(Experiment, data, "", str(path), errors)
    models = data.get("models", {}) if isinstance(data.get("models"), dict) else {}
    features = data.get("features", {}) if isinstance(data.get("features"), dict) else {}
    names = models.get("names", ModelsConfig().names)
    named = [
        (f"[models].names[{i}]", n) for i, n in enumerate(names if isinstance(names, list | tuple) else [])
    ]
    for key, name in [*named, ("[features].source", features.get("source", FeaturesConfig().source))]:
        if isinstance(name, str):
            try:
                resolve_model_name(name)
            except UnknownNameError as e:
                errors.append(f"{key}: {e}")
    if errors:
        raise ConfigError(f"{path}: " + f"; {path}: ".join(errors))
    assert isinstance(exp, Experiment)
    return exp


def to_dict(obj: Any) -> Any:
    return attrs.asdict(obj, recurse=True)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def to_toml(exp: Experiment) -> str:
    """The resolved config as TOML (what ran, defaults included)."""
    d = to_dict(exp)
    d["train"].pop("seed", None)  # derived from the top-level seed
    d["pretrain"].pop("seed", None)
    top = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    out = ["# resolved experiment: exactly what ran", *top, ""]
    for k, v in d.items():
        if isinstance(v, dict):
            out.append(f"[{k}]")
            out += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
            out.append("")
    return "\n".join(out)
