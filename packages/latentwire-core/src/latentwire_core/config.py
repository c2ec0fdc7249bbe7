"""Every core component's config, in one torch-free module.

Configs are frozen attrs classes with range validators; they import nothing heavy, so an
experiment file is validated (and refused) in well under two seconds, before torch loads.
The modules they configure re-export them (``latentwire_core.interlingua.InterlinguaConfig``).
Component kinds are names in one registry per kind (:data:`INTERLINGUAS`, :data:`ADAPTERS`,
:data:`CALIBRATIONS`); each implementation registers itself in its own module, and the registry
reads those names from the module's source, so validating a kind never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from latentwire_core._validators import non_negative, one_of, positive, registered
from latentwire_core.registry import Registry

__all__ = [
    "ADAPTERS",
    "CALIBRATIONS",
    "ENCODER_KINDS",
    "INTERLINGUAS",
    "RENAMED_ENCODER_KINDS",
    "AdapterConfig",
    "EncoderKind",
    "InterlinguaConfig",
    "LatentWireConfig",
    "WireCodecConfig",
    "encoder_kind",
    "encoder_kind_now",
]

RENAMED_ENCODER_KINDS = {"mean_pool": "chunk_mean"}
"""Encoder kinds renamed after configs and saved wires used them: the old name is read as the new one (in
TOML, ``--set`` and ``wire.json``); what is written from then on carries the new name."""


def encoder_kind_now(name: Any) -> Any:
    """``name`` with :data:`RENAMED_ENCODER_KINDS` applied (anything else unchanged)."""
    return RENAMED_ENCODER_KINDS.get(name, name) if isinstance(name, str) else name


INTERLINGUAS: Registry[Callable[..., Any]] = Registry("interlingua")
INTERLINGUAS.declare_module("latentwire_core.encoders.perceiver", "INTERLINGUAS")
INTERLINGUAS.declare_module("latentwire_core.encoders.chunk_mean", "INTERLINGUAS")
ADAPTERS: Registry[Callable[..., Any]] = Registry("adapter")
ADAPTERS.declare_module("latentwire_core.adapters", "ADAPTERS")
CALIBRATIONS: Registry[Callable[..., Any]] = Registry("calibration")
CALIBRATIONS.declare_module("latentwire_core.calibration", "CALIBRATIONS")


@attrs.frozen(kw_only=True)
class InterlinguaConfig:
    """Args:
    kind: registry name (``perceiver``, ``chunk_mean``; ``lm_pool`` once ``latentwire_hf`` is imported); a
        renamed kind (``mean_pool``) is read as its new name.
    d_in: feature width ``d_f``.
    d_z: interlingua width.
    n_tokens: ``M``, soft tokens on the wire; with ``ratio`` the most any example gets.
    ratio: compression ratio x > 0: ``M_i = ceil(L_i / x)`` (capped by ``n_tokens``); 0 means fixed M.
    """

    kind: str = attrs.field(
        default="perceiver", converter=encoder_kind_now, validator=registered(INTERLINGUAS)
    )
    ratio: float = attrs.field(default=0.0, validator=non_negative)
    d_in: int = attrs.field(default=384, validator=positive)
    d_z: int = attrs.field(default=256, validator=attrs.validators.and_(positive, attrs.validators.le(16384)))
    n_tokens: int = attrs.field(
        default=8, validator=attrs.validators.and_(positive, attrs.validators.le(4096))
    )
    n_heads: int = attrs.field(default=4, validator=positive)
    mlp_ratio: int = attrs.field(default=2, validator=positive)
    dropout: float = attrs.field(default=0.0, validator=non_negative)

    def __attrs_post_init__(self) -> None:
        if self.d_z % self.n_heads:
            raise ValueError(f"d_z ({self.d_z}) must be divisible by n_heads ({self.n_heads})")
        if self.dropout >= 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def _pooling_params(icfg: InterlinguaConfig, _options: Any) -> int:
    return icfg.d_in * icfg.d_z + icfg.d_z * icfg.d_z  # a projection and its second layer


def _perceiver_params(icfg: InterlinguaConfig, _options: Any) -> int:
    d, h = icfg.d_z, icfg.mlp_ratio  # input projection, queries, attention (4 d^2), gated MLP (3 h d^2)
    return icfg.d_in * d + icfg.n_tokens * d + 4 * d * d + 3 * h * d * d


@attrs.frozen(kw_only=True)
class EncoderKind:
    """What checking a config needs to know of an encoder kind, without building it (torch-free).

    Args:
        name: the registry name (``[wire.encoder] kind``).
        fixed_m: M is always ``n_tokens``; a ``ratio`` is refused.
        needs_lm_features: its features are a causal LM's hidden states at ``[features] layer``.
        options: the attrs class of the kind's own table, ``[wire.<name>]`` (``None``: it has none).
        params: an estimate of its trained parameters from the encoder config (``d_in`` set) and its
            options, for the memory check before any work.
    """

    name: str
    fixed_m: bool = False
    needs_lm_features: bool = False
    options: type | None = None
    params: Callable[[InterlinguaConfig, Any], int] = _pooling_params


ENCODER_KINDS: dict[str, EncoderKind] = {
    k.name: k
    for k in (
        EncoderKind(name="perceiver", fixed_m=True, params=_perceiver_params),
        EncoderKind(name="chunk_mean"),
    )
}
"""Every bundled encoder kind's traits; ``latentwire_hf.config`` adds ``lm_pool``. A kind registered
elsewhere (``@INTERLINGUAS.register``) without an entry here gets :func:`encoder_kind`'s defaults."""


