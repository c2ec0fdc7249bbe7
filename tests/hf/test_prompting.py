"""The prompt builder (latentwire_core.prompting.SlotPrompt) on tiny readers: the cached prefix, the rows
around the slot, left-padded generation batches and the slot-kind checks."""

from __future__ import annotations

import pytest
import torch

from latentwire_core.prompting import SlotPrompt
from latentwire_core.tasks import Example, get_task


def _exs() -> list[Example]:
    rows = [
        ("a", "Dana has a fox.", "What does Dana have?", "fox"),
        ("b", "Eli has an owl and a cat.", "Who has an owl?", "Eli"),
    ]
    return [
        Example(id=i, task="squad", source=f"ctx {i}", context=c, question=q, answers=(ans,))
        for i, c, q, ans in rows
    ]


@pytest.mark.parametrize("reader", ["tiny_llama", "tiny_gemma3"])
def test_continuing_the_cached_prefix_equals_running_the_whole_prompt(reader: str, request) -> None:
    lm = request.getfixturevalue(reader)
    prompt = SlotPrompt(lm, get_task("sst2"))
    slots = lm.tokenize([" a fine film", " dull, long and far too loud"])
    answers = [[5, 6], [7]]
    b, h = prompt.hidden(slots, answers)
    assert h.shape[:2] == b.attention_mask.shape
    before, after = list(prompt.before), list(prompt.after)
    for i, (slot, ans) in enumerate(zip(slots, answers, strict=True)):
        whole = before + list(slot) + after + ans
        emb = lm.embed(torch.tensor([whole]))
        ref = lm.hidden_states(emb, torch.ones(1, len(whole), dtype=torch.long))[0, len(before) :]
        n = len(whole) - len(before)
        assert int(b.attention_mask[i].sum()) == n  # right-padded: the row's real part first
        torch.testing.assert_close(h[i, :n], ref, atol=1e-5, rtol=1e-4)


def test_context_mode_puts_the_question_after_the_slot_and_source_mode_puts_nothing(tiny_llama) -> None:
    exs = _exs()
    ctx = SlotPrompt(tiny_llama, get_task("squad"), compress="context")
    tails = ctx.tails(exs)
    assert tails == tiny_llama.tokenize(["\nQuestion: What does Dana have?", "\nQuestion: Who has an owl?"])
    assert ctx.slot_text(exs[0]) == " Dana has a fox."  # the context only, as the full text would read
    assert SlotPrompt(tiny_llama, get_task("sst2")).tails(exs) is None
    with pytest.raises(ValueError, match="2 slots but 1 tails"):
        ctx.batch([[1], [2]], tails=tails[:1])
    with pytest.raises(ValueError, match="compress must be one of"):
        SlotPrompt(tiny_llama, get_task("squad"), compress="question")


def test_generation_batches_are_left_padded_and_answer_each_row_as_alone(tiny_llama) -> None:
    prompt = SlotPrompt(tiny_llama, get_task("sst2"))
    slots = tiny_llama.tokenize([" ok", " a much longer review of a film that went on"])
    g = prompt.generation_batch(slots)
    assert bool(g.attention_mask[:, -1].all())  # every row ends at the last column
    assert int(g.attention_mask[0].sum()) < int(g.attention_mask[1].sum())
    assert not bool(g.attention_mask[0, 0])  # the short row is padded on the left
    together = prompt.generate(slots, max_new_tokens=4)
    alone = [prompt.generate([s], max_new_tokens=4)[0] for s in slots]
    assert together == alone


def test_a_batch_may_not_mix_deep_prefix_slots_with_embeddings(tiny_llama) -> None:
    prompt = SlotPrompt(tiny_llama, get_task("sst2"))
    kv = torch.zeros(2, tiny_llama.kv_width)
    emb = torch.zeros(2, tiny_llama.d_model)
    assert prompt.is_kv([kv, kv]) and not prompt.is_kv([emb, emb])
    with pytest.raises(ValueError, match="mixes deep-prefix slots"):
        prompt.is_kv([kv, emb])
