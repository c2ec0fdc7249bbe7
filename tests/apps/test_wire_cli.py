"""A trained wire outside the runner: load, save, and two processes talking through messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from latentwire_hf.data import load_train_eval
from latentwire_hf.pretrained import PretrainedWire, UnknownReaderError
from runner.__main__ import main

CONTENT = """
name = "talk"
[data]
task = "squad"
train_limit = 16
eval_limit = 6
[models]
names = ["tiny-llama", "tiny-gemma3"]
[features]
source = "tiny-llama"
layer = 1
max_length = 64
[wire]
encoder = "lm_pool"
encoder_layers = 1
ratio = 4
n_tokens = 32
compress = "context"
d_z = 16
[train]
steps = 2
batch_size = 4
ckpt_every = 2
log_every = 1
[eval]
methods = ["latent"]
batch_size = 8
bootstrap_resamples = 50
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("talk")
    p = tmp / "talk.toml"
    p.write_text(CONTENT)
    assert main([str(p), "--runs-dir", str(tmp / "runs")]) == 0
    return tmp / "runs" / "talk"


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], input=stdin, capture_output=True, env=env, timeout=300
    )


def test_a_run_folder_loads_without_the_runner_and_saves_bit_for_bit(run: Path, tmp_path: Path) -> None:
    wire = PretrainedWire.from_pretrained(run)
    assert wire.readers == ["tiny-gemma3", "tiny-llama"]
    saved = wire.save_pretrained(tmp_path / "saved")
    again = PretrainedWire.from_pretrained(saved)
    for k, v in wire.weights().items():
        assert torch.equal(v, again.weights()[k]), k
    texts = ["The Normans gave their name to Normandy, a region in France.", "short"]
    assert wire.encode(texts) == again.encode(texts)  # same messages, byte for byte
    with pytest.raises(UnknownReaderError, match="its readers: tiny-gemma3, tiny-llama"):
        wire.soft_tokens(wire.encode(texts)[0], "gemma3-270m")


def test_two_processes_answer_as_the_in_process_evaluation_did(
    run: Path, tmp_path: Path, data_dir: Path
) -> None:
    preds = pd.read_parquet(run / "eval" / "predictions.parquet")
    _, evaluation, _ = load_train_eval("squad", data_dir=data_dir, train_limit=16, eval_limit=6, seed=0)
    ex = evaluation[0]
    want = preds[(preds["example_id"] == ex.id) & (preds["model"] == "tiny-gemma3")].iloc[0]
    msg = tmp_path / "msg.lw"
    sent = _cli("encode", str(run), "--text", ex.context, "-o", str(msg))
    assert sent.returncode == 0, sent.stderr.decode()
    assert msg.stat().st_size == want["wire_bytes"]  # the size evaluation reports is the message's
    got = _cli("answer", str(run), "--model", "tiny-gemma3", str(msg), "--question", ex.question)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout.decode().rstrip("\n") == want["output"]
    # a damaged message is refused by name before any reader loads
    bad = bytearray(msg.read_bytes())
    bad[30] ^= 0x10
    out = _cli("answer", str(run), "--model", "tiny-gemma3", "-", "--question", "q", stdin=bytes(bad))
    assert out.returncode == 2 and b"checksum" in out.stderr
    out = _cli("answer", str(run), "--model", "qwen-9000", str(msg), "--question", "q")
    assert out.returncode == 2 and b"its readers: tiny-gemma3, tiny-llama" in out.stderr
