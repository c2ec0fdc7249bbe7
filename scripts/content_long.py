"""The long run of the recipe bake-off's winner on `recall` at 4x (issue 21, section 4).

    .venv/bin/python scripts/content_long.py             # start, or resume where it stopped, runs/recall-long
    .venv/bin/python scripts/content_long.py --collect   # its evidence and curves into results/recall-long
    .venv/bin/python scripts/content_long.py --ratio 16  # the same recipe at 16x: runs/recall-long-16x
    .venv/bin/python scripts/content_long.py --on squad  # its wire scored on SQuAD: runs/recall-long-on-squad
    .venv/bin/python scripts/content_long.py --on squad --collect
    .venv/bin/python scripts/content_long.py --ratio 16 --all  # train, collect, both transfers, curves: ~4 CPU-hours

The winner is read from ``results/recall-bakeoff/bakeoff.json`` (the rule there was written before any
arm ran); its overrides (``scripts/content_bakeoff.py``'s ``ARMS``) go on ``experiments/recall.toml``
with the settings below, fixed before the run: every generated training item (20,000 contexts), about
two CPU-hours of training on this 2-core machine (600 pretraining steps at ~3 s, 2,600 task steps at
~1.6-2 s), every checkpoint kept for the curves, and the evaluation split (recall's own dev draws, never
trained on) with n = 300 per reader and every baseline at the same budget. A killed run resumes
bit-identically from its last checkpoint (the runner's resume), so it may span sessions.

``--on TASK`` scores the finished run's wire on another task without training again (``[eval] task``, a
transfer evaluation adopting its pretrain/train stages): ``reconstruct_32`` (SQuAD dev spans; greedy exact
match, token F1 and teacher-forced CE beside no_context, latent_shuffled and the zero latent) and ``squad``
(question in text, context on the wire, against latent_shuffled, no_context, token_budget and llmlingua).
The wire's features stop at [features].max_length = 128 source tokens (a training setting), so a longer
SQuAD context reaches the wire cut to its first 128 tokens; every method gets the same M per example.
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
from content_bakeoff import ARMS

NAME = "recall-long"
PRETRAIN_STEPS, TRAIN_STEPS = 600, 2600
LONG = [
    f"name={NAME}",
    "data.train_limit=20000",
    "data.eval_limit=300",
    "data.min_eval=300",
    f"pretrain.steps={PRETRAIN_STEPS}",
    f"train.steps={TRAIN_STEPS}",
    "pretrain.ckpt_every=100",
    "pretrain.keep_checkpoints=100",
    "train.ckpt_every=200",
    "train.keep_checkpoints=100",
    'eval.methods=["text", "no_context", "latent", "latent_shuffled", "latent_zero", "token_budget", '
    '"llmlingua", "mean_pool"]',
]


ON = {
    "reconstruct_32": [
        'eval.methods=["text", "no_context", "latent", "latent_shuffled", "latent_zero", "token_budget"]',
        "eval.gold_scores=true",
    ],
    "squad": [
        'eval.methods=["text", "no_context", "latent", "latent_shuffled", "token_budget", "llmlingua"]',
        "eval.max_text_tokens=512",
    ],
}


def winner() -> str:
    path = Path("results/recall-bakeoff/bakeoff.json")
    if not path.is_file():
        raise SystemExit(f"{path} not found: run scripts/content_bakeoff.py first")
    result = json.loads(path.read_text())
    if not result.get("complete"):
        raise SystemExit(f"{path}: the bake-off is not complete; arms run: {sorted(result['arms'])}")
    return str(result["winner"])


def name(ratio: int, on: str = "") -> str:
    base = NAME if ratio == 4 else f"{NAME}-{ratio}x"
    return f"{base}-on-{on}" if on else base


def overrides(arm: str, ratio: int = 4, on: str = "") -> list[str]:
    sets = [*LONG, *[s.format(third=PRETRAIN_STEPS // 3) for s in ARMS[arm]]]
    sets = [f"name={name(ratio, on)}" if s.startswith("name=") else s for s in sets]
    if ratio != 4:
        sets.append(f"wire.encoder.ratio={ratio}")
    if on:
        sets += [f'eval.task="{on}"', *ON[on]]
    return sets


def run(py: str, ratio: int = 4, on: str = "") -> None:
    arm = winner()
    sets = overrides(arm, ratio, on)
    cmd = [py, "-m", "runner", "experiments/recall.toml", *[a for s in sets for a in ("--set", s)]]
    if on:  # the trained wire of the run itself, adopted: no training here
        cmd += ["--reuse-training", str(Path("runs") / name(ratio))]
    print(f"winner: {arm}\n$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def collect(py: str, n: int, ratio: int = 4, on: str = "", *, curves: bool = True) -> None:
    run_dir = Path("runs") / name(ratio, on)
    out = Path("results") / name(ratio, on)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    copy_evidence(run_dir, out)
    if on:  # the wire is the trained run's (collected on its own); its curves are there
        (out / "arm.json").write_text(
            json.dumps({"winner": winner(), "overrides": overrides(winner(), ratio, on)}, indent=1)
        )
        print(f"collected {run_dir} into {out}")
        return
    for rel, dst in (
        ("pretrain/metrics.jsonl", "pretrain_metrics.jsonl"),
        ("pretrain/anchor.json", "anchor.json"),
    ):
        if (run_dir / rel).is_file():
            shutil.copy(run_dir / rel, out / dst)
    for plot in (run_dir / "report").glob("*.png"):
        shutil.copy(plot, out / plot.name)
    arm = winner()
    (out / "arm.json").write_text(json.dumps({"winner": arm, "overrides": overrides(arm, ratio)}, indent=1))
    if not curves:  # the evidence now; the curves (one greedy pass per checkpoint) with a later --collect
        print(f"collected {run_dir} into {out} (no curves: --no-curves)")
        return
    # every generated training item is trained on, so no validation items remain: the curves read the
    # first n evaluation items (to look at, never to choose a checkpoint: the last one is evaluated)
    cmd = [
        *(py, "scripts/content_curves.py", str(run_dir), "--out", str(out / "curves")),
        *("--n", str(n), "--split", "eval"),
    ]
    subprocess.run(cmd, check=True)
    print(f"collected {run_dir} ({ {k: v.get('status') for k, v in manifest['stages'].items()} }) into {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", action="store_true", help="copy the evidence and draw the curves")
    ap.add_argument("--n", type=int, default=100, help="validation items per checkpoint and reader (curves)")
    ap.add_argument("--ratio", type=int, default=4, help="compression ratio (4: runs/recall-long)")
    ap.add_argument("--on", choices=sorted(ON), default="", help="score the trained wire on this task")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument(
        "--no-curves", action="store_true", help="with --collect: the evidence only (the curves take ~40 min)"
    )
    ap.add_argument(
        "--all",
        action="store_true",
        help="everything for --ratio in one go, in the order that keeps results soonest: train (or resume), "
        "collect without curves, each --on task's transfer and its collection, then the curves",
    )
    args = ap.parse_args()
    if args.all:
        if args.collect or args.on:
            raise SystemExit("--all runs every step itself: give it without --collect and --on")
        run(args.python, args.ratio)
        collect(args.python, args.n, args.ratio, curves=False)
        for task in sorted(ON):
            run(args.python, args.ratio, task)
            collect(args.python, args.n, args.ratio, task)
        collect(args.python, args.n, args.ratio, curves=True)
        return
    if args.collect:
        collect(args.python, args.n, args.ratio, args.on, curves=not args.no_curves)
    else:
        run(args.python, args.ratio, args.on)


if __name__ == "__main__":
    main()
