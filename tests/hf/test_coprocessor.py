"""Coprocessor (``[wire] inject = "coprocessor"``): a deep prefix that a gated network rewrites after reading
the reader's cached prompt. At step 0 (gate 0) it is exactly the deep prefix; training opens the gate;
generation from it equals the teacher-forced path (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_wire import content_setup, qa_examples, random_slots

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_core.coprocessor import cache_rows
from latentwire_core.prompting import SlotPrompt
from latentwire_core.slots import CacheSlot
from latentwire_core.tasks import Example, get_task
from latentwire_hf.frozen_lm import HFFrozenLM

READERS = ["tiny_llama", "tiny_gemma3", "tiny_qwen2"]


def _wire(lm: HFFrozenLM, inject: str) -> LatentWire:
    torch.manual_seed(0)
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind="mean_pool", d_in=32, d_z=16, n_tokens=8, ratio=2.0, n_heads=4),
        adapter_kind="linear",
        inject=inject,
    )
    return LatentWire(cfg, {"r": (lm.d_model, lm.embed_rms)}, kv={"r": (lm.kv_width, lm.kv_rms)})


def _exs() -> list[Example]:
    return qa_examples()


def _kv(lm: HFFrozenLM, counts: list[int]) -> list[torch.Tensor]:
    return random_slots(counts, lm.kv_width, lm.kv_rms, 5)


@pytest.mark.parametrize("reader", READERS)
def test_a_fresh_coprocessor_is_exactly_the_deep_prefix(reader: str, request) -> None:
    lm: HFFrozenLM = request.getfixturevalue(reader)
    kv_wire, co_wire = _wire(lm, "kv"), _wire(lm, "coprocessor")
    assert co_wire.coprocessors is not None and kv_wire.coprocessors is None
    for k, v in kv_wire.state_dict().items():  # adding it moved no other parameter's initialisation
        assert torch.equal(v, co_wire.state_dict()[k]), k
    prompt, exs = SlotPrompt(lm, get_task("squad"), compress="context"), _exs()
    kv = _kv(lm, [1, 3, 2])
    slots = [co_wire.slot(s, "r") for s in kv]
    assert all(isinstance(s, CacheSlot) for s in slots) and [kv_wire.slot(s, "r") for s in kv] == kv
    answers = [[5, 6], [7], [8, 9, 10]]
    b, h = prompt.hidden(slots, answers, prompt.tails(exs))
    b0, h0 = prompt.hidden(kv, answers, prompt.tails(exs))
    assert torch.equal(b.labels, b0.labels) and torch.equal(h, h0)
    assert prompt.generate(slots, prompt.tails(exs), max_new_tokens=5) == prompt.generate(
        kv, prompt.tails(exs), max_new_tokens=5
    )


def test_the_cache_is_read_in_the_slot_layout(tiny_llama) -> None:
    lm = tiny_llama
    prefix = lm.prefix_cache(lm.tokenize(["The cat sat on the mat."])[0])
    rows = cache_rows(prefix)  # (P, kv_width): a slot of P entries that would rebuild this very cache
    assert rows.shape == (prefix.length, lm.kv_width)
    n_layers, n_kv, hd = lm.kv_layout
    per = rows.view(prefix.length, n_layers, 2, n_kv, hd)
    for i, (k, v) in enumerate(prefix.layers):
        assert torch.equal(per[:, i, 0].permute(1, 0, 2), k[0]) and torch.equal(
            per[:, i, 1].permute(1, 0, 2), v[0]
        )


@pytest.mark.parametrize("reader", READERS)
def test_an_open_coprocessor_reads_the_prompt_and_generation_equals_the_teacher_forced_path(
    reader: str, request
) -> None:
    lm: HFFrozenLM = request.getfixturevalue(reader)
    wire = _wire(lm, "coprocessor")
    assert wire.coprocessors is not None
    with torch.no_grad():
        wire.coprocessors["r"].gate.fill_(3.0)
    exs, kv = _exs(), _kv(lm, [2, 4, 1])
    slots = [wire.slot(s, "r") for s in kv]
    prompt = SlotPrompt(lm, get_task("squad"), compress="context")
    other = SlotPrompt(lm, get_task("squad"), instruction="Read this carefully.\n", compress="context")
    with torch.no_grad():
        gen = prompt.generate(slots, prompt.tails(exs), max_new_tokens=6)
        b, h = prompt.hidden(slots, [list(g) for g in gen], prompt.tails(exs))
        _, h_plain = prompt.hidden(kv, [list(g) for g in gen], prompt.tails(exs))
        # what the entries become depends on the prompt the coprocessor reads
        from latentwire_core.coprocessor import resolve_cache_slots

        here, there = resolve_cache_slots(slots, prompt.prefix), resolve_cache_slots(slots, other.prefix)
    for r, g in enumerate(gen):
        a0 = int(b.answer_start[r])
        assert lm.logits(h[r, a0 - 1 : a0 - 1 + len(g)]).argmax(-1).tolist() == g
    assert not torch.allclose(h, h_plain, atol=1e-4)
    assert not torch.allclose(here[0], there[0])  # type: ignore[arg-type]


def test_content_pretraining_trains_the_coprocessor_and_leaves_the_reader_alone(
    tmp_path: Path, tiny_llama
) -> None:
    readers = {"tiny-llama": tiny_llama}
    _, obj, _ = content_setup(tmp_path, readers)
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind="mean_pool", d_in=32, d_z=16, n_tokens=16, ratio=4.0, n_heads=4),
        adapter_kind="linear",
        content_tokens=True,
        inject="coprocessor",
    )
    wire = LatentWire(
        cfg,
        {"tiny-llama": (tiny_llama.d_model, tiny_llama.embed_rms)},
        kv={"tiny-llama": (tiny_llama.kv_width, tiny_llama.kv_rms)},
    )
    assert wire.coprocessors is not None
    co = wire.coprocessors["tiny-llama"]
    before = {k: v.clone() for k, v in tiny_llama.model.state_dict().items()}
    opt = torch.optim.Adam(wire.parameters(), lr=1e-2)
    for _ in range(3):
        loss, stats = obj(wire, [0, 1], ["tiny-llama"], torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss) and "tiny-llama/ce" in stats
    assert float(co.gate.detach().abs()) > 0  # training opened the gate
    # pretraining's cache is [BOS] alone: one key, so the queries have nothing to choose; values and out train
    assert all(float(p.grad.abs().sum()) > 0 for p in (co.kv.weight, co.out.weight) if p.grad is not None)
    assert co.kv.weight.grad is not None and co.out.weight.grad is not None
    assert all(torch.equal(v, tiny_llama.model.state_dict()[k]) for k, v in before.items())
