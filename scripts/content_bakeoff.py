"""The recipe bake-off on `recall` at 4x (issue 21, section 4): each arm trains the same data and steps,
is evaluated on the validation split, and the rule below (fixed before any arm ran) picks the winner.

    .venv/bin/python scripts/content_bakeoff.py              # run every arm not finished yet, then report
    .venv/bin/python scripts/content_bakeoff.py --report     # only collect and apply the rule

Every arm is an ordinary run of ``experiments/recall.toml`` (``runs/recall-bakeoff-<arm>``) with the
overrides below; its evidence (resolved TOML, manifest, metrics, summary, training logs) is copied to
``results/recall-bakeoff/<arm>/`` and the report to ``results/recall-bakeoff/bakeoff.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from collect_result import copy_evidence

from latentwire_eval.tables import markdown_table

RULE = """\
Rule (written before any arm ran, commit of this file): the winner is the arm with the largest mean,
over the two readers, of latent EM - latent_shuffled EM on the validation split (held-out training
items, n = 200 per reader). Arms whose mean gap is within 0.02 of the best are tied; among tied arms the
one with the least training wall time wins. An arm whose latent does not beat its shuffled latent on
either reader (gap <= 0 on both) cannot win. If no arm qualifies, the arm with the largest mean content-
probe gap of the train stage (answer CE with another item's latent minus with its own, nats, mean of
the last 3 probes, both readers) is the provisional winner for the long run, reported as such."""

# Same data, steps, batch and evaluation for every arm; only the recipe option differs.
COMMON = [
    "data.eval_split=validation",
    "data.eval_limit=200",
    "data.min_eval=200",
    'eval.methods=["latent", "latent_shuffled"]',  # the rule's two; no_context is the same for every arm
]
ARMS: dict[str, list[str]] = {
    # whole-context reconstruction pretraining (recall contexts are shorter than encode_words), then answer CE
    "base": [],
    # deep prefix: each reader's (linear) adapter maps the slots to every layer's keys and values
    "deep_prefix": ["wire.inject=kv", "wire.adapter=linear"],
    # reconstruction of 6-, then 12-word spans (1/3 of pretraining each) before whole contexts
    "curriculum": ["pretrain.curriculum=[6, 12]", "pretrain.curriculum_steps={third}"],
    # + hinge on own- vs shuffled-latent CE (margin 1 nat, weight 0.5) in both stages
    "content_loss": [
        "pretrain.content_weight=0.5",
        "train.content_weight=0.5",
    ],
    # encoder 1e-4, projectors / gains / content tokens 1e-3 in both stages (the anchors' rates)
    "lr_split": [
        "pretrain.lr_encoder=1e-4",
        "pretrain.lr_adapters=1e-3",
        "train.lr_encoder=1e-4",
        "train.lr_adapters=1e-3",
    ],
    # reader-anchored start: each adapter fitted to its reader's mean_pool group means, residual at zero;
    # calibration none, so that at step 0 the latent is (the rank-d_z fit of) the mean_pool baseline
    "anchored": ["wire.anchor=true", "wire.calibration=none"],
}
OUT = Path("results/recall-bakeoff")
STEPS = (100, 200)  # pretraining, answer training: every arm the same


def _run(
    arm: str, steps: tuple[int, int], py: str, *, name: str | None = None, extra: tuple[str, ...] = ()
) -> None:
    """Train and evaluate one arm; ``name`` (default: the arm) names the run, ``extra`` adds --set
    overrides after the arm's own."""
    pre, train = steps
    sets = [
        f"name=recall-bakeoff-{name or arm}",
        f"pretrain.steps={pre}",
        f"train.steps={train}",
        *COMMON,
        *[s.format(third=pre // 3) for s in ARMS[arm]],
        *extra,
    ]
    cmd = [py, "-m", "runner", "experiments/recall.toml", *[a for s in sets for a in ("--set", s)]]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def _gaps(metrics: dict) -> dict[str, dict[str, float]]:
    em = {
        (r["model"], r["method"]): r["value"]
        for r in metrics["results"]
        if r["metric"] == "em" and r["subset"] == "all"
    }
    out: dict[str, dict[str, float]] = {}
    for model in sorted({m for m, _ in em}):
        if (model, "latent") in em:
            lat, sh = em[(model, "latent")], em[(model, "latent_shuffled")]
            out[model] = {
                "latent": lat,
                "latent_shuffled": sh,
                "gap": lat - sh,
            }
    return out


def _relation_share(run: Path) -> dict[str, dict[str, float]]:
    """Per reader and method: the share of answers that are a value of the asked relation (the answer
    format learned) -- from the run's predictions and its validation items."""
    import tomllib

    import pandas as pd

    from latentwire_core.synthetic import RELATIONS
    from latentwire_hf.data import load_train_eval

    cfg = tomllib.loads((run / "experiment.toml").read_text())
    d = cfg["data"]
    _, val, _ = load_train_eval(
        d["task"],
        train_limit=d["train_limit"],
        eval_limit=d["eval_limit"],
        eval_split="validation",
        seed=cfg["seed"],
    )
    by_id = {e.id: e for e in val}

    def values(question: str) -> set[str]:
        for _, q, vals in RELATIONS:
            head, tail = q.split("{n}")
            if question.startswith(head) and question.endswith(tail):
                return {v.lower() for v in vals}
        return set()

    preds = pd.read_parquet(run / "eval" / "predictions.parquet")
    out: dict[str, dict[str, float]] = {}
    for (model, method), g in preds.groupby(["model", "method"]):
        hits = [
            str(o).strip().lower() in values(by_id[i].question) for i, o in zip(g["example_id"], g["output"])
        ]
        out.setdefault(str(model), {})[str(method)] = sum(hits) / len(hits)
    return out


def report() -> dict:
    rows = {}
    for arm in ARMS:
        run = Path("runs") / f"recall-bakeoff-{arm}"
        if not (run / "eval" / "metrics.json").is_file():
            continue
        manifest = json.loads((run / "manifest.json").read_text())
        stages = manifest["stages"]
        copy_evidence(run, OUT / arm)
        if (run / "pretrain" / "metrics.jsonl").is_file():
            shutil.copy(run / "pretrain" / "metrics.jsonl", OUT / arm / "pretrain_metrics.jsonl")
        gaps = _gaps(json.loads((run / "eval" / "metrics.json").read_text()))
        probes = [
            json.loads(r)
            for r in (run / "train" / "metrics.jsonl").read_text().splitlines()
            if r.strip() and "content_gap" in r
        ][-3:]
        probe_gap = [v for p in probes for k, v in p.items() if k.endswith("/content_gap")]
        rows[arm] = {
            "readers": gaps,
            "mean_gap": sum(g["gap"] for g in gaps.values()) / len(gaps),
            "probe_gap": sum(probe_gap) / len(probe_gap) if probe_gap else float("nan"),
            "answers_in_asked_relation": _relation_share(run),
            "train_seconds": sum(stages.get(s, {}).get("seconds", 0.0) for s in ("pretrain", "train")),
            "commit": manifest.get("git", {}).get("commit") or manifest.get("git_revision"),
        }
    qualified = {a: r for a, r in rows.items() if any(g["gap"] > 0 for g in r["readers"].values())}
    winner, provisional = None, False
    if qualified:
        best = max(r["mean_gap"] for r in qualified.values())
        tied = [a for a, r in qualified.items() if r["mean_gap"] >= best - 0.02]
        winner = min(tied, key=lambda a: qualified[a]["train_seconds"])
    elif rows:
        winner, provisional = max(rows, key=lambda a: rows[a]["probe_gap"]), True
    result = {
        "rule": RULE,
        "arms": rows,
        "winner": winner,
        "provisional": provisional,
        "complete": len(rows) == len(ARMS),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bakeoff.json").write_text(json.dumps(result, indent=1))
    lines = ["# Recipe bake-off on recall_k4 at 4x (validation split)", "", RULE, ""]
    lines += markdown_table(
        [
            "arm",
            "reader",
            "latent EM",
            "shuffled EM",
            "gap",
            "mean gap",
            "probe gap (nats)",
            "answers in the asked relation (latent / shuffled)",
            "train s",
        ],
        [
            [
                arm,
                model,
                f"{g['latent']:.3f}",
                f"{g['latent_shuffled']:.3f}",
                f"{g['gap']:+.3f}",
                f"{r['mean_gap']:+.3f}",
                f"{r['probe_gap']:+.3f}",
                f"{r['answers_in_asked_relation'][model]['latent']:.2f} / "
                f"{r['answers_in_asked_relation'][model]['latent_shuffled']:.2f}",
                f"{r['train_seconds']:.0f}",
            ]
            for arm, r in rows.items()
            for model, g in r["readers"].items()
        ],
    )
    verdict = f"Winner: **{winner}**" + (
        " (provisional: no arm's latent beat its shuffled latent)" if provisional else ""
    )
    lines += ["", verdict if winner else "Winner: none (no arm finished)"]
    if not result["complete"]:
        lines.append(f"Arms not run yet: {', '.join(a for a in ARMS if a not in rows)}")
    (OUT / "bakeoff.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="only collect finished arms and apply the rule")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--pretrain-steps", type=int, default=STEPS[0])
    ap.add_argument("--train-steps", type=int, default=STEPS[1])
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    if not args.report:
        for arm in args.arms:
            _run(arm, (args.pretrain_steps, args.train_steps), args.python)
            report()
    report()


if __name__ == "__main__":
    main()
