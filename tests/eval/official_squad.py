"""The official SQuAD scoring, re-implemented line by line from the published scripts.

``evaluate-v1.1.py`` and ``evaluate-v2.0.py`` (Rajpurkar et al., distributed with SQuAD,
https://rajpurkar.github.io/SQuAD-explorer/) define the reference EM/F1. This module follows
their definitions statement for statement (same normalisation order, same empty-answer rules,
same aggregation) so the test can hold our metrics to them. It is test-only code.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Any


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (both scripts)."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


# ---- evaluate-v1.1.py -------------------------------------------------------------------------------
def v1_f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def v1_exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def v1_metric_max_over_ground_truths(metric_fn: Any, prediction: str, ground_truths: list[str]) -> float:
    return max(metric_fn(prediction, gt) for gt in ground_truths)


def v1_evaluate(dataset: list[dict[str, Any]], predictions: dict[str, str]) -> dict[str, Any]:
    """Aggregate exact_match / f1 in percent, plus per-question scores (the script's sums, kept per id)."""
    f1 = exact_match = total = 0.0
    per: dict[str, tuple[float, float]] = {}
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                ground_truths = [x["text"] for x in qa["answers"]]
                prediction = predictions[qa["id"]]
                em = float(v1_metric_max_over_ground_truths(v1_exact_match_score, prediction, ground_truths))
                f = float(v1_metric_max_over_ground_truths(v1_f1_score, prediction, ground_truths))
                exact_match += em
                f1 += f
                per[qa["id"]] = (em, f)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total, "per": per}


# ---- evaluate-v2.0.py -------------------------------------------------------------------------------
def v2_get_tokens(s: str) -> list[str]:
    if not s:
        return []
    return normalize_answer(s).split()


def v2_compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def v2_compute_f1(a_gold: str, a_pred: str) -> float:
    gold_toks = v2_get_tokens(a_gold)
    pred_toks = v2_get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # If either is no-answer, then F1 is 1 if they agree, 0 otherwise
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def v2_evaluate(dataset: list[dict[str, Any]], preds: dict[str, str]) -> dict[str, Any]:
    """get_raw_scores + make_eval_dict (no no-answer probabilities: threshold 1.0 changes nothing)."""
    exact_scores: dict[str, float] = {}
    f1_scores: dict[str, float] = {}
    has_ans: dict[str, bool] = {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid = qa["id"]
                has_ans[qid] = bool(qa["answers"])
                gold_answers = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])]
                if not gold_answers:
                    # For unanswerable questions, only correct answer is empty string
                    gold_answers = [""]
                if qid not in preds:
                    continue
                a_pred = preds[qid]
                exact_scores[qid] = max(v2_compute_exact(a, a_pred) for a in gold_answers)
                f1_scores[qid] = max(v2_compute_f1(a, a_pred) for a in gold_answers)
    total = len(exact_scores)
    has = [k for k, v in has_ans.items() if v]
    no = [k for k, v in has_ans.items() if not v]
    return {
        "exact": 100.0 * sum(exact_scores.values()) / total,
        "f1": 100.0 * sum(f1_scores.values()) / total,
        "HasAns_exact": 100.0 * sum(exact_scores[k] for k in has) / len(has),
        "HasAns_f1": 100.0 * sum(f1_scores[k] for k in has) / len(has),
        "NoAns_exact": 100.0 * sum(exact_scores[k] for k in no) / len(no),
        "NoAns_f1": 100.0 * sum(f1_scores[k] for k in no) / len(no),
        "per": {k: (float(exact_scores[k]), float(f1_scores[k])) for k in exact_scores},
    }
