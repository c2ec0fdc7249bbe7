"""Message format v1 (docs/message-format.md): round trip, exact sizes, every corruption named."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latentwire_core.codec import QuantWireCodec, WireCodecConfig
from latentwire_core.message import (
    HEADER_BYTES,
    BadMagic,
    ChecksumMismatch,
    FingerprintMismatch,
    MalformedMessage,
    MessageError,
    TruncatedMessage,
    UnsupportedVersion,
    WireMismatch,
    encoder_fingerprint,
    message_bytes,
    pack,
    unpack,
)

FP = bytes(range(8))


def _z(m: int, d: int, seed: int, scale: float) -> torch.Tensor:
    return torch.randn(m, d, generator=torch.Generator().manual_seed(seed)) * scale


@given(
    m=st.integers(1, 12),
    d=st.integers(1, 40),
    seed=st.integers(0, 10**6),
    scale=st.floats(1e-2, 1e2),
    precision=st.sampled_from(["fp16", "int8", "int4"]),
    group=st.sampled_from([2, 8, 32]),
)
@settings(max_examples=80, deadline=None)
def test_round_trip_within_the_codec_bounds_and_exact_size(m, d, seed, scale, precision, group) -> None:
    codec = QuantWireCodec(WireCodecConfig(precision=precision, group_size=group))
    z = _z(m, d, seed, scale)
    msg = pack(z, codec, FP)
    assert (
        len(msg)
        == message_bytes(codec, n_tokens=m, d_z=d)
        == HEADER_BYTES + codec.payload_bytes(n_tokens=m, d_z=d)
    )
    out, head = unpack(msg, fingerprint=FP)
    assert (head.n_tokens, head.d_z, head.precision, head.group_size, head.fingerprint) == (
        m,
        d,
        precision,
        group,
        FP,
    )
    # exactly what the codec alone gives: the format adds framing, never error
    torch.testing.assert_close(out, codec.roundtrip(z[None])[0], atol=0, rtol=0)


@given(seed=st.integers(0, 10**6), precision=st.sampled_from(["fp16", "int8", "int4"]))
@settings(max_examples=10, deadline=None)
def test_every_single_byte_corruption_is_detected(seed: int, precision: str) -> None:
    codec = QuantWireCodec(WireCodecConfig(precision=precision, group_size=8))
    msg = pack(_z(3, 8, seed, 1.0), codec, FP)
    rng = torch.Generator().manual_seed(seed)
    for i in range(len(msg)):  # every position, a random non-identity change
        bad = bytearray(msg)
        bad[i] ^= int(torch.randint(1, 256, (1,), generator=rng))
        with pytest.raises(MessageError):
            unpack(bytes(bad), fingerprint=FP)


def test_each_failure_has_its_own_named_error() -> None:
    codec = QuantWireCodec(WireCodecConfig())
    msg = pack(_z(4, 16, 0, 1.0), codec, FP)
    with pytest.raises(TruncatedMessage, match="announces"):
        unpack(msg[:-1])
    with pytest.raises(TruncatedMessage, match="shorter than its header"):
        unpack(msg[:3])
    with pytest.raises(BadMagic, match="not a LatentWire message"):
        unpack(b"PK\x03\x04" + msg[4:])
    with pytest.raises(UnsupportedVersion, match="version 2"):
        unpack(msg[:4] + b"\x02" + msg[5:])
    flipped = bytearray(msg)
    flipped[40] ^= 1
    with pytest.raises(ChecksumMismatch, match="CRC32"):
        unpack(bytes(flipped))
    with pytest.raises(FingerprintMismatch, match="0001020304050607"):
        unpack(msg, fingerprint=b"\xff" * 8)


def test_fingerprint_names_the_encoder_config_and_weights() -> None:
    torch.manual_seed(0)
    enc = torch.nn.Linear(4, 3)
    fp = encoder_fingerprint(enc, {"kind": "linear"})
    assert len(fp) == 8 and fp == encoder_fingerprint(enc, {"kind": "linear"})
    assert fp != encoder_fingerprint(enc, {"kind": "other"})
    with torch.no_grad():
        enc.weight[0, 0] += 1e-6
    assert fp != encoder_fingerprint(enc, {"kind": "linear"})


def test_a_forged_message_with_a_valid_crc_is_refused_by_the_receivers_own_checks() -> None:
    """The CRC protects against damage, not against a wrong sender: d_z must equal the receiver's, M must
    be within its wire's limit (checked before any decoding), and every decoded value must be finite."""
    fp16 = QuantWireCodec(WireCodecConfig(precision="fp16"))
    fp = b"\x01" * 8
    ok = pack(torch.randn(3, 8), fp16, fp)
    z, _ = unpack(ok, fingerprint=fp, d_z=8, max_tokens=4)
    assert z.shape == (3, 8)
    with pytest.raises(WireMismatch, match=r"d_z = 9; this wire's latent has d_z = 8"):
        unpack(pack(torch.randn(3, 9), fp16, fp), fingerprint=fp, d_z=8, max_tokens=4)
    with pytest.raises(WireMismatch, match=r"M = 5 soft tokens; this wire makes at most 4"):
        unpack(pack(torch.randn(5, 8), fp16, fp), fingerprint=fp, d_z=8, max_tokens=4)
    nan = torch.randn(3, 8)
    nan[1, 2] = float("nan")
    nan[0, 0] = float("inf")
    with pytest.raises(MalformedMessage, match="non-finite values"):
        unpack(pack(nan, fp16, fp), fingerprint=fp, d_z=8, max_tokens=4)
    int8 = QuantWireCodec(WireCodecConfig(precision="int8"))
    with pytest.raises(MalformedMessage, match="non-finite"):
        unpack(pack(nan, int8, fp))  # a NaN scale poisons its group


