"""Our SQuAD EM/F1 agree with the official evaluate-v1.1.py / evaluate-v2.0.py to 1e-6.

Per example and in aggregate, on the complete offline v1.1 dev set and the v2.0 half-dev set,
with adversarial predictions (case, articles, punctuation, unicode, partial spans, empty,
abstention phrases, context spans) drawn per question with a fixed seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import official_squad as official
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latentwire_core.tasks import get_task
from latentwire_eval.metrics import (
    exact_match,
    exact_match_v2,
    metric_fns,
    postprocess_answer,
    squad_f1,
    squad_f1_v2,
    v2_prediction,
)
from latentwire_hf.data import read_squad

ABSTAIN = ["", " ", "unanswerable", "Unanswerable.", "no answer", "unknown", "None", "cannot be answered"]


def _predictions(dataset: list[dict], seed: int = 0) -> dict[str, str]:
    """One adversarial prediction per question, chosen and built with a fixed seed."""
    rng = random.Random(seed)
    preds = {}
    for article in dataset:
        for para in article["paragraphs"]:
            words = para["context"].split()
            for qa in para["qas"]:
                golds = [a["text"] for a in qa["answers"]] or [""]
                g = rng.choice(golds)
                gw = g.split()
                i = rng.randrange(max(1, len(words) - 3))
                variants = [
                    g,
                    g.upper(),
                    f"The {g}.",
                    f"\u201c{g}\u201d",  # unicode quotes are not string.punctuation
                    f"an {g}, a the",
                    " ".join(gw[: max(1, len(gw) // 2)]),
                    f"{g} and more words here",
                    g.replace(" ", "\u00a0"),  # non-breaking spaces
                    " ".join(words[i : i + rng.randint(1, 4)]),
                    *ABSTAIN,
                    ".",
                    "\u00e9t\u00e9 caf\u00e9 \u2014 na\u00efve",
                ]
                preds[qa["id"]] = rng.choice(variants)
    return preds


@pytest.fixture(scope="module")
def v1(full_data_dir: Path) -> tuple[list[dict], list]:
    path = full_data_dir / "squad" / "dev-v1.1.json"
    return json.loads(path.read_text(encoding="utf-8"))["data"], read_squad(path, "squad")


@pytest.fixture(scope="module")
def v2(full_data_dir: Path) -> tuple[list[dict], list]:
    path = full_data_dir / "squad_v2" / "dev-v2.0-half.json"
    return json.loads(path.read_text(encoding="utf-8"))["data"], read_squad(path, "squad_v2")


@pytest.mark.parametrize("seed", [0, 1])
def test_v1_agrees_with_the_official_script_on_the_full_dev_set(v1: tuple, seed: int) -> None:
    dataset, examples = v1
    assert len(examples) == 10570  # the complete official dev set, every question loaded
    preds = _predictions(dataset, seed)
    ref = official.v1_evaluate(dataset, preds)
    task = get_task("squad")
    fns = metric_fns(task)
    em, f1 = [], []
    for ex in examples:
        p = preds[ex.id]
        e, f = fns["em"](p, task.golds(ex)), fns["f1"](p, task.golds(ex))
        assert abs(e - ref["per"][ex.id][0]) <= 1e-6 and abs(f - ref["per"][ex.id][1]) <= 1e-6, (ex.id, p)
        em.append(e)
        f1.append(f)
    assert abs(100 * sum(em) / len(em) - ref["exact_match"]) <= 1e-6
    assert abs(100 * sum(f1) / len(f1) - ref["f1"]) <= 1e-6


def test_v1_perfect_predictions_score_100(v1: tuple) -> None:
    """v1.1 dev has golds "unknown", "None" and "." : none of them may be read as an abstention."""
    dataset, examples = v1
    preds = {ex.id: ex.answers[0] for ex in examples}
    ref = official.v1_evaluate(dataset, preds)
    ours_em = sum(exact_match(preds[e.id], e.answers) for e in examples) / len(examples)
    ours_f1 = sum(squad_f1(preds[e.id], e.answers) for e in examples) / len(examples)
    assert abs(100 * ours_em - ref["exact_match"]) <= 1e-6 and abs(100 * ours_f1 - ref["f1"]) <= 1e-6
    assert ours_em == 1.0
    assert exact_match("unknown", ["unknown"]) == 1.0 and exact_match("None", ["None"]) == 1.0
    # a gold that normalises to empty: EM 1 for an empty prediction, F1 0 (the official script's quirk)
    assert exact_match("", ["."]) == 1.0 and squad_f1("", ["."]) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_v2_agrees_with_the_official_script(v2: tuple, seed: int) -> None:
    dataset, examples = v2
    assert len(examples) == 6078
    preds = _predictions(dataset, seed)
    ref = official.v2_evaluate(dataset, preds)
    em, f1, has = [], [], []
    for ex in examples:
        p = preds[ex.id]
        e, f = exact_match_v2(p, ex.answers), squad_f1_v2(p, ex.answers)
        assert abs(e - ref["per"][ex.id][0]) <= 1e-6 and abs(f - ref["per"][ex.id][1]) <= 1e-6, (ex.id, p)
        em.append(e)
        f1.append(f)
        has.append(bool(ex.answers))
    assert abs(100 * sum(em) / len(em) - ref["exact"]) <= 1e-6
    assert abs(100 * sum(f1) / len(f1) - ref["f1"]) <= 1e-6
    h = [f for f, a in zip(f1, has, strict=True) if a]
    n = [f for f, a in zip(f1, has, strict=True) if not a]
    assert abs(100 * sum(h) / len(h) - ref["HasAns_f1"]) <= 1e-6
    assert abs(100 * sum(n) / len(n) - ref["NoAns_f1"]) <= 1e-6


def test_v2_only_the_empty_prediction_abstains_and_the_prompt_phrase_is_mapped_first() -> None:
    task = get_task("squad_v2")
    for phrase in ("no answer", "unknown", "None", "cannot be answered"):
        assert exact_match_v2(phrase, []) == 0.0
    assert exact_match_v2("", []) == 1.0 and squad_f1_v2("", []) == 1.0
    assert exact_match_v2("unanswerable", []) == 0.0  # the scorer itself knows no phrase
    assert v2_prediction("Unanswerable.", task.no_answer) == ""  # ... the task maps its own phrase
    fns = metric_fns(task)
    assert fns["em"]("Unanswerable.", []) == 1.0 and fns["f1"]("unanswerable", ["Denver"]) == 0.0
    assert fns["f1"]("unknown", []) == 0.0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.lists(st.text(max_size=30), min_size=1, max_size=4))
def test_generated_predictions_agree_with_the_official_definitions(pred: str, golds: list[str]) -> None:
    assert exact_match(pred, golds) == float(
        official.v1_metric_max_over_ground_truths(official.v1_exact_match_score, pred, golds)
    )
    assert (
        abs(
            squad_f1(pred, golds)
            - official.v1_metric_max_over_ground_truths(official.v1_f1_score, pred, golds)
        )
        <= 1e-9
    )
    kept = [g for g in golds if official.normalize_answer(g)] or [""]
    assert exact_match_v2(pred, golds) == max(official.v2_compute_exact(g, pred) for g in kept)
    assert abs(squad_f1_v2(pred, golds) - max(official.v2_compute_f1(g, pred) for g in kept)) <= 1e-9


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Denver Broncos\nQuestion: Which NFL team", "Denver Broncos"),
        ('The answer is "1997".', "1997"),
        ("Answer: Santa Clara, California", "Santa Clara, California"),
        (" \u201cthe Broncos\u201d ", "the Broncos"),
        ("Question: Which NFL team won Super Bowl 50?", ""),
        ("1997. Context: the game", "1997"),
        ("U.S.", "U.S"),
        ("\n\n Paris\nQuestion: x", "Paris"),
        ("The answer is\nParis", ""),  # only the first non-empty line is read
    ],
)
def test_one_postprocessing_cuts_rambling_and_format(raw: str, clean: str) -> None:
    assert postprocess_answer(raw) == clean


@given(
    st.lists(st.sampled_from([*'ab :."\n\t', "Answer", "Question", "The answer is"]), max_size=20).map(
        "".join
    )
)
@settings(max_examples=300, deadline=None)
def test_stopping_generation_at_the_first_complete_line_never_changes_the_score(text: str) -> None:
    """Generation stops at the token that completes the first line (latentwire_core.stopping);
    whatever the model would have written after it must not change the scored answer."""
    from latentwire_core.stopping import line_complete

    for k in range(len(text) + 1):
        if line_complete(text[:k]):
            assert postprocess_answer(text[:k]) == postprocess_answer(text)
            break
