"""The GPU path (issue 23): bf16 training against fp32, generation on the GPU against the CPU, a GPU
checkpoint resumed on the CPU, and ``accelerate launch`` running a tiny experiment end to end.

Marked ``gpu``; skipped, saying why, where no CUDA device exists. ``scripts/device/run.sh`` runs them on
the GPU machine; ``run.sh --dry-run`` (and CI through it) runs the same code on the CPU with
``LATENTWIRE_GPU_TESTS_ON_CPU=1`` (bf16 autocast on the CPU), so they work the first time they meet a GPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from tiny_wire import content_setup

from latentwire_core import assemble_batch
from latentwire_hf.checkpoint import latest_checkpoint, load_weights
from latentwire_hf.frozen_lm import HFFrozenLM, load_frozen_lm
from latentwire_hf.training import Trainer

pytestmark = pytest.mark.gpu

# bf16 keeps 8 bits of mantissa (relative step 2^-8 ~ 0.4%); a tiny model's loss sums a few hundred such
# products, so the step-1 loss of a bf16 step is held to 3% of fp32's and the losses over 4 steps to 5%.
BF16_LOSS_RTOL = 0.03
BF16_CURVE_RTOL = 0.05


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get("LATENTWIRE_GPU_TESTS_ON_CPU") == "1":
        return torch.device("cpu")
    pytest.skip("no CUDA device (scripts/device/run.sh runs these on a GPU; its --dry-run on the CPU)")


@pytest.fixture(scope="module")
def device() -> torch.device:
    return _device()


@pytest.fixture(scope="module")
def readers(device: torch.device) -> dict[str, HFFrozenLM]:
    return {"tiny-llama": load_frozen_lm("tiny-llama", device=device)}


def _fresh_accelerator(**kw: object) -> Accelerator:
    AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(**kw)  # type: ignore[arg-type]


def _train(
    tmp: Path, readers: dict[str, HFFrozenLM], device: torch.device, precision: str, steps: int
) -> tuple[list[float], Trainer]:
    wire, obj, pc = content_setup(tmp / "feat", readers, steps=steps, ckpt_every=2, mixed_precision=precision)
    # the accelerator's state is a process-wide singleton: one precision at a time
    acc = _fresh_accelerator(cpu=device.type == "cpu", mixed_precision=precision)
    t = Trainer(
        wire=wire,
        readers=readers,
        cfg=pc,
        ckpt_dir=tmp / precision / "checkpoints",
        metrics_path=tmp / precision / "metrics.jsonl",
        objective=obj,
        accelerator=acc,
    )
    t.train()
    rows = [json.loads(r) for r in t.metrics_path.read_text().splitlines() if r.strip()]
    return [r["tiny-llama/loss"] for r in rows if "tiny-llama/loss" in r], t


def test_a_bf16_training_step_matches_fp32_within_tolerance(
    tmp_path: Path, device: torch.device, readers: dict[str, HFFrozenLM]
) -> None:
    fp32, _ = _train(tmp_path, readers, device, "no", steps=4)
    bf16, _ = _train(tmp_path, readers, device, "bf16", steps=4)
    assert len(fp32) == len(bf16) == 4
    assert bf16 != fp32  # bf16 autocast really ran (equal losses would mean both ran in fp32)
    assert bf16[0] == pytest.approx(fp32[0], rel=BF16_LOSS_RTOL)
    for a, b in zip(fp32, bf16, strict=True):
        assert b == pytest.approx(a, rel=BF16_CURVE_RTOL)


def test_greedy_generation_from_soft_tokens_matches_the_cpu(device: torch.device) -> None:
    """The same embeddings on both devices: logits agree to 1e-3, greedy tokens agree up to the first
    step whose top-2 margin on the CPU is under 1e-3 (a near tie a different summation order may flip)."""
    cpu = load_frozen_lm("tiny-llama")
    dev = load_frozen_lm("tiny-llama", device=device)
    before, after = cpu.prompt_parts("Answer:", "", "")
    ids = before + cpu.tokenize(["the river flows to the sea"])[0] + after
    g = torch.Generator().manual_seed(0)
    soft = torch.randn(1, 3, cpu.d_model, generator=g) * cpu.embed_rms
    rows = [[ids[:4], soft[0], ids[4:]]]
    b = assemble_batch(rows, embed=cpu.embed, pad_side="left", pad_id=cpu.special_ids["pad"])
    want = cpu.generate(b.inputs_embeds, b.attention_mask, max_new_tokens=8)[0]
    got = dev.generate(b.inputs_embeds.to(device), b.attention_mask.to(device), max_new_tokens=8)[0]
    full = torch.cat([b.inputs_embeds, cpu.embed(torch.tensor([want]))], dim=1) if want else b.inputs_embeds
    mask = torch.ones(full.shape[:2], dtype=torch.long)
    with torch.no_grad():
        lc = cpu.model(inputs_embeds=full, attention_mask=mask).logits[0].float()
        ld = dev.model(inputs_embeds=full.to(device), attention_mask=mask.to(device)).logits[0].float().cpu()
    torch.testing.assert_close(ld, lc, atol=1e-3, rtol=1e-3)
    start = b.inputs_embeds.shape[1] - 1
    top2 = lc[start : start + len(want)].topk(2, dim=-1).values
    margins = (top2[:, 0] - top2[:, 1]).tolist()
    stable = next((i for i, m in enumerate(margins) if m < 1e-3), len(want))
    assert got[:stable] == want[:stable]


def test_a_checkpoint_written_on_the_gpu_resumes_on_the_cpu(
    tmp_path: Path, device: torch.device, readers: dict[str, HFFrozenLM]
) -> None:
    _, t = _train(tmp_path, readers, device, "no", steps=2)
    ckpt = latest_checkpoint(t.ckpt_dir)
    assert ckpt is not None
    on_device = {k: v.detach().cpu() for k, v in t.acc.unwrap_model(t.wire).state_dict().items()}
    cpu_readers = {"tiny-llama": load_frozen_lm("tiny-llama")}
    wire, obj, pc = content_setup(tmp_path / "feat", cpu_readers, steps=4, ckpt_every=2)
    load_weights(ckpt, wire)
    for k, v in wire.state_dict().items():
        assert torch.equal(v, on_device[k]), k
    # and training continues there from that step
    resumed = Trainer(
        wire=wire,
        readers=cpu_readers,
        cfg=pc,
        ckpt_dir=t.ckpt_dir,
        metrics_path=t.metrics_path,
        objective=obj,
        accelerator=_fresh_accelerator(cpu=True),
    )
    assert resumed.resume() == 2
    resumed.train()
    assert resumed.step == 4


def test_accelerate_launch_with_one_process_runs_a_tiny_experiment(
    tmp_path: Path, device: torch.device, data_dir: Path
) -> None:
    exe = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    if not Path(exe).exists():
        exe = ""
    launch = [exe, "launch"] if exe else [sys.executable, "-m", "accelerate.commands.launch"]
    cmd = [*launch, "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no"]
    cmd += ["--dynamo_backend", "no"] + (["--cpu"] if device.type == "cpu" else [])
    repo = Path(__file__).resolve().parents[2]
    cmd += [
        "-m",
        "runner",
        str(repo / "tests" / "assets" / "tiny.toml"),
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    cmd += [
        "--set",
        "features.source=tiny-llama",
        "--set",
        "features.layer=1",
    ]  # no sentence-encoder package there
    env = {**os.environ, "LATENTWIRE_DATA": str(data_dir)}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    run = next((tmp_path / "runs").iterdir())
    manifest = json.loads((run / "manifest.json").read_text())
    assert all(manifest["stages"][s]["status"] == "done" for s in ("train", "evaluate"))
    assert (run / "eval" / "metrics.json").is_file()
