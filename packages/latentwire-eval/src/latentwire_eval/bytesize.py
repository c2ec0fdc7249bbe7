"""What a text costs on a byte wire when compressed well: its UTF-8 bytes, ``zstd`` (level 19) and gzip.

The yardstick for a latent message's bytes (docs/results.md "bytes"): a message smaller than the text's
UTF-8 bytes but larger than its zstd size is not yet a compressor. Sizes are of the whole compressed
stream a receiver would need (zstd's frame, gzip's header and trailer included), per text.
"""

from __future__ import annotations

import gzip
from functools import lru_cache

import attrs

__all__ = ["TextBytes", "text_bytes"]

ZSTD_LEVEL = 19
GZIP_LEVEL = 9


@attrs.frozen
class TextBytes:
    utf8: int
    zstd: int
    gzip: int


@lru_cache(maxsize=65536)
def text_bytes(text: str) -> TextBytes:
    """UTF-8, zstd (level 19, no dictionary, content size in the frame) and gzip (level 9, mtime 0) sizes."""
    import zstandard

    raw = text.encode("utf-8")
    z = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)
    g = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    return TextBytes(utf8=len(raw), zstd=len(z), gzip=len(g))
