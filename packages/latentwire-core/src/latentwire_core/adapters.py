"""Per-model adapters ``Z (B, M, d_z) -> (B, M, d_model)`` and the bank that holds them."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from latentwire_core.config import ADAPTERS, AdapterConfig
from latentwire_core.per_reader import ReaderModules

__all__ = ["ADAPTERS", "AdapterBank", "AdapterConfig", "LinearAdapter", "ResidualMLPAdapter", "build_adapter"]


@ADAPTERS.register("linear")
class LinearAdapter(nn.Module):
    def __init__(self, cfg: AdapterConfig) -> None:
        super().__init__()
        self.d_model = cfg.d_model
        self.proj = nn.Linear(cfg.d_z, cfg.d_model)
        self.norm: nn.Module = nn.LayerNorm(cfg.d_model) if cfg.out_norm else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.norm(self.proj(z))  # (B, M, d_model)
        return out


@ADAPTERS.register("mlp")
class ResidualMLPAdapter(nn.Module):
    """``h = W z; h + MLP(LN(h))``: a linear map plus a residual non-linear correction."""

    def __init__(self, cfg: AdapterConfig) -> None:
        super().__init__()
        self.d_model = cfg.d_model
        self.proj = nn.Linear(cfg.d_z, cfg.d_model)
        self.mlp = nn.Sequential(
            nn.LayerNorm(cfg.d_model),
            nn.Linear(cfg.d_model, cfg.hidden_mult * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.hidden_mult * cfg.d_model, cfg.d_model),
        )
        self.norm: nn.Module = nn.LayerNorm(cfg.d_model) if cfg.out_norm else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.proj(z)  # (B, M, d_model)
        out: torch.Tensor = self.norm(h + self.mlp(h))
        return out


def build_adapter(cfg: AdapterConfig) -> nn.Module:
    adapter: nn.Module = ADAPTERS.get(cfg.kind)(cfg)
    return adapter


class AdapterBank(nn.Module):
    """One adapter per frozen model, so one shared encoder serves any number of models.

    Args:
        configs: model name -> adapter config.
    """

    def __init__(self, configs: Mapping[str, AdapterConfig]) -> None:
        super().__init__()
        # keyed by reader name; a '.' in it (qwen2.5-…) is stored as '_' (latentwire_core.per_reader)
        self.adapters = ReaderModules({name: build_adapter(c) for name, c in configs.items()})
        self._names = list(configs)

    def names(self) -> list[str]:
        return list(self._names)

    def forward(self, z: torch.Tensor, model: str) -> torch.Tensor:
        if model not in self.adapters:
            raise KeyError(f"no adapter for model {model!r}; have {self.names()}")
        out: torch.Tensor = self.adapters[model](z)
        return out
