from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_core.tasks import Example, get_task
from latentwire_hf.checkpoint import CheckpointError, latest_checkpoint, load_weights
from latentwire_hf.training import TrainConfig, Trainer


class HashFeatures:
    """A deterministic frozen feature source (no model): bytes -> fixed random vectors."""

    feature_dim = 16

    def features(self, texts):
        rows = [torch.tensor(list(t.encode()[:12]) or [0], dtype=torch.long) for t in texts]
        table = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
        width = max(len(r) for r in rows)
        feats, mask = torch.zeros(len(rows), width, 16), torch.zeros(len(rows), width, dtype=torch.bool)
        for i, r in enumerate(rows):
            feats[i, : len(r)], mask[i, : len(r)] = table[r], True
        return feats, mask


EXAMPLES = [
    Example(id=f"e{i}", task="sst2", source=f"review number {i} {'great' if i % 2 else 'awful'}", label=i % 2)
    for i in range(24)
]


def _trainer(readers, run: Path, **kw) -> Trainer:
    torch.manual_seed(0)
    wire = LatentWire(
        LatentWireConfig(interlingua=InterlinguaConfig(d_in=16, d_z=16, n_tokens=3, n_heads=2)),
        {n: (lm.d_model, lm.embed_rms) for n, lm in readers.items()},
    )
    cfg = TrainConfig(
        **{"steps": 6, "batch_size": 4, "ckpt_every": 2, "log_every": 1, "kd_weight": 0.5, **kw}
    )
    return Trainer(
        wire=wire,
        readers=readers,
        features=HashFeatures(),
        task=get_task("sst2"),
        examples=EXAMPLES,
        cfg=cfg,
        ckpt_dir=run / "checkpoints",
        metrics_path=run / "train" / "metrics.jsonl",
    )


