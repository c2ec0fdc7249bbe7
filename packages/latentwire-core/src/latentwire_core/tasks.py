"""The example schema and task specs: how each benchmark is prompted and scored (shared by every method)."""

from __future__ import annotations

import attrs

__all__ = ["TASKS", "Example", "TaskSpec", "get_task"]


@attrs.frozen(kw_only=True)
class Example:
    """One example. ``source`` is what the slot carries (the text the wire compresses).

    Encoders see only ``source``; ``answers`` and ``label`` are targets, never inputs.
    """

    id: str
    task: str
    source: str
    question: str = ""
    context: str = ""
    answers: tuple[str, ...] = ()
    label: int | None = None


@attrs.frozen(kw_only=True)
class TaskSpec:
    """Args:
    name: registry name.
    kind: ``classification`` (scored by label verbalisers), ``qa``, ``summary`` or ``math`` (generated).
    instruction: text before the slot (inside the user turn).
    after: text after the slot, still in the user turn.
    anchor: text that opens the answer (after the assistant header).
    labels: verbalisers for classification, index = label id; each starts with a space.
    max_new_tokens: generation cap (fixed per task, never from the gold answer).
    """

    name: str
    kind: str
    instruction: str
    after: str = ""
    anchor: str = "Answer:"
    labels: tuple[str, ...] = ()
    max_new_tokens: int = 16


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec(
            name="sst2",
            kind="classification",
            instruction="Is the sentiment of this movie review positive or negative?\nReview: ",
            anchor="Sentiment:",
            labels=(" negative", " positive"),
            max_new_tokens=3,
        ),
        TaskSpec(
            name="agnews",
            kind="classification",
            instruction="Which topic is this news article about: world, sports, business or technology?\n",
            anchor="Topic:",
            labels=(" world", " sports", " business", " technology"),
            max_new_tokens=3,
        ),
        TaskSpec(
            name="trec",
            kind="classification",
            instruction=(
                "What kind of answer does this question ask for: abbreviation, entity, description, "
                "person, location or number?\nQuestion: "
            ),
            anchor="Type:",
            labels=(" abbreviation", " entity", " description", " person", " location", " number"),
            max_new_tokens=3,
        ),
        TaskSpec(
            name="squad",
            kind="qa",
            instruction="Answer the question with a short span from the context.\n",
            max_new_tokens=16,
        ),
        TaskSpec(
            name="squad_v2",
            kind="qa",
            instruction=(
                "Answer the question with a short span from the context, "
                "or say unanswerable if the context does not contain it.\n"
            ),
            max_new_tokens=16,
        ),
        TaskSpec(
            name="hotpotqa",
            kind="qa",
            instruction="Answer the question with a short phrase, using the paragraphs.\n",
            max_new_tokens=16,
        ),
        TaskSpec(
            name="gsm8k",
            kind="math",
            instruction="Solve the problem. End with 'The answer is N'.\n",
            max_new_tokens=128,
        ),
        TaskSpec(
            name="xsum",
            kind="summary",
            instruction="Summarise the article in one sentence.\n",
            anchor="Summary:",
            max_new_tokens=48,
        ),
    ]
}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[name]
