"""Aggregate the two SST-2 sweeps (issue 10) into one report and copy their evidence under results/.

    .venv/bin/python scripts/sst2_sweep_report.py [--runs runs] [--out results/sst2-sweep]

Reads ``<runs>/sst2-sweep-m`` (M x precision x seeds at d_z = 32), ``<runs>/sst2-sweep-dz``
(d_z = 64, 256 x precision x seeds at M = 1) and ``<runs>/sst2-sweep-dz-m`` (M = 2, 4, 8 x d_z = 64,
256 x precision x seeds); every point gets its full settings (M, d_z, precision, read from its own
resolved experiment.toml) so the sweeps form one table. ``report/table_int4.md`` is the compact
table the README prints (int4 rows; int8 is in results.csv). Writes the sweep report
(:func:`latentwire_eval.sweep.write_sweep_report`) to ``<out>/report/`` and copies each point's
resolved TOML, manifest (commit, device, stage times), metrics, summary and training log to
``<out>/points/<sweep>/<point>/``.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from collect_result import copy_evidence

from latentwire_core.message import HEADER_BYTES as HEADER
from latentwire_eval.sweep import write_sweep_report
from latentwire_eval.tables import markdown_table
from runner.config import migrate_wire

SWEEPS = ("sst2-sweep-m", "sst2-sweep-dz", "sst2-sweep-dz-m")


def points(runs: Path) -> list[dict[str, Any]]:
    out = []
    for sweep in SWEEPS:
        manifest = runs / sweep / "sweep.json"
        if not manifest.is_file():
            continue
        for pt in json.loads(manifest.read_text())["points"]:
            run = Path(pt["dir"])
            if not (run / "eval" / "metrics.json").is_file():
                continue
            cfg, _ = migrate_wire(tomllib.loads((run / "experiment.toml").read_text()))
            params = {
                "M": cfg["wire"]["encoder"]["n_tokens"],
                "d_z": cfg["wire"]["encoder"]["d_z"],
                "precision": cfg["codec"]["precision"],
            }
            out.append({"name": f"{sweep}/{pt['name']}", "dir": run, "params": params, "seed": pt["seed"]})
    return out


def byte_matched(pts: list[dict[str, Any]], out: Path, n_resamples: int = 10000) -> str:
    """The smallest wire (M = 1, d_z = 32, int4) against each text baseline at the largest budget M
    whose text it reads is no larger than the wire's payload: paired by (seed, sentence), Holm."""
    import numpy as np
    import pandas as pd

    from latentwire_eval.stats import holm, paired_bootstrap

    frames = []
    for pt in pts:
        df = pd.read_parquet(Path(pt["dir"]) / "eval" / "predictions.parquet")
        df["seed"], df["M"] = pt["seed"], pt["params"]["M"]
        df["d_z"], df["precision"] = pt["params"]["d_z"], pt["params"]["precision"]
        frames.append(df)
    preds = pd.concat(frames, ignore_index=True)
    wire = preds[
        (preds.method == "latent") & (preds.M == 1) & (preds.d_z == 32) & (preds.precision == "int4")
    ]
    if wire.empty:
        return ""
    payload = float((wire["wire_bytes"] - HEADER).mean())
    rows = []
    for model, lat in wire.groupby("model"):
        for method in ("token_budget", "llmlingua"):
            text = preds[(preds.model == model) & (preds.method == method) & (preds.d_z == 32)]
            sizes = text.groupby("M")["encoded_utf8_bytes"].mean()
            fits = sizes[sizes <= payload]
            if fits.empty:
                continue
            m = int(fits.index.max())
            base = text[(m == text.M) & (text.precision == "int4")].drop_duplicates(["seed", "example_id"])
            pair = lat.merge(base, on=["seed", "example_id"], suffixes=("", "_b"))
            res = paired_bootstrap(  # sentences resampled whole: every seed reads the same 200
                pair["accuracy"],
                pair["accuracy_b"],
                groups=pair["example_id"].tolist(),
                n_resamples=n_resamples,
            )
            rows.append(
                {
                    "reader": model,
                    "baseline": f"{method} (M = {m})",
                    "latent_payload_bytes": payload,
                    "baseline_utf8_bytes": float(fits.loc[m]),
                    "latent": float(pair["accuracy"].mean()),
                    "baseline_accuracy": float(pair["accuracy_b"].mean()),
                    "n": len(pair),
                    **res,
                }
            )
    if not rows:
        return ""
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p_value"].tolist())
    table.to_csv(out / "report" / "byte_matched.csv", index=False)
    lines = [
        "",
        "## The smallest wire against text baselines of no more bytes",
        "",
        f"Latent at M = 1, d_z = 32, int4 ({payload:.0f} payload bytes + the {HEADER}-byte frame) against each "
        "text baseline at the largest budget M whose text (UTF-8, as read) is no larger than that payload; "
        f"paired by (seed, sentence), cluster bootstrap over sentences ({n_resamples} resamples; a sentence's "
        "three seeds move together), Holm over these rows.",
        "",
    ]
    lines += markdown_table(
        ["reader", "baseline", "its bytes", "latent", "baseline", "diff [95% CI]", "p", "p Holm", "n"],
        [
            [
                r.reader,
                r.baseline,
                f"{r.baseline_utf8_bytes:.1f}",
                f"{r.latent:.3f}",
                f"{r.baseline_accuracy:.3f}",
                f"{r.diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
                f"{r.p_value:.2g}",
                f"{r.p_holm:.2g}",
                r.n,
            ]
            for r in table.itertuples()
        ],
    )
    assert np.isfinite(table["diff"]).all()
    return "\n".join(lines) + "\n"


