"""Snapshots (bf16 copies a new machine resumes from), the constant schedule, adoption and the time limit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from test_training import _trainer

from latentwire_hf import snapshot as snap_mod
from latentwire_hf.checkpoint import CheckpointError
from latentwire_hf.pretrained import WireSpec
from latentwire_hf.snapshot import SNAPSHOT_FILE, read_snapshot, write_snapshot

SPEC = WireSpec(
    wire={"interlingua": {"d_in": 4, "d_z": 4}},
    features={"source": "x", "layer": 1, "max_length": 8},
    lm_encoder=None,
    readers={"r": {"d_model": 4, "embed_rms": 1.0}},
    task="sst2",
    compress="source",
    codec={"precision": "int8"},
)


def _module() -> torch.nn.Module:
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    m.register_buffer("count", torch.tensor([3], dtype=torch.long))
    return m


def test_snapshot_round_trip_is_the_bf16_rounding_of_the_weights(tmp_path: Path) -> None:
    m = _module()
    (tmp_path / "curve.jsonl").write_text('{"step": 5}\n')
    write_snapshot(
        tmp_path / "snap",
        wire=m,
        spec=SPEC,
        step=5,
        state={"tokens_encoded": 7},
        curves={"c.jsonl": tmp_path / "curve.jsonl"},
    )
    snap = read_snapshot(tmp_path / "snap")
    assert snap is not None and snap.step == 5 and snap.meta["tokens_encoded"] == 7
    assert (tmp_path / "snap" / "c.jsonl").read_text() == '{"step": 5}\n'
    for k, v in m.state_dict().items():
        got = snap.weights[k]
        assert got.dtype == (torch.bfloat16 if v.is_floating_point() else v.dtype)
        assert torch.equal(got, v.to(got.dtype))
    other = _module()
    for p in other.parameters():
        torch.nn.init.zeros_(p)
    snap.load_into(other)
    for k, v in m.state_dict().items():
        assert torch.equal(
            other.state_dict()[k], v.to(torch.bfloat16).to(v.dtype) if v.is_floating_point() else v
        )
    assert read_snapshot(tmp_path / "nothing") is None


def test_a_damaged_snapshot_is_refused_by_name(tmp_path: Path) -> None:
    dest = write_snapshot(tmp_path / "snap", wire=_module(), spec=SPEC, step=1, state={})
    raw = bytearray((dest / "wire.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (dest / "wire.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"wire\.safetensors: missing or does not match the digest"):
        read_snapshot(dest)
    (dest / SNAPSHOT_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable snapshot description"):
        read_snapshot(dest)
    wrong = torch.nn.Linear(3, 3)
    good = read_snapshot(write_snapshot(tmp_path / "ok", wire=_module(), spec=SPEC, step=1, state={}))
    assert good is not None
    with pytest.raises(CheckpointError, match="does not fit this run's wire"):
        good.load_into(wrong)


def test_a_snapshot_over_the_size_limit_is_refused_and_the_old_one_kept(tmp_path: Path, monkeypatch) -> None:
    dest = write_snapshot(tmp_path / "snap", wire=_module(), spec=SPEC, step=1, state={})
    before = (dest / "wire.safetensors").read_bytes()
    monkeypatch.setattr(snap_mod, "MAX_BYTES", 10)
    with pytest.raises(CheckpointError, match="over the 40 MB limit"):
        write_snapshot(dest, wire=_module(), spec=SPEC, step=2, state={})
    assert (dest / "wire.safetensors").read_bytes() == before
    assert json.loads((dest / SNAPSHOT_FILE).read_text())["step"] == 1


def test_the_cosine_schedule_is_transformers_and_constant_stays_flat(tiny_llama, tmp_path: Path) -> None:
    from transformers import get_cosine_schedule_with_warmup

    readers = {"tiny-llama": tiny_llama}
    t = _trainer(readers, tmp_path / "a", steps=20, warmup_steps=4)
    ref = get_cosine_schedule_with_warmup(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), 4, 20
    )
    for s in range(20):
        assert t._lr_factor(s) == ref.lr_lambdas[0](s)
    c = _trainer(readers, tmp_path / "b", steps=20, warmup_steps=4, lr_schedule="constant")
    assert [c._lr_factor(s) for s in (0, 2, 4, 19, 500)] == [0.0, 0.5, 1.0, 1.0, 1.0]


def test_adopted_weights_continue_from_their_step_with_a_fresh_warm_up(tiny_llama, tmp_path: Path) -> None:
    readers = {"tiny-llama": tiny_llama}
    first = _trainer(readers, tmp_path / "a", steps=8, lr_schedule="constant", warmup_steps=2)
    first.train(stop_after=4)
    state = {k: v.clone() for k, v in first.acc.unwrap_model(first.wire).state_dict().items()}
    second = _trainer(readers, tmp_path / "b", steps=8, lr_schedule="constant", warmup_steps=2)
    second.adopt(state, 4, train_seconds=3.0)
    assert second.step == 4 and second.train_seconds == 3.0 and second.schedule_offset == 4
    for k, v in second.acc.unwrap_model(second.wire).state_dict().items():
        assert torch.equal(v, state[k])
    assert second.scheduler.get_last_lr()[0] == 0.0  # the warm-up restarts at the adopted step
    second.train()
    assert second.step == 8
    rows = [json.loads(r) for r in (tmp_path / "b" / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 6, 7, 8]
    assert math.isclose(rows[0]["lr"], second.cfg.lr * 0.5) and math.isclose(rows[-1]["lr"], second.cfg.lr)
    with pytest.raises(ValueError, match="has checkpoints"):
        _trainer(readers, tmp_path / "b", steps=8).adopt(state, 4)


def test_the_time_limit_stops_with_a_checkpoint(tiny_llama, tmp_path: Path) -> None:
    readers = {"tiny-llama": tiny_llama}
    t = _trainer(readers, tmp_path / "a", steps=50, time_limit_s=1e-9, ckpt_every=100)
    seen: list[tuple[int, bool]] = []
    t.train(after_step=lambda tr: seen.append((tr.step, tr.finishing)))
    assert t.step == 1 and seen == [(1, True)]
    assert (tmp_path / "a" / "checkpoints" / "step_000001").is_dir()


def test_a_full_disk_while_checkpointing_is_one_line_and_the_previous_checkpoint_stays(
    tiny_llama, tmp_path: Path, monkeypatch
) -> None:
    import errno

    from latentwire_hf import checkpoint as ckpt_mod

    t = _trainer({"tiny-llama": tiny_llama}, tmp_path / "a", steps=4, ckpt_every=2)
    t.train(stop_after=2)
    real = ckpt_mod.save_file

    def full(tensors, path, *a, **kw):
        if "optimizer" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, *a, **kw)

    monkeypatch.setattr(ckpt_mod, "save_file", full)
    with pytest.raises(
        CheckpointError,
        match=r"no space left on the device while writing step 4 \(.* MiB free\); the previous checkpoint \(step_000002\) is kept",
    ):
        _trainer({"tiny-llama": tiny_llama}, tmp_path / "a", steps=4, ckpt_every=2).train()
    root = tmp_path / "a" / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step_000002"]
    assert ckpt_mod.latest_checkpoint(root) == root / "step_000002"
