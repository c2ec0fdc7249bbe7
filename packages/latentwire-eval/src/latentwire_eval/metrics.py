"""Per-example metrics, each registered with whether higher is better and how it aggregates."""

from __future__ import annotations

import functools
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from latentwire_core.tasks import TaskSpec

__all__ = [
    "METRICS",
    "MetricSpec",
    "exact_match",
    "exact_match_v2",
    "first_line",
    "gsm8k_final_number",
    "metric_fns",
    "normalize_answer",
    "postprocess_answer",
    "rouge_l",
    "squad_f1",
    "squad_f1_v2",
    "v2_prediction",
]


def normalize_answer(s: str) -> str:
    """Official SQuAD normalisation: lower, drop punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split()


def _overlap_f1(pred_toks: list[str], gold_toks: list[str]) -> float:
    common = Counter(pred_toks) & Counter(gold_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


# --- SQuAD v1.1: the official evaluate-v1.1.py definitions -------------------------------------------
# Every gold answer counts, even one that normalises to empty ("." in three dev questions); an empty
# prediction then matches it exactly (EM 1) but shares no token with it (F1 0), as in the official script.
# No prediction is read as an abstention: "unknown" and "None" are real v1.1 gold answers.


def exact_match(pred: str, golds: Sequence[str]) -> float:
    """SQuAD v1.1 exact match: max over gold answers of normalised string equality (official script)."""
    return max((float(normalize_answer(pred) == normalize_answer(g)) for g in golds), default=0.0)


def squad_f1(pred: str, golds: Sequence[str]) -> float:
    """SQuAD v1.1 token F1: max over gold answers; no common token gives 0, empty vs empty too (official)."""
    return max((_overlap_f1(_tokens(pred), _tokens(g)) for g in golds), default=0.0)


# --- SQuAD v2.0: the official evaluate-v2.0.py definitions -------------------------------------------
# Golds that normalise to empty are dropped; a question left with none is unanswerable (gold ""). Only
# the empty prediction abstains. The task's own no-answer phrase is mapped to "" *before* scoring by
# ``v2_prediction`` (the report says so); no other phrase is.


def _v2_golds(golds: Sequence[str]) -> list[str]:
    return [g for g in golds if normalize_answer(g)] or [""]


def _v2_exact(gold: str, pred: str) -> float:
    return float(normalize_answer(gold) == normalize_answer(pred))


def _v2_f1(gold: str, pred: str) -> float:
    g, p = (_tokens(gold) if gold else []), (_tokens(pred) if pred else [])
    if not g or not p:
        return float(g == p)
    return _overlap_f1(p, g)


def exact_match_v2(pred: str, golds: Sequence[str]) -> float:
    """SQuAD v2.0 exact match (official): unanswerable questions score 1 only for the empty prediction."""
    return max(_v2_exact(g, pred) for g in _v2_golds(golds))


def squad_f1_v2(pred: str, golds: Sequence[str]) -> float:
    """SQuAD v2.0 token F1 (official): empty against empty is 1, empty against a span 0."""
    return max(_v2_f1(g, pred) for g in _v2_golds(golds))


def v2_prediction(pred: str, no_answer_phrase: str) -> str:
    """The prediction as scored on SQuAD v2: the prompt's no-answer phrase (``unanswerable``) becomes ""."""
    return "" if no_answer_phrase and normalize_answer(pred) == normalize_answer(no_answer_phrase) else pred


_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def gsm8k_final_number(text: str) -> str | None:
    """The final number of a GSM8K answer: after '####' or 'answer is', else the last number."""
    for marker in ("####", "answer is"):
        if marker in text:
            found = _NUM.findall(text.split(marker)[-1])
            if found:
                return str(found[0]).replace(",", "").rstrip(".")
    found = _NUM.findall(text)
    return str(found[-1]).replace(",", "").rstrip(".") if found else None


def gsm8k_correct(pred: str, golds: Sequence[str]) -> float:
    num = gsm8k_final_number(pred)
    if num is None:
        return 0.0
    try:
        return float(any(abs(float(num) - float(g.replace(",", ""))) < 1e-6 for g in golds))
    except ValueError:
        return 0.0


@functools.cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def _rouge(kind: str) -> Callable[[str, Sequence[str]], float]:
    def score(pred: str, golds: Sequence[str]) -> float:
        scorer = _rouge_scorer()
        return max((scorer.score(g, pred)[kind].fmeasure for g in golds), default=0.0)

    score.__doc__ = f"{kind} F-measure (``rouge-score``, stemmed), max over golds."
    return score


