"""The latent refiner (issue 22): gated Transformer blocks over the received Z before the adapters; a
fresh one is the identity (the wire's outputs are exactly those without it), and training opens it."""

from __future__ import annotations

import torch

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_core.refiner import LatentRefiner


def _wire(refiner_layers: int) -> LatentWire:
    torch.manual_seed(0)
    cfg = LatentWireConfig(
        interlingua=InterlinguaConfig(kind="mean_pool", d_in=12, d_z=8, n_tokens=6, n_heads=2, ratio=2.0),
        refiner_layers=refiner_layers,
    )
    return LatentWire(cfg, {"a": (16, 0.5), "b": (10, 1.0)})


def test_a_fresh_refiner_leaves_every_reader_exactly_as_without_it() -> None:
    plain, refined = _wire(0), _wire(2)
    assert refined.refiner is not None and plain.refiner is None
    for (k, v), (_, w) in zip(
        plain.state_dict().items(),
        ((k, v) for k, v in refined.state_dict().items() if not k.startswith("refiner.")),
        strict=True,
    ):
        assert torch.equal(v, w), k  # adding a refiner moved no other parameter's initialisation
    feats, mask = torch.randn(3, 9, 12), torch.ones(3, 9, dtype=torch.bool)
    mask[1, 5:] = False
    for m in ("a", "b"):
        torch.testing.assert_close(
            refined(feats, mask, [m]).soft[m], plain(feats, mask, [m]).soft[m], rtol=0, atol=0
        )


def test_training_opens_the_gates_and_padding_slots_stay_zero() -> None:
    ref = LatentRefiner(8, 1, 2)
    z = torch.randn(4, 5, 8)
    counts = torch.tensor([5, 3, 1, 4])
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    target = torch.randn(4, 5, 8)
    for _ in range(5):
        opt.zero_grad()
        out = ref(z, counts)
        ((out - target) ** 2).mean().backward()
        opt.step()
    assert ref.blocks[0].gate.abs().min() > 0
    out = ref(z, counts)
    assert torch.equal(out[1, 3:], torch.zeros(2, 8)) and torch.equal(out[2, 1:], torch.zeros(4, 8))
    assert not torch.allclose(out[0], z[0])  # it now changes the latent
