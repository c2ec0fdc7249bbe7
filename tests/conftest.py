from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
import random
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property tests check values, never speed (speed lives in benchmarks/): no per-example deadline, so a
# loaded CI machine cannot turn a slow example into a failure.
settings.register_profile("latentwire", deadline=None)
settings.load_profile("latentwire")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def seed() -> int:
    """Every test starts from the same RNG state."""
    random.seed(0)
    torch.manual_seed(0)
    return 0


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline benchmark files (DESIGN.md section 4), from LATENTWIRE_DATA or ../shared/data."""
    env = os.environ.get("LATENTWIRE_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.fail(f"benchmark data not found at {path}; set LATENTWIRE_DATA")
    os.environ.setdefault("LATENTWIRE_DATA", str(path))  # what the runner reads
    return path
