"""Run folders for the dashboard tests, made by the runner itself from tests/assets/tiny.toml.

Each kind is made once per test session (a tiny run takes a few seconds) and copied where a test
wants it, so the dashboard is always tested on what the runner really writes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from experiments import experiment
from runner.__main__ import main

METHODS = ("text", "latent", "token_budget")
MODELS = ("tiny-llama", "tiny-gemma3")
_MADE: dict[tuple[str, int, bool], Path] = {}
_CACHE = Path(tempfile.mkdtemp(prefix="lw-dashboard-runs-"))


def _run(name: str, n_tokens: int, finished: bool) -> Path:
    key = (name, n_tokens, finished)
    if key not in _MADE:
        root = _CACHE / f"{name}-{n_tokens}-{int(finished)}"
        root.mkdir(parents=True)
        exp = experiment(root, name=name, wire={"encoder": {"n_tokens": n_tokens}})
        stages = [] if finished else ["--stage", "prepare", "--stage", "train"]
        assert main([str(exp), "--runs-dir", str(root), *stages]) == 0
        _MADE[key] = root / name
    return _MADE[key]


def make_finished_run(root: Path, name: str = "alpha", n_tokens: int = 4) -> Path:
    """A finished tiny run (every stage) copied to ``root/name``."""
    dst = root / name
    shutil.copytree(_run(name, n_tokens, True), dst)
    return dst


def make_running_run(root: Path, name: str = "beta") -> Path:
    """A real tiny run cut as it looks while training: prepared, ``train`` marked running, the
    training log ending in a half-written line, nothing evaluated yet."""
    dst = root / name
    shutil.copytree(_run(name, 4, False), dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["stages"]["train"] = {"status": "running", "start": manifest["stages"]["train"]["start"]}
    manifest.pop("finished", None)
    (dst / "manifest.json").write_text(json.dumps(manifest))
    log = dst / "train" / "metrics.jsonl"
    first = log.read_text().splitlines()[0]
    log.write_text(first + "\n" + first[: len(first) // 2])
    return dst