def encoder_kind(name: str) -> EncoderKind:
    """The traits of the encoder kind ``name`` (a renamed kind: its new name's; an unlisted kind: variable M,
    no options table)."""
    name = encoder_kind_now(name)
    return ENCODER_KINDS.get(name) or EncoderKind(name=name)


@attrs.frozen(kw_only=True)
class AdapterConfig:
    kind: str = attrs.field(default="mlp", validator=registered(ADAPTERS))
    d_z: int = attrs.field(default=256, validator=positive)
    d_model: int = attrs.field(default=576, validator=positive)
    hidden_mult: int = attrs.field(default=2, validator=positive)
    out_norm: bool = False


@attrs.frozen(kw_only=True)
class WireCodecConfig:
    precision: str = attrs.field(default="int8", validator=one_of("fp16", "int8", "int4"))
    group_size: int = attrs.field(default=32, validator=positive)
    frame: str = attrs.field(default="v1", validator=one_of("v1", "v2"))  # v2: the compact 8-byte frame

    def __attrs_post_init__(self) -> None:
        if self.precision == "int4" and self.group_size % 2:
            raise ValueError(f"int4 needs an even group_size, got {self.group_size}")


def _int_tuple(v: Iterable[int]) -> tuple[int, ...]:
    return tuple(v)  # a wire.json list reads back as the tuple it was


INJECT = ("embeddings", "kv", "coprocessor")
"""Where a reader receives the slots: input embeddings, a deep prefix, or a deep prefix a coprocessor
rewrites after reading the cached prompt (latentwire_core.coprocessor)."""


@attrs.frozen(kw_only=True)
class LatentWireConfig:
    """Args:
    interlingua: the shared encoder.
    adapter_kind / adapter_hidden_mult / adapter_out_norm: the per-model projector.
    calibration: ``none``, ``rms`` (per-example RMS to the model's embedding RMS) or ``learned``.
    content_tokens: give each model learned ``<rec>``/``<cont>`` vectors (content pretraining).
    refiner_layers: gated Transformer blocks over the received ``Z`` before the adapters (0: none); a
        fresh refiner is the identity (:mod:`latentwire_core.refiner`).
    inject: where a reader receives the slots: ``embeddings`` (soft input tokens) or ``kv`` (a deep
        prefix: every layer's keys and values of M positions, P-tuning v2 / 500xCompressor); the message
        on the wire is the same ``Z`` either way, only the adapters differ; ``coprocessor`` is a deep
        prefix that a gated network of the wire rewrites after reading the reader's cached prompt.
    latent_adapter_layers: decoder layers (indices in each reader) where the reader's hidden states
        cross-attend to its slot through gated blocks of the wire (none: ``()``); a fresh wire's
        gates are 0 (:mod:`latentwire_core.latent_adapters`). With ``inject = "embeddings"``.
    """

    interlingua: InterlinguaConfig = attrs.field(factory=InterlinguaConfig)
    adapter_kind: str = attrs.field(default="mlp", validator=registered(ADAPTERS))
    adapter_hidden_mult: int = 2
    adapter_out_norm: bool = False
    calibration: str = attrs.field(default="rms", validator=registered(CALIBRATIONS))
    content_tokens: bool = False
    inject: str = attrs.field(default="embeddings", validator=attrs.validators.in_(INJECT))
    # latent refiner: this many gated Transformer blocks over the received Z before the adapters (0: none)
    refiner_layers: int = attrs.field(
        default=0, validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(16))
    )
    # latent adapters: gated cross-attention from these decoder layers of each reader to its slot
    latent_adapter_layers: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)

    def __attrs_post_init__(self) -> None:
        layers = self.latent_adapter_layers
        if any(not isinstance(i, int) or i < 0 for i in layers) or len(set(layers)) != len(layers):
            raise ValueError(f"latent_adapter_layers must be distinct layer indices >= 0, got {list(layers)}")
        if layers and self.inject != "embeddings":
            raise ValueError(
                "latent_adapter_layers needs inject = 'embeddings' (they read the slot's soft tokens)"
            )
