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
from latentwire_eval.stats import (
    bootstrap_ci,
    cluster_bootstrap_ci,
    holm,
    mcnemar_test,
    mean_ci,
    paired_bootstrap,
    paired_permutation,
    wilson_ci,
)


def test_squad_normalisation_and_max_over_golds() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert exact_match("the Denver Broncos", ["Broncos", "Denver Broncos"]) == 1.0
    assert exact_match("Denver", ["Broncos", "Denver Broncos"]) == 0.0
    # F1: "denver" vs "denver broncos": P=1, R=1/2 -> 2/3
    assert squad_f1("Denver", ["Denver Broncos"]) == pytest.approx(2 / 3)
    assert squad_f1("Denver", ["Broncos", "Denver Broncos"]) == pytest.approx(2 / 3)
    assert squad_f1("", ["x"]) == 0.0


def test_squad_v1_reads_no_phrase_as_an_abstention() -> None:
    # v1.1 has no unanswerable questions: "unknown" / "none" are ordinary answers (the official script)
    assert exact_match("unknown", ["unknown"]) == 1.0
    assert exact_match("none", ["Denver"]) == 0.0
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


def test_rouge_1_2_l_match_values_worked_by_hand() -> None:
    """'the cat sat' against 'the cat sat on the mat': unigrams P 3/3, R 3/6 -> F 2/3; bigrams P 2/2, R 2/5
    -> F 4/7; the longest common subsequence is 3 tokens -> F 2/3 (rouge-score's F-measure)."""
    from latentwire_core.tasks import TASK_KINDS
    from latentwire_eval.metrics import rouge_1, rouge_2

    gold = ["the cat sat on the mat"]
    assert rouge_1("the cat sat", gold) == pytest.approx(2 / 3)
    assert rouge_2("the cat sat", gold) == pytest.approx(4 / 7)
    assert rouge_l("the cat sat", gold) == pytest.approx(2 / 3)
    assert rouge_2("mat the", gold) == 0.0  # no bigram in common
    assert rouge_1("cats sitting", ["the cat sits"]) == pytest.approx(0.8)  # stemmed: cat, sit; P 1, R 2/3
    assert TASK_KINDS["summary"].metrics == ("rouge_1", "rouge_2", "rouge_l")


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
    # a constant binary sample is not certain: Wilson, never a zero-width interval
    mean, lo, hi = bootstrap_ci([1.0] * 10)
    assert mean == 1.0 and hi == pytest.approx(1.0) and lo < 0.8


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


def test_zero_of_thirty_gets_the_wilson_interval() -> None:
    """0/30 correct: the Wilson upper bound is about 0.114 (Wilson 1927; statsmodels proportion_confint)."""
    mean, lo, hi, how = mean_ci([0.0] * 30)
    assert how == "Wilson" and mean == 0.0 and lo == pytest.approx(0.0, abs=1e-12)
    assert hi == pytest.approx(0.1135, abs=1e-3)
    assert wilson_ci([1.0] * 30)[1] == pytest.approx(1 - 0.1135, abs=1e-3)


def test_cluster_bootstrap_widens_the_interval_when_clusters_are_correlated() -> None:
    rng = np.random.default_rng(3)
    # 20 articles x 15 questions; each article has its own difficulty -> strong within-cluster correlation
    p = rng.uniform(0.1, 0.9, size=20)
    values = np.concatenate([(rng.random(15) < pi).astype(float) for pi in p])
    groups = np.repeat(np.arange(20), 15).tolist()
    m, lo, hi, how = mean_ci(values, groups=groups)
    _, wlo, whi, whow = mean_ci(values)
    assert how.startswith("cluster") and whow == "Wilson" and m == pytest.approx(values.mean())
    assert (hi - lo) > 1.4 * (whi - wlo)
    # one example per group is the iid case: no clustering applied
    assert mean_ci(values, groups=list(range(len(values))))[3] == "Wilson"
    with pytest.raises(ValueError, match="group labels"):
        cluster_bootstrap_ci(values, groups[:10])


def test_paired_tests_are_calibrated_under_the_null() -> None:
    """Simulated null (both methods draw from one distribution): about 5% rejections at alpha = 0.05."""
    rng = np.random.default_rng(7)
    rejections = {"bootstrap": 0, "mcnemar": 0, "cluster": 0}
    trials = 300
    for t in range(trials):
        a = (rng.random(200) < 0.6).astype(float)
        b = (rng.random(200) < 0.6).astype(float)
        rejections["bootstrap"] += paired_bootstrap(a, b, n_resamples=500, seed=t)["p_value"] < 0.05
        rejections["mcnemar"] += mcnemar_test(a, b)["p_value"] < 0.05
        g = np.repeat(np.arange(40), 5).tolist()
        rejections["cluster"] += paired_bootstrap(a, b, groups=g, n_resamples=500, seed=t)["p_value"] < 0.05
    rates = {k: v / trials for k, v in rejections.items()}
    assert 0.02 <= rates["bootstrap"] <= 0.09, rates
    assert 0.01 <= rates["mcnemar"] <= 0.08, rates  # exact McNemar is conservative
    assert 0.02 <= rates["cluster"] <= 0.10, rates


def test_mcnemar_uses_only_discordant_pairs() -> None:
    a = np.array([1] * 12 + [0] * 3 + [1] * 40 + [0] * 45, dtype=float)
    b = np.array([0] * 12 + [1] * 3 + [1] * 40 + [0] * 45, dtype=float)
    base = mcnemar_test(a, b)
    assert (base["a_only"], base["b_only"]) == (12, 3)
    # add concordant pairs of both kinds: the test must not move
    more_a = np.concatenate([a, np.ones(500), np.zeros(300)])
    more_b = np.concatenate([b, np.ones(500), np.zeros(300)])
    assert mcnemar_test(more_a, more_b)["p_value"] == pytest.approx(base["p_value"])
    # exact binomial on 12 vs 3: two-sided p = 2 * P(X <= 3 | n=15, 1/2) = 0.03516
    assert base["p_value"] == pytest.approx(0.03515625)


def test_identical_paired_samples_have_a_zero_width_difference_ci_clustered_or_not() -> None:
    """All differences 0 (two runs that answered alike): the CI is [0, 0], not a proportion's Wilson interval."""
    from latentwire_eval.stats import paired_bootstrap

    x = np.random.default_rng(0).random(50).round()
    groups = [i // 5 for i in range(50)]
    for g in (None, groups):
        r = paired_bootstrap(x, x.copy(), groups=g, n_resamples=300, seed=0)
        assert (r["diff"], r["ci_low"], r["ci_high"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)
