"""Calibration: rescale one reader's soft tokens to its embedding statistics.

Each kind is a module registered in :data:`CALIBRATIONS` under its ``[wire] calibration`` name. The
target is a cached per-model statistic (the RMS of the embedding module's *output*: Gemma3 scales by
sqrt(d), so its weight matrix is the wrong reference). One gain per example, never per token
(docs/design.md "Correctness rules", rule 7); with per-example ``counts`` only the real slots are measured.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from latentwire_core.config import CALIBRATIONS
from latentwire_core.interlingua import zero_past_counts

__all__ = [
    "CALIBRATIONS",
    "Calibration",
    "LearnedGain",
    "NoCalibration",
    "RMSCalibration",
    "calibrate_rms",
    "example_rms",
]


def example_rms(x: torch.Tensor, counts: torch.Tensor | None = None, *, eps: float = 1e-8) -> torch.Tensor:
    """RMS of each example over its real slots (all when ``counts`` is None): ``(B, M, d) -> (B, 1, 1)``."""
    if counts is None:
        return x.pow(2).mean(dim=(1, 2), keepdim=True).add(eps).sqrt()
    n = (counts.to(x.device).to(x.dtype) * x.shape[2]).clamp(min=1)[:, None, None]
    return (zero_past_counts(x, counts).pow(2).sum(dim=(1, 2), keepdim=True) / n).add(eps).sqrt()


def calibrate_rms(
    soft: torch.Tensor, *, target_rms: float, counts: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """Scale each example so its RMS equals ``target_rms`` (one gain per example)."""
    return soft * (target_rms / example_rms(soft, counts, eps=eps))


class Calibration(nn.Module, ABC):
    """One reader's calibration: soft tokens ``(B, M, d_model)`` -> the same, rescaled."""

    @abstractmethod
    def forward(
        self, soft: torch.Tensor, *, target_rms: float, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``soft`` rescaled toward ``target_rms``, measured over each row's first ``counts`` slots."""


@CALIBRATIONS.register("none")
class NoCalibration(Calibration):
    """Identity (the adapter is trusted to find the scale)."""

    def forward(
        self, soft: torch.Tensor, *, target_rms: float, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        return soft


@CALIBRATIONS.register("rms")
class RMSCalibration(Calibration):
    """Each example scaled to the reader's embedding RMS."""

    def forward(
        self, soft: torch.Tensor, *, target_rms: float, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        return calibrate_rms(soft, target_rms=target_rms, counts=counts)


@CALIBRATIONS.register("learned")
class LearnedGain(RMSCalibration):
    """RMS calibration times a learned scalar gain ``exp(log_gain)``, initialised to 1."""

    def __init__(self) -> None:
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(()))

    def forward(
        self, soft: torch.Tensor, *, target_rms: float, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        return super().forward(soft, target_rms=target_rms, counts=counts) * self.log_gain.exp()
