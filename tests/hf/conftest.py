from __future__ import annotations

import pytest

from latentwire_hf.frozen_lm import HFFrozenLM, load_frozen_lm


@pytest.fixture(scope="session")
def tiny_llama() -> HFFrozenLM:
    return load_frozen_lm("tiny-llama")


@pytest.fixture(scope="session")
def tiny_gemma3() -> HFFrozenLM:
    return load_frozen_lm("tiny-gemma3")


@pytest.fixture(scope="session")
def tiny_qwen2() -> HFFrozenLM:
    return load_frozen_lm("tiny-qwen2")
