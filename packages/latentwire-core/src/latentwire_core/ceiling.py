"""A reader's ceiling at a budget: soft tokens optimised per example, with no encoder.

What could a *perfect* encoder reach through ``M`` soft tokens? Optimise each example's ``M``
vectors directly (Adam on the answer's cross-entropy, through the same prompt builder and
calibration every method uses), then answer greedily from them. A low ceiling means the
interface (scale, template, slot position, masks) is the limit, not the encoder; one optimised
vector can hold ~80 tokens for a 160M reader (Kuratov et al. 2025, arXiv:2502.13063).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import attrs
import torch

from latentwire_core.calibration import calibrate_rms
from latentwire_core.losses import answer_ce, gather_at, prediction_positions
from latentwire_core.ports import FrozenLM
from latentwire_core.prompting import SlotPrompt
from latentwire_core.slots import with_eos
from latentwire_core.tasks import Example

__all__ = ["CEILING_CALIBRATIONS", "CeilingResult", "budget_m", "optimise_slots"]

CEILING_CALIBRATIONS = ("none", "rms", "learned")
"""As ``[wire] calibration``: raw vectors, each example rescaled to the embedding RMS, or that times a
learned scalar gain (one per reader, shared by the batch)."""


def budget_m(n_tokens: int, ratio: float) -> int:
    """``M = ceil(n / ratio)`` soft tokens for ``n`` text tokens (at least one)."""
    return max(1, math.ceil(n_tokens / ratio))


@attrs.frozen(kw_only=True)
class CeilingResult:
    """Per example: the final teacher-forced CE (nats per target token), whether greedy decoding
    reproduced the target exactly (token ids), the share of target tokens that are the argmax under
    teacher forcing, the generated ids; plus the loss curve ``(step, mean CE)`` and the soft tokens."""

    ce: list[float]
    exact: list[bool]
    token_acc: list[float]
    generated: list[list[int]]
    curve: list[tuple[int, float]]
    slots: list[torch.Tensor]


def _scale(p: torch.Tensor, calibration: str, target_rms: float, log_gain: torch.Tensor) -> torch.Tensor:
    if calibration == "none":
        return p
    out = calibrate_rms(p, target_rms=target_rms)  # one gain per example (rule 7)
    return out * log_gain.exp() if calibration == "learned" else out


def optimise_slots(
    lm: FrozenLM,
    prompt: SlotPrompt,
    examples: Sequence[Example],
    targets: Sequence[Sequence[int]],
    m: Sequence[int],
    *,
    calibration: str = "rms",
    steps: int = 200,
    lr: float = 0.05,
    seed: int = 0,
    max_new_tokens: int | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> CeilingResult:
    """Optimise ``m[i]`` soft tokens for each example so the reader produces ``targets[i]`` (+ EOS).

    Args:
        lm: the frozen reader (its parameters are never touched).
        prompt: the task's prompt for that reader (question tails come from it, as in evaluation).
        examples: the batch (one optimisation, one row each).
        targets: answer ids per example (EOS is appended here).
        m: soft tokens per example.
        calibration: one of :data:`CEILING_CALIBRATIONS`.
        steps / lr: Adam steps; ``lr`` is relative to the reader's embedding RMS.
        max_new_tokens: greedy decoding cap (default: the longest target + 2).
        progress: called with ``(step, mean CE)`` after every step.

    Returns:
        A :class:`CeilingResult`; ``exact`` compares generated ids with the target ids.

    Raises:
        ValueError: an unknown calibration, mismatched lengths, or ``m`` < 1.
    """
    if calibration not in CEILING_CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CEILING_CALIBRATIONS}, got {calibration!r}")
    if not len(examples) == len(targets) == len(m):
        raise ValueError(f"{len(examples)} examples, {len(targets)} targets, {len(m)} budgets")
    if min(m, default=1) < 1:
        raise ValueError("every example needs at least one soft token")
    rms = float(lm.embed_rms)
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(k, lm.d_model, generator=gen) * rms for k in m]  # (M_i, d_model) each
    for p in params:
        p.requires_grad_(True)
    log_gain = torch.zeros((), requires_grad=calibration == "learned")
    opt = torch.optim.Adam([*params, log_gain] if calibration == "learned" else params, lr=lr * rms)
    answers = [with_eos(list(t), prompt.eos) for t in targets]
    tails = prompt.tails(examples)
    curve: list[tuple[int, float]] = []

    def slots() -> list[torch.Tensor]:
        return [_scale(p[None], calibration, rms, log_gain)[0] for p in params]

    def forward() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, hidden = prompt.hidden(slots(), answers, tails)
        pos = prediction_positions(batch.labels)
        return lm.logits(gather_at(hidden, pos)), pos.targets, pos.rows

    for step in range(1, steps + 1):
        logits, tgt, _ = forward()
        loss = answer_ce(logits, tgt)
        opt.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        opt.step()
        curve.append((step, float(loss.detach())))
        if progress is not None:
            progress(step, curve[-1][1])
    with torch.no_grad():
        logits, tgt, rows = forward()
        nll = torch.nn.functional.cross_entropy(logits.float(), tgt, reduction="none")
        hit = (logits.argmax(-1) == tgt).float()
        n = len(examples)
        ce = [float(nll[rows == i].mean()) for i in range(n)]
        acc = [float(hit[rows == i].mean()) for i in range(n)]
        final = [s.detach() for s in slots()]
        cap = max_new_tokens or max(len(t) for t in targets) + 2
        generated = prompt.generate(final, tails, max_new_tokens=cap)
    exact = [list(g) == list(t) for g, t in zip(generated, targets, strict=True)]
    return CeilingResult(ce=ce, exact=exact, token_acc=acc, generated=generated, curve=curve, slots=final)
