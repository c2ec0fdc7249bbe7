"""A transfer evaluation (``[eval] task``): a wire trained on one task scored on another's examples,
as the recall run is scored on ``reconstruct`` and SQuAD (issue 21, section 4). Tiny random readers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from experiments import experiment
from latentwire_core.tasks import compressed_text
from latentwire_hf.data import load_train_eval
from runner.__main__ import main
from runner.config import ConfigError, load_experiment


def _recall(tmp_path: Path, **eval_: object) -> Path:
    return experiment(
        tmp_path,
        name="recall",
        data={"task": "recall_k2", "train_limit": 24, "eval_limit": 8},
        wire={"compress": "context"},
        eval={"methods": ["text", "no_context", "latent", "latent_shuffled"], **eval_},
    )


@pytest.mark.parametrize(("task", "sent"), [("reconstruct_16", "source"), ("squad", "context")])
def test_a_recall_wire_is_scored_on_another_task_without_training_again(
    tmp_path: Path, data_dir: Path, task: str, sent: str
) -> None:
    runs = tmp_path / "runs"
    assert main([str(_recall(tmp_path)), "--runs-dir", str(runs)]) == 0
    other = [
        str(_recall(tmp_path)),
        "--runs-dir",
        str(runs),
        "--set",
        f"name=on-{task}",
        "--set",
        f'eval.task="{task}"',
        "--reuse-training",
        str(runs / "recall"),
    ]
    assert main(other) == 0
    run = runs / f"on-{task}"
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert stages["train"]["adopted_from"] == str(runs / "recall") and "adopted_from" not in stages["prepare"]
    # the adopted wire is the trained one, byte for byte
    assert (run / "wire.json").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(
        p.name for p in (runs / "recall" / "checkpoints").iterdir()
    )
    preds = pd.read_parquet(run / "eval" / "predictions.parquet")
    _, evaluation, _ = load_train_eval(task, data_dir=data_dir, train_limit=0, eval_limit=8)
    assert set(preds["example_id"]) == {e.id for e in evaluation}  # the other task's examples, all of them
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["task"] == task
    assert metrics["transfer"] == {"trained_on": "recall_k2", "evaluated_on": task}
    assert "transfer evaluation" in (run / "report" / "summary.md").read_text()
    data = json.loads((run / "prepare" / "data.json").read_text())
    assert data["eval_task"] == task and data["n_eval"] == len(evaluation)
    # what went on the wire: a reconstruct span is the whole source; of a SQuAD example, its context alone
    text = preds[preds["method"] == "text"].drop_duplicates("example_id").set_index("example_id")
    for e in evaluation:
        assert text.loc[e.id, "compressed_utf8_bytes"] == len(compressed_text(e, sent).encode())


def test_methods_that_learn_from_the_training_split_are_refused_for_a_transfer(tmp_path: Path) -> None:
    path = _recall(tmp_path, task="squad", methods=["text", "latent", "text_kshot"])
    with pytest.raises(ConfigError, match="text_kshot learns from the training split"):
        load_experiment(path)
    path = _recall(tmp_path, task="no_such_task")
    with pytest.raises(ConfigError, match=r"\[eval\] task must be one of"):
        load_experiment(path)
    # the same task named twice is no transfer: every method is allowed
    ok = load_experiment(_recall(tmp_path, task="recall_k2", methods=["text", "latent", "text_kshot"]))
    assert ok.eval_task == "recall_k2" and ok.eval_compress == "context"
    assert load_experiment(_recall(tmp_path, task="reconstruct_32")).eval_compress == "source"
