"""LatentWire core: ports, encoders, adapters, calibration, wire codec, losses.

Depends on torch, attrs and structlog only.
"""

from latentwire_core.adapters import ADAPTERS, AdapterBank, AdapterConfig, build_adapter
from latentwire_core.bytes_features import ByteFeatureConfig, ByteFeatureSource, ByteTokenizer
from latentwire_core.calibration import CALIBRATORS, LearnedGain, calibrate_none, calibrate_rms, example_rms
from latentwire_core.codec import QuantWireCodec, WireCodecConfig, build_codec
from latentwire_core.interlingua import (
    INTERLINGUAS,
    InterlinguaConfig,
    LearnedQueryPooler,
    MeanPoolEncoder,
    build_interlingua,
)
from latentwire_core.losses import (
    Positions,
    answer_ce,
    first_token_accuracy,
    first_token_positions,
    gather_at,
    hidden_mse,
    kd_kl,
    kd_positions,
    kd_topk_kl,
    next_token_ce,
    prediction_positions,
)
from latentwire_core.ports import Adapter, Calibrator, FeatureSource, FrozenLM, Interlingua, WireCodec
from latentwire_core.registry import Registry, UnknownNameError
from latentwire_core.slots import IGNORE, SlotBatch, assemble_batch, with_eos
from latentwire_core.wire import LatentWire, LatentWireConfig

__version__ = "0.1.0"

__all__ = [
    "ADAPTERS",
    "CALIBRATORS",
    "IGNORE",
    "INTERLINGUAS",
    "Adapter",
    "AdapterBank",
    "AdapterConfig",
    "ByteFeatureConfig",
    "ByteFeatureSource",
    "ByteTokenizer",
    "Calibrator",
    "FeatureSource",
    "FrozenLM",
    "Interlingua",
    "InterlinguaConfig",
    "LatentWire",
    "LatentWireConfig",
    "LearnedGain",
    "LearnedQueryPooler",
    "MeanPoolEncoder",
    "Positions",
    "QuantWireCodec",
    "Registry",
    "SlotBatch",
    "UnknownNameError",
    "WireCodec",
    "WireCodecConfig",
    "answer_ce",
    "assemble_batch",
    "build_adapter",
    "build_codec",
    "build_interlingua",
    "calibrate_none",
    "calibrate_rms",
    "example_rms",
    "first_token_accuracy",
    "first_token_positions",
    "gather_at",
    "hidden_mse",
    "kd_kl",
    "kd_positions",
    "kd_topk_kl",
    "next_token_ce",
    "prediction_positions",
    "with_eos",
]
