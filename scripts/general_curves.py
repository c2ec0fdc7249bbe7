"""The general wire's curves, drawn from a snapshot (or a run's pretrain folder): held-out reconstruction
NLL with each span's own message and with another span's, greedy exact match, and the training probe.

    .venv/bin/python scripts/general_curves.py wires/general-4x --out results/general-4x

Writes ``curves.png`` and ``curves.md`` (a table per held-out measurement, with the step at which unseen
text first passes on each reader: held-out NLL 1 nat below the shuffled message's) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def rows(path: Path) -> list[dict]:
    return [json.loads(r) for r in path.read_text().splitlines() if r.strip()] if path.is_file() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "folder", type=Path, help="a snapshot folder (curves.jsonl, metrics.jsonl, snapshot.json)"
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    curves, train = rows(args.folder / "curves.jsonl"), rows(args.folder / "metrics.jsonl")
    meta = (
        json.loads((args.folder / "snapshot.json").read_text())
        if (args.folder / "snapshot.json").is_file()
        else {}
    )
    readers = sorted(
        {k.split("/")[0] for r in curves + train for k in r if k.endswith("/nll") or k.endswith("/probe_ce")}
    )
    args.out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name in readers:
        c = [r for r in curves if f"{name}/nll" in r]
        if c:
            steps = [r["step"] for r in c]
            (line,) = axes[0].plot(steps, [r[f"{name}/nll"] for r in c], marker="o", label=f"{name} own")
            axes[0].plot(
                steps,
                [r[f"{name}/nll_shuffled"] for r in c],
                ls="--",
                marker="x",
                color=line.get_color(),
                label=f"{name} shuffled",
            )
            axes[1].plot(steps, [r[f"{name}/em"] for r in c], marker="o", color=line.get_color(), label=name)
        t = [r for r in train if f"{name}/content_gap" in r]
        if t:
            axes[2].plot([r["step"] for r in t], [r[f"{name}/content_gap"] for r in t], label=name)
    axes[0].set(title="held-out reconstruction NLL (nats/token)", xlabel="step")
    axes[1].set(title="held-out greedy exact match", xlabel="step", ylim=(-0.02, 1.02))
    axes[2].set(title="training probe: CE(shuffled) - CE(own), next batch", xlabel="step")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(
        f"{meta.get('run', args.folder.name)}: step {meta.get('step', '?')}, "
        f"{meta.get('tokens_encoded', 0):,} tokens encoded, {meta.get('cpu_seconds', 0) / 3600:.2f} CPU-h, "
        f"{meta.get('gpu_seconds', 0) / 60:.1f} GPU-min"
    )
    fig.tight_layout()
    fig.savefig(args.out / "curves.png", dpi=110)
    md = [
        "| step | reader | NLL own | NLL shuffled | gap | EM own | EM shuffled | F1 own | F1 shuffled | n |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    first: dict[str, int | None] = {n: None for n in readers}
    for r in curves:
        for name in readers:
            if f"{name}/nll" not in r:
                continue
            gap = r[f"{name}/nll_shuffled"] - r[f"{name}/nll"]
            if gap >= 1.0 and first[name] is None:
                first[name] = r["step"]
            md.append(
                f"| {r['step']} | {name} | {r[f'{name}/nll']:.3f} | {r[f'{name}/nll_shuffled']:.3f} | {gap:+.3f} | "
                f"{r[f'{name}/em']:.2f} | {r[f'{name}/em_shuffled']:.2f} | {r[f'{name}/f1']:.3f} | {r[f'{name}/f1_shuffled']:.3f} | {r['n']} |"
            )
    md += [
        "",
        "Step at which unseen text first passes (held-out NLL at least 1 nat below the shuffled message's): "
        + ", ".join(f"{n} {s if s is not None else 'not yet'}" for n, s in first.items())
        + ".",
    ]
    if meta:
        md += [
            "",
            f"Snapshot: step {meta['step']}, windows {meta.get('windows_seen', 0):,}, tokens encoded "
            f"{meta.get('tokens_encoded', 0):,}, CPU {meta.get('cpu_seconds', 0):,.0f} s, GPU {meta.get('gpu_seconds', 0):,.0f} s, "
            f"sittings {len(meta.get('sittings', []))}, commit {meta.get('commit', '?')[:10]}.",
        ]
    (args.out / "curves.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
