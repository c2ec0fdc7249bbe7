"""Calibration: rescale soft tokens to a frozen model's embedding statistics.

Pure functions. The target is a cached per-model statistic (the RMS of the
embedding module's *output*: Gemma3 scales by sqrt(d), so its weight matrix is
the wrong reference). One gain per example, never per token (DESIGN.md section 3, rule 7).
"""

from __future__ import annotations

import torch
from torch import nn

from latentwire_core.registry import Registry

__all__ = [
    "CALIBRATORS",
    "LearnedGain",
    "calibrate_none",
    "calibrate_rms",
    "example_rms",
]


def example_rms(x: torch.Tensor, *, eps: float = 1e-8) -> torch.Tensor:
    """RMS over all soft tokens and channels of each example: ``(B, M, d) -> (B, 1, 1)``."""
    return x.pow(2).mean(dim=(1, 2), keepdim=True).add(eps).sqrt()


def calibrate_none(soft: torch.Tensor, *, target_rms: float) -> torch.Tensor:
    """Identity (the adapter is trusted to find the scale)."""
    del target_rms
    return soft


def calibrate_rms(soft: torch.Tensor, *, target_rms: float, eps: float = 1e-8) -> torch.Tensor:
    """Scale each example so its RMS equals ``target_rms`` (one gain per example)."""
    return soft * (target_rms / example_rms(soft, eps=eps))


class LearnedGain(nn.Module):
    """RMS calibration times a learned scalar gain ``exp(log_gain)``, initialised to 1."""

    def __init__(self) -> None:
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(()))

    def forward(self, soft: torch.Tensor, *, target_rms: float) -> torch.Tensor:
        return calibrate_rms(soft, target_rms=target_rms) * self.log_gain.exp()


CALIBRATORS: Registry[str] = Registry("calibration")
for _name in ("none", "rms", "learned"):
    CALIBRATORS.register(_name)(_name)
