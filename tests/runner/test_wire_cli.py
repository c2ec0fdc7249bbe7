"""A trained wire outside the runner: load, save, and two processes talking through messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from experiments import TALK, experiment
from latentwire_core.message import pack
from latentwire_hf.data import load_train_eval
from latentwire_hf.pretrained import PretrainedWire, UnknownReaderError
from runner.__main__ import main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("talk")
    p = experiment(tmp, "content", **TALK)
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
    # text that is not UTF-8 is refused by name (stdin, a --jsonl file and its line), not a traceback
    out = _cli("encode", str(run), stdin=b"caf\xe9 au lait")
    assert out.returncode == 2 and b"stdin:1: not valid UTF-8" in out.stderr
    bad_jsonl = tmp_path / "texts.jsonl"
    bad_jsonl.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    out = _cli("encode", str(run), "--jsonl", str(bad_jsonl), "-o", str(tmp_path / "m"))
    assert out.returncode == 2 and f"{bad_jsonl}:2: not valid UTF-8".encode() in out.stderr
    # forged messages with valid CRCs (right fingerprint, wrong shape or values) are refused by name
    from latentwire_core.message import read_header

    head = read_header(msg.read_bytes())
    codec = head.codec()
    fp = head.fingerprint
    for z, says in (
        (torch.zeros(head.n_tokens, head.d_z + 1), b"this wire's latent has d_z = 16"),
        (torch.zeros(2000, head.d_z), b"M = 2000 soft tokens; this wire makes at most 32"),
        (torch.full((2, head.d_z), float("nan")), b"non-finite values"),
    ):
        out = _cli(
            "answer", str(run), "--model", "tiny-gemma3", "-", "--question", "q", stdin=pack(z, codec, fp)
        )
        assert out.returncode == 2 and says in out.stderr, out.stderr[-500:]


ADD = """
name = "{name}"
[data]
task = "sst2"
train_limit = 16
eval_limit = 10
[models]
names = {names}
[features]
max_length = 32
[wire]
init_from = "{init_from}"
[wire.encoder]
n_tokens = 2
d_z = 32
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


def test_adding_a_reader_trains_only_its_adapter_and_keeps_the_old_wire_bit_for_bit(
    tmp_path: Path, data_dir: Path
) -> None:
    runs = tmp_path / "runs"
    a = tmp_path / "a.toml"
    a.write_text(ADD.format(name="one", names='["tiny-llama"]', init_from=""))
    assert main([str(a), "--runs-dir", str(runs)]) == 0
    b = tmp_path / "b.toml"
    b.write_text(ADD.format(name="two", names='["tiny-llama", "tiny-qwen2"]', init_from=runs / "one"))
    assert main([str(b), "--runs-dir", str(runs)]) == 0
    one, two = PretrainedWire.from_pretrained(runs / "one"), PretrainedWire.from_pretrained(runs / "two")
    w1, w2 = one.weights(), two.weights()
    for k, v in w1.items():  # encoder and the original reader's adapter: untouched
        assert torch.equal(v, w2[k]), k
    texts = ["a gripping, funny film", "dull"]
    assert one.encode(texts) == two.encode(texts)  # the original messages, byte for byte
    fresh = json.loads((runs / "two" / "manifest.json").read_text())["stages"]["train"]
    assert fresh["trained_readers"] == ["tiny-qwen2"]
    p1 = pd.read_parquet(runs / "one" / "eval" / "predictions.parquet")
    p2 = pd.read_parquet(runs / "two" / "eval" / "predictions.parquet")
    same = p2[p2["model"] == "tiny-llama"].set_index("example_id")["output"]
    assert same.equals(p1.set_index("example_id")["output"].loc[same.index])
    assert "tiny-qwen2" in set(p2["model"])
    # nothing to add, or a different encoder: refused by name
    c = tmp_path / "c.toml"
    c.write_text(ADD.format(name="three", names='["tiny-llama"]', init_from=runs / "one"))
    assert main([str(c), "--runs-dir", str(runs)]) == 2
    bad = tmp_path / "d.toml"
    bad.write_text(ADD.format(name="four", names='["tiny-llama"]', init_from=tmp_path / "nowhere"))
    assert main([str(bad), "--runs-dir", str(runs)]) == 2


def test_a_standardized_encoder_is_fitted_on_training_texts_and_travels_with_the_wire(
    tmp_path: Path, data_dir: Path
) -> None:
    p = experiment(tmp_path, "content", **{**TALK, "name": "std", "wire": {"lm_pool": {"standardize": True}}})
    assert main([str(p), "--runs-dir", str(tmp_path / "runs"), "--stage", "prepare", "--stage", "train"]) == 0
    run = tmp_path / "runs" / "std"
    assert json.loads((run / "wire.json").read_text())["lm_encoder"]["standardize"] is True
    wire = PretrainedWire.from_pretrained(run)
    enc = wire.wire.encoder
    assert not torch.equal(enc.feat_std, torch.ones_like(enc.feat_std))  # fitted before step 1
    assert not torch.equal(enc.feat_mean, torch.zeros_like(enc.feat_mean))
    saved = wire.save_pretrained(tmp_path / "saved")
    again = PretrainedWire.from_pretrained(saved)
    torch.testing.assert_close(again.wire.encoder.feat_mean, enc.feat_mean, rtol=0, atol=0)
    text = "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy."
    assert again.encode([text]) == wire.encode([text])


