"""A/B of two runs on the examples both answered: per reader and method, each side's mean with its CI,
the paired difference (article-clustered bootstrap CI and p) and the ratio a / b.

    python scripts/ab_runs.py runs/a runs/b --methods latent,latent_shuffled --metric f1 --out results/<study>/<name>

Reads each run's ``eval/predictions.parquet`` only; writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from latentwire_eval.compare import paired_runs
from latentwire_eval.tables import markdown_table


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--methods", default="latent")
    ap.add_argument("--metric", default="f1")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    pa, pb = (pd.read_parquet(r / "eval" / "predictions.parquet") for r in (args.a, args.b))
    readers = [
        m
        for m in dict.fromkeys(pa["model"])
        if m in set(pb["model"]) and m not in ("all readers", "no reader")
    ]
    rows = []
    for method in args.methods.split(","):
        for reader in readers:
            r = paired_runs(pa, pb, model_a=reader, method=method, metric=args.metric)
            rows.append({"reader": reader, "method": method, **r})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"a": str(args.a), "b": str(args.b), "metric": args.metric}
    args.out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=1, default=float))
    lines = [
        f"A = `{args.a.name}`, B = `{args.b.name}`; {args.metric} on the examples both answered "
        "(95% CIs; difference A − B by a paired bootstrap that resamples whole articles).",
        "",
    ]
    lines += markdown_table(
        ["reader", "method", "n", "A", "B", "A − B [95% CI]", "p"],
        [
            [
                r["reader"],
                r["method"],
                r["n"],
                f"{r['a']['value']:.3f} [{r['a']['ci_low']:.3f}, {r['a']['ci_high']:.3f}]",
                f"{r['b']['value']:.3f} [{r['b']['ci_low']:.3f}, {r['b']['ci_high']:.3f}]",
                f"{r['diff']['diff']:+.3f} [{r['diff']['ci_low']:+.3f}, {r['diff']['ci_high']:+.3f}]",
                f"{r['diff']['p_value']:.3f}",
            ]
            for r in rows
        ],
    )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