# --- version 2: the compact frame -------------------------------------------------------------------


def _v2(precision: str = "int8", group: int = 8) -> QuantWireCodec:
    return QuantWireCodec(WireCodecConfig(precision=precision, group_size=group, frame="v2"))


@given(
    m=st.integers(1, 300),
    d=st.integers(1, 24),
    seed=st.integers(0, 10**6),
    precision=st.sampled_from(["fp16", "int8", "int4"]),
    group=st.sampled_from([2, 8, 32]),
)
@settings(max_examples=60, deadline=None)
def test_v2_round_trip_is_the_codec_alone_in_at_most_8_bytes_of_frame_for_short_messages(
    m, d, seed, precision, group
) -> None:
    from latentwire_core.message import frame_bytes

    codec = _v2(precision, group)
    z = _z(m, d, seed, 1.0)
    msg = pack(z, codec, FP)
    frame = frame_bytes("v2", m)
    assert (
        len(msg) == message_bytes(codec, n_tokens=m, d_z=d) == frame + codec.payload_bytes(n_tokens=m, d_z=d)
    )
    assert frame == (8 if m < 128 else 9)
    out, head = unpack(msg, fingerprint=FP, d_z=d, codec=codec)
    assert (head.version, head.n_tokens, head.d_z, head.fingerprint) == (2, m, d, FP[:4])
    torch.testing.assert_close(out, codec.roundtrip(z[None])[0], atol=0, rtol=0)


@given(seed=st.integers(0, 10**6), precision=st.sampled_from(["fp16", "int8", "int4"]))
@settings(max_examples=10, deadline=None)
def test_v2_every_single_byte_corruption_is_detected(seed: int, precision: str) -> None:
    codec = _v2(precision)
    msg = pack(_z(3, 8, seed, 1.0), codec, FP)
    rng = torch.Generator().manual_seed(seed)
    for i in range(len(msg)):
        bad = bytearray(msg)
        bad[i] ^= int(torch.randint(1, 256, (1,), generator=rng))
        with pytest.raises(MessageError):
            unpack(bytes(bad), fingerprint=FP, d_z=8, codec=codec)


def test_v2_each_failure_is_refused_by_name_and_v1_is_still_read() -> None:
    import binascii

    codec = _v2("int4", 8)
    msg = pack(_z(4, 16, 0, 1.0), codec, FP)
    assert len(msg) == 8 + codec.payload_bytes(n_tokens=4, d_z=16)

    def recrc(b: bytes) -> bytes:
        return b[:-2] + binascii.crc_hqx(b[:-2], 0xFFFF).to_bytes(2, "little")

    with pytest.raises(TruncatedMessage, match="version-2 frame"):
        unpack(msg[:5], codec=codec, d_z=16)
    with pytest.raises(ChecksumMismatch, match="CRC-16"):
        unpack(msg[:-3] + msg[-2:], codec=codec, d_z=16)  # one payload byte lost: the CRC no longer holds
    with pytest.raises(TruncatedMessage, match="needs"):
        unpack(recrc(msg[:-3] + msg[-2:]), codec=codec, d_z=16)  # a byte short, with a valid CRC
    with pytest.raises(WireMismatch, match="codec and d_z"):
        unpack(msg)  # a v2 message needs the receiver's wire
    with pytest.raises(FingerprintMismatch, match="00010203"):
        unpack(msg, fingerprint=b"\xff" * 8, d_z=16, codec=codec)
    forged = recrc(msg[:5] + bytes([0x80 | 5, 0x01]) + msg[6:])  # M = 133 announced, a valid CRC
    with pytest.raises(TruncatedMessage):
        unpack(forged, codec=codec, d_z=16)
    with pytest.raises(WireMismatch, match="at most 3"):
        unpack(msg, codec=codec, d_z=16, max_tokens=3)
    with pytest.raises(MalformedMessage, match="M 0"):
        unpack(recrc(msg[:5] + b"\x00" + msg[6:]), codec=codec, d_z=16)
    with pytest.raises(MalformedMessage, match="longer than 3 bytes"):
        unpack(recrc(msg[:5] + b"\xff\xff\xff\xff" + msg[6:]), codec=codec, d_z=16)
    nan = torch.randn(3, 16)
    nan[0, 0] = float("nan")
    with pytest.raises(MalformedMessage, match="non-finite"):
        unpack(pack(nan, _v2("fp16"), FP), codec=_v2("fp16"), d_z=16)
    v1 = pack(_z(4, 16, 0, 1.0), QuantWireCodec(WireCodecConfig(precision="int4", group_size=8)), FP)
    z1, h1 = unpack(v1, fingerprint=FP, d_z=16, codec=codec)  # a v2 receiver reads v1 too
    z2, h2 = unpack(msg, fingerprint=FP, d_z=16, codec=codec)
    assert (h1.version, h2.version) == (1, 2) and torch.equal(z1, z2)
    assert len(v1) - len(msg) == 20  # 28 -> 8 bytes of frame
