"""Deep prefix (``[wire] inject = "kv"``): each reader's slots as per-layer keys and values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_wire import content_setup

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_core.prompting import SlotPrompt, is_kv_slot
from latentwire_core.tasks import Example, get_task
from latentwire_hf.frozen_lm import HFFrozenLM

READERS = ["tiny_llama", "tiny_gemma3", "tiny_qwen2"]


def _kv_slot(lm: HFFrozenLM, m: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, lm.kv_width, generator=g) * lm.kv_rms  # (M, kv_width)


def _slot_cache(
    lm: HFFrozenLM, prefix_ids: list[int], slot: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """What the slot must become: per layer (1, heads, M, dim) keys and values, from the flat layout."""
    n_layers, n_kv, hd = lm.kv_layout
    per = slot.view(slot.shape[0], n_layers, 2, n_kv, hd)
    return [
        (per[:, i, 0].permute(1, 0, 2)[None], per[:, i, 1].permute(1, 0, 2)[None]) for i in range(n_layers)
    ]


@pytest.mark.parametrize("reader", READERS)
def test_slots_land_at_every_layer_after_the_prefix_with_variable_m(
    reader: str, request, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm: HFFrozenLM = request.getfixturevalue(reader)
    # A sliding-window layer counts cache entries, so a row padded to the batch's M sees its window
    # shifted by the padding once a prompt outgrows the window (tiny Gemma3: 16; Gemma3-270M: 512, longer
    # than these prompts). Widen the tiny window so the comparison is about the slots, not that limit.
    if getattr(lm.model.config, "sliding_window", None):
        monkeypatch.setattr(lm.model.config, "sliding_window", 4096)
    task = get_task("squad")
    exs = [
        Example(id=str(i), task="squad", source="", question=q, context="x", answers=("a",))
        for i, q in enumerate(["Who?", "Where was it then?", "Why?"])
    ]
    prompt = SlotPrompt(lm, task, compress="context")
    slots = [_kv_slot(lm, m, i) for i, m in enumerate([1, 3, 2])]
    assert all(is_kv_slot(lm, s) for s in slots) and prompt.is_kv(slots)
    answers = [[5, 6], [7], [8, 9, 10]]
    b, h = prompt.hidden(slots, answers, prompt.tails(exs))
    # each row alone, through the model's own cache API: the same states (padding and M do not leak)
    from transformers import DynamicCache

    for r in range(3):
        n = int(b.lengths[r])
        data = [
            (torch.cat([pk, sk.to(pk.dtype)], 2), torch.cat([pv, sv.to(pv.dtype)], 2))
            for (pk, pv), (sk, sv) in zip(prompt.prefix.layers, _slot_cache(lm, [], slots[r]), strict=True)
        ]
        cache = DynamicCache(ddp_cache_data=data, config=lm.model.config)
        p, m = prompt.prefix.length, slots[r].shape[0]
        out = lm.base(
            inputs_embeds=b.inputs_embeds[r : r + 1, :n],
            position_ids=torch.arange(p + m, p + m + n)[None],
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state
        torch.testing.assert_close(h[r, :n], out[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("reader", READERS)
def test_generation_from_a_kv_prefix_equals_the_teacher_forced_path(reader: str, request) -> None:
    lm: HFFrozenLM = request.getfixturevalue(reader)
    task = get_task("squad")
    exs = [
        Example(id=str(i), task="squad", source="", question=q, context="x", answers=("a",))
        for i, q in enumerate(["Who won?", "Where?"])
    ]
    prompt = SlotPrompt(lm, task, compress="context")
    slots = [_kv_slot(lm, m, 10 + i) for i, m in enumerate([2, 4])]
    gen = prompt.generate(slots, prompt.tails(exs), max_new_tokens=6)
    assert all(len(g) > 0 for g in gen)
    # teacher-force the generated ids (right padding): the argmax at every step is the generated token
    b, h = prompt.hidden(slots, [list(g) for g in gen], prompt.tails(exs))
    for r, g in enumerate(gen):
        a0 = int(b.answer_start[r])
        steps = h[r, a0 - 1 : a0 - 1 + len(g)]
        assert lm.logits(steps).argmax(-1).tolist() == g


def test_a_deep_prefix_wire_trains_its_adapters_and_leaves_the_reader_alone(
    tmp_path: Path, tiny_llama
) -> None:
    readers = {"tiny-llama": tiny_llama}
    _, obj, _ = content_setup(tmp_path, readers)
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind="mean_pool", d_in=32, d_z=16, n_tokens=16, ratio=4.0),
        adapter_kind="linear",
        content_tokens=True,
        inject="kv",
    )
    wire = LatentWire(
        cfg,
        {"tiny-llama": (tiny_llama.d_model, tiny_llama.embed_rms)},
        kv={"tiny-llama": (tiny_llama.kv_width, tiny_llama.kv_rms)},
    )
    before = {k: v.clone() for k, v in tiny_llama.model.state_dict().items()}
    loss, stats = obj(wire, [0, 1], ["tiny-llama"], torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss) and "tiny-llama/ce" in stats
    assert wire.adapters.adapters["tiny-llama"].proj.weight.grad is not None
    assert wire.adapters.adapters["tiny-llama"].proj.weight.shape[0] == tiny_llama.kv_width
    probe = obj.probe(wire, [0, 1], ["tiny-llama"], torch.device("cpu"))
    assert "tiny-llama/content_gap" in probe
    for k, v in tiny_llama.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="kv_width, kv_rms"):
        LatentWire(cfg, {"tiny-llama": (tiny_llama.d_model, 1.0)})


def test_the_hidden_states_before_a_deep_prefix_do_not_depend_on_it(tiny_llama) -> None:
    """Causality: the cached prompt prefix is the same whatever the slot holds (a zero slot included)."""
    prompt = SlotPrompt(tiny_llama, get_task("sst2"))
    ids = list(prompt.before)
    a = tiny_llama.prefix_cache(ids)
    zero = torch.zeros(2, tiny_llama.kv_width)
    prompt.hidden([zero, zero], [[5], [6]])
    b = tiny_llama.prefix_cache(ids)
    for (ka, va), (kb, vb) in zip(a.layers, b.layers, strict=True):
        assert torch.equal(ka, kb) and torch.equal(va, vb)