def test_a_deep_prefix_wire_runs_every_stage_and_answers_through_the_cli(
    tmp_path: Path, data_dir: Path
) -> None:
    """``[wire] inject = "kv"``: pretraining, training, the probe, evaluation, wire.json, encode/answer."""
    p = experiment(
        tmp_path,
        "content",
        name="kv",
        data={"eval_limit": 4},
        wire={"inject": "kv", "adapter": "linear"},
        eval={"methods": ["latent", "latent_shuffled", "latent_zero"], "bootstrap_resamples": 50},
    )
    assert main([str(p), "--runs-dir", str(tmp_path / "runs")]) == 0
    run = tmp_path / "runs" / "kv"
    spec = json.loads((run / "wire.json").read_text())
    assert spec["wire"]["inject"] == "kv" and all("kv_width" in r for r in spec["readers"].values())
    probes = [json.loads(r) for r in (run / "pretrain" / "metrics.jsonl").read_text().splitlines() if r]
    assert any("tiny-llama/content_gap" in r for r in probes)
    wire = PretrainedWire.from_pretrained(run)
    preds = pd.read_parquet(run / "eval" / "predictions.parquet")
    _, evaluation, _ = load_train_eval("squad", data_dir=data_dir, train_limit=16, eval_limit=4, seed=0)
    ex = evaluation[0]
    want = preds[
        (preds["example_id"] == ex.id) & (preds["model"] == "tiny-llama") & (preds["method"] == "latent")
    ]
    (msg,) = wire.encode([ex.context])
    assert wire.soft_tokens(msg, "tiny-llama").shape[-1] == spec["readers"]["tiny-llama"]["kv_width"]
    (tmp_path / "msg.lw").write_bytes(msg)
    got = _cli(
        "answer", str(run), "--model", "tiny-llama", str(tmp_path / "msg.lw"), "--question", ex.question
    )
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout.decode().rstrip("\n") == want.iloc[0]["output"]


DEEP = "[" * 100_000 + "]" * 100_000  # Python's json raises RecursionError on it


def test_oversized_deep_or_cuda_inputs_are_refused_in_one_line_before_any_load(
    tmp_path: Path, capsys
) -> None:
    from runner import wire_cli

    nowhere = str(tmp_path / "no-such-wire")  # the refusals come before the wire is looked for
    big = tmp_path / "big.lw"
    with big.open("wb") as f:  # a sparse file: its size without its bytes on disk
        f.truncate(wire_cli.MAX_MESSAGE_BYTES + 1)
    assert main(["answer", nowhere, str(big), "--model", "tiny-llama"]) == 2
    assert "over the 67108864-byte cap for a message" in capsys.readouterr().err
    rows = tmp_path / "texts.jsonl"
    rows.write_text('{"text": "fine"}\n' + DEEP + "\n")
    assert main(["encode", nowhere, "--jsonl", str(rows)]) == 2
    assert f"{rows}:2: JSON nested deeper than" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["answer", nowhere, str(big), "--model", "tiny-llama", "--device", "cuda"]) == 2
        assert "this machine has no CUDA device" in capsys.readouterr().err


def test_deeply_nested_run_files_are_refused_by_name(run: Path, tmp_path: Path) -> None:
    import shutil

    from latentwire_hf.checkpoint import CheckpointError
    from latentwire_hf.pretrained import WireSpec
    from runner.folder import RunFolderError, read_manifest

    copy = tmp_path / "wire.json"
    copy.write_text(DEEP)
    with pytest.raises(CheckpointError, match="JSON nested deeper"):
        WireSpec.read(copy)
    man = tmp_path / "manifest.json"
    man.write_text(DEEP)
    with pytest.raises(RunFolderError, match="JSON nested deeper"):
        read_manifest(man)
    # the dashboard: a run whose metrics.json is deeply nested says so instead of crashing its pages
    from dashboard.runs import load_run

    shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints"))
    (tmp_path / "run" / "eval" / "metrics.json").write_text(DEEP)
    loaded = load_run(tmp_path / "run")
    assert any("metrics.json is unreadable" in m for m in loaded.missing)


def test_a_wire_sends_the_compact_v2_frame_and_reads_both(run: Path) -> None:
    import attrs

    v1 = PretrainedWire.from_pretrained(run)
    v2 = PretrainedWire(attrs.evolve(v1.spec, codec={**v1.spec.codec, "frame": "v2"}), v1.wire)
    text = ["The Normans gave their name to Normandy, a region in France."]
    (m1,), (m2,) = v1.encode(text), v2.encode(text)
    assert len(m1) - len(m2) == 20 and m2[0] == 0xB2  # 28 bytes of frame -> 8
    for reader in v1.readers:
        assert torch.equal(v2.soft_tokens(m2, reader), v1.soft_tokens(m1, reader))
        assert torch.equal(v2.soft_tokens(m1, reader), v1.soft_tokens(m1, reader))  # v1 still read
