"""Every shipped wire (``wires/<name>``) loads and reproduces its committed slice (``check.json``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentwire_core.jsonio import read_json
from latentwire_hf.pretrained import PretrainedWire
from runner.wire_check import CHECK_FILE, verify_check

WIRES = Path(__file__).resolve().parents[2] / "wires"
SHIPPED = sorted(p for p in WIRES.iterdir() if (p / "wire.json").is_file())


def test_every_shipped_wire_has_a_card_a_check_and_fits() -> None:
    assert {p.name for p in SHIPPED} >= {"sst2-quickstart", "general-4x"}
    for wire in SHIPPED:
        assert (wire / "README.md").is_file(), f"{wire}: no card"
        assert (wire / CHECK_FILE).is_file(), f"{wire}: no check.json"
        assert (wire / "wire.safetensors").stat().st_size <= 40 * 2**20, f"{wire}: over 40 MB"
        card = (wire / "README.md").read_text()
        for reader in read_json(wire / "wire.json")["readers"]:
            assert reader in card, f"{wire}: the card does not name its reader {reader}"


@pytest.mark.parametrize("wire", SHIPPED, ids=[p.name for p in SHIPPED])
def test_a_shipped_wire_reproduces_its_committed_slice(wire: Path) -> None:
    loaded = PretrainedWire.from_pretrained(wire)
    assert loaded.readers == sorted(read_json(wire / CHECK_FILE)["readers"])
    assert verify_check(wire) == []
