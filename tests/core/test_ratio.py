"""Compression by ratio: per-example M, masks, padding invariance, slot assembly and codec sizes."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig, QuantWireCodec, WireCodecConfig
from latentwire_core.interlingua import chunk_weights, slot_counts
from latentwire_core.prompting import SlotPrompt
from latentwire_core.tasks import Example, get_task
from latentwire_core.testing import FakeFrozenLM


def _mask(lengths: list[int], left: bool = False) -> torch.Tensor:
    t = max(max(lengths), 1)
    m = torch.zeros(len(lengths), t, dtype=torch.bool)
    for i, n in enumerate(lengths):
        if n and left:
            m[i, t - n :] = True
        elif n:
            m[i, :n] = True
    return m


@settings(deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=5),
    st.sampled_from([1.0, 2.0, 4.0, 16.0]),
    st.integers(1, 12),
)
def test_slot_counts_are_ceil_n_over_ratio_capped(lengths: list[int], ratio: float, cap: int) -> None:
    counts = slot_counts(_mask(lengths), n_tokens=cap, ratio=ratio)
    assert counts.tolist() == [min(max(math.ceil(n / ratio), 1), cap) for n in lengths]
    assert slot_counts(_mask(lengths), n_tokens=cap, ratio=0).tolist() == [cap] * len(lengths)


@settings(deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=4), st.sampled_from([2.0, 4.0]), st.booleans())
def test_per_row_chunks_partition_each_row_and_leave_extra_slots_empty(
    lengths: list[int], ratio: float, left: bool
) -> None:
    mask = _mask(lengths, left)
    counts = slot_counts(mask, n_tokens=64, ratio=ratio)
    w = chunk_weights(mask, counts)  # (B, M_max, T)
    assert w.shape[1] == int(counts.max())
    for i, c in enumerate(counts.tolist()):
        torch.testing.assert_close(w[i, :c].sum(-1), torch.ones(c))
        assert bool((w[i, c:] == 0).all())
        # every real token is in exactly one of the row's chunks; consecutive groups of ~ratio tokens
        torch.testing.assert_close(w[i, :c][:, mask[i]].gt(0).sum(0).float(), torch.ones(lengths[i]))
        sizes = w[i, :c].gt(0).sum(-1)
        assert int(sizes.max()) <= math.ceil(ratio) + 1


@settings(deadline=None, max_examples=25)
@given(st.lists(st.integers(1, 20), min_size=2, max_size=4), st.booleans())
def test_ratio_chunk_mean_is_invariant_to_padding_content_and_amount(lengths: list[int], left: bool) -> None:
    torch.manual_seed(0)
    wire = LatentWire(
        LatentWireConfig(
            interlingua=InterlinguaConfig(kind="chunk_mean", d_in=8, d_z=8, n_tokens=16, ratio=3.0)
        ),
        {"m": (12, 0.5)},
    )
    mask = _mask(lengths, left)
    feats = torch.randn(*mask.shape, 8)
    feats[~mask] = float("nan")  # whatever padding holds never leaks in
    counts = wire.counts(mask)
    soft = wire(feats, mask, ["m"]).soft["m"]  # (B, M_max, 12)
    assert bool(torch.isfinite(soft).all())
    for i, n in enumerate(lengths):
        c = int(counts[i])
        assert bool((soft[i, c:] == 0).all())  # slots past M_i are empty
        alone = feats[i][mask[i]][None]
        solo = wire(alone, torch.ones(1, n, dtype=torch.bool), ["m"]).soft["m"][0]
        torch.testing.assert_close(solo, soft[i, :c], atol=1e-5, rtol=1e-4)
        # calibration sees only the real slots: each example's RMS is the target
        torch.testing.assert_close(soft[i, :c].pow(2).mean().sqrt(), torch.tensor(0.5), atol=1e-4, rtol=1e-4)


@settings(deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4), st.sampled_from(["fp16", "int8", "int4"]))
def test_codec_rows_count_bytes_per_example(counts: list[int], precision: str) -> None:
    codec = QuantWireCodec(WireCodecConfig(precision=precision, group_size=8))
    z = torch.randn(len(counts), max(counts), 6)
    payloads = codec.encode_rows(z, torch.tensor(counts))
    assert [len(p) for p in payloads] == [codec.payload_bytes(n_tokens=c, d_z=6) for c in counts]
    rows = codec.decode_rows(payloads, counts, d_z=6)
    for r, c, zz in zip(rows, counts, z, strict=True):
        assert r.shape == (c, 6)
        if precision == "fp16":
            torch.testing.assert_close(r, zz[:c].half().float())


def test_variable_m_slots_sit_between_the_same_prompt_parts() -> None:
    """Rows with M = 2 and M = 5, question in plain text after the slot (compress = context)."""
    lm = FakeFrozenLM(d_model=8, n_layers=1, vocab=60, seed=1)
    task = get_task("squad")
    prompt = SlotPrompt(lm, task, compress="context")
    exs = [
        Example(id="a", task="squad", source="s", question="who?", context="x y", answers=("x",)),
        Example(id="b", task="squad", source="s", question="when did it?", context="z", answers=("z",)),
    ]
    slots = [torch.randn(2, 8), torch.randn(5, 8)]
    tails = prompt.tails(exs)
    assert tails == lm.tokenize(["\nQuestion: who?", "\nQuestion: when did it?"])
    answers = [[7, prompt.eos], [9, prompt.eos]]
    b = prompt.batch(slots, answers, tails)
    head = 0 if prompt.prefix is not None else len(prompt.before)
    for i, (s, t) in enumerate(zip(slots, tails, strict=True)):
        torch.testing.assert_close(b.inputs_embeds[i, head : head + len(s)], s)  # the soft tokens, in place
        n = head + len(s) + len(t) + len(prompt.after)
        assert int(b.answer_start[i]) == n and int(b.lengths[i]) == n + 2
        assert b.labels[i, n : n + 2].tolist() == answers[i]
        assert bool((b.labels[i, :n] == -100).all())  # prompt, slot and question are never targets
    g = prompt.generation_batch(slots, tails)
    assert g.attention_mask[:, -1].eq(1).all()  # left-padded for generation
    assert (
        prompt.slot_text(exs[0]) == " x y"
        and prompt.before[-len(lm.tokenize(["Context:"])[0]) :] == lm.tokenize(["Context:"])[0]
    )


def test_the_wire_returns_the_counts_it_used_with_its_soft_tokens() -> None:
    # downstream (objectives, budgets) cuts rows by these counts instead of recomputing M_i
    mask = _mask([2, 7, 12])
    for ratio, want in ((3.0, [1, 3, 4]), (0.0, [4, 4, 4])):
        wire = LatentWire(
            LatentWireConfig(
                interlingua=InterlinguaConfig(kind="chunk_mean", d_in=8, d_z=8, n_tokens=4, ratio=ratio)
            ),
            {"m": (12, 0.5)},
        )
        soft, counts = wire(torch.randn(*mask.shape, 8), mask, ["m"])
        assert counts.tolist() == want == wire.counts(mask).tolist()
        assert soft["m"].shape[:2] == (3, 4)
