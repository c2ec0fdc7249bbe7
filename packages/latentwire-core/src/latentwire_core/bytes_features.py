"""UTF-8 byte tokenizer and a byte-level feature source trained from scratch.

The byte encoder is the seeds' option; the default feature source is a frozen
pretrained encoder (docs/design.md "Models and data that work with no network"). Byte features are zero and masked
where padded (docs/design.md "Correctness rules", rule 8).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import nn

from latentwire_core._validators import positive

__all__ = ["BYTE_VOCAB", "PAD_ID", "ByteFeatureConfig", "ByteFeatureSource", "ByteTokenizer"]

PAD_ID = 256
BYTE_VOCAB = 257  # 256 byte values + PAD


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255, right-padded with :data:`PAD_ID`.

    Args:
        max_bytes: texts longer than this many UTF-8 bytes are truncated.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self.max_bytes = max_bytes

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(ids (B, T) int64, mask (B, T) bool)`` with ``T = max length <= max_bytes``."""
        rows = [t.encode("utf-8")[: self.max_bytes] for t in texts]
        width = max((len(r) for r in rows), default=0)
        width = max(width, 1)
        ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, r in enumerate(rows):
            if r:
                ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
                mask[i, : len(r)] = True
        return ids, mask

    def decode(self, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        """Inverse of :meth:`encode`; a multi-byte character cut by truncation is dropped."""
        out = []
        for row, m in zip(ids.tolist(), mask.tolist(), strict=True):
            data = bytes(b for b, keep in zip(row, m, strict=True) if keep)
            out.append(data.decode("utf-8", errors="ignore"))
        return out


@attrs.frozen(kw_only=True)
class ByteFeatureConfig:
    max_bytes: int = attrs.field(default=512, validator=positive)
    d_f: int = attrs.field(default=256, validator=positive)
    n_layers: int = attrs.field(default=2, validator=positive)
    n_heads: int = attrs.field(default=4, validator=positive)

    def __attrs_post_init__(self) -> None:
        if self.d_f % self.n_heads:
            raise ValueError(f"d_f ({self.d_f}) must be divisible by n_heads ({self.n_heads})")


class ByteFeatureSource(nn.Module):
    """Byte embeddings + learned positions + a small Transformer encoder (trainable)."""

    def __init__(self, cfg: ByteFeatureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = ByteTokenizer(cfg.max_bytes)
        self.embed = nn.Embedding(BYTE_VOCAB, cfg.d_f, padding_idx=PAD_ID)
        self.pos = nn.Embedding(cfg.max_bytes, cfg.d_f)
        layer = nn.TransformerEncoderLayer(
            cfg.d_f, cfg.n_heads, dim_feedforward=2 * cfg.d_f, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)

    @property
    def feature_dim(self) -> int:
        return self.cfg.d_f

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids ``(B, T)``, mask ``(B, T)`` -> features ``(B, T, d_f)``, zero where padded."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.embed(ids) + self.pos(pos)[None]  # (B, T, d_f)
        # An empty text would leave a row with every key masked (NaN attention);
        # let it attend to its first (pad) position and zero the output below.
        key_pad = ~mask
        key_pad[:, 0] &= mask.any(dim=1)
        x = self.encoder(x, src_key_padding_mask=key_pad)
        out: torch.Tensor = x * mask[..., None].to(x.dtype)
        return out

    def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer.encode(texts)
        dev = self.embed.weight.device
        ids, mask = ids.to(dev), mask.to(dev)
        return self(ids, mask), mask
