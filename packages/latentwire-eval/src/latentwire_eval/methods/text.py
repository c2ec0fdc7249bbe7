"""The text methods: the whole text (with or without demonstrations), nothing of it, and the text cut
to the budget. Their slot is reader token ids; nothing crosses the wire."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from latentwire_core.tasks import Example, TaskSpec, question_head
from latentwire_eval.methods.base import Method, TokenMethod, register_method

if TYPE_CHECKING:
    from latentwire_core.ports import PromptLM
    from latentwire_core.prompting import SlotPrompt

__all__ = ["NoContext", "Text", "TextKShot", "TokenBudget", "kshot_instruction", "token_budget_slot"]


def kshot_instruction(
    task: TaskSpec, train: Sequence[Example], *, k: int, seed: int = 0, compress: str = "source"
) -> str:
    """``k`` demonstrations from the training split (fixed seed; balanced over labels when possible).

    With ``compress="context"`` each demonstration reads ``Context: … / Question: …`` like the prompt.
    """
    rng = random.Random(seed)
    pool = list(train)
    if task.kind == "classification":
        by_label: dict[int, list[Example]] = {}
        for e in pool:
            by_label.setdefault(int(e.label or 0), []).append(e)
        demos = []
        labels = sorted(by_label)
        for i in range(k):
            demos.append(rng.choice(by_label[labels[i % len(labels)]]))
    else:
        demos = rng.sample(pool, min(k, len(pool)))
    rng.shuffle(demos)
    parts = []
    for d in demos:
        answer = task.answer_text(d)
        body = f"Context: {d.context}\nQuestion: {d.question}" if compress == "context" else d.source
        parts.append(f"{task.instruction}{body}{task.after}\n{task.anchor}{answer}\n\n")
    return "".join(parts) + task.instruction


def token_budget_slot(lm: PromptLM, ex: Example, budget: int) -> list[int]:
    """The text truncated to ``budget`` target-model tokens, question first (docs/design.md "Correctness rules", rule 5)."""
    if ex.question and ex.context:
        head = list(lm.tokenize([question_head(ex.question)])[0])
        if len(head) >= budget:
            return head[:budget]
        return head + list(lm.tokenize([" " + ex.context])[0])[: budget - len(head)]
    return list(lm.tokenize([ex.source])[0])[:budget]


@register_method("text")
class Text(TokenMethod):
    """The whole compressed text (up to ``max_text_tokens``): the upper reference."""

    task_kinds = Method.ALL_KINDS

    def ids(self, e: Example) -> list[int]:
        return self.text_ids(e)


@register_method("text_kshot")
class TextKShot(Text):
    """The whole text after ``kshot`` demonstrations drawn from the training split."""

    fits_on_train = True

    def fit(self) -> None:
        from latentwire_core.prompting import SlotPrompt

        instr = kshot_instruction(
            self.ctx.task,
            self.ctx.train,
            k=int(self.ctx.options.get("kshot", 4)),
            seed=self.ctx.seed,
            compress=self.ctx.compress,
        )
        self._prompt = SlotPrompt(self.lm, self.ctx.task, instruction=instr, compress=self.ctx.compress)

    @property
    def prompt(self) -> SlotPrompt:
        return getattr(self, "_prompt", None) or self.ctx.plain_prompt(self.reader, self.lm)


@register_method("no_context")
class NoContext(TokenMethod):
    """Nothing of the compressed part: the question alone. A latent that does not beat it carries nothing."""

    task_kinds = Method.ALL_KINDS

    def ids(self, e: Example) -> list[int]:
        if self.ctx.compress == "context" or not e.question:
            return []  # compress = "context": the question is already in the prompt's plain tail
        if e.question.strip() == e.source.strip():
            return []  # the question is the whole compressed part (GSM8K's problem): nothing of it
        return list(self.lm.tokenize([f"Question: {e.question}"])[0])

    def read(self, e: Example) -> str:
        return ""


@register_method("token_budget")
class TokenBudget(TokenMethod):
    """The text truncated to the example's budget ``M_i`` reader tokens (question first)."""

    task_kinds = Method.ALL_KINDS

    def ids(self, e: Example) -> list[int]:
        if self.ctx.compress == "context":
            return self.text_ids(e)[: self.ctx.budgets[e.id]]
        return token_budget_slot(self.lm, e, self.ctx.budgets[e.id])
