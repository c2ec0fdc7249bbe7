"""Small run folders written with pandas/json only, for the dashboard tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

METHODS = ("text", "latent", "token_budget")
MODELS = ("smollm2-135m", "gemma3-270m")


def make_finished_run(root: Path, name: str = "alpha", shift: float = 0.0) -> Path:
    run = root / name
    (run / "train").mkdir(parents=True)
    (run / "eval").mkdir()
    (run / "report").mkdir()
    (run / "experiment.toml").write_text(f'name = "{name}"\nseed = 0\n')
    stages = {s: {"status": "done", "seconds": 1.0} for s in ("prepare", "train", "evaluate", "report")}
    (run / "manifest.json").write_text(
        json.dumps({"name": name, "created": "2026-11-23T00:00:00", "stages": stages})
    )
    (run / "train" / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"step": s, "smollm2-135m/ce": 2.0 / s, "smollm2-135m/first_token_acc": 0.5}) + "\n"
            for s in (1, 2, 3)
        )
    )
    rows = []
    for model in MODELS:
        for method in METHODS:
            for i in range(6):
                right = (i + len(method)) % 3 != 0
                out = ("positive" if i % 2 else "negative") if right else "zebra crossing"
                rows.append(
                    {
                        "example_id": f"ex{i}",
                        "model": model,
                        "method": method,
                        "source": f"review {i}: a film about the sea",
                        "output": out,
                        "gold": "positive" if i % 2 else "negative",
                        "accuracy": float(right),
                        "slot_tokens": 8 if method != "text" else 20,
                        "wire_bytes": 2064 if method == "latent" else 0,
                        "prompt_utf8_bytes": 30,
                        "latency_s": 0.01,
                        "label_logprobs": [-0.1, -2.0],
                    }
                )
    pd.DataFrame(rows).to_parquet(run / "eval" / "predictions.parquet", index=False)
    results = [
        {
            "model": m,
            "method": k,
            "metric": "accuracy",
            "value": 0.61 + shift,
            "ci_low": 0.5,
            "ci_high": 0.7,
            "n": 6,
            "slot_tokens": 8.0,
            "wire_bytes": 2064.0 if k == "latent" else 0.0,
            "prompt_utf8_bytes": 30.0,
            "latency_s": 0.01,
        }
        for m in MODELS
        for k in METHODS
    ]
    comps = [
        {
            "model": m,
            "metric": "accuracy",
            "latent_vs": k,
            "n": 6,
            "diff": 0.1,
            "ci_low": -0.1,
            "ci_high": 0.3,
            "p_value": 0.4,
            "p_mcnemar": 0.5,
            "p_holm": 1.0,
        }
        for m in MODELS
        for k in ("text", "token_budget")
    ]
    metrics = {
        "task": "sst2",
        "metrics": ["accuracy"],
        "results": results,
        "comparisons": comps,
        "majority_class": {"label": "negative", "rate_on_eval": 0.5, "n": 6},
        "headline": "accuracy",
        "wire": {"n_tokens": 8 if shift == 0 else 16, "d_z": 256, "precision": "int8"},
        # the shape latentwire_eval.diagnostics writes (values made up for the view)
        "embedding_diagnostics": {
            "n_examples": 6,
            "calibration": "rms",
            "smollm2-135m": {
                stage: {
                    "n_soft_tokens": 48,
                    "n_sampled": 48,
                    "soft_rms": {"median": rms, "p10": rms * 0.9, "p90": rms * 1.1, "mean": rms},
                    "embed_rms": 0.136,
                    "rms_ratio": rms / 0.136,
                    "nearest_cos": {"mean": 0.21, "median": 0.2, "p10": 0.15, "p90": 0.3},
                    "random_cos": {"mean": 0.18, "p90": 0.2},
                    "nearest_tokens": [{"token": " the", "id": 260, "count": 12}],
                }
                for stage, rms in (("before_calibration", 13.6), ("received", 0.136))
            },
        },
    }
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    (run / "report" / "summary.md").write_text("# alpha\n")
    return run


def make_running_run(root: Path, name: str = "beta") -> Path:
    run = root / name
    (run / "train").mkdir(parents=True)
    (run / "experiment.toml").write_text(f'name = "{name}"\n')
    (run / "manifest.json").write_text(
        json.dumps(
            {
                "name": name,
                "created": "2026-11-22T00:00:00",
                "stages": {"prepare": {"status": "done"}, "train": {"status": "running"}},
            }
        )
    )
    (run / "train" / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "gemma3-270m/ce": 3.0}) + '\n{"step": 2, '
    )
    return run
