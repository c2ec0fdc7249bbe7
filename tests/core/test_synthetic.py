"""The bundled recall generator: deterministic, splits disjoint, answers never in the question."""

from __future__ import annotations

import pytest

from latentwire_core.synthetic import NAMES, RELATIONS, recall_examples, recall_split, span_windows
from latentwire_core.tasks import get_task


@pytest.mark.parametrize("k", [2, 4, 8])
def test_recall_is_deterministic_for_a_seed_and_a_prefix_for_fewer_items(k: int) -> None:
    a = recall_examples(k=k, split="eval", n=50, seed=3)
    assert a == recall_examples(k=k, split="eval", n=50, seed=3)
    assert recall_examples(k=k, split="eval", n=20, seed=3) == a[:20]
    assert a != recall_examples(k=k, split="eval", n=50, seed=4)
    assert a != recall_examples(k=k, split="train", n=50, seed=3)  # separate streams


@pytest.mark.parametrize("k", [2, 4, 8])
def test_recall_items_hold_k_facts_and_one_answer_never_in_the_question(k: int) -> None:
    for e in recall_examples(k=k, split="eval", n=200):
        facts = e.context.split(". ")
        assert len(facts) == k and e.task == f"recall_k{k}"
        (answer,) = e.answers
        assert answer not in e.question.split() and answer.lower() not in e.question.lower()
        assert f" {answer}." in f" {e.context}"  # the value is in the context
        asked = [n for n in NAMES if f" {n} " in f" {e.question} " or e.question.endswith(f"{n}'s job?")]
        assert len(asked) == 1 and f"{asked[0]} " in e.context
        relations = [i for i, (fact, _, values) in enumerate(RELATIONS) if any(
            fact.format(n=n, v=v) in e.context for n in NAMES for v in values)]  # fmt: skip
        assert len(relations) == k  # one fact per relation: the question's relation picks one fact


@pytest.mark.parametrize("k", [2, 8])
def test_no_evaluation_context_occurs_in_training(k: int) -> None:
    train, evaluation = recall_split(k=k)
    facts = lambda e: frozenset(s.strip(". ") for s in e.context.split(". "))  # noqa: E731
    seen = {facts(e) for e in evaluation}
    assert not any(facts(e) in seen for e in train)
    assert {e.context for e in train}.isdisjoint(e.context for e in evaluation)
    assert len(train) > 15_000 and len(evaluation) == 2_000


def test_recall_tasks_are_registered_qa_tasks_with_contexts_and_an_em_headline() -> None:
    for k in (2, 4, 8):
        spec = get_task(f"recall_k{k}")
        assert (
            spec.kind == "qa" and spec.has_context and spec.headline == "em" and spec.bundle == ("recall", k)
        )
        e = recall_examples(k=k, split="eval", n=1)[0]
        assert spec.answer_text(e) == " " + e.answers[0]
    with pytest.raises(ValueError, match="k must be in"):
        recall_examples(k=len(RELATIONS) + 1, split="eval", n=1)
    with pytest.raises(ValueError, match="split"):
        recall_examples(k=2, split="dev", n=1)


def test_span_windows_are_consecutive_non_overlapping_and_whole() -> None:
    text = " ".join(f"w{i}" for i in range(10))
    assert span_windows(text, 4) == ["w0 w1 w2 w3", "w4 w5 w6 w7"]
    assert span_windows("a b", 3) == []
