"""Print the markdown table of docs/results.md for a collected result (``results/<name>/metrics.json`` only).

``python scripts/results_table.py results/<name> [--metric f1]``: one row per (reader, method)
with the metric, its 95% CI, n, slot tokens, wire bytes, and the paired difference to the
latent with its Holm-corrected p-value.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentwire_eval.tables import markdown_table


def table(folder: Path, metric: str | None = None) -> str:
    m = json.loads((folder / "metrics.json").read_text())
    metric = metric or m["headline"]
    rows = [r for r in m["results"] if r["metric"] == metric and r.get("subset", "all") == "all"]
    tests = {(c["model"], c["latent_vs"]): c for c in m.get("comparisons", []) if c["metric"] == metric}
    text = {r["model"]: r["value"] for r in rows if r["method"] == "text"}
    out = []
    for r in rows:
        c = tests.get((r["model"], r["method"]))
        diff = f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], {c['p_holm']:.2g}" if c else "–"
        name = f"**{r['method']}**" if r["method"] == "latent" else r["method"]
        if r["method"] == "latent" and text.get(r["model"]):
            name += f" ({r['value'] / text[r['model']]:.0%} of text)"
        out.append(
            [
                r["model"],
                name,
                f"{r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
                r["n"],
                f"{r['slot_tokens']:.1f}",
                f"{r['wire_bytes']:.0f}" if r.get("wire_bytes") else "–",
                diff,
            ]
        )
    header = [
        "reader",
        "method",
        f"{metric} [95% CI]",
        "n",
        "slot tokens",
        "wire bytes",
        "latent − method [95% CI], p Holm",
    ]
    return "\n".join(markdown_table(header, out))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("folder", type=Path)
    p.add_argument("--metric", default=None)
    a = p.parse_args()
    print(table(a.folder, a.metric))
