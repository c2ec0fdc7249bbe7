"""The trainable LatentWire: shared interlingua encoder + one adapter (and gain) per model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import torch
from torch import nn

from latentwire_core._validators import one_of
from latentwire_core.adapters import AdapterBank, AdapterConfig
from latentwire_core.calibration import LearnedGain, calibrate_none, calibrate_rms
from latentwire_core.codec import QuantWireCodec
from latentwire_core.interlingua import InterlinguaConfig, build_interlingua

__all__ = ["LatentWire", "LatentWireConfig"]


@attrs.frozen(kw_only=True)
class LatentWireConfig:
    interlingua: InterlinguaConfig = attrs.field(factory=InterlinguaConfig)
    adapter_kind: str = attrs.field(default="mlp", validator=one_of("linear", "mlp"))
    adapter_hidden_mult: int = 2
    adapter_out_norm: bool = False
    calibration: str = attrs.field(default="rms", validator=one_of("none", "rms", "learned"))


class LatentWire(nn.Module):
    """``features -> Z -> (wire) -> adapter_k -> calibrate_k -> soft tokens for model k``.

    Args:
        cfg: encoder/adapter/calibration settings.
        models: model name -> ``(d_model, embed_rms)``, the target's width and its
            cached embedding RMS (the calibration target).
    """

    def __init__(self, cfg: LatentWireConfig, models: Mapping[str, tuple[int, float]]) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = build_interlingua(cfg.interlingua)
        self.adapters = AdapterBank(
            {
                name: AdapterConfig(
                    kind=cfg.adapter_kind,
                    d_z=cfg.interlingua.d_z,
                    d_model=d_model,
                    hidden_mult=cfg.adapter_hidden_mult,
                    out_norm=cfg.adapter_out_norm,
                )
                for name, (d_model, _) in models.items()
            }
        )
        self.gains = nn.ModuleDict({n: LearnedGain() for n in models} if cfg.calibration == "learned" else {})
        self.target_rms = {name: float(rms) for name, (_, rms) in models.items()}

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, models: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """One call for DDP: features -> ``Z`` -> soft tokens ``(B, M, d_model)`` per named model."""
        z = self.encode(features, mask)
        return {m: self.to_model(z, m) for m in models}

    def encode(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features ``(B, T, d_f)``, mask ``(B, T)`` -> ``Z (B, M, d_z)``."""
        z: torch.Tensor = self.encoder(features, mask)
        return z

    def to_model(self, z: torch.Tensor, model: str, *, codec: QuantWireCodec | None = None) -> torch.Tensor:
        """``Z (B, M, d_z)`` -> soft tokens ``(B, M, d_model)`` for ``model``.

        With ``codec``, ``Z`` first makes the round trip through the wire
        (no gradient passes a quantiser; use it at evaluation).
        """
        if codec is not None:
            z = codec.roundtrip(z)
        soft = self.adapters(z, model)
        target = self.target_rms[model]
        if self.cfg.calibration == "rms":
            return calibrate_rms(soft, target_rms=target)
        if self.cfg.calibration == "learned":
            out: torch.Tensor = self.gains[model](soft, target_rms=target)
            return out
        return calibrate_none(soft, target_rms=target)
