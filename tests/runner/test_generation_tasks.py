"""GSM8K (math) and XSum (summary) run end to end (issue 22): the generation methods declare those kinds,
a method that cannot apply is refused at load naming both, and the reports carry each kind's metrics.
Tiny readers on rows written in the real files' formats (the offline files are not in the repository)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import experiment
from runner.__main__ import main
from runner.config import ConfigError, load_experiment


def _files(root: Path) -> Path:
    (root / "gsm8k").mkdir(parents=True)
    (root / "xsum").mkdir()
    for split, n in (("train", 12), ("test", 6)):
        rows = [
            {
                "question": f"Ann has {i} apples and buys {i + 2} more. How many apples does she have?",
                "answer": f"She has {i} + {i + 2} = {2 * i + 2} apples.\n#### {2 * i + 2}",
            }
            for i in range(n)
        ]
        (root / "gsm8k" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for part, n in (("a", 12), ("b", 6)):
        rows = [
            {
                "id": f"{part}{i}",
                "document": f"The council of town {i} voted on Monday to build a new bridge "
                f"over the river. Work starts in spring and costs {i} million pounds.",
                "summary": f"Town {i} will build a new bridge.",
            }
            for i in range(n)
        ]
        (root / "xsum" / f"test-1000-{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


METHODS = ["text", "no_context", "token_budget", "latent", "latent_shuffled"]


@pytest.mark.parametrize(
    ("task", "metrics"), [("gsm8k", {"gsm8k_accuracy"}), ("xsum", {"rouge_1", "rouge_2", "rouge_l"})]
)
def test_math_and_summary_tasks_run_every_generation_method(
    tmp_path: Path, task: str, metrics: set[str]
) -> None:
    data = _files(tmp_path / "data")
    p = experiment(
        tmp_path,
        "tiny",
        name=task,
        data={"task": task, "data_dir": str(data), "train_limit": 12, "eval_limit": 6},
        features={"source": "tiny-llama", "layer": 1},
        eval={"methods": METHODS, "bootstrap_resamples": 50, "gold_scores": False},
        train={"steps": 2},
    )
    assert main([str(p), "--runs-dir", str(tmp_path / "runs")]) == 0
    run = tmp_path / "runs" / task
    res = json.loads((run / "eval" / "metrics.json").read_text())["results"]
    got = {(r["model"], r["method"], r["metric"]) for r in res if r["subset"] == "all"}
    for model in ("tiny-llama", "tiny-gemma3"):
        for m in METHODS:
            assert {(model, m, k) for k in metrics} <= got, (model, m)
    assert "gsm8k_accuracy" in (run / "report" / "summary.md").read_text() or task == "xsum"


def test_a_method_that_cannot_apply_to_a_kind_is_refused_naming_both(tmp_path: Path) -> None:
    p = experiment(
        tmp_path, "tiny", name="m", data={"task": "gsm8k"}, eval={"methods": ["text", "mean_pool"]}
    )
    with pytest.raises(ConfigError, match=r"mean_pool needs a classification or qa task, not a math one"):
        load_experiment(p)
