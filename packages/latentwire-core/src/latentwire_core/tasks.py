"""The example schema and task specs: how each benchmark is prompted and scored (shared by every method)."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "COMPRESS",
    "RECONSTRUCT_WORDS",
    "TASKS",
    "TASK_KINDS",
    "Example",
    "TaskData",
    "TaskKind",
    "TaskSpec",
    "compressed_text",
    "get_task",
    "plain_tail",
    "qa_source",
    "question_head",
]

COMPRESS = ("source", "context")
"""What the wire (and every baseline's slot) carries: the whole ``source``, or only a QA example's
``context`` while its question stays in plain text after the slot (ARC-Encoder, xRAG, PCC)."""


def compressed_text(ex: Example, compress: str) -> str:
    """The text that goes into the slot: the context (``compress="context"``) or the whole source."""
    if compress == "context":
        if not ex.context:
            raise ValueError(f"example {ex.id} has no context to compress")
        return ex.context
    return ex.source


def qa_source(question: str, context: str) -> str:
    """A QA example's whole text: ``Question: …`` then ``Context: …`` (what ``compress = "source"`` sends)."""
    return f"Question: {question}\nContext: {context}"


def question_head(question: str) -> str:
    """A QA source up to its context, ``Question: …\nContext:`` (budgeted baselines keep it first; the
    context follows as ``" " + context``, so the split matches the whole text's tokenisation)."""
    return qa_source(question, "").rstrip(" ")


def plain_tail(ex: Example, compress: str) -> str:
    """Plain text after the slot: the question when only the context is compressed."""
    return f"\nQuestion: {ex.question}" if compress == "context" else ""


@attrs.frozen(kw_only=True)
class Example:
    """One example. ``source`` is what the slot carries (the text the wire compresses).

    Encoders see only ``source``; ``answers`` and ``label`` are targets, never inputs.
    ``group`` names the cluster an example belongs to (a SQuAD article): questions about
    one article are not independent, so confidence intervals resample whole groups.
    """

    id: str
    task: str
    source: str
    question: str = ""
    context: str = ""
    answers: tuple[str, ...] = ()
    label: int | None = None
    group: str = ""


def _pairs(fields: Any) -> tuple[tuple[str, str], ...]:
    """``{field: key}`` kept as sorted pairs (a frozen, hashable spec)."""
    return tuple(sorted(dict(fields).items()))


@attrs.frozen(kw_only=True)
class TaskData:
    """Where a task's examples live when they are JSON Lines, and how a row becomes an :class:`Example`.

    Args:
        train / eval: paths under the data folder (``$LATENTWIRE_DATA``).
        fields: ``{Example field: row key}`` for ``source``, ``question``, ``context``, ``answers``
            (a string or a list of strings), ``label`` (an int) and ``id``. Without ``source`` a QA
            row's source is built from its question and context; without ``id`` it is
            ``<task>-<line>``.
        hub: ``(dataset, config, train split, eval split)`` on the ``datasets`` hub, rows alike.
    """

    train: str
    eval: str
    fields: tuple[tuple[str, str], ...] = attrs.field(factory=tuple, converter=_pairs)
    hub: tuple[str, str | None, str, str] | None = None


@attrs.frozen(kw_only=True)
class TaskKind:
    """What every task of one kind shares: the metrics its outputs are scored with (names in
    ``latentwire_eval.metrics.METRICS``) and the one a report leads with.

    Args:
        name: ``classification`` (scored by label verbalisers), ``qa``, ``math`` or ``summary`` (generated).
        metrics: every metric a row of this kind is scored with, in report order.
        headline: the metric a report and the dashboard lead with (one of ``metrics``; a task may name
            another of them, :attr:`TaskSpec.headline`).
    """

    name: str
    metrics: tuple[str, ...]
    headline: str

    def __attrs_post_init__(self) -> None:
        if self.headline not in self.metrics:
            raise ValueError(
                f"task kind {self.name}: headline {self.headline!r} is not one of {self.metrics}"
            )


TASK_KINDS: dict[str, TaskKind] = {
    k.name: k
    for k in (
        TaskKind(name="classification", metrics=("accuracy",), headline="accuracy"),
        TaskKind(name="qa", metrics=("em", "f1"), headline="f1"),
        TaskKind(name="math", metrics=("gsm8k_accuracy",), headline="gsm8k_accuracy"),
        TaskKind(name="summary", metrics=("rouge_1", "rouge_2", "rouge_l"), headline="rouge_l"),
    )
}
"""Every task kind by name. Adding a metric to a kind replaces its record
(``TASK_KINDS["qa"] = attrs.evolve(TASK_KINDS["qa"], metrics=(..., "contains"))``)."""


def _kind(_i: Any, a: attrs.Attribute[Any], v: str) -> None:
    if v not in TASK_KINDS:
        raise ValueError(f"{a.name} must be one of {sorted(TASK_KINDS)}, got {v!r}")


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
    scoring: how outputs are scored where a benchmark has an official script
        (``squad_v1``: evaluate-v1.1.py, ``squad_v2``: evaluate-v2.0.py).
    no_answer: the phrase the prompt asks for when there is no answer (SQuAD v2); it is
        the training target of an unanswerable question and is scored as the empty prediction.
    data: a JSON Lines task's files and row fields (read by ``latentwire_hf.data``); the bundled
        benchmarks with their own formats (TSV, SQuAD JSON, ...) have their own parsers there.
    has_context: its examples have a ``context`` apart from the question (``compress = "context"``
        may put only that on the wire).
    headline: the metric a report leads with (default: the kind's, e.g. ``f1`` for ``qa``; one of the
        kind's metrics).
    bundle: a task generated here rather than read from a benchmark file: ``("recall", K)``
        (:mod:`latentwire_core.synthetic`, K facts) or ``("reconstruct", W)`` (spans of W words of
        real text, cut by ``latentwire_hf.data``).
    """

    name: str
    kind: str = attrs.field(validator=_kind)
    instruction: str
    after: str = ""
    anchor: str = "Answer:"
    labels: tuple[str, ...] = ()
    max_new_tokens: int = 16
    scoring: str = ""
    no_answer: str = ""
    data: TaskData | None = None
    has_context: bool = False
    headline: str = ""
    bundle: tuple[str, int] | None = None

    def __attrs_post_init__(self) -> None:
        if self.headline and self.headline not in TASK_KINDS[self.kind].metrics:
            raise ValueError(
                f"task {self.name}: headline {self.headline!r} is not one of its kind's metrics "
                f"{TASK_KINDS[self.kind].metrics}"
            )

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric this task's rows are scored with (its kind's, :data:`TASK_KINDS`)."""
        return TASK_KINDS[self.kind].metrics

    @property
    def headline_metric(self) -> str:
        """The metric a report leads with: the task's own ``headline``, else its kind's."""
        return self.headline or TASK_KINDS[self.kind].headline

    def answer_text(self, ex: Example) -> str:
        """The target continuation after the anchor: a label verbaliser, or " " + the first gold answer.

        Raises:
            ValueError: a classification label outside the task's labels, or a QA example
                without answers on a task that has no no-answer phrase.
        """
        if self.kind == "classification":
            if ex.label is None or not 0 <= ex.label < len(self.labels):
                raise ValueError(
                    f"example {ex.id}: label {ex.label!r} outside {self.name}'s {len(self.labels)} labels"
                )
            return self.labels[ex.label]
        if ex.answers:
            return " " + ex.answers[0]
        if self.no_answer:
            return " " + self.no_answer
        raise ValueError(f"example {ex.id} has no answer and task {self.name} has no no-answer phrase")

    def golds(self, ex: Example) -> list[str]:
        """Every reference the metrics compare against (all gold answers; SQuAD v2 keeps them raw)."""
        if self.kind == "classification":
            return [self.labels[ex.label].strip()] if ex.label is not None else []
        return list(ex.answers)


# One worked example in the instruction (names and values outside the generator's lists): without it
# SmolLM2-135M answered with the relation ("instrument") or a sentence; measured in results/recall-calibration.
_RECALL_INSTRUCTION = (
    "Read the facts, then answer the question with one word.\n"
    "Context: Xena has a moose. Yuri plays the lute. Quin lives in Perth.\n"
    "Question: Which instrument does Yuri play?\nAnswer: lute\n\n"
    "Context: Bo eats a date. Cy works as a cook. Di likes the color tan. Ed drinks rum. Al plays darts. "
    "Jo has a yak.\nQuestion: What does Ed drink?\nAnswer: rum\n\n"
)


def _recall_tasks() -> list[TaskSpec]:
    """``recall_k2`` / ``_k4`` / ``_k8``: K facts, one asked; exact match on the value."""
    return [
        TaskSpec(
            name=f"recall_k{k}",
            kind="qa",
            instruction=_RECALL_INSTRUCTION,
            max_new_tokens=6,
            has_context=True,
            headline="em",
            bundle=("recall", k),
        )
        for k in (2, 4, 8)
    ]


RECONSTRUCT_WORDS = {16: 12, 32: 24, 64: 48}
"""``reconstruct_<N>``: spans of about N reader tokens, cut as this many words of real text."""


def _reconstruct_tasks() -> list[TaskSpec]:
    """``reconstruct_16`` / ``_32`` / ``_64``: the wire carries a span of real text; the reader repeats it."""
    return [
        TaskSpec(
            name=f"reconstruct_{n}",
            kind="qa",
            instruction="Repeat the text exactly.\nText: ",
            anchor="Repeated text:",
            max_new_tokens=n + n // 2,  # fixed per task, never from the gold span
            headline="em",
            bundle=("reconstruct", words),
        )
        for n, words in RECONSTRUCT_WORDS.items()
    ]


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
            scoring="squad_v1",
            has_context=True,
        ),
        TaskSpec(
            name="squad_v2",
            kind="qa",
            instruction=(
                "Answer the question with a short span from the context, "
                "or say unanswerable if the context does not contain it.\n"
            ),
            max_new_tokens=16,
            scoring="squad_v2",
            no_answer="unanswerable",
            has_context=True,
        ),
        TaskSpec(
            name="hotpotqa",
            kind="qa",
            instruction="Answer the question with a short phrase, using the paragraphs.\n",
            max_new_tokens=16,
            has_context=True,
        ),
        *_recall_tasks(),
        *_reconstruct_tasks(),
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
