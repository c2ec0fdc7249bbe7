"""Compare runs by their training-time content probe: does the reader use each text's own latent?

    python scripts/probe_summary.py runs/a runs/b ... --out results/<study> [--stage pretrain] [--last 3]

For each run and reader: the loss with the text's own latent and with another text's, and the content
gap (shuffled − own, nats per target token), averaged over the last ``--last`` logged steps where that
reader was probed, plus the reconstruction-only gap when the stage logs one. Writes ``probe.csv``,
``probe.md`` and ``content_gap.png`` (the gap against the step, one line per run and reader), and
copies each run's ``<stage>/metrics.jsonl`` and resolved ``experiment.toml`` beside them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from latentwire_eval.tables import markdown_table


def _rows(path: Path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(x) for x in path.read_text().splitlines() if x.strip()])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--stage", default="pretrain", choices=["pretrain", "train"])
    ap.add_argument("--last", type=int, default=3)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table, curves = [], []
    for run in args.runs:
        df = _rows(run / args.stage / "metrics.jsonl")
        shutil.copy(run / args.stage / "metrics.jsonl", args.out / f"{run.name}.{args.stage}_metrics.jsonl")
        shutil.copy(run / "experiment.toml", args.out / f"{run.name}.toml")
        readers = sorted({c.rsplit("/", 1)[0] for c in df.columns if c.endswith("/content_gap")})
        for r in readers:
            probed = df[df[f"{r}/content_gap"].notna()]
            tail = probed.tail(args.last)
            row = {
                "run": run.name,
                "reader": r,
                "steps": f"{int(tail['step'].min())}-{int(tail['step'].max())}",
                "own_ce": tail[f"{r}/probe_ce"].mean(),
                "shuffled_ce": tail[f"{r}/ce_shuffled"].mean(),
                "content_gap": tail[f"{r}/content_gap"].mean(),
                # spread of the per-step gaps (each on one batch): a rough standard error of their mean
                "gap_se": tail[f"{r}/content_gap"].std(ddof=1) / max(len(tail), 1) ** 0.5,
            }
            if f"{r}/rec_content_gap" in tail:
                row["rec_content_gap"] = tail[f"{r}/rec_content_gap"].mean()
            if f"{r}/rec_ce" in df:
                row["train_rec_ce_last"] = df[f"{r}/rec_ce"].dropna().tail(args.last).mean()
            table.append(row)
            curves.append(
                probed[["step", f"{r}/content_gap"]]
                .rename(columns={f"{r}/content_gap": "gap"})
                .assign(line=f"{run.name} · {r}")
            )
    res = pd.DataFrame(table)
    res.to_csv(args.out / "probe.csv", index=False)
    lines = [
        f"Content probe at the end of stage `{args.stage}` (mean of the last {args.last} probed steps per reader; "
        "nats per target token; gap = shuffled − own, about 0: the reader ignores what the latent says about the text).",
        "",
    ]
    lines += markdown_table(
        [
            "run",
            "reader",
            "steps",
            "own CE",
            "shuffled CE",
            "content gap ± se",
            "reconstruction gap",
            "training rec CE",
        ],
        [
            [
                r.run,
                r.reader,
                r.steps,
                f"{r.own_ce:.3f}",
                f"{r.shuffled_ce:.3f}",
                f"{r.content_gap:+.3f} ± {r.gap_se:.3f}",
                f"{getattr(r, 'rec_content_gap', float('nan')):+.3f}",
                f"{getattr(r, 'train_rec_ce_last', float('nan')):.3f}",
            ]
            for r in res.itertuples()
        ],
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for line in curves:
        ax.plot(line["step"], line["gap"], marker="o", label=line["line"].iloc[0])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(f"{args.stage} step")
    ax.set_ylabel("content gap (nats / target token)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "content_gap.png", dpi=120)
    lines += ["", "![content gap](content_gap.png)"]
    (args.out / "probe.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
