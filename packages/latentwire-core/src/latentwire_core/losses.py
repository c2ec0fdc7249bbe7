"""Losses and the index helpers that keep them aligned (docs/design.md "Correctness rules").

Every helper works on *unshifted* labels ``(B, T)`` (``IGNORE`` where no
target). The hidden state at position ``t - 1`` predicts the token at ``t``;
that shift happens exactly once, in :func:`prediction_positions`. Gathering
hidden states first and applying the LM head only at those positions keeps
logits off every prompt position (a 262k-vocabulary head is costlier than a
small model's body).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from latentwire_core.slots import IGNORE

__all__ = [
    "Positions",
    "answer_ce",
    "first_token_accuracy",
    "first_token_positions",
    "gather_at",
    "kd_kl",
    "kd_positions",
    "next_token_ce",
    "prediction_positions",
]


@attrs.frozen
class Positions:
    """Explicit per-row indices: source position ``cols`` in row ``rows`` predicts ``targets``.

    ``step`` is the index of the target within its row's answer (0 = first token).
    """

    rows: torch.Tensor
    cols: torch.Tensor
    targets: torch.Tensor
    step: torch.Tensor

    def __len__(self) -> int:
        return int(self.rows.numel())


def prediction_positions(labels: torch.Tensor) -> Positions:
    """All labelled positions, shifted once: ``(b, t-1)`` predicts ``labels[b, t]``.

    Raises:
        ValueError: a label at position 0 (nothing precedes it to predict it).
    """
    if bool((labels[:, 0] != IGNORE).any()):
        raise ValueError("labels at position 0 cannot be predicted (BOS/first token is never a target)")
    rows, cols = torch.nonzero(labels != IGNORE, as_tuple=True)  # row-major, cols ascending
    targets = labels[rows, cols]
    first = torch.zeros_like(rows)
    if rows.numel():
        # step = index within the row's labelled run
        start_of_row = torch.ones_like(rows, dtype=torch.bool)
        start_of_row[1:] = rows[1:] != rows[:-1]
        idx = torch.arange(rows.numel(), device=rows.device)
        run_start = torch.cummax(torch.where(start_of_row, idx, torch.zeros_like(idx)), dim=0).values
        first = idx - run_start
    return Positions(rows=rows, cols=cols - 1, targets=targets, step=first)


def first_token_positions(labels: torch.Tensor) -> Positions:
    """The first answer token of each row that has one."""
    p = prediction_positions(labels)
    keep = p.step == 0
    return Positions(rows=p.rows[keep], cols=p.cols[keep], targets=p.targets[keep], step=p.step[keep])


def kd_positions(labels: torch.Tensor, k: int) -> Positions:
    """The first ``k`` answer tokens of each row (fewer where the answer is shorter)."""
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    p = prediction_positions(labels)
    keep = p.step < k
    return Positions(rows=p.rows[keep], cols=p.cols[keep], targets=p.targets[keep], step=p.step[keep])


def gather_at(x: torch.Tensor, pos: Positions) -> torch.Tensor:
    """``x (B, T, ...)`` -> ``(N, ...)`` at ``(pos.rows, pos.cols)``."""
    return x[pos.rows, pos.cols]


def next_token_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Reference path: full logits ``(B, T, V)`` + unshifted labels -> mean CE per target token."""
    pos = prediction_positions(labels)
    return answer_ce(gather_at(logits, pos), pos.targets)


def answer_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits (N, V)`` against ``targets (N,)`` (0 when N = 0)."""
    if targets.numel() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets)


def first_token_accuracy(logits: torch.Tensor, targets: torch.Tensor, *, k: int = 1) -> torch.Tensor:
    """Share of rows whose target is in the top-``k`` of ``logits (N, V)``."""
    if targets.numel() == 0:
        return torch.zeros(())
    top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices  # (N, k)
    return (top == targets[:, None]).any(dim=-1).float().mean()


def kd_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``KL(teacher || student)`` at matching positions ``(N, V)``, times ``T**2``, mean over N.

    Raises:
        ValueError: shapes differ (the positions were not paired).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} vs teacher {tuple(teacher_logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0.0
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float().detach() / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2


def kd_topk_kl(
    student_logits: torch.Tensor,
    teacher_ids: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``KL(teacher_k || student_k)`` on the teacher's top-k tokens, times ``T**2``, mean over N.

    Both distributions are renormalised over the teacher's ``k`` ids, so a cached teacher needs
    only ``(N, k)`` ids and logits instead of ``(N, V)`` (Gemma3's V is 262,144).

    Args:
        student_logits: ``(N, V)``.
        teacher_ids: ``(N, k)`` int64, the teacher's top-k token ids per position.
        teacher_logits: ``(N, k)`` the teacher's logits at those ids.
    """
    if teacher_ids.shape != teacher_logits.shape or teacher_ids.shape[0] != student_logits.shape[0]:
        raise ValueError(
            f"student {tuple(student_logits.shape)} vs teacher ids {tuple(teacher_ids.shape)} / "
            f"logits {tuple(teacher_logits.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0.0
    s = F.log_softmax(student_logits.float().gather(1, teacher_ids) / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float().detach() / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2
