"""Registries: a component registered in its own module is known to config validation without importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentwire_core.calibration import CALIBRATIONS, calibrate_rms, example_rms
from latentwire_core.config import LatentWireConfig
from latentwire_core.registry import Registry, UnknownNameError


def test_declare_module_reads_names_without_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_parts.py").write_text(
        "import sys\n"
        "from latentwire_core.registry import Registry\n"
        "PARTS = sys.modules['__registry_under_test__'].PARTS\n"
        "OTHER = Registry('other')\n"
        "@PARTS.register('alpha')\n"
        "def alpha(): return 'a'\n"
        "@PARTS.register('beta')\n"
        "class Beta: pass\n"
        "@OTHER.register('not_mine')\n"
        "def other(): pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    holder = type(sys)("__registry_under_test__")
    holder.PARTS = Registry("part")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__registry_under_test__", holder)
    reg: Registry[object] = holder.PARTS  # type: ignore[attr-defined]
    reg.declare_module("my_parts", "PARTS")
    assert reg.names() == ["alpha", "beta"] and "alpha" in reg
    assert "my_parts" not in sys.modules  # known, not imported
    assert reg.get("alpha")() == "a"  # type: ignore[operator]
    assert "my_parts" in sys.modules
    with pytest.raises(UnknownNameError, match="unknown part 'gamma'; known: alpha, beta"):
        reg.get("gamma")
    monkeypatch.delitem(sys.modules, "my_parts")


def test_component_names_come_from_their_modules_without_torch() -> None:
    code = (
        "import sys; from latentwire_core.config import ADAPTERS, CALIBRATIONS, INTERLINGUAS;"
        "print(ADAPTERS.names(), CALIBRATIONS.names(), INTERLINGUAS.names(), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == (
        "['linear', 'mlp'] ['learned', 'none', 'rms'] ['chunk_mean', 'perceiver'] False"
    ), out.stderr


def test_config_refuses_an_unregistered_calibration() -> None:
    with pytest.raises(ValueError, match=r"calibration must be one of \['learned', 'none', 'rms'\]"):
        LatentWireConfig(calibration="loud")


def test_each_calibration_kind() -> None:
    torch.manual_seed(0)
    soft = torch.randn(3, 4, 8) * 5
    counts = torch.tensor([4, 2, 1])
    none = CALIBRATIONS.get("none")()
    rms = CALIBRATIONS.get("rms")()
    learned = CALIBRATIONS.get("learned")()
    assert torch.equal(none(soft, target_rms=0.1), soft)
    out = rms(soft, target_rms=0.1, counts=counts)
    torch.testing.assert_close(
        example_rms(out, counts).flatten(), torch.full((3,), 0.1), rtol=1e-4, atol=1e-6
    )
    assert torch.equal(out, calibrate_rms(soft, target_rms=0.1, counts=counts))
    assert torch.equal(learned(soft, target_rms=0.1, counts=counts), out)  # gain 1 at initialisation
    assert [n for n, _ in learned.named_parameters()] == ["log_gain"] and not list(rms.parameters())
