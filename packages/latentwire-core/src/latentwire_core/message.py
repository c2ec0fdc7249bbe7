"""The LatentWire message, format version 1: what crosses the wire between two processes.

Specified in ``docs/message-format.md``. Layout (little-endian)::

    offset  size  field
    0       4     magic  b"LWIR"
    4       1     format version (1)
    5       1     codec precision: 0 = fp16, 1 = int8, 2 = int4
    6       2     codec group size (u16)
    8       2     M, soft tokens (u16)
    10      2     d_z (u16)
    12      8     encoder fingerprint (first 8 bytes of a SHA-256 over the encoder's config and weights)
    20      4     payload length in bytes (u32)
    24      n     payload: the codec's bytes for Z (M, d_z), scales included
    24+n    4     CRC32 of bytes 0 .. 24+n

Version 2, the compact frame (``[codec] frame = "v2"``): 8 bytes around the payload for M < 128::

    offset  size  field
    0       1     0xB2: magic and version in one byte (a v1 message starts with b"L")
    1       4     encoder fingerprint prefix (its first 4 bytes)
    5       1-3   M, unsigned LEB128 varint
    ...     n     payload: the codec's bytes for Z (M, d_z), scales included
    end-2   2     CRC-16/CCITT (``binascii.crc_hqx``, initial 0xFFFF) of every byte before it

d_z, precision and group size are not sent: they are the receiver's wire's (the fingerprint prefix names
that wire), so a receiver reads a v2 message only with its codec and d_z; the payload length they imply
must equal what arrived. Receivers read both versions.

A message is never decoded into a tensor unless every check passes: length, magic, version,
checksum, the payload length the header's codec implies, and (when the receiver names them) the
encoder fingerprint, the receiver's ``d_z`` exactly and its limit on M. A decoded Z holding a NaN or an
infinity is refused. Each failure has its own :class:`MessageError` subclass. The CRC detects damage in
transit, not a wrong or hostile sender (anyone can compute it): the receiver's own checks are what keep a
forged message from costing memory or reaching a reader.
"""

from __future__ import annotations

import binascii
import ctypes
import hashlib
import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import torch
from torch import nn

from latentwire_core.codec import QuantWireCodec
from latentwire_core.config import WireCodecConfig

__all__ = [
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "MAGIC",
    "V2_MARKER",
    "BadMagic",
    "ChecksumMismatch",
    "FingerprintMismatch",
    "MalformedMessage",
    "MessageError",
    "MessageHeader",
    "TruncatedMessage",
    "UnsupportedVersion",
    "WireMismatch",
    "encoder_fingerprint",
    "frame_bytes",
    "message_bytes",
    "pack",
    "read_header",
    "receive",
    "unpack",
]

