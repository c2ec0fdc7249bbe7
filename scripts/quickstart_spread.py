"""How much the quickstart's numbers move across seeds and thread settings (issue 25): what spread a user
who re-runs it should expect beside the README's table.

    .venv/bin/python scripts/quickstart_spread.py            # the runs not collected yet, then the summary
    .venv/bin/python scripts/quickstart_spread.py --summary  # only the summary, from results/

Settings fixed before any of them ran: ``experiments/quickstart.toml`` unchanged but for ``seed`` (1 and 2;
seed 0 is the committed ``results/quickstart``), and seed 0 again with one thread (``OMP_NUM_THREADS=1``,
which torch reads at start) against the committed run's two. Each run is collected into
``results/quickstart-seed<N>`` / ``results/quickstart-threads1``; the summary (``results/quickstart-spread/``)
gives, per reader and method, the headline accuracy of every run, the range and sample standard deviation
over the three seeds, and the seed-0 difference between thread settings (which isolates floating-point
order: the data, initialisation and batches are the same).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from collect_result import collect

from latentwire_eval.tables import markdown_table

RUNS: dict[str, tuple[int, dict[str, str]]] = {  # name: (seed, extra environment)
    "quickstart-seed1": (1, {}),
    "quickstart-seed2": (2, {}),
    "quickstart-threads1": (0, {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
}
SEEDS = {"quickstart": 0, "quickstart-seed1": 1, "quickstart-seed2": 2}
METHODS = ("latent", "latent_shuffled", "text", "token_budget", "llmlingua", "no_context")


def run(name: str, seed: int, env: dict[str, str], py: str) -> None:
    cmd = [
        py,
        "-m",
        "runner",
        "experiments/quickstart.toml",
        "--set",
        f"name={name}",
        "--set",
        f"seed={seed}",
    ]
    print("$", " ".join(cmd), env or "", flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, **env})
    print("collected into", collect(Path("runs") / name, Path("results") / name), flush=True)


def _values(name: str) -> dict[tuple[str, str], float]:
    m = json.loads((Path("results") / name / "metrics.json").read_text())
    head = m.get("headline", "accuracy")
    return {
        (r["model"], r["method"]): float(r["value"])
        for r in m["results"]
        if r["metric"] == head and r.get("subset", "all") == "all" and r["method"] in METHODS
    }


def summary(out: Path) -> None:
    runs = {n: _values(n) for n in [*SEEDS, "quickstart-threads1"] if (Path("results") / n).is_dir()}
    keys = sorted({k for v in runs.values() for k in v}, key=lambda k: (k[0], METHODS.index(k[1])))
    rows, data = [], []
    for model, method in keys:
        seeds = [runs[n][(model, method)] for n in SEEDS if n in runs and (model, method) in runs[n]]
        t1 = runs.get("quickstart-threads1", {}).get((model, method))
        t0 = runs.get("quickstart", {}).get((model, method))
        rec = {
            "model": model,
            "method": method,
            **{f"seed{SEEDS[n]}": runs[n].get((model, method)) for n in SEEDS if n in runs},
            "threads1_seed0": t1,
            "range_over_seeds": max(seeds) - min(seeds) if len(seeds) > 1 else None,
            "sd_over_seeds": statistics.stdev(seeds) if len(seeds) > 1 else None,
            "threads1_minus_threads2": t1 - t0 if t1 is not None and t0 is not None else None,
        }
        data.append(rec)
        rows.append(
            ["–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in rec.values()]
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "spread.json").write_text(json.dumps({"runs": sorted(runs), "rows": data}, indent=1) + "\n")
    head = list(data[0]) if data else []
    text = [
        "# Quickstart spread across seeds and thread settings",
        "",
        f"Runs: {', '.join(sorted(runs))} (each under results/, with its manifest: commit, device, wall time).",
        "Headline accuracy on the same 300 SST-2 dev sentences; seed 0 with 2 threads is results/quickstart.",
        "",
        *markdown_table(head, rows),
    ]
    (out / "spread.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--summary", action="store_true", help="only the summary, from the collected results")
    args = ap.parse_args()
    if not args.summary:
        for name, (seed, env) in RUNS.items():
            if not (Path("results") / name / "run.json").is_file():
                run(name, seed, env, sys.executable)
    summary(Path("results") / "quickstart-spread")


if __name__ == "__main__":
    main()