def test_resume_after_kill_gives_the_same_weights(tiny_llama, tiny_gemma3, tmp_path: Path) -> None:
    readers = {"tiny-llama": tiny_llama, "tiny-gemma3": tiny_gemma3}
    straight = _trainer(readers, tmp_path / "a").train()
    first = _trainer(readers, tmp_path / "b")
    first.train(stop_after=3)  # "killed" after step 3; last checkpoint is step 2
    assert latest_checkpoint(tmp_path / "b" / "checkpoints").name == "step_000002"
    at_2 = json.loads((tmp_path / "b" / "checkpoints" / "step_000002" / "trainer.json").read_text())
    assert 0 < at_2["train_seconds"] < first.train_seconds  # step 3 ran, and is redone below
    second = _trainer(readers, tmp_path / "b")
    resumed = second.train()
    # the training time of the kept trajectory: the first process's steps 1-2 plus the second's 3-6
    assert second.train_seconds > at_2["train_seconds"]
    end = json.loads((tmp_path / "b" / "checkpoints" / "step_000006" / "trainer.json").read_text())
    assert end["train_seconds"] == pytest.approx(second.train_seconds, abs=1e-3)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    steps = [
        json.loads(x)["step"] for x in (tmp_path / "b" / "train" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]  # rows logged after the checkpoint are not duplicated
    row = json.loads((tmp_path / "a" / "train" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"tiny-llama/ce", "tiny-gemma3/first_token_acc", "tiny-llama/kd", "lr", "examples_per_s"} <= set(
        row
    )
    # the content probe (own vs another row's latent, next batch, no grad) is logged and, drawing no
    # RNG and changing no weight, leaves the resumed run bit-identical (checked above)
    assert {"tiny-llama/content_gap", "tiny-gemma3/ce_shuffled", "tiny-llama/probe_ce"} <= set(row)


def test_round_robin_and_accumulation_run(tiny_llama, tiny_qwen2, tmp_path: Path) -> None:
    readers = {"tiny-llama": tiny_llama, "tiny-qwen2": tiny_qwen2}
    t = _trainer(readers, tmp_path, model_schedule="round_robin", grad_accum=2, steps=4, kd_weight=0.0)
    t.train()
    rows = [json.loads(x) for x in (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()]
    assert "tiny-llama/ce" in rows[0] and "tiny-qwen2/ce" not in rows[0]
    assert "tiny-qwen2/ce" in rows[1]
    # the content probe covers every reader at every logged step, also the one this step skipped
    assert all("tiny-llama/content_gap" in r and "tiny-qwen2/content_gap" in r for r in rows)


def test_training_lowers_the_loss(tiny_llama, tmp_path: Path) -> None:
    t = _trainer(
        {"tiny-llama": tiny_llama}, tmp_path, steps=40, lr=3e-3, kd_weight=0.0, ckpt_every=40, log_every=5
    )
    t.train()
    rows = [json.loads(x) for x in (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["tiny-llama/ce"] < rows[0]["tiny-llama/ce"] - 0.5


def test_corrupted_checkpoint_is_a_clear_error(tiny_llama, tmp_path: Path) -> None:
    t = _trainer({"tiny-llama": tiny_llama}, tmp_path, steps=2, kd_weight=0.0)
    wire = t.train()
    ckpt = latest_checkpoint(tmp_path / "checkpoints")
    (ckpt / "wire.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match=r"wire\.safetensors: corrupted"):
        load_weights(ckpt, wire)
    with pytest.raises(CheckpointError, match="corrupted"):
        _trainer({"tiny-llama": tiny_llama}, tmp_path, steps=4, kd_weight=0.0).train()


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), k


def test_silent_corruption_inside_tensor_data_is_caught_and_the_previous_checkpoint_used(
    tiny_llama, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readers = {"tiny-llama": tiny_llama}
    straight = _trainer(readers, tmp_path / "a", kd_weight=0.0).train()
    _trainer(readers, tmp_path / "b", kd_weight=0.0).train(stop_after=5)  # checkpoints at steps 2 and 4
    newest = latest_checkpoint(tmp_path / "b" / "checkpoints")
    assert newest.name == "step_000004"
    f = newest / "wire.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-100:-36] = bytes(64)  # 64 bytes inside the tensor data: still a valid safetensors file
    f.write_bytes(bytes(raw))
    fallback = latest_checkpoint(tmp_path / "b" / "checkpoints")
    assert fallback.name == "step_000002"  # the newest that verifies
    resumed = _trainer(readers, tmp_path / "b", kd_weight=0.0).train()
    _same(straight, resumed)  # exactly the uninterrupted run, not 1e34 away
    seen = capsys.readouterr()
    assert "wire.safetensors: corrupted" in seen.out + seen.err  # the fallback is reported


def test_missing_latest_json_resumes_by_metadata_and_pruning_keeps_the_new_checkpoint(
    tiny_llama, tmp_path: Path
) -> None:
    readers = {"tiny-llama": tiny_llama}
    straight = _trainer(readers, tmp_path / "a", kd_weight=0.0).train()
    _trainer(readers, tmp_path / "b", kd_weight=0.0).train(stop_after=5)
    (tmp_path / "b" / "checkpoints" / "latest.json").unlink()
    assert latest_checkpoint(tmp_path / "b" / "checkpoints").name == "step_000004"  # not a restart from 0
    resumed = _trainer(readers, tmp_path / "b", kd_weight=0.0).train()
    _same(straight, resumed)
    kept = sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("step_*"))
    assert kept == ["step_000004", "step_000006"]  # pruned by step number, the newest kept


def test_prune_never_removes_the_checkpoint_just_written(tiny_llama, tmp_path: Path) -> None:
    """Stale higher-numbered checkpoints (a restarted run) must not push out the one just written."""
    readers = {"tiny-llama": tiny_llama}
    _trainer(readers, tmp_path, kd_weight=0.0, steps=4).train()
    ck = tmp_path / "checkpoints"
    import shutil

    shutil.copytree(ck / "step_000004", ck / "step_1000000")  # a name that sorts before, a step after
    d = json.loads((ck / "step_1000000" / "digests.json").read_text())
    d["step"] = 1_000_000
    (ck / "step_1000000" / "digests.json").write_text(json.dumps(d))
    from latentwire_hf.checkpoint import save_checkpoint

    t = _trainer(readers, tmp_path / "x", kd_weight=0.0, steps=1)
    path = save_checkpoint(
        ck, 6, model=t.wire, optimizer=t.optimizer.optimizer, scheduler=t.scheduler, trainer_state={}, keep=2
    )
    assert path.is_dir() and (ck / "step_1000000").is_dir() and not (ck / "step_000004").exists()


def test_the_learning_rate_follows_transformers_warmup_cosine_schedule(tiny_llama, tmp_path: Path) -> None:
    import math

    t = _trainer({"tiny-llama": tiny_llama}, tmp_path, warmup_steps=2, lr=1e-3, kd_weight=0.0)
    t.train()
    logged = [json.loads(x) for x in (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in logged if "lr" in r}

    def hf(step: int) -> float:  # transformers.get_cosine_schedule_with_warmup, written out
        if step < 2:
            return step / 2
        return 0.5 * (1 + math.cos(math.pi * (step - 2) / (6 - 2)))

    assert lrs and all(lr == pytest.approx(1e-3 * hf(s)) for s, lr in lrs.items())


def test_step_clock_counts_wall_time_but_not_a_pause() -> None:
    from latentwire_hf.training import StepClock

    wall, cpu = iter([0.0, 100.0]), iter([0.0, 3.0])  # stopped for ~97 s: only 3 s of CPU time
    assert StepClock(on_cpu=True, wall=lambda: next(wall), cpu=lambda: next(cpu)).seconds() == 3.0
    wall, cpu = iter([0.0, 2.0]), iter([0.0, 3.9])  # two threads busy: the wall time counts
    assert StepClock(on_cpu=True, wall=lambda: next(wall), cpu=lambda: next(cpu)).seconds() == 2.0
    wall, cpu = iter([0.0, 5.0]), iter([0.0, 0.1])  # on a GPU the host waits: the wall time counts
    assert StepClock(on_cpu=False, wall=lambda: next(wall), cpu=lambda: next(cpu)).seconds() == 5.0


def test_step_clock_leaves_out_a_real_kill_stop(tmp_path: Path) -> None:
    """A real process, stopped with SIGSTOP for 2 s in the middle of a busy 0.5 s step."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import time\n"
        "from latentwire_hf.training import StepClock\n"
        "c = StepClock(on_cpu=True)\n"
        "print('go', flush=True)\n"
        "end = time.process_time() + 0.6\n"
        "while time.process_time() < end: pass\n"
        "print(round(c.seconds(), 3), flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "go"
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(2.0)
        os.kill(proc.pid, signal.SIGCONT)
        counted = float(proc.stdout.readline())
    finally:
        proc.wait(timeout=30)
    assert 0.5 <= counted < 1.5  # the 0.6 s of work, not the 2 s pause
