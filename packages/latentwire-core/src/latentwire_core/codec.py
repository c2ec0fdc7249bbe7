"""Wire codec: ``Z`` <-> bytes per example, with exact byte counts.

Formats (``n = M * d_z`` values per example, ``g`` = group size, ``G = ceil(n / g)``):

* ``fp16``: ``2n`` bytes. Round-to-nearest half precision: relative error
  ``<= 2**-11`` for ``|x|`` in the normal fp16 range (``6.1e-5 .. 65504``);
  values beyond 65504 saturate.
* ``int8``: per group absmax scale ``s`` (stored fp16, rounded *up* so no value
  clips) and ``q = round(x / s)`` in ``[-127, 127]``: ``n + 2G`` bytes
  (values, then scales). Error ``<= s / 2`` per element, ``s <= absmax/127 * (1 + 2**-9) + 2**-24``.
* ``int4``: as int8 with ``q`` in ``[-7, 7]``, two values per byte (low nibble
  first, offset by 8): ``ceil(G*g / 2) + 2G`` bytes. Error ``<= s / 2``,
  ``s <= absmax/7 * (1 + 2**-9) + 2**-24``.

Scales are counted in the payload (docs/design.md "Correctness rules", rule 6).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from latentwire_core.config import WireCodecConfig

__all__ = ["QuantWireCodec", "WireCodecConfig"]

_QMAX = {"int8": 127, "int4": 7}


def _to_bytes(t: torch.Tensor) -> bytes:
    # torch-only serialisation (core does not depend on numpy)
    return bytes(t.contiguous().view(torch.uint8).flatten().tolist())


class QuantWireCodec:
    """fp16 / int8 / int4 wire codec with per-group absmax scales."""

    def __init__(self, cfg: WireCodecConfig) -> None:
        self.cfg = cfg

    def _groups(self, n: int) -> int:
        return -(-n // self.cfg.group_size)

    def payload_bytes(self, *, n_tokens: int, d_z: int) -> int:
        n = n_tokens * d_z
        if self.cfg.precision == "fp16":
            return 2 * n
        g = self._groups(n)
        padded = g * self.cfg.group_size
        values = padded if self.cfg.precision == "int8" else padded // 2
        return values + 2 * g

    def scales(self, z: torch.Tensor) -> torch.Tensor:
        """Per-group stored scales ``(B, G)`` float32 (what decode multiplies by)."""
        qmax = _QMAX[self.cfg.precision]
        flat = self._padded(z)  # (B, G, g)
        absmax = flat.abs().amax(dim=-1)  # (B, G)
        # Inflate by 2**-10 before rounding to fp16 (relative rounding error <= 2**-11),
        # so the stored scale is never below absmax/qmax and no value clips.
        need = absmax / qmax
        s = (need * (1 + 2**-10)).clamp(min=2**-24, max=65504).to(torch.float16)
        # Subnormal fp16 scales round coarser than 2**-11: bump any that fell short
        # to the next representable half (positive halves order like their bit patterns).
        short = s.float() < need
        if bool(short.any()):
            bits = s.view(torch.int16)
            s = torch.where(short, (bits + 1).view(torch.float16), s)
        return s.float()

    def _padded(self, z: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        flat = z.detach().float().reshape(b, -1)  # (B, n)
        g = self._groups(flat.shape[1])
        pad = g * self.cfg.group_size - flat.shape[1]
        if pad:
            flat = torch.cat([flat, flat.new_zeros(b, pad)], dim=1)
        return flat.reshape(b, g, self.cfg.group_size)  # (B, G, g)

    def encode(self, z: torch.Tensor) -> list[bytes]:
        """``Z (B, M, d_z)`` -> ``B`` payloads of exactly :meth:`payload_bytes` bytes."""
        if z.dim() != 3:
            raise ValueError(f"expected Z of shape (B, M, d_z), got {tuple(z.shape)}")
        z = z.detach().cpu()
        if self.cfg.precision == "fp16":
            half = z.float().clamp(-65504, 65504).to(torch.float16).reshape(z.shape[0], -1)
            return [_to_bytes(row) for row in half]
        qmax = _QMAX[self.cfg.precision]
        groups = self._padded(z)  # (B, G, g)
        s = self.scales(z)  # (B, G)
        q = torch.round(groups / s[..., None]).clamp(-qmax, qmax).to(torch.int8)  # (B, G, g)
        s16 = s.to(torch.float16)
        out = []
        for row_q, row_s in zip(q, s16, strict=True):
            if self.cfg.precision == "int8":
                values = _to_bytes(row_q)
            else:
                u = (row_q.flatten() + 8).to(torch.uint8)  # nibbles 1..15
                values = _to_bytes(u[0::2] | (u[1::2] << 4))
            out.append(values + _to_bytes(row_s))
        return out

    def decode(self, payloads: Sequence[bytes], *, n_tokens: int, d_z: int) -> torch.Tensor:
        """Inverse of :meth:`encode` -> ``(B, M, d_z)`` float32.

        Raises:
            ValueError: a payload of the wrong size (corrupt or another format).
        """
        n = n_tokens * d_z
        expect = self.payload_bytes(n_tokens=n_tokens, d_z=d_z)
        rows = []
        for i, p in enumerate(payloads):
            if len(p) != expect:
                raise ValueError(
                    f"payload {i} has {len(p)} bytes, expected {expect} for "
                    f"{self.cfg.precision} with M={n_tokens}, d_z={d_z}"
                )
            buf = bytearray(p)
            if self.cfg.precision == "fp16":
                rows.append(torch.frombuffer(buf, dtype=torch.float16).float())
                continue
            g = self._groups(n)
            padded = g * self.cfg.group_size
            nv = padded if self.cfg.precision == "int8" else padded // 2
            s = torch.frombuffer(buf[nv:], dtype=torch.float16).float()  # (G,)
            if self.cfg.precision == "int8":
                q = torch.frombuffer(buf[:nv], dtype=torch.int8).float()
            else:
                u = torch.frombuffer(buf[:nv], dtype=torch.uint8)
                q = torch.stack([(u & 0xF), (u >> 4)], dim=1).flatten().float() - 8
            vals = (q.reshape(g, self.cfg.group_size) * s[:, None]).flatten()[:n]
            rows.append(vals)
        if not rows:
            return torch.zeros(0, n_tokens, d_z)
        return torch.stack(rows).reshape(len(rows), n_tokens, d_z)

    def encode_rows(self, z: torch.Tensor, counts: torch.Tensor) -> list[bytes]:
        """Variable M: row ``b`` sends only its first ``counts[b]`` slots -> one payload per row."""
        return [self.encode(z[b : b + 1, : int(c)])[0] for b, c in enumerate(counts.tolist())]

    def decode_rows(
        self, payloads: Sequence[bytes], counts: Sequence[int], *, d_z: int
    ) -> list[torch.Tensor]:
        """Inverse of :meth:`encode_rows`: per row ``(M_b, d_z)`` float32."""
        return [self.decode([p], n_tokens=int(c), d_z=d_z)[0] for p, c in zip(payloads, counts, strict=True)]

    def roundtrip(self, z: torch.Tensor) -> torch.Tensor:
        """Encode then decode (what a receiver sees), on ``z``'s device and dtype."""
        dec = self.decode(self.encode(z), n_tokens=z.shape[1], d_z=z.shape[2])
        return dec.to(device=z.device, dtype=z.dtype)
