"""The analysis behind a report: metrics beside baselines and references, paired tests paired by example."""

from __future__ import annotations

import pandas as pd
import pytest
from eval_rows import two_reader_rows

from latentwire_core.tasks import get_task
from latentwire_eval.analysis import compute_metrics
from latentwire_eval.methods.combined import derive_joint_oracle
from latentwire_eval.stats import mcnemar_test

SST2 = get_task("sst2")


def test_compute_metrics_compares_latent_with_baselines_and_references() -> None:
    preds = two_reader_rows()
    preds = pd.concat([preds, derive_joint_oracle(preds, SST2)], ignore_index=True)
    m = compute_metrics(preds, task=SST2, eval_labels=[i % 2 for i in range(40)], n_resamples=500)
    assert m["headline"] == "accuracy" and m["majority_class"]["rate_on_eval"] == 0.5
    pairs = {(c["model"], c["latent_vs"]) for c in m["comparisons"]}
    assert pairs == {("a", "text"), ("a", "linear_probe"), ("b", "text"), ("b", "linear_probe")}
    assert all("p_holm" in c and c["p_holm"] >= c["p_mcnemar"] for c in m["comparisons"])
    res = pd.DataFrame(m["results"])
    lat_a = res[(res["model"] == "a") & (res["method"] == "latent")].iloc[0]
    assert lat_a["token_compression"] == pytest.approx(2.5) and lat_a["byte_compression"] == pytest.approx(
        0.5
    )
    assert {("all readers", "joint"), ("all readers", "oracle")} <= set(
        zip(res["model"], res["method"], strict=True)
    )


def test_paired_tests_pair_by_example_id_not_row_order() -> None:
    preds = two_reader_rows()
    m1 = compute_metrics(preds, task=SST2, n_resamples=300)
    shuffled = pd.concat(
        [
            preds[preds["method"] == "latent"],
            preds[preds["method"] != "latent"].sample(frac=1.0, random_state=3),
        ],
        ignore_index=True,
    )
    m2 = compute_metrics(shuffled, task=SST2, n_resamples=300)
    key = lambda c: (c["model"], c["latent_vs"], c["metric"])  # noqa: E731
    a, b = sorted(m1["comparisons"], key=key), sorted(m2["comparisons"], key=key)
    assert [(key(x), x["diff"], x["p_mcnemar"]) for x in a] == [
        (key(x), x["diff"], x["p_mcnemar"]) for x in b
    ]
    # pairing by row order would change the discordant counts of a shuffled baseline
    lat = preds[(preds["model"] == "a") & (preds["method"] == "latent")]["accuracy"].to_numpy()
    txt = shuffled[(shuffled["model"] == "a") & (shuffled["method"] == "text")]["accuracy"].to_numpy()
    by_row = mcnemar_test(lat, txt)
    c = next(x for x in a if x["model"] == "a" and x["latent_vs"] == "text")
    assert (by_row["a_only"], by_row["b_only"]) != (c["latent_only"], c["baseline_only"])
