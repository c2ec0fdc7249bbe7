"""Latent adapters (``[wire] latent_adapter_layers``): gated cross-attention from chosen decoder layers of
each reader to its slot. At step 0 (gates 0) the reader computes exactly what it computes without them;
training opens the gates; generation reads the memory at every new token (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_wire import content_setup, qa_examples, random_slots

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_core.latent_adapters import ReaderLatentAdapters, cross_attending
from latentwire_core.prompting import SlotPrompt
from latentwire_core.slots import MemorySlot, assemble_batch
from latentwire_core.tasks import Example, get_task
from latentwire_hf.frozen_lm import HFFrozenLM

READERS = ["tiny_llama", "tiny_gemma3", "tiny_qwen2"]


def _wire(lm: HFFrozenLM, layers: tuple[int, ...]) -> LatentWire:
    torch.manual_seed(0)
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind="mean_pool", d_in=32, d_z=16, n_tokens=8, ratio=2.0, n_heads=4),
        latent_adapter_layers=layers,
    )
    return LatentWire(cfg, {"r": (lm.d_model, lm.embed_rms)})


def _exs() -> list[Example]:
    return qa_examples()


def _soft(lm: HFFrozenLM, counts: list[int]) -> list[torch.Tensor]:
    return random_slots(counts, lm.d_model, lm.embed_rms, 3)


@pytest.mark.parametrize("reader", READERS)
def test_a_fresh_wire_with_latent_adapters_leaves_the_reader_exactly_as_without(reader: str, request) -> None:
    lm: HFFrozenLM = request.getfixturevalue(reader)
    plain, adapted = _wire(lm, ()), _wire(lm, (0, 1))
    assert adapted.latent_adapters is not None and plain.latent_adapters is None
    for k, v in plain.state_dict().items():  # adding adapters moved no other parameter's initialisation
        assert torch.equal(v, adapted.state_dict()[k]), k
    prompt, exs = SlotPrompt(lm, get_task("squad"), compress="context"), _exs()
    soft = _soft(lm, [1, 3, 2])
    slots = [adapted.slot(s, "r") for s in soft]
    assert all(isinstance(s, MemorySlot) for s in slots) and [plain.slot(s, "r") for s in soft] == soft
    answers = [[5, 6], [7], [8, 9, 10]]
    b, h = prompt.hidden(slots, answers, prompt.tails(exs))
    # the same rows through the plain path with the whole prompt (no cached prefix): identical states
    rows = prompt._rows(soft, prompt.tails(exs), head=True)
    ref = assemble_batch(rows, embed=lm.embed, answers=answers, pad_side="right", pad_id=prompt.pad)
    h0 = lm.hidden_states(ref.inputs_embeds, ref.attention_mask, ref.position_ids)
    assert torch.equal(b.labels, ref.labels)
    real = b.attention_mask.bool()
    assert torch.equal(h[real], h0[real])
    gen = prompt.generate(slots, prompt.tails(exs), max_new_tokens=5)
    assert gen == prompt.generate(soft, prompt.tails(exs), max_new_tokens=5)


@pytest.mark.parametrize("reader", READERS)
def test_open_gates_change_the_reader_and_generation_equals_the_teacher_forced_path(
    reader: str, request
) -> None:
    lm: HFFrozenLM = request.getfixturevalue(reader)
    wire = _wire(lm, (1,))
    assert wire.latent_adapters is not None
    with torch.no_grad():
        for p in wire.latent_adapters.parameters():
            if p.dim() == 0:
                p.fill_(4.0)  # the gate, wide open
    prompt, exs = SlotPrompt(lm, get_task("squad"), compress="context"), _exs()
    soft = _soft(lm, [2, 4, 1])
    slots = [wire.slot(s, "r") for s in soft]
    with torch.no_grad():
        gen = prompt.generate(slots, prompt.tails(exs), max_new_tokens=6)
        b, h = prompt.hidden(slots, [list(g) for g in gen], prompt.tails(exs))
        bp, h_plain = prompt.hidden(soft, [list(g) for g in gen], prompt.tails(exs))
    for r, g in enumerate(gen):
        a0 = int(b.answer_start[r])
        assert lm.logits(h[r, a0 - 1 : a0 - 1 + len(g)]).argmax(-1).tolist() == g
    # the memory moved the reader's states at the answer (the plain path continues its cached prefix)
    rows = torch.arange(3)
    assert not torch.allclose(h[rows, b.answer_start - 1], h_plain[rows, bp.answer_start - 1], atol=1e-3)


def test_each_row_reads_its_own_memory_in_a_padded_batch(tiny_llama) -> None:
    lm = tiny_llama
    wire = _wire(lm, (0,))
    assert wire.latent_adapters is not None
    with torch.no_grad():
        wire.latent_adapters["r"].blocks["0"].gate.fill_(2.0)
    prompt, exs = SlotPrompt(lm, get_task("squad"), compress="context"), _exs()
    soft = _soft(lm, [2, 3, 1])
    slots = [wire.slot(s, "r") for s in soft]
    with torch.no_grad():
        _, h = prompt.hidden(slots, [[5]] * 3, prompt.tails(exs))
        for r in range(3):  # alone, the row computes what it computed in the padded batch
            b1, h1 = prompt.hidden([slots[r]], [[5]], prompt.tails([exs[r]]))
            n = int(b1.lengths[0])
            torch.testing.assert_close(h1[0, :n], h[r, :n], atol=1e-5, rtol=1e-4)


def test_a_layer_past_the_reader_depth_is_refused_by_name_and_hooks_never_stay(tiny_llama) -> None:
    adapters = ReaderLatentAdapters((0, 99), tiny_llama.d_model, 16, 4)
    mem, pad = torch.zeros(1, 2, tiny_llama.d_model), torch.zeros(1, 2, dtype=torch.bool)
    with (
        pytest.raises(ValueError, match=r"\[99\] are beyond tiny-llama's 2 decoder layers"),
        cross_attending(tiny_llama.decoder_layers, adapters, mem, pad, reader="tiny-llama"),
    ):
        pass
    ok = ReaderLatentAdapters((0,), tiny_llama.d_model, 16, 4)
    with pytest.raises(RuntimeError, match="boom"), cross_attending(tiny_llama.decoder_layers, ok, mem, pad):
        raise RuntimeError("boom")
    assert not any(layer._forward_hooks for layer in tiny_llama.decoder_layers)
    with pytest.raises(ValueError, match="inject = 'embeddings'"):
        LatentWireConfig(latent_adapter_layers=(1,), inject="kv")
    with pytest.raises(ValueError, match="distinct layer indices"):
        LatentWireConfig(latent_adapter_layers=(1, 1))


def test_content_pretraining_trains_the_gates_and_leaves_the_reader_alone(tmp_path: Path, tiny_llama) -> None:
    readers = {"tiny-llama": tiny_llama}
    _, obj, _ = content_setup(tmp_path, readers)
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind="mean_pool", d_in=32, d_z=16, n_tokens=16, ratio=4.0, n_heads=4),
        content_tokens=True,
        latent_adapter_layers=(1,),
    )
    wire = LatentWire(cfg, {"tiny-llama": (tiny_llama.d_model, tiny_llama.embed_rms)})
    assert wire.latent_adapters is not None
    block = wire.latent_adapters["tiny-llama"].blocks["1"]
    before = {k: v.clone() for k, v in tiny_llama.model.state_dict().items()}
    opt = torch.optim.Adam(wire.parameters(), lr=1e-2)
    for _ in range(3):
        loss, stats = obj(wire, [0, 1], ["tiny-llama"], torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss) and "tiny-llama/ce" in stats
    assert float(block.gate.detach().abs()) > 0  # training opened the gate
    assert block.q.weight.grad is not None and float(block.q.weight.grad.abs().sum()) > 0  # then attention
    assert all(torch.equal(v, tiny_llama.model.state_dict()[k]) for k, v in before.items())
    assert not any(layer._forward_hooks for layer in tiny_llama.decoder_layers)
