"""The content recipe's options: reconstruction-first curriculum, content loss, per-component learning
rates; each resumes bit-identically (issue 21, section 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_wire import content_setup

from latentwire_core import LatentWire
from latentwire_hf.checkpoint import latest_checkpoint
from latentwire_hf.objectives import PretrainConfig, content_hinge
from latentwire_hf.training import Trainer, param_groups

CPU = torch.device("cpu")


def test_curriculum_schedule_by_step() -> None:
    pc = PretrainConfig(steps=10, curriculum=[4, 8], curriculum_steps=3)
    assert [pc.span_at(s) for s in range(8)] == [4, 4, 4, 8, 8, 8, None, None]
    assert PretrainConfig(steps=5).span_at(0) is None
    with pytest.raises(ValueError, match=r"curriculum = \[4\] needs curriculum_steps > 0"):
        PretrainConfig(steps=10, curriculum=[4])
    with pytest.raises(ValueError, match="curriculum_steps = 3 needs the curriculum's spans"):
        PretrainConfig(steps=10, curriculum=[], curriculum_steps=3)
    with pytest.raises(ValueError, match="exceed"):
        PretrainConfig(steps=5, curriculum=[4, 8], curriculum_steps=3)
    with pytest.raises(ValueError, match="2 to 4096 words"):
        PretrainConfig(steps=5, curriculum=[1], curriculum_steps=1)


def test_curriculum_phases_reconstruct_spans_of_their_length_then_mix(tmp_path: Path, tiny_llama) -> None:
    readers = {"tiny-llama": tiny_llama}
    _, obj, _ = content_setup(tmp_path, readers, steps=6, curriculum=[3, 5], curriculum_steps=2)
    seen = []
    for step in range(6):
        obj.set_step(step)
        seen.append(obj.span)
        if obj.span is not None:
            assert all(it.mode == "rec" and it.target == it.encoded for it in obj.items)
            assert {len(it.encoded.split()) for it in obj.items} == {obj.span}
    assert seen == [3, 3, 5, 5, None, None]
    assert {it.mode for it in obj.items} == {"rec", "cont"}  # the 20/80-style mix after the phases
    obj.set_step(0)
    first = [obj.items[obj.item_index(i)].encoded for i in range(4)]
    obj.set_step(1)
    assert [obj.items[obj.item_index(i)].encoded for i in range(4)] == first  # a pure function of the step


def test_content_hinge_is_the_margin_when_latents_are_equal_and_zero_past_it() -> None:
    own = torch.tensor(2.0)
    assert float(content_hinge(own, own, margin=1.0)) == 1.0
    assert float(content_hinge(own, own + 3.0, margin=1.0)) == 0.0
    assert float(content_hinge(own, own + 0.25, margin=1.0)) == pytest.approx(0.75)


def test_content_loss_is_constant_when_every_row_has_the_same_latent(tmp_path: Path, tiny_llama) -> None:
    readers = {"tiny-llama": tiny_llama}
    wire, obj, _ = content_setup(tmp_path, readers, content_weight=0.5, content_margin=1.0, rec_fraction=1.0)
    idx = [0, 0]  # the same window twice: rolling the latents changes nothing
    total, stats = obj(wire, idx, ["tiny-llama"], CPU)
    plain, _ = obj(wire, idx, ["tiny-llama"], CPU, content_loss=False)
    assert stats["content_hinge"] == pytest.approx(1.0, abs=1e-5)
    assert float((total - plain).detach()) == pytest.approx(0.5, abs=1e-5)
    # two different windows: the hinge is below the margin once the latent matters, and has a gradient
    total2, stats2 = obj(wire, [0, 1], ["tiny-llama"], CPU)
    total2.backward()
    assert stats2["content_hinge"] >= 0.0 and any(
        p.grad is not None and bool(p.grad.abs().sum() > 0) for p in wire.encoder.parameters()
    )


def test_param_groups_give_the_encoder_and_the_rest_their_own_learning_rates(
    tmp_path: Path, tiny_llama
) -> None:
    wire, _, _ = content_setup(tmp_path, {"tiny-llama": tiny_llama})
    one = param_groups(wire, PretrainConfig(lr=1e-3))
    assert len(one) == 1 and "lr" not in one[0]
    groups = param_groups(wire, PretrainConfig(lr=1e-3, lr_encoder=1e-4, lr_adapters=2e-3))
    enc = {id(p) for p in wire.encoder.parameters() if p.requires_grad}
    assert [g["lr"] for g in groups] == [1e-4, 2e-3]
    assert {id(p) for p in groups[0]["params"]} == enc
    assert not enc & {id(p) for p in groups[1]["params"]}
    n_trainable = sum(1 for p in wire.parameters() if p.requires_grad)
    assert sum(len(g["params"]) for g in groups) == n_trainable
    # only one set: the other falls back to lr
    assert [g["lr"] for g in param_groups(wire, PretrainConfig(lr=1e-3, lr_encoder=1e-4))] == [1e-4, 1e-3]


def test_pretraining_with_every_option_on_resumes_bit_identically(tmp_path: Path, tiny_llama) -> None:
    readers = {"tiny-llama": tiny_llama}
    options = {
        "steps": 6,
        "curriculum": [3, 5],
        "curriculum_steps": 2,
        "content_weight": 0.3,
        "lr_encoder": 1e-4,
        "lr_adapters": 3e-3,
    }

    def run(folder: Path, stop_after: int | None = None) -> LatentWire:
        wire, obj, pc = content_setup(tmp_path / "feat", readers, **options)
        t = Trainer(
            wire=wire,
            readers=readers,
            cfg=pc,
            ckpt_dir=folder / "checkpoints",
            metrics_path=folder / "metrics.jsonl",
            objective=obj,
        )
        return t.train(stop_after=stop_after)

    ref = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=3)  # killed mid-curriculum, after the step-2 checkpoint
    assert latest_checkpoint(tmp_path / "b" / "checkpoints") is not None
    resumed = run(tmp_path / "b")
    for (k, v), (_, w) in zip(ref.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(v, w), k
    rows = [r for r in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines() if r]
    assert '"rec_span_words": 3.0' in rows[0] and '"content_hinge"' in rows[0]
    assert "rec_span_words" not in rows[-1]  # the mix after the phases