def compact_table(out: Path, precision: str = "int4") -> str:
    """One row per (M, d_z) at ``precision``: payload (message) bytes, each reader's latent with its
    95% CI over seeds, the text baselines at the same M, and latent - token budget with its Holm p."""
    import pandas as pd

    res = pd.read_csv(out / "report" / "results.csv")
    tests = pd.read_csv(out / "report" / "tests.csv")
    res = res[res["param:precision"] == precision]
    readers = list(dict.fromkeys(res[res["method"] == "latent"]["model"]))
    short = {m: m.split("-")[0] for m in readers}
    head = (
        "| M | d_z | payload B (message B) | "
        + " | ".join(f"latent {short[m]} [95% CI]" for m in readers)
        + " | token budget | LLMLingua | latent − token budget, p Holm |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (m, dz), g in res.groupby(["param:M", "param:d_z"]):
        cell = {(r.model, r.method): r for r in g.itertuples()}
        lat = [cell.get((r, "latent")) for r in readers]
        if any(x is None for x in lat):
            continue
        payload = f"{lat[0].payload_bytes:.0f} ({lat[0].wire_bytes:.0f})"
        cis = [f"{x.mean:.3f} [{x.ci_low:.3f}, {x.ci_high:.3f}]" for x in lat]

        def per_reader(method: str, cell: dict[tuple[str, str], Any] = cell) -> str:
            return " / ".join(
                f"{cell[(r, method)].mean:.3f}" if (r, method) in cell else "–" for r in readers
            )

        t = tests[(tests.settings == g.settings.iloc[0]) & (tests.latent_vs == "token_budget")]
        diffs = " / ".join(
            f"{row.diff:+.3f}, {row.p_holm:.2g}" for r in readers for row in t[t.model == r].itertuples()
        )
        lines.append(
            f"| {m} | {dz} | {payload} | "
            + " | ".join(cis)
            + f" | {per_reader('token_budget')} | {per_reader('llmlingua')} | {diffs} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "report" / f"table_{precision}.md").write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--out", type=Path, default=Path("results/sst2-sweep"))
    args = ap.parse_args()
    pts = points(args.runs)
    if not pts:
        raise SystemExit(f"no finished point under {args.runs}/{{{','.join(SWEEPS)}}}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = write_sweep_report(
        args.out, pts, title="SST-2: M x d_z x precision, 3 seeds", n_resamples=10000
    )
    summary.write_text(summary.read_text() + byte_matched(pts, args.out))
    compact_table(args.out)
    for pt in pts:
        copy_evidence(Path(pt["dir"]), args.out / "points" / pt["name"])
    print(summary.read_text())


if __name__ == "__main__":
    main()
