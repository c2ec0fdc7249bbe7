"""LatentWire core: ports, encoders, adapters, calibration, wire codec, losses.

Depends on torch, attrs and structlog only. Names are imported lazily (PEP 562): importing
``latentwire_core.config`` or ``latentwire_core.tasks`` to validate an experiment does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latentwire_core.lazy import lazy_getattr

if TYPE_CHECKING:
    from latentwire_core.adapters import ADAPTERS, AdapterBank, build_adapter
    from latentwire_core.bytes_features import ByteFeatureConfig, ByteFeatureSource, ByteTokenizer
    from latentwire_core.calibration import (
        CALIBRATIONS,
        Calibration,
        LearnedGain,
        calibrate_rms,
        example_rms,
    )
    from latentwire_core.codec import QuantWireCodec
    from latentwire_core.config import (
        INTERLINGUAS,
        AdapterConfig,
        InterlinguaConfig,
        LatentWireConfig,
        WireCodecConfig,
    )
    from latentwire_core.encoders.chunk_mean import ChunkMeanEncoder
    from latentwire_core.encoders.perceiver import PerceiverEncoder
    from latentwire_core.interlingua import build_interlingua
    from latentwire_core.losses import (
        Positions,
        answer_ce,
        first_token_accuracy,
        first_token_positions,
        gather_at,
        kd_kl,
        kd_positions,
        kd_topk_kl,
        next_token_ce,
        prediction_positions,
    )
    from latentwire_core.ports import (
        ComputeLM,
        FeatureSource,
        FrozenLM,
        PromptLM,
    )
    from latentwire_core.registry import Registry, UnknownNameError
    from latentwire_core.slots import IGNORE, SlotBatch, assemble_batch, with_eos
    from latentwire_core.wire import LatentWire

__version__ = "0.1.0"

_WHERE: dict[str, str] = {
    "ADAPTERS": "latentwire_core.adapters",
    "AdapterBank": "latentwire_core.adapters",
    "AdapterConfig": "latentwire_core.config",
    "ByteFeatureConfig": "latentwire_core.bytes_features",
    "ByteFeatureSource": "latentwire_core.bytes_features",
    "ByteTokenizer": "latentwire_core.bytes_features",
    "CALIBRATIONS": "latentwire_core.calibration",
    "Calibration": "latentwire_core.calibration",
    "FeatureSource": "latentwire_core.ports",
    "FrozenLM": "latentwire_core.ports",
    "ComputeLM": "latentwire_core.ports",
    "PromptLM": "latentwire_core.ports",
    "IGNORE": "latentwire_core.slots",
    "INTERLINGUAS": "latentwire_core.config",
    "InterlinguaConfig": "latentwire_core.config",
    "LatentWire": "latentwire_core.wire",
    "LatentWireConfig": "latentwire_core.config",
    "LearnedGain": "latentwire_core.calibration",
    "PerceiverEncoder": "latentwire_core.encoders.perceiver",
    "ChunkMeanEncoder": "latentwire_core.encoders.chunk_mean",
    "Positions": "latentwire_core.losses",
    "QuantWireCodec": "latentwire_core.codec",
    "Registry": "latentwire_core.registry",
    "SlotBatch": "latentwire_core.slots",
    "UnknownNameError": "latentwire_core.registry",
    "WireCodecConfig": "latentwire_core.config",
    "answer_ce": "latentwire_core.losses",
    "assemble_batch": "latentwire_core.slots",
    "build_adapter": "latentwire_core.adapters",
    "build_interlingua": "latentwire_core.interlingua",
    "calibrate_rms": "latentwire_core.calibration",
    "example_rms": "latentwire_core.calibration",
    "first_token_accuracy": "latentwire_core.losses",
    "first_token_positions": "latentwire_core.losses",
    "gather_at": "latentwire_core.losses",
    "kd_kl": "latentwire_core.losses",
    "kd_positions": "latentwire_core.losses",
    "kd_topk_kl": "latentwire_core.losses",
    "next_token_ce": "latentwire_core.losses",
    "prediction_positions": "latentwire_core.losses",
    "with_eos": "latentwire_core.slots",
}

__all__ = [
    "ADAPTERS",
    "CALIBRATIONS",
    "IGNORE",
    "INTERLINGUAS",
    "AdapterBank",
    "AdapterConfig",
    "ByteFeatureConfig",
    "ByteFeatureSource",
    "ByteTokenizer",
    "Calibration",
    "ChunkMeanEncoder",
    "ComputeLM",
    "FeatureSource",
    "FrozenLM",
    "InterlinguaConfig",
    "LatentWire",
    "LatentWireConfig",
    "LearnedGain",
    "PerceiverEncoder",
    "Positions",
    "PromptLM",
    "QuantWireCodec",
    "Registry",
    "SlotBatch",
    "UnknownNameError",
    "WireCodecConfig",
    "answer_ce",
    "assemble_batch",
    "build_adapter",
    "build_interlingua",
    "calibrate_rms",
    "example_rms",
    "first_token_accuracy",
    "first_token_positions",
    "gather_at",
    "kd_kl",
    "kd_positions",
    "kd_topk_kl",
    "next_token_ce",
    "prediction_positions",
    "with_eos",
]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())  # import the defining module on first use
