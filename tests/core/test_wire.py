from __future__ import annotations

import subprocess
import sys

import torch

from latentwire_core import (
    FrozenLM,
    InterlinguaConfig,
    LatentWire,
    LatentWireConfig,
    answer_ce,
    assemble_batch,
    gather_at,
    prediction_positions,
    with_eos,
)
from latentwire_core.testing import FakeFrozenLM


def test_fake_lm_satisfies_port() -> None:
    assert isinstance(FakeFrozenLM(), FrozenLM)


def test_gradients_reach_encoder_not_frozen_lm_and_loss_drops() -> None:
    lm = FakeFrozenLM(d_model=16, n_layers=1, vocab=40, seed=1)
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind="perceiver", d_in=8, d_z=16, n_tokens=2, n_heads=2)
    )
    wire = LatentWire(cfg, {lm.name: (lm.d_model, lm.embed_rms)})
    feats = torch.randn(4, 5, 8)
    mask = torch.ones(4, 5, dtype=torch.bool)
    pre, suf = lm.prompt_parts("q")
    answers = [with_eos([7 + i], lm.EOS) for i in range(4)]
    opt = torch.optim.AdamW(wire.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        soft = wire.to_model(wire.encode(feats, mask), lm.name)
        b = assemble_batch([[pre, s, suf] for s in soft], embed=lm.embed, answers=answers, pad_id=lm.EOS)
        pos = prediction_positions(b.labels)
        loss = answer_ce(
            lm.logits(gather_at(lm.hidden_states(b.inputs_embeds, b.attention_mask), pos)), pos.targets
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(p.grad is None for p in lm.parameters())
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in wire.encoder.parameters())
    # a random 1-layer LM passes little information from the slot to its last position,
    # so the drop is small but real: averaged over the last 10 steps vs the first
    assert sum(losses[-10:]) / 10 < losses[0] - 0.05, losses[::10]


def test_core_imports_nothing_heavy() -> None:
    code = (
        "import sys, latentwire_core, latentwire_core.testing;"
        "bad=[m for m in ('transformers','accelerate','datasets','pandas','streamlit','latentwire_hf',"
        "'latentwire_eval','runner','dashboard') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_checkpoint_with_the_old_calibration_keys_loads_under_todays_names() -> None:
    """Each reader's calibration is ``LatentWire.calibrations`` (it was ``gains``): a state dict written
    before, with ``gains.<reader>.log_gain``, loads into today's wire with the same values."""
    from latentwire_core.config import InterlinguaConfig, LatentWireConfig
    from latentwire_core.wire import LatentWire

    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(d_in=8, d_z=8, n_tokens=2, n_heads=2), calibration="learned"
    )
    old = LatentWire(cfg, {"r": (16, 1.0)})
    with torch.no_grad():
        for p in old.calibrations.parameters():
            p.fill_(0.25)
    state = {k.replace("calibrations.", "gains.", 1): v for k, v in old.state_dict().items()}
    assert any(k.startswith("gains.r.") for k in state)
    new = LatentWire(cfg, {"r": (16, 1.0)})
    new.load_state_dict(state)  # strict: every key found under its new name
    assert all(
        torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values(), strict=True)
    )
    assert [k for k in new.state_dict() if "log_gain" in k] == ["calibrations.r.log_gain"]
