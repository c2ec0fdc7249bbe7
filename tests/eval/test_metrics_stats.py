from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from latentwire_eval.metrics import (
    METRICS,
    exact_match,
    gsm8k_final_number,
    normalize_answer,
    rouge_l,
    squad_f1,
)
from latentwire_eval.stats import bootstrap_ci, holm, mcnemar_test, paired_bootstrap, paired_permutation


def test_squad_normalisation_and_max_over_golds() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert exact_match("the Denver Broncos", ["Broncos", "Denver Broncos"]) == 1.0
    assert exact_match("Denver", ["Broncos", "Denver Broncos"]) == 0.0
    # F1: "denver" vs "denver broncos": P=1, R=1/2 -> 2/3
    assert squad_f1("Denver", ["Denver Broncos"]) == pytest.approx(2 / 3)
    assert squad_f1("Denver", ["Broncos", "Denver Broncos"]) == pytest.approx(2 / 3)
    assert squad_f1("", ["x"]) == 0.0


def test_squad_v2_no_answer_rule() -> None:
    assert exact_match("Unanswerable.", ["unanswerable"]) == 1.0
    assert exact_match("", ["unanswerable"]) == 1.0
    assert squad_f1("Denver", ["unanswerable"]) == 0.0
    assert squad_f1("no answer", ["Denver Broncos"]) == 0.0
    assert squad_f1("Denver Broncos", ["Denver Broncos"]) == 1.0


def test_gsm8k_number_extraction() -> None:
    assert gsm8k_final_number("so 3 + 4 = 7 eggs. The answer is 1,234.") == "1234"
    assert gsm8k_final_number("blah #### 18") == "18"
    assert gsm8k_final_number("I get 5 then 12") == "12"
    assert gsm8k_final_number("no digits") is None
    assert METRICS["gsm8k_accuracy"].fn("The answer is 18.", ["18"]) == 1.0


def test_rouge_l_uses_rouge_score() -> None:
    assert rouge_l("the cat sat on the mat", ["the cat sat on the mat"]) == pytest.approx(1.0)
    assert 0 < rouge_l("a cat sat", ["the cat sat on the mat"]) < 1


def test_metrics_declare_direction_and_aggregation() -> None:
    assert all(m.higher_is_better and m.aggregation == "mean" for m in METRICS.values())


@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=5, max_size=60), st.randoms())
def test_metric_means_are_permutation_invariant(values: list[float], rnd) -> None:
    shuffled = values[:]
    rnd.shuffle(shuffled)
    assert bootstrap_ci(values, n_resamples=200)[0] == pytest.approx(
        bootstrap_ci(shuffled, n_resamples=200)[0]
    )


def test_bca_ci_covers_the_mean_and_is_sane() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random(400) < 0.7).astype(float)
    mean, lo, hi = bootstrap_ci(x, n_resamples=2000)
    assert mean == x.mean() and lo < mean < hi
    # close to the normal-approximation half-width of a proportion at n = 400 (about 0.047)
    assert (hi - lo) / 2 == pytest.approx(1.96 * np.sqrt(mean * (1 - mean) / 400), rel=0.25)
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0, 1.0)


def test_paired_tests_detect_a_real_difference_only() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random(300) < 0.8).astype(float)
    b = (rng.random(300) < 0.5).astype(float)
    pb = paired_bootstrap(a, b)
    assert pb["ci_low"] > 0 and pb["p_value"] < 0.01
    assert mcnemar_test(a, b)["p_value"] < 0.01
    assert paired_permutation(a, b, n_resamples=2000) < 0.01
    same = paired_bootstrap(a, a)
    assert same["diff"] == 0.0
    assert mcnemar_test(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError, match="paired samples differ"):
        paired_bootstrap(a, b[:10])


def test_holm_matches_hand_computation() -> None:
    # sorted p: 0.01, 0.02, 0.04 with m=3 -> 0.03, 0.04, 0.04 (monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
