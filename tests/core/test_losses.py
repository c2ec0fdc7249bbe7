"""Label alignment, masking and KD gathering (docs/design.md "Correctness rules", rules 1-3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from latentwire_core import (
    IGNORE,
    assemble_batch,
    first_token_positions,
    gather_at,
    kd_kl,
    kd_positions,
    next_token_ce,
    prediction_positions,
    with_eos,
)
from latentwire_core.testing import FakeFrozenLM

LM = FakeFrozenLM(d_model=16, n_layers=1, vocab=40, seed=3)
BOS, EOS = LM.BOS, LM.EOS

rows_st = st.lists(
    st.tuples(
        st.lists(st.integers(2, 39), min_size=0, max_size=5),  # prompt body
        st.integers(0, 3),  # soft tokens
        st.lists(st.integers(1, 39), min_size=0, max_size=4),  # answer (may contain EOS id 1 = PAD id)
    ),
    min_size=1,
    max_size=4,
)


def _rows(spec):
    rows, answers = [], []
    for body, n_soft, ans in spec:
        rows.append([[BOS, *body], torch.randn(n_soft, 16), [5, 6]])
        answers.append(with_eos(ans, EOS))
    return rows, answers


@settings(deadline=None, max_examples=40)
@given(rows_st, st.sampled_from(["left", "right"]))
def test_masks_pad_bos_eos(spec, side) -> None:
    rows, answers = _rows(spec)
    b = assemble_batch(rows, embed=LM.embed, answers=answers, pad_side=side, pad_id=EOS)
    pad = b.attention_mask == 0
    assert bool((b.labels[pad] == IGNORE).all()), "PAD is never a target"
    for i, (_row, ans) in enumerate(zip(rows, answers, strict=True)):
        real = torch.nonzero(b.attention_mask[i])[:, 0]
        first = int(real[0])
        assert int(b.labels[i, first]) == IGNORE, "BOS is never a target"
        labelled = b.labels[i][b.labels[i] != IGNORE].tolist()
        assert labelled == ans, "exactly the answer, EOS included, is the target"
        # EOS is labelled at the answer's last real position, even though PAD == EOS
        last = int(real[-1])
        assert int(b.labels[i, last]) == EOS
        assert int(b.answer_start[i]) == last - len(ans) + 1
        assert b.position_ids[i, real].tolist() == list(range(len(real)))
        # contiguous real block on the padding side asked for
        assert int(real[-1] - real[0] + 1) == len(real)
        if side == "right":
            assert first == 0
        else:
            assert last == b.attention_mask.shape[1] - 1


def _hand_ce(rows, answers) -> torch.Tensor:
    """Per row, no padding, full logits, explicit loop over answer tokens."""
    total, count = 0.0, 0
    for row, ans in zip(rows, answers, strict=True):
        single = assemble_batch([row], embed=LM.embed, answers=[ans], pad_side="right", pad_id=EOS)
        logits = LM.logits(LM.hidden_states(single.inputs_embeds, single.attention_mask))[0]  # (T, V)
        start = int(single.answer_start[0])
        for j, tok in enumerate(ans):
            logp = torch.log_softmax(logits[start + j - 1], dim=-1)
            total += -float(logp[tok])
            count += 1
    return torch.tensor(total / count)


@settings(deadline=None, max_examples=25)
@given(rows_st, st.sampled_from(["left", "right"]))
def test_prefix_loss_equals_hand_computed_ce(spec, side) -> None:
    rows, answers = _rows(spec)
    b = assemble_batch(rows, embed=LM.embed, answers=answers, pad_side=side, pad_id=EOS)
    hidden = LM.hidden_states(b.inputs_embeds, b.attention_mask)
    full = next_token_ce(LM.logits(hidden), b.labels)  # reference path (shifts once)
    pos = prediction_positions(b.labels)  # efficient path: head only where needed
    sparse = F.cross_entropy(LM.logits(gather_at(hidden, pos)), pos.targets)
    expected = _hand_ce(rows, answers)
    torch.testing.assert_close(full, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(sparse, expected, atol=1e-4, rtol=1e-4)
    # a double shift would be a different number
    shifted_twice = (
        F.cross_entropy(
            LM.logits(hidden)[:, :-2].reshape(-1, 40), b.labels[:, 2:].reshape(-1), ignore_index=IGNORE
        )
        if b.labels.shape[1] > 2
        else None
    )
    if shifted_twice is not None and torch.isfinite(shifted_twice):
        assert not torch.allclose(shifted_twice, expected, atol=1e-6)


@settings(deadline=None, max_examples=25)
@given(rows_st, st.integers(1, 3))
def test_kd_gathers_matching_teacher_positions(spec, k) -> None:
    """Student: soft prompt, right-padded. Teacher: a longer text prompt, left-padded."""
    rows, answers = _rows(spec)
    teacher_rows = [[[BOS, *body, 9, 9, 9], [5, 6]] for body, _, _ in spec]
    s = assemble_batch(rows, embed=LM.embed, answers=answers, pad_side="right", pad_id=EOS)
    t = assemble_batch(teacher_rows, embed=LM.embed, answers=answers, pad_side="left", pad_id=EOS)
    ps, pt = kd_positions(s.labels, k), kd_positions(t.labels, k)
    assert torch.equal(ps.rows, pt.rows) and torch.equal(ps.step, pt.step)
    assert torch.equal(ps.targets, pt.targets)
    # each gathered teacher position is the one just before the step-th answer token
    for r, c, j, tok in zip(pt.rows, pt.cols, pt.step, pt.targets, strict=True):
        assert int(c) == int(t.answer_start[r]) + int(j) - 1
        assert int(t.labels[r, c + 1]) == int(tok) == answers[int(r)][int(j)]
    assert all(int((ps.rows == i).sum()) == min(k, len(a)) for i, a in enumerate(answers))
    # the gathered teacher logits equal an unpadded per-row run at the same step
    t_logits = LM.logits(gather_at(LM.hidden_states(t.inputs_embeds, t.attention_mask), pt))
    for n, (r, j) in enumerate(zip(pt.rows.tolist(), pt.step.tolist(), strict=True)):
        single = assemble_batch([teacher_rows[r]], embed=LM.embed, answers=[answers[r]], pad_id=EOS)
        full = LM.logits(LM.hidden_states(single.inputs_embeds, single.attention_mask))[0]
        torch.testing.assert_close(
            t_logits[n], full[int(single.answer_start[0]) + j - 1], atol=1e-4, rtol=1e-4
        )
    s_logits = LM.logits(gather_at(LM.hidden_states(s.inputs_embeds, s.attention_mask), ps))
    loss = kd_kl(s_logits, t_logits, temperature=2.0)
    assert torch.isfinite(loss) and float(loss) >= -1e-6
    assert float(kd_kl(t_logits, t_logits)) < 1e-5


def test_first_token_positions_one_per_row() -> None:
    labels = torch.full((3, 6), IGNORE)
    labels[0, 2:4] = torch.tensor([7, 1])
    labels[2, 5] = 1
    p = first_token_positions(labels)
    assert p.rows.tolist() == [0, 2] and p.cols.tolist() == [1, 4] and p.targets.tolist() == [7, 1]


def test_label_at_position_zero_is_rejected() -> None:
    labels = torch.full((1, 3), IGNORE)
    labels[0, 0] = 4
    try:
        prediction_positions(labels)
    except ValueError as e:
        assert "position 0" in str(e)
    else:
        raise AssertionError("expected ValueError")
