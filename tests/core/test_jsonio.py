"""The depth-limited JSON reader every file the project did not write goes through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latentwire_core.jsonio import MAX_DEPTH, JSONDepthError, loads, read_json

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab"\\[]{}'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=20,
)


@given(values)
def test_shallow_json_reads_exactly_as_json_does(value) -> None:
    """Brackets inside strings (escaped quotes included) never count as nesting."""
    text = json.dumps(value)
    assert loads(text) == json.loads(text)


def test_deep_json_is_refused_by_name_before_parsing(tmp_path: Path) -> None:
    deep = "[" * 200_000 + "]" * 200_000  # json.loads would raise RecursionError
    with pytest.raises(JSONDepthError, match=f"wire.json: JSON nested deeper than {MAX_DEPTH} levels"):
        loads(deep, where="wire.json")
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    p = tmp_path / "m.json"
    p.write_text('{"a": ' + deep + "}")
    with pytest.raises(JSONDepthError, match=str(p)):
        read_json(p)
    p.write_text("{bad")
    with pytest.raises(JSONDepthError, match=r"m.json:1: not JSON"):
        read_json(p)
    p.write_bytes(b"\xff")
    with pytest.raises(JSONDepthError, match="not valid UTF-8"):
        read_json(p)
    p.write_text("[1]")
    with pytest.raises(JSONDepthError, match="over the 2-byte cap"):
        read_json(p, max_bytes=2)
