"""Where the project keeps what it computes once (converted readers, features, joined GGUF files), and the
file digest every check of those files (and of checkpoints and snapshots) uses."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["cache_root", "file_sha256"]


def cache_root() -> Path:
    """Where converted weights and features live: ``$LATENTWIRE_CACHE`` or ``~/.cache/latentwire``."""
    return Path(os.environ.get("LATENTWIRE_CACHE", Path.home() / ".cache" / "latentwire"))


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 4 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
