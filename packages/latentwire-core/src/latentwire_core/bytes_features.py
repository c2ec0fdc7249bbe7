"""UTF-8 byte tokenizer and a byte-level feature source trained from scratch.

The byte encoder is the seeds' option (``[features] source = "bytes"``: :class:`ByteIdSource` reads the
bytes, :class:`ByteFrontEncoder` embeds them inside the wire's encoder, trained from scratch with it);
the default feature source is a frozen pretrained encoder (docs/design.md "Models and data that work with no network"). Byte features are zero and masked
where padded (docs/design.md "Correctness rules", rule 8).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import nn

from latentwire_core._validators import positive

__all__ = [
    "BYTES_SOURCE",
    "BYTE_VOCAB",
    "PAD_ID",
    "ByteFeatureConfig",
    "ByteFeatureSource",
    "ByteFrontEncoder",
    "ByteIdSource",
    "ByteTokenizer",
]

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


BYTES_SOURCE = "bytes"  # the [features] source name that selects the byte encoder


class ByteIdSource:
    """The feature source of a byte-level wire: each text's UTF-8 byte ids, nothing learned.

    ``features`` returns ``(ids (B, T, 1) float, mask (B, T))``; the wire's encoder starts with a trainable
    :class:`ByteFeatureSource` that embeds them (:class:`ByteFrontEncoder`), so the byte embedding trains
    with the wire. ``feature_dim`` is the width that front hands the interlingua (``d_f``).
    """

    def __init__(self, cfg: ByteFeatureConfig) -> None:
        self.cfg = cfg
        self.tokenizer = ByteTokenizer(cfg.max_bytes)
        self.key = f"{BYTES_SOURCE}-B{cfg.max_bytes}"
        self.hits = 0

    @property
    def feature_dim(self) -> int:
        return self.cfg.d_f

    def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer.encode(list(texts))
        self.hits += len(texts)
        return ids.to(torch.float32)[..., None], mask

    def warm(self, texts: Sequence[str], *, desc: str = "features") -> None:
        """Nothing to compute ahead: bytes are read as they are."""

    def read_text(self, text: str) -> str:
        """The prefix of ``text`` these features cover: its first ``max_bytes`` UTF-8 bytes (a character
        the cut splits is dropped)."""
        return text.encode("utf-8")[: self.cfg.max_bytes].decode("utf-8", errors="ignore")


class ByteFrontEncoder(nn.Module):
    """A trainable byte front (:class:`ByteFeatureSource`) before any interlingua encoder: byte ids
    ``(B, T, 1)`` -> byte features ``(B, T, d_f)`` -> the inner encoder's ``Z``. Part of the encoder, so
    its weights are in the encoder fingerprint and the checkpoints."""

    def __init__(self, front: ByteFeatureSource, inner: nn.Module) -> None:
        super().__init__()
        self.front, self.inner = front, inner
        self.n_tokens, self.d_z = getattr(inner, "n_tokens", None), getattr(inner, "d_z", None)
        self.ratio = getattr(inner, "ratio", 0.0)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor | None = None
    ) -> torch.Tensor:
        ids = features[..., 0].round().long().clamp(0, PAD_ID)
        ids = torch.where(mask.bool(), ids, torch.full_like(ids, PAD_ID))
        feats = self.front(ids, mask.bool())
        out: torch.Tensor = self.inner(feats, mask) if counts is None else self.inner(feats, mask, counts)
        return out
