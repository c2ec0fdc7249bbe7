"""``python -m runner sweep experiment.toml --grid key=v1,v2 ... --seeds 0,1,2``.

Every grid point (the Cartesian product of the ``--grid`` values, times the seeds) is an ordinary
run folder ``<runs_dir>/<sweep>/<point>``; ``<runs_dir>/<sweep>/sweep.json`` records the grid and
the points. Points run one after another (resuming what is unfinished, skipping what is done);
``--dry-run`` prints the plan; ``--launcher slurm`` writes an sbatch array script, one point per
array task with ``accelerate launch`` inside, and prints the command that submits it. Afterwards
(or with ``--report-only``) the points are aggregated into ``<sweep>/report/`` by
:func:`latentwire_eval.sweep.write_sweep_report`.

Every point's config is validated before anything runs: a bad grid key or value fails naming it.
Points that differ only in evaluation-only keys (``[codec]``, ``[eval]``, e.g. ``codec.precision``)
train one wire: locally, the first such point trains and the others take its finished training
stages (``python -m runner --reuse-training``) and only evaluate. SLURM array tasks run at once, so
there each point trains its own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from runner.cli import folder_arg
from runner.config import ConfigError, load_experiment
from runner.folder import EVAL_ONLY_DATA_KEYS, EVAL_ONLY_TABLES, RunFolder

__all__ = ["main", "plan"]


def _evaluation_only(key: str) -> bool:
    """A grid key that changes what is evaluated but not the trained wire."""
    table, _, rest = key.partition(".")
    return table in EVAL_ONLY_TABLES or (table == "data" and rest in EVAL_ONLY_DATA_KEYS)


def _grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        values = [v.strip() for v in raw.split(",") if v.strip()] if eq else []
        if not key.strip() or not values:
            raise ConfigError(f"--grid {item!r}: expected key=v1,v2,..., e.g. wire.encoder.ratio=4,16")
        if key.strip() in ("name", "seed", "runs_dir"):
            raise ConfigError(
                f"--grid {item!r}: {key.strip()} is set by the sweep itself (use --seeds for seeds)"
            )
        grid[key.strip()] = values
    return grid


def _slug(params: dict[str, str], seed: int) -> str:
    parts = [f"{k.split('.')[-1]}={v}" for k, v in params.items()] + [f"seed={seed}"]
    return re.sub(r"[^A-Za-z0-9=._-]+", "-", "__".join(parts))


def plan(
    experiment: Path,
    grid: dict[str, list[str]],
    seeds: list[int],
    runs_dir: Path | None,
    sweep_name: str | None,
) -> tuple[Path, list[dict[str, Any]]]:
    """Validate every point's config and return the sweep folder and its points (nothing written)."""
    base = load_experiment(experiment)
    root = Path(runs_dir or base.runs_dir) / (sweep_name or base.name)
    points: list[dict[str, Any]] = []
    problems: list[str] = []
    leaders: dict[tuple[Any, ...], str] = {}
    for combo in itertools.product(*grid.values()) if grid else [()]:
        params = dict(zip(grid, combo, strict=True))
        for seed in seeds:
            name = _slug(params, seed)
            overrides = [f"{k}={v}" for k, v in params.items()] + [f"seed={seed}", f"name={name}"]
            try:
                load_experiment(experiment, overrides)
            except ConfigError as e:
                problems.append(f"point {name}: {e}")
                continue
            point: dict[str, Any] = {
                "name": name,
                "params": params,
                "seed": seed,
                "overrides": overrides,
                "dir": str(root / name),
            }
            # points that differ only in evaluation-only keys ([codec], [eval]) train one wire
            trains = (
                seed,
                tuple((k, v) for k, v in params.items() if not _evaluation_only(k)),
            )
            leader = leaders.setdefault(trains, name)
            if leader != name:
                point["reuses_training_of"] = leader
            points.append(point)
    if problems:
        raise ConfigError("; ".join(dict.fromkeys(problems)))
    return root, points


def _status(run_dir: Path) -> str:
    return RunFolder(run_dir, read_only=True).status()


def _trained(run_dir: Path) -> bool:
    """Has the run in ``run_dir`` finished its train stage? (read-only; never raises)"""
    try:
        stages = json.loads((run_dir / "manifest.json").read_text()).get("stages", {})
    except (OSError, ValueError):
        return False
    return bool(stages.get("train", {}).get("status") == "done")


