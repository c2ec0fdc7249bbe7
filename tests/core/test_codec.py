from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentwire_core import QuantWireCodec, WireCodecConfig

shapes = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 40))


@settings(deadline=None, max_examples=60)
@given(
    shape=shapes,
    precision=st.sampled_from(["fp16", "int8", "int4"]),
    group=st.sampled_from([2, 8, 32, 64]),
    scale=st.floats(1e-4, 100.0),
    seed=st.integers(0, 10_000),
)
def test_roundtrip_error_bound_and_exact_bytes(shape, precision, group, scale, seed) -> None:
    b, m, d = shape
    z = torch.randn(b, m, d, generator=torch.Generator().manual_seed(seed)) * scale
    codec = QuantWireCodec(WireCodecConfig(precision=precision, group_size=group))
    payloads = codec.encode(z)
    expect = codec.payload_bytes(n_tokens=m, d_z=d)
    assert [len(p) for p in payloads] == [expect] * b
    n = m * d
    groups = -(-n // group)
    if precision == "fp16":
        assert expect == 2 * n
    elif precision == "int8":
        assert expect == groups * group + 2 * groups
    else:
        assert expect == groups * group // 2 + 2 * groups
    back = codec.decode(payloads, n_tokens=m, d_z=d)
    err = (back - z).abs()
    if precision == "fp16":
        # relative bound for normal halves, absolute subnormal step otherwise
        assert bool((err <= z.abs() * 2**-11 + 2**-24).all())
    else:
        qmax = 127 if precision == "int8" else 7
        s = codec.scales(z)  # (B, G)
        flat_err = torch.cat([err.reshape(b, -1), err.new_zeros(b, groups * group - n)], 1)
        per_group = flat_err.reshape(b, groups, group).amax(-1)
        assert bool((per_group <= s / 2 * (1 + 1e-5) + 1e-12).all())
        absmax = torch.cat([z.reshape(b, -1).abs(), z.new_zeros(b, groups * group - n)], 1)
        absmax = absmax.reshape(b, groups, group).amax(-1)
        assert bool((s <= absmax / qmax * (1 + 2**-9) + 2**-24).all())


def test_decode_rejects_wrong_size() -> None:
    codec = QuantWireCodec(WireCodecConfig(precision="int8"))
    good = codec.encode(torch.randn(1, 4, 16))[0]
    with pytest.raises(ValueError, match="payload 0 has 10 bytes, expected"):
        codec.decode([good[:10]], n_tokens=4, d_z=16)


def test_int4_needs_even_groups() -> None:
    with pytest.raises(ValueError, match="even group_size"):
        WireCodecConfig(precision="int4", group_size=3)


def test_zeros_roundtrip_exactly() -> None:
    codec = QuantWireCodec(WireCodecConfig(precision="int4", group_size=8))
    z = torch.zeros(2, 3, 8)
    assert torch.equal(codec.roundtrip(z), z)