MAGIC = b"LWIR"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<4sBBHHH8sI")
_CRC = struct.Struct("<I")
HEADER_BYTES = _HEAD.size + _CRC.size  # 28: what the format adds to the codec's payload
_PRECISIONS = ("fp16", "int8", "int4")
V2_MARKER = 0xB2
_V2_FP = 4  # fingerprint prefix bytes in a v2 frame


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(msg: bytes, at: int) -> tuple[int, int]:
    """``(value, next offset)`` of the LEB128 varint at ``at``; at most 3 bytes (M <= 65535)."""
    value = 0
    for i in range(3):
        if at + i >= len(msg):
            raise TruncatedMessage(f"message of {len(msg)} bytes ends inside its M field")
        byte = msg[at + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, at + i + 1
    raise MalformedMessage("the M field is longer than 3 bytes")


def frame_bytes(frame: str, n_tokens: int) -> int:
    """What the frame adds to the codec's payload: 28 bytes in v1; 1 + 4 + varint(M) + 2 in v2."""
    return HEADER_BYTES if frame == "v1" else 1 + _V2_FP + len(_varint(n_tokens)) + 2


class MessageError(ValueError):
    """A message that cannot be decoded; the subclass says why."""


class TruncatedMessage(MessageError):
    pass


class BadMagic(MessageError):
    pass


class UnsupportedVersion(MessageError):
    pass


class ChecksumMismatch(MessageError):
    pass


class MalformedMessage(MessageError):
    pass


class WireMismatch(MessageError):
    """A well-formed message whose shape this receiver's wire cannot take (d_z, or M past its limit)."""


class FingerprintMismatch(MessageError):
    pass


@attrs.frozen
class MessageHeader:
    version: int
    precision: str
    group_size: int
    n_tokens: int
    d_z: int
    fingerprint: bytes

    def codec(self) -> QuantWireCodec:
        return QuantWireCodec(WireCodecConfig(precision=self.precision, group_size=self.group_size))


def _tensor_bytes(t: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """A zero-copy buffer over a contiguous CPU tensor (torch only; core does not use numpy).
    The tensor is returned too: it must stay alive while the buffer is read."""
    t = t.detach().to("cpu").contiguous()
    n = t.numel() * t.element_size()
    return (ctypes.c_ubyte * n).from_address(t.data_ptr()) if n else b"", t


def encoder_fingerprint(module: nn.Module, config: Mapping[str, Any]) -> bytes:
    """8 bytes of SHA-256 over ``config`` (JSON, sorted keys) and every parameter and buffer of
    ``module`` (name, dtype, shape, raw bytes). Adapters trained against one encoder check it
    before they decode a message."""
    h = hashlib.sha256(json.dumps(dict(config), sort_keys=True, default=str).encode())
    for name, t in sorted([*module.named_parameters(), *module.named_buffers()], key=lambda kv: kv[0]):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        buf, keep = _tensor_bytes(t)
        h.update(buf)
        del keep
    return h.digest()[:8]


def message_bytes(codec: QuantWireCodec, *, n_tokens: int, d_z: int) -> int:
    """Exact size of a message in the codec's frame: the frame's bytes plus the codec's payload."""
    return frame_bytes(codec.cfg.frame, n_tokens) + codec.payload_bytes(n_tokens=n_tokens, d_z=d_z)


def pack(z: torch.Tensor, codec: QuantWireCodec, fingerprint: bytes) -> bytes:
    """``Z (M, d_z)`` -> one message."""
    if z.dim() != 2:
        raise ValueError(f"pack takes one example's Z (M, d_z), got shape {tuple(z.shape)}")
    if len(fingerprint) != 8:
        raise ValueError(f"the encoder fingerprint is 8 bytes, got {len(fingerprint)}")
    m, d_z = (int(x) for x in z.shape)
    if not (0 < m < 2**16 and 0 < d_z < 2**16):
        raise ValueError(f"M and d_z must be in 1..65535, got M={m}, d_z={d_z}")
    payload = codec.encode(z[None])[0]
    cfg = codec.cfg
    if cfg.frame == "v2":
        body = bytes([V2_MARKER]) + fingerprint[:_V2_FP] + _varint(m) + payload
        return body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "little")
    head = _HEAD.pack(
        MAGIC,
        FORMAT_VERSION,
        _PRECISIONS.index(cfg.precision),
        cfg.group_size,
        m,
        d_z,
        fingerprint,
        len(payload),
    )
    body = head + payload
    return body + _CRC.pack(zlib.crc32(body))


def _read_v2(msg: bytes, codec: QuantWireCodec | None, d_z: int | None) -> tuple[MessageHeader, int]:
    """A v2 frame checked against the receiver's codec and d_z: ``(header, payload offset)``."""
    if len(msg) < 1 + _V2_FP + 1 + 2:
        raise TruncatedMessage(f"message of {len(msg)} bytes is shorter than a version-2 frame (8 bytes)")
    if binascii.crc_hqx(msg[:-2], 0xFFFF) != int.from_bytes(msg[-2:], "little"):
        raise ChecksumMismatch("message checksum (CRC-16) does not match: the bytes were damaged in transit")
    if codec is None or d_z is None:
        raise WireMismatch(
            "a version-2 message leaves its codec and d_z to the receiver's wire: read it with them "
            "(PretrainedWire and the evaluation do)"
        )
    m, at = _read_varint(msg, 1 + _V2_FP)
    if m == 0:
        raise MalformedMessage("bad header fields: M 0")
    cfg = codec.cfg
    header = MessageHeader(2, cfg.precision, cfg.group_size, m, d_z, bytes(msg[1 : 1 + _V2_FP]))
    want = codec.payload_bytes(n_tokens=m, d_z=d_z)
    if len(msg) - at - 2 != want:
        raise TruncatedMessage(
            f"message is {len(msg)} bytes but M = {m} at {cfg.precision}, d_z = {d_z} needs {at + want + 2}"
        )
    return header, at


def read_header(msg: bytes) -> MessageHeader:
    """Parse and check a v1 header and everything but the fingerprint; raises a :class:`MessageError`
    subclass. (A v2 frame is read by :func:`unpack` with the receiver's codec.)"""
    if len(msg) < 6:
        raise TruncatedMessage(
            f"message of {len(msg)} bytes is shorter than its header ({HEADER_BYTES} bytes)"
        )
    if msg[:4] != MAGIC:
        raise BadMagic(f"not a LatentWire message: magic {msg[:4]!r}, expected {MAGIC!r}")
    if msg[4] != FORMAT_VERSION:
        raise UnsupportedVersion(
            f"message format version {msg[4]}; this library reads version {FORMAT_VERSION} with this "
            f"magic (and version 2 by its one-byte marker)"
        )
    if len(msg) < HEADER_BYTES:
        raise TruncatedMessage(
            f"message of {len(msg)} bytes is shorter than its header ({HEADER_BYTES} bytes)"
        )
    _, version, prec, group, m, d_z, fp, n = _HEAD.unpack_from(msg)
    if len(msg) != _HEAD.size + n + _CRC.size:
        raise TruncatedMessage(
            f"message is {len(msg)} bytes but its header announces {_HEAD.size + n + _CRC.size}"
        )
    (crc,) = _CRC.unpack_from(msg, len(msg) - _CRC.size)
    if zlib.crc32(msg[: -_CRC.size]) != crc:
        raise ChecksumMismatch("message checksum (CRC32) does not match: the bytes were damaged in transit")
    if prec >= len(_PRECISIONS) or group == 0 or m == 0 or d_z == 0:
        raise MalformedMessage(f"bad header fields: precision {prec}, group size {group}, M {m}, d_z {d_z}")
    header = MessageHeader(version, _PRECISIONS[prec], group, m, d_z, bytes(fp))
    try:
        want = header.codec().payload_bytes(n_tokens=m, d_z=d_z)
    except ValueError as e:
        raise MalformedMessage(f"bad codec in header: {e}") from None
    if n != want:
        raise MalformedMessage(f"payload is {n} bytes; {header.precision} M={m} d_z={d_z} needs {want}")
    return header


def unpack(
    msg: bytes,
    *,
    fingerprint: bytes | None = None,
    d_z: int | None = None,
    max_tokens: int | None = None,
    codec: QuantWireCodec | None = None,
) -> tuple[torch.Tensor, MessageHeader]:
    """One message (v1 or v2) -> ``(Z (M, d_z) float32, header)``.

    Args:
        fingerprint: the receiver's encoder fingerprint; a message from another encoder raises
            :class:`FingerprintMismatch` (its adapters were not trained for that latent space). A v2
            message carries the first 4 bytes, compared with the receiver's first 4.
        d_z: the receiver's latent width; another raises :class:`WireMismatch` before any decoding.
        max_tokens: the most soft tokens the receiver's wire makes (its ``n_tokens``); more raises
            :class:`WireMismatch` before any decoding (so a forged M costs no memory).
        codec: the receiver's codec: needed for a v2 message (its precision and group are implied).

    Raises:
        MalformedMessage: the decoded Z holds a NaN or an infinity.
    """
    if msg[:1] == bytes([V2_MARKER]):
        header, at = _read_v2(msg, codec, d_z)
        payload = msg[at:-2]
        want_fp = fingerprint[:_V2_FP] if fingerprint is not None else None
    else:
        header = read_header(msg)
        payload = msg[_HEAD.size : len(msg) - _CRC.size]
        want_fp = fingerprint
    if d_z is not None and header.d_z != d_z:
        raise WireMismatch(f"message has d_z = {header.d_z}; this wire's latent has d_z = {d_z}")
    if max_tokens is not None and header.n_tokens > max_tokens:
        raise WireMismatch(
            f"message has M = {header.n_tokens} soft tokens; this wire makes at most {max_tokens}"
        )
    if want_fp is not None and header.fingerprint != want_fp:
        raise FingerprintMismatch(
            f"message was encoded by encoder {header.fingerprint.hex()}, but these adapters were trained "
            f"for encoder {want_fp.hex()}"
        )
    z = header.codec().decode([payload], n_tokens=header.n_tokens, d_z=header.d_z)[0]
    if not bool(torch.isfinite(z).all()):
        bad = int((~torch.isfinite(z)).sum())
        raise MalformedMessage(f"message decodes to {bad} non-finite values (NaN or infinity); refused")
    return z, header


def receive(
    messages: Sequence[bytes],
    *,
    fingerprint: bytes | None = None,
    d_z: int | None = None,
    max_tokens: int | None = None,
    codec: QuantWireCodec | None = None,
) -> list[torch.Tensor]:
    """What a receiver gets: each message checked and decoded (:func:`unpack`) -> ``Z`` rows ``(M_i, d_z)``."""
    return [
        unpack(m, fingerprint=fingerprint, d_z=d_z, max_tokens=max_tokens, codec=codec)[0] for m in messages
    ]
