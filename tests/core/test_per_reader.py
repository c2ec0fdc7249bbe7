"""Reader names with a '.' (``qwen2.5-coder-0.5b``) as keys of the wire's per-reader modules."""

from __future__ import annotations

import pytest
import torch

from latentwire_core import InterlinguaConfig, LatentWire, LatentWireConfig
from latentwire_core.per_reader import ReaderModules, reader_key
from latentwire_core.soft_prompt import SoftPromptControl

READERS = {"qwen2.5-coder-0.5b": (16, 0.5), "smollm2-135m": (8, 0.02)}
KV = {"qwen2.5-coder-0.5b": (24, 0.3), "smollm2-135m": (12, 0.1)}


def _cfg(**kw: object) -> LatentWireConfig:
    enc = InterlinguaConfig(kind="perceiver", d_in=8, d_z=16, n_tokens=2, n_heads=2)
    return LatentWireConfig(interlingua=enc, calibration="learned", content_tokens=True, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{"latent_adapter_layers": (0,)}, {"inject": "coprocessor"}, {"inject": "kv"}],
    ids=["latent-adapters", "coprocessor", "kv"],
)
def test_a_dotted_reader_name_gets_every_per_reader_part_and_its_state_round_trips(
    options: dict[str, object],
) -> None:
    kv = KV if options.get("inject") in ("kv", "coprocessor") else None
    torch.manual_seed(0)
    wire = LatentWire(_cfg(**options), READERS, kv=kv)
    z = wire.encode(torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool))
    for name in READERS:
        soft = wire.to_model(z, name)
        assert soft.shape == (3, 2, (kv or READERS)[name][0])
        assert wire.content_token(name, "rec").shape == (1, READERS[name][0])
        wire.slot(soft[0], name)  # the reader's latent adapters / coprocessor are found by its name
    keys = list(wire.state_dict())
    # stored with '_' for '.', every per-reader part; the other reader's keys as they were
    for part in ("adapters.adapters", "calibrations", "content"):
        assert any(k.startswith(f"{part}.qwen2_5-coder-0_5b") for k in keys), part
        assert any(k.startswith(f"{part}.smollm2-135m") for k in keys), part
    saved = {k: v.detach().clone() for k, v in wire.state_dict().items()}  # what a checkpoint holds
    torch.manual_seed(1)  # another initialisation, then the saved state
    again = LatentWire(_cfg(**options), READERS, kv=kv)
    again.load_state_dict(saved, strict=True)
    for name in READERS:
        assert torch.equal(again.to_model(z, name), wire.to_model(z, name))
    assert again.adapters.names() == list(READERS)


def test_the_soft_prompt_control_takes_a_dotted_reader_name() -> None:
    control = SoftPromptControl(READERS, n_tokens=3)
    prompts = control(list(READERS))
    assert prompts["qwen2.5-coder-0.5b"].shape == (3, 16)
    assert "qwen2.5-coder-0.5b" in control.prompts and "qwen2_5-coder-0_5b.x" not in control.prompts


def test_two_readers_that_would_share_a_key_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'a\.b' and 'a_b' would share the state-dict key 'a_b'"):
        ReaderModules({"a.b": torch.nn.Linear(1, 1), "a_b": torch.nn.Linear(1, 1)})
    with pytest.raises(ValueError, match="would share"):
        LatentWire(_cfg(), {"a.b": (4, 1.0), "a_b": (4, 1.0)})


def test_names_without_a_dot_keep_their_keys() -> None:
    assert reader_key("smollm2-135m") == "smollm2-135m" and reader_key("a_b") == "a_b"
    assert reader_key(reader_key("qwen2.5-x")) == "qwen2_5-x"
