"""When does content appear? Greedy exact match of every kept checkpoint, beside the training log's curves.

For a run folder trained on a QA content task (``recall_k*``; a long run should keep every checkpoint:
``train.keep_checkpoints``), each task-training checkpoint (``checkpoints/step_*``) answers ``--n`` validation items through the message path
(encode, pack, unpack, adapt, greedy answer) with each item's own latent and with the next item's
(the shuffled control). Writes ``OUT/curves.json`` and ``OUT/content_curves.png``: exact match (own and
shuffled) against steps, and from ``pretrain``/``train`` ``metrics.jsonl`` the reconstruction CE and the
content-probe gap (nats) against steps.

    .venv/bin/python scripts/content_curves.py runs/recall-long --out results/recall-long/curves --n 100
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path

import torch

from latentwire_core.prompting import SlotPrompt
from latentwire_eval.evaluate import answer_slots
from latentwire_eval.metrics import exact_match
from latentwire_hf.data import load_train_eval
from latentwire_hf.frozen_lm import load_frozen_lm
from latentwire_hf.pretrained import PretrainedWire


def _log(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    return [json.loads(r) for r in path.read_text().splitlines() if r.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=100, help="items per checkpoint and reader")
    ap.add_argument(
        "--split",
        choices=["validation", "eval"],
        default="validation",
        help="validation: held-out training items after train_limit; eval: the first n of the run's evaluation "
        "items (for a run that trained on every training item; the curves are read, never used to choose)",
    )
    args = ap.parse_args()
    exp = json.loads((args.run / "manifest.json").read_text())
    spec = json.loads((args.run / "wire.json").read_text())
    task = spec["task"]
    cfg = tomllib.loads((args.run / "experiment.toml").read_text())
    # validation: held-out training items after train_limit (never the evaluation split)
    _, val, _ = load_train_eval(
        task,
        train_limit=cfg["data"]["train_limit"],
        eval_limit=args.n,
        eval_split=args.split,
        seed=exp["seed"],
    )
    if not val:
        raise SystemExit(
            f"{task}: no {args.split} items after the run's {cfg['data']['train_limit']} training items "
            "(it trained on every one); use --split eval"
        )
    ckpts = sorted(
        (p for p in (args.run / "checkpoints").glob("step_*") if p.name[5:].isdigit()),
        key=lambda p: int(p.name[5:]),
    )
    readers = {n: load_frozen_lm(n) for n in spec["readers"]}
    rows = []
    for ck in ckpts:
        step = int(ck.name[5:])
        t0 = time.time()
        wire = PretrainedWire.from_pretrained(args.run, step=step)
        msgs = wire.encode([e.context if spec["compress"] == "context" else e.source for e in val])
        for name, lm in readers.items():
            prompt = SlotPrompt(lm, wire.task, compress=spec["compress"])
            with torch.no_grad():
                own = [wire.slot(m, name) for m in msgs]
            other = own[1:] + own[:1]
            tails = prompt.tails(val)
            res = {}
            for label, slots in (("own", own), ("shuffled", other)):
                preds: list[str] = []
                for i in range(0, len(val), 16):
                    preds += answer_slots(prompt, slots[i : i + 16], tails[i : i + 16] if tails else None)
                res[label] = sum(exact_match(p, e.answers) for p, e in zip(preds, val, strict=True)) / len(
                    val
                )
            rows.append({"step": step, "reader": name, "em": res["own"], "em_shuffled": res["shuffled"]})
            print(
                f"step {step} {name}: EM {res['own']:.3f} shuffled {res['shuffled']:.3f} ({time.time() - t0:.0f} s)"
            )
    pre, train = _log(args.run / "pretrain" / "metrics.jsonl"), _log(args.run / "train" / "metrics.jsonl")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curves.json").write_text(
        json.dumps({"n": len(val), "split": args.split, "checkpoints": rows}, indent=1)
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    offset = max((r["step"] for r in pre), default=0)  # train steps follow pretraining on one axis
    for name in readers:
        pts = [r for r in rows if r["reader"] == name]
        axes[0].plot([offset + r["step"] for r in pts], [r["em"] for r in pts], "o-", label=f"{name} own")
        axes[0].plot(
            [offset + r["step"] for r in pts],
            [r["em_shuffled"] for r in pts],
            "x--",
            label=f"{name} shuffled",
        )
        for log, off in ((pre, 0), (train, offset)):
            rec = [(r["step"] + off, r[f"{name}/rec_ce"]) for r in log if f"{name}/rec_ce" in r]
            gap = [(r["step"] + off, r[f"{name}/content_gap"]) for r in log if f"{name}/content_gap" in r]
            if rec:
                axes[1].plot(*zip(*rec, strict=True), label=name)
            if gap:
                axes[2].plot(*zip(*gap, strict=True), label=f"{name} ({'pretrain' if off == 0 else 'train'})")
    axes[0].set(
        title=f"greedy EM on {args.split} (n = {len(val)})", xlabel="step (pretrain + train)", ylabel="EM"
    )
    axes[1].set(title="reconstruction CE (pretraining)", xlabel="step", ylabel="nats / token")
    axes[2].set(
        title="content-probe gap", xlabel="step (pretrain + train)", ylabel="CE shuffled - own (nats)"
    )
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "content_curves.png", dpi=110)


if __name__ == "__main__":
    main()
