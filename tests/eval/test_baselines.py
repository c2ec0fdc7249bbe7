from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentwire_core.prompting import SlotPrompt
from latentwire_core.tasks import Example, get_task
from latentwire_core.testing import FakeFrozenLM
from latentwire_eval.baselines import PCABaseline, fit_linear_probe, kshot_instruction, mean_pool_slot
from latentwire_eval.evaluate import evaluate_method, sequence_scores, token_budget_slot
from latentwire_eval.methods import ALL_READERS, NO_READER
from latentwire_eval.report import compute_metrics, derive_joint_oracle
from latentwire_eval.stats import mcnemar_test

LM = FakeFrozenLM(d_model=16, n_layers=1, vocab=60, seed=2)
SST2 = get_task("sst2")
SQUAD = get_task("squad")


def _sst(n: int, offset: int = 0) -> list[Example]:
    return [
        Example(
            id=f"s{i + offset}",
            task="sst2",
            source=f"movie {i} was {'good' if i % 2 else 'bad'}",
            label=i % 2,
        )
        for i in range(n)
    ]


def test_mean_pool_slot_is_the_chunk_mean_of_token_embeddings() -> None:
    ids = LM.tokenize(["abcdefg"])[0]
    out = mean_pool_slot(LM, ids, 3)
    emb = LM.embed(torch.tensor([ids]))[0]
    # 7 tokens in 3 chunks: [0,2), [2,4), [4,7)
    expected = torch.stack([emb[0:2].mean(0), emb[2:4].mean(0), emb[4:7].mean(0)])
    torch.testing.assert_close(out, expected)


def test_pca_is_fitted_on_training_texts_and_keeps_the_budget() -> None:
    train = [LM.tokenize([e.source])[0] for e in _sst(40)]
    pca = PCABaseline(LM, train, m=4, rank=5)
    codes = pca.codes(LM.tokenize(["an unseen evaluation text"])[0])
    assert codes.shape == (4, 5) and pca.reconstruct(codes).shape == (4, 16)
    assert 0 < pca.explained <= 1
    # reconstruction of a training chunk from its own codes is close to the chunk
    chunk = mean_pool_slot(LM, train[0], 4)
    err = (pca.reconstruct(pca.codes(train[0])) - chunk).norm() / chunk.norm()
    assert float(err) < 0.8


def test_kshot_demonstrations_come_from_train_balanced_and_deterministic() -> None:
    train = _sst(20)
    text = kshot_instruction(SST2, train, k=4, seed=1)
    assert text == kshot_instruction(SST2, train, k=4, seed=1)
    assert text.count("Sentiment: positive") == 2 and text.count("Sentiment: negative") == 2
    assert text.endswith(SST2.instruction)
    assert all(f"movie {i} was" in text for i in range(20) if f"movie {i} was" in text)


def test_linear_probe_learns_separable_features() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 8)) + y[:, None] * 2.0
    predict = fit_linear_probe(x[:150], y[:150])
    labels, proba = predict(x[150:])
    assert (labels == y[150:]).mean() > 0.9 and proba.shape == (50, 2)


def test_token_budget_keeps_the_question_first() -> None:
    ex = Example(
        id="q",
        task="squad",
        source="Question: who?\nContext: long text here",
        question="who?",
        context="long text here " * 20,
        answers=("x",),
    )
    slot = token_budget_slot(LM, ex, 30)
    head = LM.tokenize(["Question: who?\nContext: "])[0]
    assert len(slot) == 30 and slot == head + LM.tokenize([ex.context])[0][: 30 - len(head)]
    assert len(token_budget_slot(LM, ex, 5)) == 5


