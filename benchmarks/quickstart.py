"""Wall time of the quickstart as a new user meets it: cold (empty cache), then warm (run again).

    .venv/bin/python benchmarks/quickstart.py [--experiment experiments/quickstart.toml] [--out DIR]

The cold run gets a fresh ``LATENTWIRE_CACHE`` (so the GGUF files are assembled and converted, the
MiniLM features computed, and nothing is kept from an earlier run) and a fresh runs folder; the
warm run repeats the same experiment into another fresh run folder with the cache the cold run
left (converted weights, features, the text baselines' label scores and LLMLingua's compressions).
``--keep DIR`` copies the cold run's folder to ``DIR`` (it is an ordinary quickstart run).
Each is ``python -m runner`` in a subprocess, as the README's main command runs it. Prints a table
and writes ``quickstart_time.json`` and ``quickstart_time.md`` (device named) to ``--out``
(default ``results/quickstart/benchmark``): each run's wall time, its stages' times, and how long
each evaluation method took (from the run's log). The two runs' accuracies are compared too: the
warm run must give the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from latentwire_eval.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def _device() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"CUDA {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"CPU ({os.cpu_count()} cores, {platform.platform()})"


def _method_seconds(log: Path, eval_start: str) -> dict[str, float]:
    """Seconds between consecutive ``evaluated`` events (the first from the stage start)."""
    out: dict[str, float] = {}
    last = datetime.fromisoformat(eval_start.replace("Z", "+00:00"))
    for line in log.read_text().splitlines():
        ev = json.loads(line)
        if ev.get("event") == "stage_start" and ev.get("stage") == "evaluate":
            last = datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00"))
        if ev.get("event") == "evaluated":
            t = datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00"))
            out[f"{ev['model']} / {ev['method']}"] = round((t - last).total_seconds(), 1)
            last = t
    return out


def _run(experiment: Path, runs: Path, cache: Path) -> dict[str, Any]:
    env = {**os.environ, "LATENTWIRE_CACHE": str(cache)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "runner", str(experiment), "--runs-dir", str(runs)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the quickstart failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    run_dir = next(p for p in runs.iterdir() if p.is_dir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stages = {k: v.get("seconds") for k, v in manifest["stages"].items()}
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    acc = {
        f"{r['model']} / {r['method']}": r["value"]
        for r in metrics["results"]
        if r["metric"] == metrics["headline"] and r.get("subset", "all") == "all"
    }
    return {
        "wall_seconds": round(wall, 1),
        "stage_seconds": stages,
        "evaluate_seconds_by_method": _method_seconds(
            run_dir / "log.jsonl", manifest["stages"]["evaluate"]["start"]
        ),
        "accuracy": acc,
        "git_revision": manifest.get("git_revision"),
        "git_dirty": manifest.get("git_dirty"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", type=Path, default=ROOT / "experiments" / "quickstart.toml")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "quickstart" / "benchmark")
    ap.add_argument("--keep", type=Path, default=None, help="copy the cold run's folder here (e.g. runs/)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lw-quickstart-bench-") as tmp:
        cache = Path(tmp) / "cache"
        cold = _run(args.experiment.resolve(), Path(tmp) / "cold", cache)
        print(f"cold: {cold['wall_seconds']:.0f} s {cold['stage_seconds']}", flush=True)
        warm = _run(args.experiment.resolve(), Path(tmp) / "warm", cache)
        print(f"warm: {warm['wall_seconds']:.0f} s {warm['stage_seconds']}", flush=True)
        if args.keep is not None:
            for run_dir in (Path(tmp) / "cold").iterdir():
                if run_dir.is_dir():  # the run folder (beside it: the runner's lock file)
                    shutil.copytree(run_dir, args.keep / run_dir.name, dirs_exist_ok=True)
    same = cold["accuracy"] == warm["accuracy"]
    result = {
        "experiment": str(args.experiment),
        "device": _device(),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cold": cold,
        "warm": warm,
        "warm_accuracy_equals_cold": same,
        "target_cold_seconds": 480,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quickstart_time.json").write_text(json.dumps(result, indent=1))
    lines = [
        "# Quickstart wall time",
        "",
        f"`{args.experiment.name}` on {result['device']}, {result['date']}, commit "
        f"`{cold['git_revision']}` (dirty: {cold['git_dirty']}). Cold: empty cache; warm: the same "
        "experiment again with the cache the cold run left. Target: cold at most 480 s.",
        "",
    ]
    stages = list(cold["stage_seconds"])
    lines += markdown_table(
        ["run", "wall s", *stages],
        [
            [name, f"{r['wall_seconds']:.0f}", *(f"{r['stage_seconds'].get(s, 0) or 0:.0f}" for s in stages)]
            for name, r in (("cold", cold), ("warm", warm))
        ],
    )
    lines += ["", "Evaluation time per reader and method (s):", ""]
    lines += markdown_table(
        ["reader / method", "cold", "warm"],
        [
            [k, f"{v:.0f}", f"{warm['evaluate_seconds_by_method'].get(k, float('nan')):.0f}"]
            for k, v in cold["evaluate_seconds_by_method"].items()
        ],
    )
    lines += ["", f"Warm accuracies equal the cold run's: {same}."]
    (args.out / "quickstart_time.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
