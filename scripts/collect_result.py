"""Copy a finished run's reportable files into ``results/<experiment>/`` (what the README and docs/results.md may cite).

``python scripts/collect_result.py runs/<name> [results/<name>]`` copies ``experiment.toml``
(the exact resolved TOML), ``manifest.json`` (versions, git commit, machine, stage times),
``eval/metrics.json``, ``report/summary.md`` and the report's plots, and writes ``run.json``
with the commit, the device and the wall time taken from the manifest.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import datetime
from pathlib import Path

# A study point's evidence (what scripts/sst2_sweep_report.py and scripts/quickstart_wire_choice.py copy
# under results/ per run): the resolved TOML, manifest, metrics, summary and training log.
EVIDENCE = {
    "experiment.toml": "experiment.toml",
    "manifest.json": "manifest.json",
    "eval/metrics.json": "metrics.json",
    "report/summary.md": "summary.md",
    "train/metrics.jsonl": "train_metrics.jsonl",
}


def copy_evidence(run: Path, dst: Path) -> None:
    """Copy the :data:`EVIDENCE` files ``run`` has into ``dst`` (flat names)."""
    dst.mkdir(parents=True, exist_ok=True)
    for src, name in EVIDENCE.items():
        if (run / src).is_file():
            shutil.copy(run / src, dst / name)


def collect(run: Path, out: Path) -> Path:
    manifest = json.loads((run / "manifest.json").read_text())
    stages = manifest.get("stages", {})
    if any(s.get("status") != "done" for s in stages.values()) or "report" not in stages:
        raise SystemExit(f"{run}: not finished (stages: { {k: v.get('status') for k, v in stages.items()} })")
    out.mkdir(parents=True, exist_ok=True)
    for rel in ("experiment.toml", "manifest.json", "eval/metrics.json", "report/summary.md"):
        shutil.copy(run / rel, out / Path(rel).name)
    for png in (run / "report").glob("*.png"):
        shutil.copy(png, out / png.name)
    starts = [datetime.fromisoformat(s["start"]) for s in stages.values() if "start" in s]
    ends = [datetime.fromisoformat(s["end"]) for s in stages.values() if "end" in s]
    machine = manifest.get("machine", {})
    info = {
        "run": run.name,
        "git_revision": manifest.get("git_revision"),
        "git_dirty": manifest.get("git_dirty"),
        "device": machine.get("gpu") or f"CPU ({machine.get('cpus')} cores, {machine.get('platform')})",
        "stage_seconds": {k: v.get("seconds") for k, v in stages.items()},
        "compute_seconds": round(sum(float(v.get("seconds") or 0) for v in stages.values()), 1),
        "wall_seconds_first_start_to_last_end": round((max(ends) - min(starts)).total_seconds(), 1),
    }
    (out / "run.json").write_text(json.dumps(info, indent=1))
    return out


if __name__ == "__main__":
    run = Path(sys.argv[1])
    print(collect(run, Path(sys.argv[2]) if len(sys.argv) > 2 else Path("results") / run.name))
