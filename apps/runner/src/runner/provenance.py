"""What a run records about where and how it ran: the time, the distributed rank, the git revision (and
whether the tree was clean), and the versions of the packages that computed it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["git_dirty", "git_revision", "now", "rank_info", "versions"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def rank_info() -> tuple[int, bool]:
    """``(world size, is the main rank)`` under ``accelerate launch`` / torchrun (``(1, True)`` alone)."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_revision() -> str | None:
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files differ from ``HEAD`` (the revision alone does not say what ran)."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("torch", "transformers", "accelerate", "latentwire-core", "latentwire-hf", "latentwire-eval"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out
