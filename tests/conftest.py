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


ASSETS = REPO / "tests" / "assets"


def _full_data() -> Path | None:
    """The full offline benchmark files (docs/design.md "Models and data that work with no network"): $LATENTWIRE_DATA, else ../shared/data."""
    env = os.environ.get("LATENTWIRE_DATA")
    if env:
        return Path(env)
    path = REPO.parent / "shared" / "data"
    return path if path.is_dir() else None


# read once, before any fixture points LATENTWIRE_DATA at the slices
FULL_DATA = _full_data()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Benchmark files for runs: the full offline files when present, else the tiny slices of SST-2,
    SQuAD and SQuAD v2 in tests/assets/data (cut from them by tests/assets/make_assets.py), so the
    suite runs from the repository alone."""
    if FULL_DATA is not None and not FULL_DATA.is_dir():
        pytest.fail(f"LATENTWIRE_DATA={FULL_DATA} is not a folder")
    path = FULL_DATA or ASSETS / "data"
    os.environ["LATENTWIRE_DATA"] = str(path)  # what the runner reads
    return path


@pytest.fixture(scope="session")
def full_data_dir() -> Path:
    """The full offline files, for tests of facts about them (counts, official-script agreement on the
    whole dev sets, every task's loader); skipped, saying why, where they are absent."""
    if FULL_DATA is None:
        pytest.skip("the full offline benchmark files are absent (no ../shared/data, LATENTWIRE_DATA unset)")
    if not FULL_DATA.is_dir():
        pytest.fail(f"LATENTWIRE_DATA={FULL_DATA} is not a folder")
    os.environ["LATENTWIRE_DATA"] = str(FULL_DATA)
    return FULL_DATA