def test_sequence_scores_match_hand_computed_nll_with_eos() -> None:
    prompt = SlotPrompt(LM, SST2)
    slot = LM.tokenize(["nice"])[0]
    target = [*LM.tokenize([" positive"])[0], LM.EOS]
    got = sequence_scores(prompt, [slot], [target])[0]
    ids = [*prompt.before, *slot, *prompt.after, *target]
    logits = LM.logits(
        LM.hidden_states(LM.embed(torch.tensor([ids])), torch.ones(1, len(ids), dtype=torch.long))
    )[0]
    start = len(ids) - len(target)
    nll = -sum(float(torch.log_softmax(logits[start + j - 1], -1)[t]) for j, t in enumerate(target)) / len(
        target
    )
    assert got["nll"] == pytest.approx(nll, rel=1e-4)
    first = torch.log_softmax(logits[start - 1], -1)
    assert got["first_rank"] == int((first > first[target[0]]).sum())


@pytest.mark.parametrize("task", [SST2, SQUAD])
def test_evaluate_method_rows(task) -> None:
    exs = (
        _sst(5)
        if task is SST2
        else [
            Example(
                id=f"q{i}",
                task="squad",
                source=f"Question: q{i}?\nContext: c",
                question=f"q{i}?",
                context="c",
                answers=("c",),
            )
            for i in range(3)
        ]
    )
    prompt = SlotPrompt(LM, task)
    res = evaluate_method(
        prompt,
        exs,
        lambda b: ([LM.tokenize([e.source])[0] for e in b], [0] * len(b)),
        method="text",
        batch_size=2,
    )
    df = pd.DataFrame(res.rows)
    assert len(df) == len(exs) and set(df["method"]) == {"text"}
    assert {"nll_per_token", "first_token_acc1", "first_token_acc5", "confidence", "latency_s"} <= set(
        df.columns
    )
    assert (df["nll_per_token"] > 0).all() and (df["first_token_acc5"] >= df["first_token_acc1"]).all()
    assert (df["prompt_tokens"] == len(prompt.before) + df["slot_tokens"] + len(prompt.after)).all()
    if task is SST2:
        assert set(df["output"]) <= {"negative", "positive"}
    else:
        assert {"em", "f1"} <= set(df.columns)


def _preds() -> pd.DataFrame:
    rows = []
    for i in range(40):
        gold = i % 2
        for model, right, conf in (("a", i % 3 != 0, 0.9 if i % 3 else 0.6), ("b", i % 3 == 0, 0.8)):
            rows.append(
                {
                    "example_id": f"e{i}",
                    "model": model,
                    "method": "latent",
                    "accuracy": float(right),
                    "confidence": conf,
                    "slot_tokens": 8,
                    "wire_bytes": 100,
                    "prompt_utf8_bytes": 50,
                    "latency_s": 0.1,
                    "output": "x",
                    "gold": str(gold),
                }
            )
            rows.append(
                {
                    "example_id": f"e{i}",
                    "model": model,
                    "method": "text",
                    "accuracy": float(i % 2 == 0),
                    "confidence": 0.5,
                    "slot_tokens": 20,
                    "wire_bytes": 0,
                    "prompt_utf8_bytes": 50,
                    "latency_s": 0.1,
                    "output": "x",
                    "gold": str(gold),
                }
            )
        rows.append(
            {
                "example_id": f"e{i}",
                "model": NO_READER,
                "method": "linear_probe",
                "accuracy": 1.0,
                "confidence": 0.9,
                "slot_tokens": 0,
                "wire_bytes": 0,
                "prompt_utf8_bytes": 50,
                "latency_s": 0.0,
                "output": "x",
                "gold": str(gold),
            }
        )
    return pd.DataFrame(rows)


def test_joint_picks_the_more_confident_model_and_oracle_the_best() -> None:
    preds = _preds()
    derived = derive_joint_oracle(preds, SST2)
    assert set(derived["model"]) == {ALL_READERS}  # combined rows are no reader's own
    joint = derived[derived["method"] == "joint"].set_index("example_id")
    oracle = derived[derived["method"] == "oracle"].set_index("example_id")
    assert joint.loc["e1", "picked_model"] == "a" and joint.loc["e0", "picked_model"] == "b"
    assert (oracle["accuracy"] == 1.0).all()  # one of the two models is right on every example here


def test_compute_metrics_compares_latent_with_baselines_and_references() -> None:
    preds = _preds()
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
    preds = _preds()
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
