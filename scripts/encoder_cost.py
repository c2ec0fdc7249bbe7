"""Where the lm_pool wire's training step goes, what a cheaper encoder costs in time, and whether it keeps
the content (issue 23, "training-step overhead <= 1.3x").

    .venv/bin/python scripts/encoder_cost.py timing WIRE   # four encoder settings, one training step each
    .venv/bin/python scripts/encoder_cost.py quality       # the cheapest setting as a bake-off arm (~15 min)
    .venv/bin/python scripts/encoder_cost.py report        # results/encoder-cost/{timing,quality}.md

``timing`` runs ``benchmarks/efficiency.py --train-step-only`` on WIRE (a run folder holding the shipped
SQuAD lm_pool wire's ``wire.json``: ``experiments/squad-cpu.toml``'s encoder, 4 trained SmolLM2 layers
over 8 frozen, cached ones) under each setting of ``SETTINGS``; timing does not depend on the weights'
values, so an untrained wire of the same shape is enough. ``quality`` trains the cheapest setting that
met the target as one more arm of the recall bake-off (``scripts/content_bakeoff.py``: the same data,
steps, batch and validation items as the ``anchored`` arm, the bake-off's winner), and ``report``
applies ``RULE`` (written before that run).
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
from content_bakeoff import STEPS, _gaps, _run

from latentwire_eval.tables import markdown_table

OUT = Path("results/encoder-cost")
SETTINGS: dict[str, list[str]] = {
    "shipped (4 layers, full)": [],
    "4 layers, LoRA r8": ["train=lora"],
    "2 layers, full": ["n_layers=2"],
    "1 layer, LoRA r8": ["n_layers=1", "train=lora"],
}
CHEAP = {"n_layers": 1, "train": "lora"}
ARM = "anchored-l1-lora"
RULE = """\
Rule (written before the quality run, commit of this file): the cheaper encoder (1 trained layer, LoRA
rank 8) keeps the content if, on the bake-off's validation items (n = 200 per reader, the same data,
steps and batch as the `anchored` arm), its mean over the two readers of latent EM - latent_shuffled EM
is at least the anchored arm's minus 0.05, and on neither reader is its gap lower than the anchored
arm's by more than 0.10. Either way the shipped default stays (4 layers, full): changing it would change
every committed result; the cheaper setting is offered as an option with these numbers beside it."""


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")


def timing(wire: Path, py: str, lengths: str, reps: int) -> None:
    for name, sets in SETTINGS.items():
        out = OUT / "timing" / _slug(name)
        cmd = [py, "benchmarks/efficiency.py", str(wire), "--train-step-only", "--lengths", lengths]
        cmd += ["--batch", "4", "--reps", str(reps), "--out", str(out)]
        cmd += [a for s in sets for a in ("--lm-encoder", s)]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def quality(py: str) -> None:
    extra = tuple(f"wire.lm_pool.{k}={v}" for k, v in CHEAP.items())
    _run("anchored", STEPS, py, name=ARM, extra=extra)


def _timing_rows() -> list[list[str]]:
    rows = []
    for name in SETTINGS:
        path = OUT / "timing" / _slug(name) / "efficiency_lengths.json"
        if not path.is_file():
            continue
        for r in json.loads(path.read_text())["rows"]:
            if r.get("method") != "train_step":
                continue
            rows.append(
                [
                    name,
                    r["reader"],
                    str(r["prompt_tokens"]),
                    f"{r['train_step_s']:.3f}",
                    f"{r['reader_fwd_bwd_s']:.3f}",
                    f"{r['wire_fwd_bwd_s']:.3f}",
                    f"{r['optimizer_s']:.3f}",
                    f"{r['train_step_overhead']:.2f}x",
                ]
            )
    return rows


def report() -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict = {"rule": RULE}
    head = ["encoder", "reader", "prompt tokens", "train step (s)", "reader fwd+bwd (s)"]
    head += ["wire fwd+bwd (s)", "AdamW (s)", "overhead"]
    timing_rows = _timing_rows()
    if timing_rows:
        meta = json.loads(
            (OUT / "timing" / _slug(next(iter(SETTINGS))) / "efficiency_lengths.json").read_text()
        )
        lines = ["# One training step of the lm_pool wire under four encoder settings", ""]
        m = meta["meta"]
        lines += [
            f"`benchmarks/efficiency.py --train-step-only` on {m['wire']}: batch {m['batch']}, median of "
            f"{m['reps']} after a warm-up, {m['device']}, torch {m['torch']}; {m['weights']}.",
            "",
        ]
        lines += markdown_table(head, timing_rows)
        (OUT / "timing.md").write_text("\n".join(lines) + "\n")
        result["timing"] = timing_rows
    base = json.loads(Path("results/recall-bakeoff/bakeoff.json").read_text())["arms"]["anchored"]
    run = Path("runs") / f"recall-bakeoff-{ARM}"
    if (run / "eval" / "metrics.json").is_file():
        copy_evidence(run, OUT / ARM)
        for rel, dst in (
            ("pretrain/metrics.jsonl", "pretrain_metrics.jsonl"),
            ("pretrain/anchor.json", "anchor.json"),
        ):
            if (run / rel).is_file():
                shutil.copy(run / rel, OUT / ARM / dst)
        gaps = _gaps(json.loads((run / "eval" / "metrics.json").read_text()))
        mean = sum(g["gap"] for g in gaps.values()) / len(gaps)
        stages = json.loads((run / "manifest.json").read_text())["stages"]
        seconds = sum(stages.get(s, {}).get("seconds", 0.0) for s in ("pretrain", "train"))
        keeps = mean >= base["mean_gap"] - 0.05 and all(
            gaps[m]["gap"] >= base["readers"][m]["gap"] - 0.10 for m in gaps
        )
        result["quality"] = {"cheap": gaps, "cheap_mean_gap": mean, "cheap_train_seconds": seconds}
        result["quality"] |= {"anchored": base["readers"], "anchored_mean_gap": base["mean_gap"]}
        result["keeps_content"] = keeps
        rows = [
            [
                label,
                m,
                f"{g[m]['latent']:.3f}",
                f"{g[m]['latent_shuffled']:.3f}",
                f"{g[m]['gap']:+.3f}",
                f"{mg:+.3f}",
                s,
            ]
            for label, g, mg, s in (
                (
                    "anchored (4 layers, full)",
                    base["readers"],
                    base["mean_gap"],
                    f"{base['train_seconds']:.0f}",
                ),
                ("anchored, 1 layer, LoRA r8", gaps, mean, f"{seconds:.0f}"),
            )
            for m in sorted(g)
        ]
        lines = ["# The cheaper encoder as a bake-off arm (recall_k4, 4x, validation)", "", RULE, ""]
        lines += markdown_table(
            ["arm", "reader", "latent EM", "shuffled EM", "gap", "mean gap", "train s"], rows
        )
        lines += ["", f"Keeps the content by the rule: **{'yes' if keeps else 'no'}**"]
        (OUT / "quality.md").write_text("\n".join(lines) + "\n")
    (OUT / "encoder_cost.json").write_text(json.dumps(result, indent=1))
    for name in ("timing.md", "quality.md"):
        if (OUT / name).is_file():
            print((OUT / name).read_text())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("timing", help="time one training step under each encoder setting")
    t.add_argument("wire", type=Path, help="a run folder holding the SQuAD lm_pool wire's wire.json")
    t.add_argument("--lengths", default="256,1024")
    t.add_argument("--reps", type=int, default=2)
    sub.add_parser("quality", help="train the cheapest setting as a recall bake-off arm")
    sub.add_parser("report", help="write results/encoder-cost/{timing,quality}.md")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    if args.cmd == "timing":
        timing(args.wire, args.python, args.lengths, args.reps)
    elif args.cmd == "quality":
        quality(args.python)
    report()


if __name__ == "__main__":
    main()