rouge_1, rouge_2, rouge_l = _rouge("rouge1"), _rouge("rouge2"), _rouge("rougeL")


@attrs.frozen
class MetricSpec:
    name: str
    fn: Callable[[str, Sequence[str]], float] | None  # None: computed by teacher forcing, not from the output
    higher_is_better: bool = True
    aggregation: str = "mean"


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in [
        MetricSpec("em", exact_match),
        MetricSpec("f1", squad_f1),
        MetricSpec("em_v2", exact_match_v2),
        MetricSpec("f1_v2", squad_f1_v2),
        MetricSpec("accuracy", lambda p, g: float(p.strip() == g[0].strip())),
        MetricSpec("gsm8k_accuracy", gsm8k_correct),
        MetricSpec("rouge_1", rouge_1),
        MetricSpec("rouge_2", rouge_2),
        MetricSpec("rouge_l", rouge_l),
    ]
}

# Teacher-forced scores of the gold answer (computed in evaluate.sequence_scores, not from the output).
GOLD_METRICS = {
    "nll_per_token": MetricSpec("nll_per_token", None, higher_is_better=False),
    "first_token_acc1": MetricSpec("first_token_acc1", None),
    "first_token_acc5": MetricSpec("first_token_acc5", None),
}


def headline_of(task: TaskSpec) -> str:
    """The metric a report leads with: the task's own (``TaskSpec.headline``), else its kind's
    (:data:`latentwire_core.tasks.TASK_KINDS`)."""
    return task.headline_metric


def metric_fns(task: TaskSpec) -> dict[str, Callable[[str, Sequence[str]], float]]:
    """The task's output metrics, by report name, with the scoring its benchmark's official script uses.

    SQuAD v2 reports ``em``/``f1`` computed by the v2 definitions, after mapping the task's
    no-answer phrase to the empty prediction; any other QA metric gets the same mapping and an
    unanswerable question's gold as ``""``.
    """
    names = task.metrics
    if task.scoring == "squad_v2":  # every metric, not only em/f1: an added one must not KeyError here
        v2 = {"em": exact_match_v2, "f1": squad_f1_v2}

        def wrap(fn: Callable[[str, Sequence[str]], float]) -> Callable[[str, Sequence[str]], float]:
            return lambda pred, golds: fn(v2_prediction(pred, task.no_answer), golds)

        def other(fn: Callable[[str, Sequence[str]], float]) -> Callable[[str, Sequence[str]], float]:
            # the no-answer phrase is the empty prediction, and an unanswerable question's gold is ""
            return wrap(lambda pred, golds: fn(pred, _v2_golds(golds)))

        out_v2: dict[str, Callable[[str, Sequence[str]], float]] = {}
        for n in names:
            spec_fn = METRICS[n].fn
            assert spec_fn is not None
            out_v2[n] = wrap(v2[n]) if n in v2 else other(spec_fn)
        return out_v2
    out: dict[str, Callable[[str, Sequence[str]], float]] = {}
    for n in names:
        fn = METRICS[n].fn
        assert fn is not None
        out[n] = fn
    return out


_STOP = re.compile(r"\b(?:Question|Context|Answer|Paragraph)s?[ \t]*:", re.IGNORECASE)
_LEAD = re.compile(r"^[ \t]*(?:(?:the[ \t]+)?(?:final[ \t]+)?answer[ \t]*(?:is|:)[ \t]*)", re.IGNORECASE)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"


def first_line(text: str) -> str:
    """The text up to the first newline that follows non-whitespace (leading blank lines skipped)."""
    s = text.lstrip()
    cut = s.find("\n")
    return s if cut < 0 else s[:cut]


def postprocess_answer(text: str) -> str:
    """One post-processing for every generated QA answer, whatever the method.

    Keep the first non-empty line (:func:`first_line`), cut it at a stop string
    (``Question:``, ``Context:``, ``Answer:``), drop a leading "The answer is" / "Answer:",
    strip surrounding quotes and whitespace and one trailing period. Zero-shot text prompts
    ramble; a trained latent learns the format; cutting both the same way keeps format
    learning out of the comparison. Only the first line is ever read, so generation may stop
    as soon as that line is complete (``stop_at_line``): the score is the same.
    """
    s = first_line(text).strip()
    s = _LEAD.sub("", s, count=1)
    m = _STOP.search(s)
    if m is not None:
        s = s[: m.start()]
    s = s.strip().strip(_QUOTES).strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    return s.strip(_QUOTES).strip()
