"""Per-example metrics, each registered with whether higher is better and how it aggregates."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

import attrs

__all__ = [
    "METRICS",
    "MetricSpec",
    "exact_match",
    "gsm8k_final_number",
    "normalize_answer",
    "rouge_l",
    "squad_f1",
]


def normalize_answer(s: str) -> str:
    """Official SQuAD normalisation: lower, drop punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


NO_ANSWER = "unanswerable"
_NO_ANSWER_PREDICTIONS = {"", "unanswerable", "no answer", "none", "unknown", "cannot be answered"}


def _no_answer(golds: Sequence[str], pred: str) -> float | None:
    """SQuAD v2: an unanswerable question (gold ``unanswerable``) scores 1 only for a no-answer prediction,
    and a no-answer prediction on an answerable question scores 0 (the official rule, empty = no answer)."""
    says_none = normalize_answer(pred) in _NO_ANSWER_PREDICTIONS
    if list(golds) == [NO_ANSWER]:
        return float(says_none)
    if says_none and normalize_answer(pred) != "":
        return 0.0
    return None


def exact_match(pred: str, golds: Sequence[str]) -> float:
    """Max over gold answers of normalised string equality (SQuAD v1; v2 no-answer rule included)."""
    na = _no_answer(golds, pred)
    if na is not None:
        return na
    return max((float(normalize_answer(pred) == normalize_answer(g)) for g in golds), default=0.0)


def squad_f1(pred: str, golds: Sequence[str]) -> float:
    """Max over gold answers of token-level F1 after normalisation (v2 no-answer rule included)."""
    na = _no_answer(golds, pred)
    if na is not None:
        return na
    return max((_f1(pred, g) for g in golds), default=0.0)


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


def rouge_l(pred: str, golds: Sequence[str]) -> float:
    """ROUGE-L F-measure (``rouge-score``, stemmed), max over golds."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return max((scorer.score(g, pred)["rougeL"].fmeasure for g in golds), default=0.0)


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
        MetricSpec("accuracy", lambda p, g: float(p.strip() == g[0].strip())),
        MetricSpec("gsm8k_accuracy", gsm8k_correct),
        MetricSpec("rouge_l", rouge_l),
    ]
}

# Teacher-forced scores of the gold answer (computed in evaluate.sequence_scores, not from the output).
GOLD_METRICS = {
    "nll_per_token": MetricSpec("nll_per_token", None, higher_is_better=False),
    "first_token_acc1": MetricSpec("first_token_acc1", None),
    "first_token_acc5": MetricSpec("first_token_acc5", None),
}

HEADLINE = {"classification": "accuracy", "qa": "f1", "math": "gsm8k_accuracy", "summary": "rouge_l"}
TASK_METRICS = {
    "classification": ("accuracy",),
    "qa": ("em", "f1"),
    "math": ("gsm8k_accuracy",),
    "summary": ("rouge_l",),
}
