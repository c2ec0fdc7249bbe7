"""The tiny experiment files of the end-to-end tests (``tests/assets/<base>.toml``), varied per test.

``experiment(tmp_path, "tiny", name="study", wire={"encoder": {"n_tokens": 2}})`` writes ``tiny.toml`` with those
changes to ``tmp_path/study.toml`` and returns its path. A change to a table merges into it key by
key (``data={"task": "squad"}`` keeps the other ``[data]`` keys); a top-level value replaces.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

ASSETS = Path(__file__).resolve().parent


def merge_tables(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, table by table (neither is changed)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = (
            merge_tables(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def experiment_config(base: str = "tiny", **changes: Any) -> dict[str, Any]:
    """``tests/assets/<base>.toml`` as a dict, with ``changes`` merged in."""
    return merge_tables(tomllib.loads((ASSETS / f"{base}.toml").read_text()), changes)


def experiment(where: Path, base: str = "tiny", **changes: Any) -> Path:
    """Write ``experiment_config(base, **changes)`` to ``where/<name>.toml`` and return the path."""
    cfg = experiment_config(base, **changes)
    path = Path(where) / f"{cfg['name']}.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def tiny_experiment(where: Path, task: str = "sst2", name: str = "tiny") -> Path:
    """``tiny.toml`` under another name and task."""
    return experiment(where, name=name, data={"task": task})


TALK: dict[
    str, Any
] = {  # content.toml, task training only, the latent evaluated: a tiny lm_pool context wire
    "name": "talk",
    "data": {"eval_limit": 6},
    "pretrain": {"steps": 0},
    "eval": {"methods": ["latent"], "bootstrap_resamples": 50},
}