def _slurm(
    root: Path, experiment: Path, points: list[dict[str, Any]], launch: str, sbatch_opts: list[str]
) -> Path:
    lines = [shlex.join(p["overrides"]) for p in points]
    (root / "points.txt").write_text("\n".join(lines) + "\n")
    exp = experiment.resolve()
    script = root / "sweep.sbatch"
    header = [
        "#!/bin/bash",
        f"#SBATCH --job-name={root.name}",
        f"#SBATCH --array=0-{len(points) - 1}",
        f"#SBATCH --output={root.resolve()}/slurm-%A_%a.out",
        *[f"#SBATCH {o}" for o in sbatch_opts],
    ]
    body = f"""
# One grid point per array task (generated by `python -m runner sweep`; {len(points)} points).
# Each point is an ordinary run folder: a re-submitted task resumes it, a finished one is skipped.
set -euo pipefail
cd {shlex.quote(str(Path.cwd().resolve()))}
LINE=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str((root / "points.txt").resolve()))})
eval "set -- $LINE"
ARGS=()
for kv in "$@"; do ARGS+=(--set "$kv"); done
{launch} -m runner {shlex.quote(str(exp))} --runs-dir {shlex.quote(str(root.resolve()))} "${{ARGS[@]}}"
"""
    script.write_text("\n".join(header) + "\n" + body)
    script.chmod(0o755)
    return script


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m runner sweep", description=__doc__)
    p.add_argument("experiment", type=Path)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="repeatable")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--name", default=None, help="sweep folder name (default: the experiment's name)")
    p.add_argument("--runs-dir", type=folder_arg, default=None)
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    p.add_argument("--launcher", choices=["local", "slurm"], default="local")
    p.add_argument("--launch", default="accelerate launch", help="command the sbatch script runs points with")
    p.add_argument(
        "--sbatch", action="append", default=[], metavar="OPTION", help="e.g. --sbatch=--gres=gpu:1"
    )
    p.add_argument("--report-only", action="store_true", help="aggregate finished points, run nothing")
    args = p.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"error: --seeds {args.seeds!r}: expected integers such as 0,1,2", file=sys.stderr)
        return 2
    # a repeated seed is one run folder, not two samples: statistics over it would be overconfident
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if not seeds or twice or any(s < 0 for s in seeds):
        why = "no seed" if not seeds else f"seed {twice[0]} given twice" if twice else "seeds must be >= 0"
        print(f"error: --seeds {args.seeds!r}: {why} (distinct integers such as 0,1,2)", file=sys.stderr)
        return 2
    try:
        root, points = plan(args.experiment, _grid(args.grid), seeds, args.runs_dir, args.name)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for pt in points:
        print(f"{_status(Path(pt['dir'])):8s} {pt['name']}  ({' '.join(pt['overrides'][:-1])})")
    if args.dry_run:
        print(f"{len(points)} points in {root} (dry run: nothing written)")
        return 0
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "experiment": str(args.experiment),
        "grid": _grid(args.grid),
        "seeds": seeds,
        "points": points,
    }
    tmp = root / "sweep.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, root / "sweep.json")
    if args.launcher == "slurm":
        script = _slurm(root, args.experiment, points, args.launch, args.sbatch)
        print(f"submit with: sbatch {script}")
        return 0
    if not args.report_only:
        from runner.cli import run_main

        for pt in points:
            if _status(Path(pt["dir"])) == "done":
                continue
            sets = [x for kv in pt["overrides"] for x in ("--set", kv)]
            reuse: list[str] = []
            if pt.get("reuses_training_of"):
                leader = root / pt["reuses_training_of"]
                if _trained(leader):
                    reuse = ["--reuse-training", str(leader)]
            code = run_main([str(args.experiment), "--runs-dir", str(root), *sets, *reuse])
            if code != 0:
                print(
                    f"error: point {pt['name']} failed (exit {code}); re-run the sweep to resume",
                    file=sys.stderr,
                )
                return code
    from latentwire_eval.sweep import write_sweep_report

    try:
        path = write_sweep_report(root, points, title=root.name)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path.read_text())
    return 0
