"""Where the quickstart's time goes: the experiment run once in-process under ``cProfile``, broken down.

    .venv/bin/python benchmarks/quickstart_profile.py [--experiment experiments/quickstart.toml] [--out DIR]

Runs ``python -m runner EXPERIMENT`` in this process (a fresh run folder under a temporary directory, the
cache as it is: run it after ``benchmarks/quickstart.py`` for the warm case the README's breakdown needs)
under the standard library's deterministic profiler (one profiler enabled inside the train stage's
``Trainer.train``, one inside the evaluate stage's evaluation pipeline), then writes to ``--out`` (default
``results/quickstart/benchmark``):

* ``quickstart_profile.json`` / ``.md``: the wall time of each stage; the training step taken apart (the
  wire's forward, the readers' forward, the backward pass, the optimiser, the content probe, the
  checkpoints) as seconds and shares of the train stage; the evaluation stage per phase; and, per stage,
  the 20 functions with the most own time (where the CPU is, e.g. matrix products inside the readers).

cProfile adds overhead per Python call, so the profiled run is slower than an unprofiled one; the shares,
not the absolute seconds, are what this measures (``quickstart_time.json`` has the unprofiled times). The
profile is kept as JSON only (no ``.pstats`` marshal file).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import platform
import pstats
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from latentwire_eval.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]

# (what it is, file suffix, function name): cumulative seconds of each, as cProfile counts them
TRAIN_PARTS = [
    ("train stage (Trainer.train)", "latentwire_hf/training.py", "train"),
    ("one micro step: forward + backward (Trainer._micro_step)", "latentwire_hf/training.py", "_micro_step"),
    ("  forward: the objective (wire + readers + losses)", "objectives/task.py", "__call__"),
    ("    the wire: features + encoder + adapters (objectives.base.encode)", "objectives/base.py", "encode"),
    (
        "    the readers' forward after the cached prefix (SlotPrompt.hidden)",
        "latentwire_core/prompting.py",
        "hidden",
    ),
    (
        "    the readers' output head at answer positions (HFFrozenLM.logits)",
        "latentwire_hf/frozen_lm.py",
        "logits",
    ),
    ("  backward (Accelerator.backward)", "accelerate/accelerator.py", "backward"),
    ("optimiser step (AdamW, through accelerate)", "accelerate/optimizer.py", "step"),
    ("content probe every log step (content_gap)", "objectives/base.py", "content_gap"),
    ("checkpoints (Trainer._save)", "latentwire_hf/training.py", "_save"),
]
EVAL_PARTS = [
    ("evaluation pipeline (latentwire_eval.pipeline.evaluate)", "latentwire_eval/pipeline.py", "evaluate"),
    ("LLMLingua compression (LLMLinguaBaseline.compress)", "methods/llmlingua.py", "compress"),
    (
        "the readers' forward passes, every method (HFFrozenLM.hidden_states)",
        "latentwire_hf/frozen_lm.py",
        "hidden_states",
    ),
    ("greedy generation (HFFrozenLM.generate)", "latentwire_hf/frozen_lm.py", "generate"),
]


def _within(prof: cProfile.Profile, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with ``prof`` enabled while it runs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        prof.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            prof.disable()

    return wrapper


def _cum(stats: pstats.Stats, suffix: str, func: str) -> tuple[float, int] | None:
    """Cumulative seconds and primitive call count of the function ``func`` in a file ending ``suffix``."""
    found = [
        (ct, cc)
        for (fname, _line, name), (cc, _nc, _tt, ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
        if name == func and fname.replace(os.sep, "/").endswith(suffix)
    ]
    if not found:
        return None
    return max(found)  # one definition per name in these files; max guards against a second match


def _top_own(stats: pstats.Stats, n: int) -> list[dict[str, Any]]:
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]  # type: ignore[attr-defined]
    out = []
    for (fname, line, name), (_cc, nc, tt, ct, _callers) in rows:
        where = fname if fname == "~" else f"{Path(fname).parent.name}/{Path(fname).name}:{line}"
        out.append(
            {"function": name, "where": where, "calls": nc, "own_s": round(tt, 2), "cum_s": round(ct, 2)}
        )
    return out


def _parts(stats: pstats.Stats, parts: list[tuple[str, str, str]], base: float) -> list[dict[str, Any]]:
    rows = []
    for label, suffix, func in parts:
        got = _cum(stats, suffix, func)
        if got is None:
            rows.append({"part": label, "seconds": None, "calls": 0, "share": None})
            continue
        ct, cc = got
        rows.append(
            {
                "part": label,
                "seconds": round(ct, 3),
                "calls": cc,
                "share": round(ct / base, 3) if base else None,
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", type=Path, default=ROOT / "experiments" / "quickstart.toml")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "quickstart" / "benchmark")
    ap.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="copy the profiled run's folder here (e.g. runs/, to compare it)",
    )
    args = ap.parse_args()
    if not args.experiment.is_file():
        raise SystemExit(f"--experiment {args.experiment}: no such file")
    import latentwire_hf.training as training
    import runner.run as run_module
    from runner.__main__ import main as runner_main

    # one profiler per stage, enabled only inside it: the train stage's Trainer.train (a pretrain stage's
    # too, where the experiment has one) and the evaluate stage's evaluation pipeline
    profiles = {"train": cProfile.Profile(), "evaluate": cProfile.Profile()}
    training.Trainer.train = _within(profiles["train"], training.Trainer.train)  # type: ignore[method-assign]
    run_module.evaluate = _within(profiles["evaluate"], run_module.evaluate)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="lw-profile-") as tmp:
        name = "quickstart-profile"
        argv = [str(args.experiment), "--set", f"name={name}", "--runs-dir", tmp]
        t0 = time.perf_counter()
        rc = runner_main(argv)
        wall = time.perf_counter() - t0
        if rc:
            raise SystemExit(f"the profiled run failed (exit {rc})")
        manifest = json.loads((Path(tmp) / name / "manifest.json").read_text())
        if args.keep is not None:  # an ordinary run folder (profiling changes no number in it)
            shutil.copytree(Path(tmp) / name, args.keep / name, dirs_exist_ok=True)
    train_stats, eval_stats = pstats.Stats(profiles["train"]), pstats.Stats(profiles["evaluate"])
    stages = {k: v.get("seconds") for k, v in manifest.get("stages", {}).items()}
    train = _cum(train_stats, "latentwire_hf/training.py", "train")
    evaluate = _cum(eval_stats, "latentwire_eval/pipeline.py", "evaluate")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    )
    result = {
        "experiment": str(
            args.experiment.resolve().relative_to(ROOT)
            if args.experiment.resolve().is_relative_to(ROOT)
            else args.experiment
        ),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "dirty": dirty,
        "device": f"CPU ({os.cpu_count()} cores, {platform.platform()})",
        "profiled_wall_s": round(wall, 1),
        "stage_seconds": stages,
        "train": _parts(train_stats, TRAIN_PARTS, train[0] if train else 0.0),
        "evaluate": _parts(eval_stats, EVAL_PARTS, evaluate[0] if evaluate else 0.0),
        "top_own_time": {"train": _top_own(train_stats, 20), "evaluate": _top_own(eval_stats, 20)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quickstart_profile.json").write_text(json.dumps(result, indent=1))

    def table(rows: list[dict[str, Any]]) -> str:
        return "\n".join(
            markdown_table(
                ["part", "seconds", "calls", "share"],
                [
                    [
                        r["part"],
                        r["seconds"],
                        r["calls"],
                        "" if r["share"] is None else f"{100 * r['share']:.1f}%",
                    ]
                    for r in rows
                ],
            )
        )

    md = [
        "# Where the quickstart's time goes (cProfile)",
        "",
        f"`{result['experiment']}` run in-process under cProfile on {result['device']}, {result['when']}, "
        f"commit `{commit}` (dirty: {dirty}), with the cache as it was (warm). Profiled wall time "
        f"{result['profiled_wall_s']} s; stages (s): "
        + ", ".join(f"{k} {v}" for k, v in stages.items())
        + ". cProfile's per-call overhead makes these seconds larger than an unprofiled run's; read the shares.",
        "",
        "## The train stage (share of Trainer.train)",
        "",
        table(result["train"]),
        "",
        "## The evaluate stage (share of the evaluation pipeline)",
        "",
        table(result["evaluate"]),
        "",
        *[
            line
            for stage in ("train", "evaluate")
            for line in (
                f"## The 20 functions with the most own time in the {stage} stage",
                "",
                *markdown_table(
                    ["function", "where", "calls", "own s", "cumulative s"],
                    [
                        [r["function"], r["where"], r["calls"], r["own_s"], r["cum_s"]]
                        for r in result["top_own_time"][stage]  # type: ignore[index]
                    ],
                ),
                "",
            )
        ],
    ]
    (args.out / "quickstart_profile.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
