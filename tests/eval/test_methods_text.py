"""The text methods' helpers: k-shot demonstrations and the token budget."""

from __future__ import annotations

from eval_rows import sst_examples

from latentwire_core.tasks import Example, get_task
from latentwire_core.testing import FakeFrozenLM
from latentwire_eval.methods.text import kshot_instruction, token_budget_slot

LM = FakeFrozenLM(d_model=16, n_layers=1, vocab=60, seed=2)
SST2 = get_task("sst2")


def test_kshot_demonstrations_come_from_train_balanced_and_deterministic() -> None:
    train = sst_examples(20)
    text = kshot_instruction(SST2, train, k=4, seed=1)
    assert text == kshot_instruction(SST2, train, k=4, seed=1)
    assert text.count("Sentiment: positive") == 2 and text.count("Sentiment: negative") == 2
    assert text.endswith(SST2.instruction)
    assert all(f"movie {i} was" in text for i in range(20) if f"movie {i} was" in text)


def test_token_budget_keeps_the_question_first() -> None:
    ex = Example(
        id="q",
        task="squad",
        source="Question: who?\nContext: long text here",
        question="who?",
        context="long text here " * 20,
        answers=("x",),
    )
    slot = token_budget_slot(LM, ex, 30)
    head = LM.tokenize(["Question: who?\nContext: "])[0]
    assert len(slot) == 30 and slot == head + LM.tokenize([ex.context])[0][: 30 - len(head)]
    assert len(token_budget_slot(LM, ex, 5)) == 5
