"""``python -m runner experiment.toml [--set key=value ...] [--stage ...] [--fresh] [--reuse-training RUN_DIR]``: one run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from latentwire_core.logs import configure_logging
from latentwire_core.registry import UnknownNameError
from runner.config import STAGES, ConfigError, load_experiment

__all__ = ["run_main"]


def folder_arg(value: str) -> Path:
    """An argparse type for a folder option: an empty value is refused (``Path('')`` would be the cwd)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("needs a folder, got an empty value")
    return Path(value)


def run_main(argv: list[str]) -> int:
    """Validate the experiment, then run its stages into its run folder; 2 on an expected failure."""
    p = argparse.ArgumentParser(prog="python -m runner", description=__doc__)
    p.add_argument("experiment", type=Path, help="experiment TOML file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.steps=50 (repeatable)",
    )
    p.add_argument(
        "--stage",
        choices=STAGES,
        action="append",
        help="run only this stage (repeatable); default: all, skipping finished ones",
    )
    p.add_argument("--fresh", action="store_true", help="delete the run folder and start over")
    p.add_argument("--runs-dir", type=folder_arg, default=None, help="override the experiment's runs_dir")
    p.add_argument(
        "--reuse-training",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="take the finished training stages of RUN_DIR, a run whose config differs "
        "from this one only in [codec]/[eval] and the [data] keys that pick evaluation examples (a sweep "
        "does this for evaluation-only grid keys)",
    )
    args = p.parse_args(argv)
    configure_logging(None)
    try:  # validation first: a bad file is refused before torch / transformers are imported
        exp = load_experiment(args.experiment, args.overrides)
    except (ConfigError, UnknownNameError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # quick refusals before torch loads (seconds): a live runner on this folder, CUDA asked of a machine
    # with no NVIDIA driver at all (the full check, torch.cuda.is_available, runs again in Run)
    from runner.folder import RunLock

    run_dir = (args.runs_dir or Path(exp.runs_dir)) / exp.name
    single = os.environ.get("WORLD_SIZE", "1") == "1"  # under a launcher, rank 0 holds the lock legitimately
    holder = RunLock.holder(run_dir) if single else None
    if holder is not None:
        print(
            f"error: {run_dir} is in use by another runner (PID {holder}); wait for it or stop it",
            file=sys.stderr,
        )
        return 2
    if exp.models.device == "cuda" and not any(
        Path(p).exists() for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/nvidiactl")
    ):
        print(
            f"error: {args.experiment}: [models].device = 'cuda' but this machine has no NVIDIA driver; "
            "use 'auto' or 'cpu'",
            file=sys.stderr,
        )
        return 2
    from latentwire_hf.checkpoint import CheckpointError
    from latentwire_hf.config import ModelLoadError, ModelShapeError
    from latentwire_hf.data import DataError
    from latentwire_hf.training import NonFiniteLossError
    from runner.run import Run, RunFolderError, RunFolderMismatch

    expected = (
        ConfigError,
        UnknownNameError,
        RunFolderMismatch,
        RunFolderError,
        DataError,
        CheckpointError,
        NonFiniteLossError,
        ModelShapeError,
        ModelLoadError,
        OSError,
    )
    run: Run | None = None
    try:
        run = Run(exp, fresh=args.fresh, root=args.runs_dir, reuse_training=args.reuse_training)
        stages = tuple(s for s in STAGES if s in args.stage) if args.stage else STAGES
        run.run(stages)
    except expected as e:  # an expected failure is one line naming the file / key, exit 2
        print(f"\nerror: {e}", file=sys.stderr)  # on its own line, after any open progress bar
        return 2
    finally:
        if run is not None and run.lock is not None:
            run.lock.release()
        configure_logging(None)  # close the run's log.jsonl (a sweep runs many runs in one process)
    print(f"run folder: {run.dir}", file=sys.stderr)
    if run.folder.summary.is_file():
        print(run.folder.summary.read_text())
    return 0
